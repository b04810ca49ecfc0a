"""Layers: init, norm, SwiGLU widths, rotary embeddings, attention."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from arcpipe.model.layers import (
    Attention,
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
