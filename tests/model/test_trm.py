"""The TRM model: parameter counts, inits, the recursion of Algorithm 3, determinism."""

from __future__ import annotations

import pytest
import torch

from arcpipe.config import ModelConfig
from arcpipe.model.trm import TRM, RecursionState

TINY = ModelConfig(
    hidden_size=32, num_heads=4, cycles=2, latent_steps=3, puzzle_emb_dim=32, puzzle_emb_len=2
)


def test_parameter_counts_match_the_reference() -> None:
    assert TRM(ModelConfig(), 12, 900, 10).num_parameters() == 6_829_058
    sudoku = ModelConfig(token_mixer="mlp", pos_encodings="none", latent_steps=6)
    assert TRM(sudoku, 11, 81, 1).num_parameters() == 5_028_866
    maze = ModelConfig(token_mixer="mlp", pos_encodings="none")
    assert abs(TRM(maze, 6, 900, 1).num_parameters() - 18.8e6) < 0.05e6


def test_initial_values() -> None:
    model = TRM(TINY, 12, 16, 5)
    assert (model.q_head.weight == 0).all() and (model.q_head.bias == -5).all()
    assert (model.puzzle_table.weights == 0).all()
    names = {n for n, _ in model.named_parameters()}
    assert not any("puzzle_table" in n for n in names)
    assert "puzzle_table.weights" in model.state_dict()
    # y and z start from two different std-1 truncated-normal vectors, pinned for seed 0.
    assert model.answer_init[:4].tolist() == pytest.approx(ANSWER_INIT, abs=1e-6)
    assert model.latent_init[:4].tolist() == pytest.approx(LATENT_INIT, abs=1e-6)


ANSWER_INIT = [0.7027040123939514, 0.3552623391151428, -2.1247310638427734, 0.896487832069397]
LATENT_INIT = [0.14990223944187164, 0.24251171946525574, -0.7534030079841614, -0.5031778216362]


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    a, b, c = TRM(TINY, 12, 16, 5, seed=3), TRM(TINY, 12, 16, 5, seed=3), TRM(TINY, 12, 16, 5, 4)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.embed.weight, c.embed.weight)


def reference_step(model: TRM, y, z, inputs, ids):
    """Algorithm 3 written out longhand: T-1 cycles without gradients, then one with."""
    x = model.embed_input(inputs, ids)
    cfg = model.config
    with torch.no_grad():
        for _ in range(cfg.cycles - 1):
            for _ in range(cfg.latent_steps):
                z = model.f(z, y + x)
            y = model.f(y, z)
    for _ in range(cfg.latent_steps):
        z = model.f(z, y + x)
    y = model.f(y, z)
    return model.lm_head(y[:, model.prefix_len :]), model.q_head(y[:, 0])


def test_forward_is_algorithm_3_and_gradients_flow_through_the_last_cycle_only() -> None:
    torch.manual_seed(0)
    model = TRM(TINY, 12, 16, 5)
    inputs, ids = torch.randint(0, 12, (3, 16)), torch.tensor([1, 2, 1])
    state = model.initial_state(3)
    out = model(state, inputs, ids)
    logits, q = reference_step(model, state.answer, state.latent, inputs, ids)
    assert torch.allclose(out.logits, logits, atol=1e-5)
    assert torch.allclose(out.q_halt, q[:, 0], atol=1e-6)
    assert not out.state.answer.requires_grad
    (out.logits.sum() + out.q_halt.sum()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    (logits.sum() + q[:, 0].sum()).backward()
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, grads[name], atol=1e-5), name


def test_batched_equals_one_by_one() -> None:
    model = TRM(TINY, 12, 16, 5).eval()
    inputs, ids = torch.randint(0, 12, (4, 16)), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        batched = model(model.initial_state(4), inputs, ids).logits
        single = torch.cat(
            [
                model(model.initial_state(1), inputs[i : i + 1], ids[i : i + 1]).logits
                for i in range(4)
            ]
        )
    assert torch.allclose(batched, single, atol=1e-5)


def test_reset_restarts_only_masked_samples() -> None:
    model = TRM(TINY, 12, 16, 5)
    state = RecursionState(torch.zeros(2, 18, 32), torch.zeros(2, 18, 32))
    reset = model.reset(state, torch.tensor([True, False]))
    assert torch.equal(reset.answer[0], model.answer_init.expand(18, 32))
    assert (reset.answer[1] == 0).all() and (reset.latent[1] == 0).all()


# Logits of one step, seed 0, for each (token mixer, positions): sample 1 position 5 vocab 0-3,
# and sample 0 vocab 3 at positions 0, 7, 15. They change only if the maths changes, and (unlike a
# mean or a standard deviation) also if positions, samples or vocabulary entries are permuted.
GOLDEN_LOGITS = {
    ("attention", "rope"): ([-0.955179, -0.98547, -0.085714, 0.354831],
                            [-0.337895, -0.220364, -0.193899]),
    ("attention", "learned"): ([0.04067, -0.190322, 0.046432, -0.766856],
                               [-1.898455, -1.554449, -1.226157]),
    ("mlp", "none"): ([0.038079, -1.156453, 0.53861, 0.654499],
                      [0.02428, -0.442202, 0.333481]),
}  # fmt: skip


@pytest.mark.parametrize(("mixer", "pos"), list(GOLDEN_LOGITS))
def test_golden_logits_of_each_variant(mixer: str, pos: str) -> None:
    torch.manual_seed(0)
    inputs, ids = torch.randint(0, 12, (2, 16)), torch.tensor([1, 2])
    cfg = ModelConfig(**{**TINY.__dict__, "token_mixer": mixer, "pos_encodings": pos})
    model = TRM(cfg, 12, 16, 5, seed=0)
    out = model(model.initial_state(2), inputs, ids)
    row, column = GOLDEN_LOGITS[(mixer, pos)]
    assert out.logits.shape == (2, 16, 12)
    assert out.logits[1, 5, :4].tolist() == pytest.approx(row, abs=2e-5)
    assert out.logits[0, [0, 7, 15], 3].tolist() == pytest.approx(column, abs=2e-5)
    assert out.q_halt.tolist() == [-5.0, -5.0]  # zero weights, bias -5 (halting off)


def step_and_grads(model: TRM, dtype: torch.dtype) -> list[torch.Tensor]:
    """Logits of one supervision step under autocast to ``dtype``, and every weight's gradient."""
    model.compute_dtype = dtype
    g = torch.Generator().manual_seed(1)
    inputs, ids = torch.randint(0, 12, (3, 16), generator=g), torch.tensor([1, 2, 3])
    with torch.autocast("cpu", dtype, enabled=dtype != torch.float32):
        out = model(model.initial_state(3), inputs, ids)
    logits = out.logits.float()
    loss = logits.square().mean() + out.q_halt.sum() + out.q_continue.sum()
    return [logits, *torch.autograd.grad(loss, list(model.parameters()))]


@pytest.mark.slow  # two compilations, 15-30 s
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_compiled_network_equals_eager(dtype: torch.dtype, tolerance: float) -> None:
    """train.compile: the memory-saving recomputations and checkpoints compile, same maths."""
    torch._dynamo.reset()
    eager, compiled = TRM(TINY, 12, 16, 5, seed=3), TRM(TINY, 12, 16, 5, seed=3)
    compiled.compile_network()
    for a, b in zip(step_and_grads(compiled, dtype), step_and_grads(eager, dtype), strict=True):
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance)
