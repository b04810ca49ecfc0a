"""Muon (URM's ARC-AGI-2 optimizer) and NorMuon against their formulas; their parameter
splits; exact resume."""

from __future__ import annotations

import io
import math

import pytest
import torch

from arcpipe.config import ModelConfig, TrainConfig
from arcpipe.model.trm import TRM
from arcpipe.train.muon import Muon, msign
from arcpipe.train.optim import make_optimizer

# urm-reference §5.3.4, copied from the spec (not imported: a typo in the module must show).
TABLE = [
    (7.2086, -15.5131, 9.0178),
    (3.9623, -2.5813, 0.4542),
    (3.9466, -2.5765, 0.4544),
    (3.8991, -2.5671, 0.4566),
    (3.7186, -2.5308, 0.4653),
    (3.1390, -2.3073, 0.4733),
    (2.1715, -1.5246, 0.3885),
    (1.8648, -1.2224, 0.3577),
]


def newton_schulz_longhand(n: torch.Tensor, steps: int) -> torch.Tensor:
    """The spec's msign in float64: normalise, then X <- a X + (b A + c A A) X with A = X X^T."""
    x = n.double()
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = x / x.norm()
    for i in range(steps):
        a, b, c = TABLE[min(i, 7)]
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


@pytest.mark.parametrize("shape", [(3, 5), (6, 4), (4, 4)])
@pytest.mark.parametrize("steps", [5, 10])
def test_msign_is_the_coefficient_table_iteration(shape: tuple[int, int], steps: int) -> None:
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape) + steps))
    torch.testing.assert_close(
        msign(g, steps).double(), newton_schulz_longhand(g, steps), rtol=2e-5, atol=2e-5
    )


def test_msign_of_a_gaussian_matrix_is_roughly_orthogonal() -> None:
    """[measured] in the reference: singular values 0.45-1.83 on a 1536 x 512 Gaussian."""
    g = torch.randn(384, 128, generator=torch.Generator().manual_seed(0))
    singular = torch.linalg.svdvals(msign(g))
    assert singular.min() > 0.3 and singular.max() < 2.0 and 0.9 < singular.mean() < 1.4


def muon_update(grad_bf16_input: torch.Tensor, shape: tuple[int, int], lr: float) -> torch.Tensor:
    """lr x 0.2 x sqrt(max(A, B)) x msign(N), N rounded to bfloat16 first."""
    n = grad_bf16_input.bfloat16()
    return lr * 0.2 * math.sqrt(max(shape)) * newton_schulz_longhand(n, 5)


def test_two_muon_steps_and_two_adamw_steps_follow_the_formulas() -> None:
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(6, 4, generator=gen, dtype=torch.float64).float().requires_grad_()
    b = torch.randn(4, generator=gen).requires_grad_()
    lr, wd = 0.05, 0.1
    opt = Muon([w, b], lr=lr, weight_decay=wd, betas=(0.9, 0.95), eps=1e-8)
    w_ref, b_ref = w.detach().double().clone(), b.detach().double().clone()
    momentum = torch.zeros(6, 4, dtype=torch.float64)
    m, v = torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    for t in (1, 2):
        gw = torch.randn(6, 4, generator=gen)
        gb = torch.randn(4, generator=gen) * 1e-8  # where eps (outside the correction) counts
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step()
        momentum = 0.95 * momentum + gw.double()  # no dampening
        nesterov = gw.double() + 0.95 * momentum
        w_ref = w_ref * (1 - lr * wd) - muon_update(nesterov, (6, 4), lr)
        m = 0.9 * m + 0.1 * gb.double()
        v = 0.95 * v + 0.05 * gb.double() ** 2
        b_ref = b_ref * (1 - lr * wd)
        b_ref = b_ref - lr * math.sqrt(1 - 0.95**t) / (1 - 0.9**t) * m / (v.sqrt() + 1e-8)
        torch.testing.assert_close(w.detach().double(), w_ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b.detach().double(), b_ref, rtol=1e-6, atol=1e-7)
    assert opt.param_groups[1]["step"] == 2


def test_muon_takes_every_matrix_and_adamw_the_rest() -> None:
    """The reference's ndim == 2 split: embeddings and both heads included; biases and URM's
    conv filters (W, 1, 2) to AdamW; the puzzle table is not a parameter at all."""
    config = ModelConfig(
        hidden_size=32,
        num_heads=4,
        state="single",
        mlp="conv_swiglu",
        puzzle_emb_dim=32,
        puzzle_emb_len=0,
        pos_encodings="learned",
    )
    model = TRM(config, 12, 16, 5)
    opt = make_optimizer(model.parameters(), TrainConfig(optimizer="muon"))
    assert isinstance(opt, Muon)
    names = {id(p): n for n, p in model.named_parameters()}
    muon = {names[id(p)] for p in opt.param_groups[0]["params"]}
    adamw = {names[id(p)] for p in opt.param_groups[1]["params"]}
    assert opt.param_groups[0]["use_muon"] and not opt.param_groups[1]["use_muon"]
    assert {"embed.weight", "lm_head.weight", "q_head.weight", "pos"} <= muon
    assert "blocks.0.attention.qkv.weight" in muon and "blocks.1.mlp.down.weight" in muon
    assert adamw == {"q_head.bias"} | {
        f"blocks.{i}.mlp.conv_{k}" for i in range(2) for k in ("weight", "bias")
    }


