"""Layers: init, norm, SwiGLU widths, URM's ConvSwiGLU, rotary embeddings, attention."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from arcpipe.model.layers import (
    Attention,
    ConvSwiGLU,
    RotaryEmbedding,
    SwiGLU,
    rms_norm,
    swiglu_width,
    trunc_normal_,
)
from arcpipe.model.memory import saved_activation_bytes


def test_truncated_normal_has_the_requested_std_and_bounds() -> None:
    g = torch.Generator().manual_seed(0)
    x = trunc_normal_(torch.empty(400_000), 0.5, g)
    assert abs(x.std().item() - 0.5) < 0.005
    assert x.abs().max().item() <= 2 * 0.5 / 0.8796256610342398 + 1e-6
    assert trunc_normal_(torch.ones(5), 0.0, g).abs().sum() == 0


def test_rms_norm_has_no_scale_and_unit_rms() -> None:
    x = torch.randn(3, 7, 16) * 5 + 2
    y = rms_norm(x, 1e-5)
    assert torch.allclose(y.square().mean(-1), torch.ones(3, 7), atol=1e-4)
    assert y.dtype == x.dtype


def test_swiglu_widths_match_the_reference() -> None:
    assert swiglu_width(512, 4) == 1536  # ARC attention model
    assert swiglu_width(97, 4) == 512  # Sudoku token-mixing MLP over 81 + 16 positions
    assert swiglu_width(916, 4) == 2560  # Maze token-mixing MLP


def test_rotary_embedding_preserves_norms_and_depends_on_relative_position() -> None:
    rope = RotaryEmbedding(8, 12, 10000.0)
    q = torch.randn(1, 1, 1, 8).expand(1, 12, 1, 8)
    k = torch.randn(1, 1, 1, 8).expand(1, 12, 1, 8)
    rq, rk = rope(q), rope(k)
    assert torch.allclose(rq.norm(dim=-1), q.norm(dim=-1), atol=1e-5)
    dots = rq[0, :, 0] @ rk[0, :, 0].T  # (12, 12) depends only on i - j
    for shift in range(1, 4):
        diag = torch.diagonal(dots, shift)
        assert torch.allclose(diag, diag[0].expand_as(diag), atol=1e-4)


def rotated_scores(rope: RotaryEmbedding, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """q at every position against k at every position, (L, L), for one head vector each."""
    L = rope.cos.shape[0]
    rq, rk = rope(q.expand(1, L, 1, -1)), rope(k.expand(1, L, 1, -1))
    return rq[0, :, 0] @ rk[0, :, 0].T


def test_rope2d_scores_depend_only_on_the_row_and_column_offsets() -> None:
    """Shift-equivariance in 2D on a 5x5 canvas: a query at (r1, c1) and a key at (r2, c2) score
    what they score shifted together by any (a, b); one step right is not one step down, and
    the last cell of a row is not next to the first of the next (as on the 1D rope's line)."""
    from arcpipe.model.trm import canvas_coordinates

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(16, generator=g), torch.randn(16, generator=g)
    scores = rotated_scores(RotaryEmbedding(16, canvas_coordinates(0, 25), 10000.0), q, k)

    def at(r1, c1, r2, c2) -> float:
        return scores[5 * r1 + c1, 5 * r2 + c2].item()

    for (r1, c1, r2, c2), (a, b) in [((0, 0, 1, 2), (3, 2)), ((4, 1, 2, 3), (-2, 1))]:
        assert at(r1, c1, r2, c2) == pytest.approx(at(r1 + a, c1 + b, r2 + a, c2 + b), abs=1e-5)
    assert at(0, 0, 0, 1) != pytest.approx(at(0, 0, 1, 0), abs=1e-3)
    assert at(0, 4, 1, 0) != pytest.approx(at(0, 0, 0, 1), abs=1e-3)
    line = rotated_scores(RotaryEmbedding(16, 25, 10000.0), q, k)
    assert line[4, 5].item() == pytest.approx(line[0, 1].item(), abs=1e-5)  # 1D: neighbours


def test_rope2d_gives_each_axis_half_of_the_pairs_at_half_size_frequencies() -> None:
    """Pairs 0..K/4-1 turn with the row, K/4..K/2-1 with the column, each at the frequencies
    of a head of size K/2; one axis of coordinates is exactly the 1D table."""
    coordinates = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    rope = RotaryEmbedding(8, coordinates, 100.0)
    angles = torch.atan2(rope.sin[:, 4:], rope.cos[:, 4:])  # (3, 4): the K/2 pair angles
    inv_freq = torch.tensor([1.0, 0.1])  # 1 / 100^(2i / 4)
    torch.testing.assert_close(angles[1], torch.cat([2 * inv_freq, torch.zeros(2)]))
    torch.testing.assert_close(angles[2], torch.cat([torch.zeros(2), 3 * inv_freq]))
    line = RotaryEmbedding(8, 12, 100.0)
    same = RotaryEmbedding(8, torch.arange(12.0)[:, None], 100.0)
    assert torch.equal(line.cos, same.cos) and torch.equal(line.sin, same.sin)


def test_attention_equals_the_textbook_formula() -> None:
    g = torch.Generator().manual_seed(1)
    attn = Attention(16, 4, g)
    h = torch.randn(2, 5, 16)
    qkv = attn.qkv(h).view(2, 5, 3, 4, 4)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # (B, H, L, K)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(4), dim=-1)
    expected = attn.out((weights @ v).transpose(1, 2).reshape(2, 5, 16))
    assert torch.allclose(attn(h, None), expected, atol=1e-5)


# --------------------------------------------------------------------------- activation memory


def plain_swiglu(mlp: SwiGLU, x: torch.Tensor) -> torch.Tensor:
    """The textbook SwiGLU, differentiated by autograd (keeps gate_up, silu(gate), product)."""
    gate, up = mlp.gate_up(x).chunk(2, dim=-1)
    return mlp.down(F.silu(gate) * up)


def plain_rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


def saved_bytes(fn, *inputs: torch.Tensor, module: torch.nn.Module | None = None) -> int:
    """Activation bytes autograd keeps for the backward of fn(*inputs), ``module``'s weights out."""
    return saved_activation_bytes(lambda: fn(*inputs), module.parameters() if module else ())


def value_and_grads(fn, module: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype):
    """fn(x) under autocast to ``dtype`` (none for float32); d(sum of squares)/d(x, weights)."""
    x = x.detach().requires_grad_()
    with torch.autocast("cpu", dtype, enabled=dtype != torch.float32):
        out = fn(x)
    grads = torch.autograd.grad(out.float().square().sum(), [x, *module.parameters()])
    return out, grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_swiglu_keeps_half_the_activations_with_the_same_gradients(dtype: torch.dtype) -> None:
    mlp = SwiGLU(64, 4, torch.Generator().manual_seed(0))  # width 256
    x = torch.randn(3, 10, 64)
    lean = value_and_grads(mlp, mlp, x, dtype)
    plain = value_and_grads(lambda t: plain_swiglu(mlp, t), mlp, x, dtype)
    assert torch.equal(lean[0], plain[0])
    for a, b in zip(lean[1], plain[1], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    x = x.requires_grad_()
    with torch.autocast("cpu", dtype, enabled=dtype != torch.float32):
        kept = saved_bytes(mlp, x, module=mlp)
        textbook = saved_bytes(lambda t: plain_swiglu(mlp, t), x, module=mlp)
    size = torch.finfo(dtype).bits // 8
    activation = 3 * 10 * 256 * size  # one (B, L, W) tensor
    assert kept == 3 * 10 * 64 * size + 2 * activation  # x (in the compute dtype) and gate_up
    assert textbook == kept + 2 * activation  # silu(gate) and the product


def test_bfloat16_rms_norm_keeps_its_input_not_a_float32_copy() -> None:
    x = torch.randn(3, 10, 64).bfloat16().requires_grad_()
    lean_out = rms_norm(x, 1e-5)
    (lean_grad,) = torch.autograd.grad(lean_out.float().square().sum(), x)
    plain_out = plain_rms_norm(x, 1e-5)
    (plain_grad,) = torch.autograd.grad(plain_out.float().square().sum(), x)
    assert torch.equal(lean_out, plain_out) and torch.equal(lean_grad, plain_grad)
    assert saved_bytes(lambda t: rms_norm(t, 1e-5), x) == x.numel() * 2  # x itself, bfloat16
    assert saved_bytes(lambda t: plain_rms_norm(t, 1e-5), x) == x.numel() * 4 + 3 * 10 * 4


def test_attention_keeps_v_not_all_of_qkv() -> None:
    attention = Attention(64, 4, torch.Generator().manual_seed(0))
    h = torch.randn(2, 12, 64, requires_grad=True)
    rope = RotaryEmbedding(16, 12, 10000.0)
    unit = 2 * 12 * 64 * 4  # one (B, L, D) float32 tensor
    # qkv input (h), rotated q and k, v, the output (shared with the out projection's input),
    # the softmax statistics (B, H, L) and the two rotary tables; no other copy of qkv.
    expected = unit * (1 + 2 + 1 + 1) + 2 * 4 * 12 * 4 + 2 * 12 * 16 * 4
    assert saved_bytes(lambda t: attention(t, rope), h, module=attention) == expected


# --------------------------------------------------------------------------- ConvSwiGLU (URM)


def conv_swiglu(dim: int, dtype: torch.dtype = torch.float32, seed: int = 0) -> ConvSwiGLU:
    return ConvSwiGLU(dim, 4, dtype, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conv_swiglu_on_a_hand_checked_case(dtype: torch.dtype) -> None:
    """Width 256 (dim 8 would give 256 too); only channels 0 and 1 carry values here."""
    mlp = conv_swiglu(8).to(dtype)
    with torch.no_grad():
        for p in mlp.parameters():
            p.zero_()
        mlp.gate_up.weight[0, 0] = 1.0  # gate of channel 0 = x0
        mlp.gate_up.weight[256, 1] = 1.0  # up of channel 0 = x1
        mlp.gate_up.weight[1, 0] = 2.0  # gate of channel 1 = 2 x0
        mlp.gate_up.weight[257, 1] = 1.0  # up of channel 1 = x1
        mlp.conv_weight[0, 0] = torch.tensor([0.5, 2.0])  # w0 (previous), w1 (current)
        mlp.conv_bias[0] = 0.25
        mlp.conv_weight[1, 0] = torch.tensor([-1.0, 1.0])
        mlp.down.weight[0, 0] = 1.0  # output 0 = channel 0
        mlp.down.weight[1, 1] = 3.0  # output 1 = 3 x channel 1
    x = torch.zeros(1, 3, 8, dtype=dtype)
    x[0, :, 0] = torch.tensor([1.0, -2.0, 0.5], dtype=dtype)
    x[0, :, 1] = torch.tensor([3.0, 1.0, -1.0], dtype=dtype)
    out = mlp(x)
    x0, x1 = x[0, :, 0], x[0, :, 1]
    u0, u1 = F.silu(x0) * x1, F.silu(2 * x0) * x1  # the gated products per position
    prev0, prev1 = F.pad(u0, (1, 0))[:-1], F.pad(u1, (1, 0))[:-1]
    expected0 = F.silu(0.5 * prev0 + 2.0 * u0 + 0.25)
    expected1 = 3 * F.silu(-1.0 * prev1 + u1)
    torch.testing.assert_close(out[0, :, 0], expected0, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(out[0, :, 1], expected1, rtol=1e-6, atol=1e-7)
    assert (out[0, :, 2:] == 0).all()
    # Position 0 sees no previous position: silu(2 u0[0] + 0.25), written out.
    first = 2.0 * (F.silu(torch.tensor(1.0, dtype=dtype)) * 3.0) + 0.25
    torch.testing.assert_close(out[0, 0, 0], F.silu(first))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conv_swiglu_is_causal_by_one_position(dtype: torch.dtype) -> None:
    """Changing position t changes the outputs at t and t + 1 only."""
    mlp = conv_swiglu(16, seed=1).to(dtype)
    x = torch.randn(2, 9, 16, dtype=dtype, generator=torch.Generator().manual_seed(2))
    base = mlp(x)
    for t in range(9):
        changed = x.clone()
        changed[:, t] += 1.0
        moved = (mlp(changed) - base).abs().amax(dim=(0, 2)) > 0
        assert moved.tolist() == [i in (t, t + 1) for i in range(9)], t


def plain_conv_swiglu(mlp: ConvSwiGLU, x: torch.Tensor) -> torch.Tensor:
    """The reference's layers: Conv1d(padding 1, groups W, bias) cropped to L, by autograd."""
    gate, up = mlp.gate_up(x).chunk(2, dim=-1)
    product = (F.silu(gate) * up).transpose(1, 2)  # (B, W, L)
    weight, bias = mlp.conv_weight.to(x.dtype), mlp.conv_bias.to(x.dtype)
    conv = F.conv1d(product, weight, bias, padding=1, groups=weight.shape[0])
    return mlp.down(F.silu(conv[..., : x.shape[1]].transpose(1, 2)))


def test_conv_swiglu_equals_the_reference_layers_in_value_and_gradient() -> None:
    """float64 (to rounding), and the gradient of every input and weight, conv included."""
    mlp = conv_swiglu(16, seed=3).double()
    x = torch.randn(3, 7, 16, dtype=torch.float64)
    lean = value_and_grads(mlp, mlp, x, torch.float32)
    plain = value_and_grads(lambda t: plain_conv_swiglu(mlp, t), mlp, x, torch.float32)
    torch.testing.assert_close(lean[0], plain[0], rtol=1e-12, atol=1e-12)
    names = ["x", *(n for n, _ in mlp.named_parameters())]
    for name, a, b in zip(names, lean[1], plain[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=name)


def test_conv_swiglu_init_and_storage_dtype() -> None:
    """PyTorch's Conv1d default init U(+-1/sqrt(2)); bfloat16 storage, computed in the input's."""
    mlp = conv_swiglu(512, torch.bfloat16)
    assert mlp.conv_weight.shape == (1536, 1, 2) and mlp.conv_bias.shape == (1536,)
    assert mlp.conv_weight.dtype == mlp.conv_bias.dtype == torch.bfloat16
    assert mlp.gate_up.weight.dtype == torch.float32
    bound = 1 / math.sqrt(2)
    for p in (mlp.conv_weight, mlp.conv_bias):
        assert p.abs().max() <= bound and p.abs().max() > 0.99 * bound
        assert abs(p.float().std().item() - bound / math.sqrt(3)) < 0.03  # uniform's std
    x = torch.randn(2, 4, 512)
    out = mlp(x)
    assert out.dtype == torch.float32
    grads = torch.autograd.grad(out.square().sum(), [mlp.conv_weight, mlp.conv_bias])
    assert all(g.dtype == torch.bfloat16 for g in grads)
    assert conv_swiglu(512, torch.float32).conv_weight.dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_conv_swiglu_keeps_only_gate_up(dtype: torch.dtype) -> None:
    mlp = conv_swiglu(64)  # width 256
    x = torch.randn(3, 10, 64, requires_grad=True)
    with torch.autocast("cpu", dtype, enabled=dtype != torch.float32):
        kept = saved_bytes(mlp, x, module=mlp)
    size = torch.finfo(dtype).bits // 8
    assert kept == 3 * 10 * 64 * size + 2 * 3 * 10 * 256 * size  # x and gate_up