def test_muon_for_trm_takes_the_hidden_matrices_and_adamw_embeddings_and_heads() -> None:
    """train.muon_params = "hidden" (Muon's authors' split): attention, SwiGLU and the MLP token
    mixer orthogonalised; token and position embeddings and both heads on AdamW."""
    for mixer, pos in (("attention", "learned"), ("mlp", "none")):
        config = ModelConfig(hidden_size=32, num_heads=4, token_mixer=mixer, pos_encodings=pos)
        model = TRM(config, 12, 16, 5)
        train = TrainConfig(optimizer="muon", muon_params="hidden")
        opt = make_optimizer(model.parameters(), train, model.hidden_matrices())
        names = {id(p): n for n, p in model.named_parameters()}
        muon = {names[id(p)] for p in opt.param_groups[0]["params"]}
        adamw = {names[id(p)] for p in opt.param_groups[1]["params"]}
        mixing = (
            ("attention.qkv", "attention.out")
            if mixer == "attention"
            else ("token_mlp.gate_up", "token_mlp.down")
        )
        expected = {
            f"blocks.{i}.{m}.weight" for i in range(2) for m in (*mixing, "mlp.gate_up", "mlp.down")
        }
        assert muon == expected
        heads = {"embed.weight", "lm_head.weight", "q_head.weight", "q_head.bias"}
        assert adamw == heads | ({"pos"} if pos == "learned" else set())
    with pytest.raises(ValueError, match="hidden matrices"):
        make_optimizer(model.parameters(), train)


def test_two_normuon_steps_follow_the_formula() -> None:
    """NorMuon (Li et al. 2025): each row of msign(N) divided by the root of its running mean
    square (decay 0.95, no bias correction), rescaled to msign(N)'s Frobenius norm, then the
    Muon step; longhand in float64."""
    gen = torch.Generator().manual_seed(4)
    w = torch.randn(6, 4, generator=gen).requires_grad_()
    lr, wd = 0.05, 0.1
    opt = Muon([w], lr=lr, weight_decay=wd, normalize_neurons=True)
    w_ref = w.detach().double().clone()
    momentum, second = (
        torch.zeros(6, 4, dtype=torch.float64),
        torch.zeros(6, 1, dtype=torch.float64),
    )
    for _ in (1, 2):
        gw = torch.randn(6, 4, generator=gen)
        w.grad = gw.clone()
        opt.step()
        momentum = 0.95 * momentum + gw.double()
        o = newton_schulz_longhand((gw.double() + 0.95 * momentum).bfloat16(), 5)
        second = 0.95 * second + 0.05 * (o * o).mean(dim=1, keepdim=True)
        scaled = o / (second.sqrt() + 1e-10)
        scaled = scaled * o.norm() / scaled.norm()
        w_ref = w_ref * (1 - lr * wd) - lr * 0.2 * math.sqrt(6) * scaled
        torch.testing.assert_close(w.detach().double(), w_ref, rtol=1e-5, atol=1e-6)
    rows = opt.state[w]["neuron_second_moment"]
    assert rows.shape == (6, 1)
    torch.testing.assert_close(rows.double(), second, rtol=1e-4, atol=1e-7)


def train_steps(opt: torch.optim.Optimizer, params: list[torch.Tensor], steps: range) -> None:
    for step in steps:
        gen = torch.Generator().manual_seed(step)
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen).to(p.dtype)
        for group in opt.param_groups:
            group["lr"] = 1e-3 * step
        opt.step()


@pytest.mark.parametrize("normuon", [False, True])
def test_resume_from_the_state_dict_is_bit_exact(normuon: bool) -> None:
    def fresh() -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(0)
        shapes = [(8, 4), (4,), (6, 1, 2)]
        params = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
        params[2] = params[2].detach().bfloat16().requires_grad_()  # a bf16 conv filter
        return params

    straight = fresh()
    opt = Muon(straight, normalize_neurons=normuon)
    train_steps(opt, straight, range(1, 7))

    first = fresh()
    opt_first = Muon(first, normalize_neurons=normuon)
    train_steps(opt_first, first, range(1, 4))
    saved = {"state": opt_first.state_dict(), "params": [p.detach().clone() for p in first]}
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    resumed = [p.clone().requires_grad_() for p in loaded["params"]]
    opt_resumed = Muon(resumed, normalize_neurons=normuon)
    opt_resumed.load_state_dict(loaded["state"])
    train_steps(opt_resumed, resumed, range(4, 7))
    for a, b in zip(straight, resumed, strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)


def test_adam_atan2_keeps_a_bfloat16_parameter_in_bfloat16_and_steps_in_float32() -> None:
    """The reference's fused kernel: moments stored in the parameter's dtype, maths in float32,
    one rounding into the parameter per step."""
    from arcpipe.train.optim import AdamATan2

    p = (torch.randn(64, generator=torch.Generator().manual_seed(0)) * 0.05).bfloat16()
    p.requires_grad_()
    opt = AdamATan2([p], lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    ref, m, v = p.detach().float().clone(), torch.zeros(64), torch.zeros(64)
    for t in (1, 2, 3):
        g = torch.randn(64, generator=torch.Generator().manual_seed(t)).bfloat16()
        p.grad = g.clone()
        opt.step()
        ref = ref * (1 - 1e-3)
        m = (0.9 * m + 0.1 * g.float()).bfloat16().float()
        v = (0.95 * v + 0.05 * g.float() ** 2).bfloat16().float()
        ref = ref - 1e-2 / (1 - 0.9**t) * torch.atan2(m, v.sqrt() / math.sqrt(1 - 0.95**t))
        ref = ref.bfloat16().float()
        state = opt.state[p]
        assert p.dtype == state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.bfloat16
        torch.testing.assert_close(state["exp_avg"].float(), m, rtol=1e-2, atol=1e-4)
        torch.testing.assert_close(p.detach().float(), ref, rtol=1e-2, atol=1e-4)
