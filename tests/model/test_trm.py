"""The model: TRM (parameter counts, inits, Algorithm 3, determinism) and URM as its options."""

from __future__ import annotations

import pytest
import torch

from arcpipe.config import ModelConfig
from arcpipe.errors import ArcpipeError
from arcpipe.model.trm import TRM, RecursionState

TINY = ModelConfig(
    hidden_size=32, num_heads=4, cycles=2, latent_steps=3, puzzle_emb_dim=32, puzzle_emb_len=2
)

URM_TINY = ModelConfig(
    hidden_size=32,
    num_heads=4,
    num_layers=2,
    cycles=3,
    latent_steps=2,
    state="single",
    mlp="conv_swiglu",
    conv_param_dtype="float32",
    puzzle_emb_dim=32,
    puzzle_emb_len=0,
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


@pytest.mark.parametrize("family", ["trm", "urm"])
def test_batched_equals_one_by_one(family: str) -> None:
    model = TRM(TINY if family == "trm" else URM_TINY, 12, 16, 5).eval()
    inputs, ids = torch.randint(0, 12, (4, 16)), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        batched = model(model.initial_state(4), inputs, ids).logits
        single = torch.cat(
            [
                model(model.initial_state(1), inputs[i : i + 1], ids[i : i + 1]).logits
                for i in range(4)
            ]
        )
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)


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
    ("attention", "rope2d"): ([-1.14595, -0.359872, -0.209649, -0.406661],
                              [-0.47418, -0.431212, -0.49362]),
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


@pytest.mark.slow  # four compilations, 30-60 s
@pytest.mark.parametrize(
    ("urm", "dtype", "tolerance"),
    [
        (False, torch.float32, 1e-5),
        (False, torch.bfloat16, 3e-2),
        (True, torch.float32, 1e-5),
        (True, torch.bfloat16, 3e-2),
    ],
)
def test_compiled_network_equals_eager(urm: bool, dtype: torch.dtype, tolerance: float) -> None:
    """train.compile: the memory-saving recomputations and checkpoints compile, same maths
    (URM: the single state and ConvSwiGLU with its bfloat16 filter too)."""
    torch._dynamo.reset()
    config = ModelConfig(**{**URM_TINY.__dict__, "conv_param_dtype": "bfloat16"}) if urm else TINY
    eager, compiled = TRM(config, 12, 16, 5, seed=3), TRM(config, 12, 16, 5, seed=3)
    compiled.compile_network()
    for a, b in zip(step_and_grads(compiled, dtype), step_and_grads(eager, dtype), strict=True):
        torch.testing.assert_close(a.float(), b.float(), rtol=tolerance, atol=tolerance)


@pytest.mark.slow  # ten small compilations, about 30 s
def test_compiled_boxed_network_compiles_every_bucket_in_both_grad_modes() -> None:
    """Five board lengths x grad on and off are at least ten graphs of f, over torch's default
    limit of eight: each must still be compiled, not left to run eagerly."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    config = ModelConfig(**{**TINY.__dict__, "board": "boxed", "cycles": 1})
    model = TRM(config, 12, 100, 5, seed=3)
    model.compile_network()
    for length in (8, 16, 24, 32, 40):
        inputs = torch.randint(0, 12, (2, length))
        positions = torch.arange(length).expand(2, length)
        mask = torch.ones(2, length, dtype=torch.bool)
        for grad in (True, False):
            with torch.set_grad_enabled(grad):
                model(model.initial_state(2, board_len=length), inputs, torch.tensor([1, 2]),
                      positions, mask)  # fmt: skip
    frames = torch._dynamo.utils.counters["frames"]  # calls of f that Dynamo tried to compile
    assert frames["ok"] == frames["total"] >= 10
    torch._dynamo.reset()


# --------------------------------------------------------------------------- URM as options


def urm_paper(**changes) -> ModelConfig:
    """urm-reference §6: 4 layers, H_cycles 2, L_cycles 6, ConvSwiGLU, 1-position prefix."""
    base = dict(
        state="single", mlp="conv_swiglu", num_layers=4, cycles=2, latent_steps=6, puzzle_emb_len=0
    )
    return ModelConfig(**{**base, **changes})


def test_urm_parameter_counts_match_the_reference() -> None:
    arc = TRM(urm_paper(), 12, 900, 10)
    assert arc.num_parameters() == 13_663_234  # puzzle table (and h's init) excluded
    assert TRM(urm_paper(), 11, 81, 1).num_parameters() == 13_662_210  # Sudoku
    assert TRM(urm_paper(num_layers=8), 12, 900, 10).num_parameters() == 27_313_154  # urm.yaml
    assert arc.prefix_len == 1 and arc.rope.cos.shape == (901, 64)
    assert "latent_init" not in arc.state_dict() and "answer_init" in arc.state_dict()


def test_prefix_length_rule() -> None:
    """0 derives ceil(dim / D) (URM, HRM); TRM's explicit 16 stays 16."""
    assert ModelConfig().prefix_len == 16
    assert ModelConfig(puzzle_emb_len=0).prefix_len == 1
    assert ModelConfig(puzzle_emb_len=0, puzzle_emb_dim=600).prefix_len == 2
    assert ModelConfig(puzzle_emb_len=0, puzzle_emb_dim=0).prefix_len == 0
    assert ModelConfig(puzzle_emb_dim=0).prefix_len == 0


def plain_single_state_step(model: TRM, h, inputs, ids):
    """URM_Inner.forward written out: (H-1) x L loops without gradients, then L with."""
    x = model.embed_input(inputs, ids)
    cfg = model.config
    with torch.no_grad():
        for _ in range((cfg.cycles - 1) * cfg.latent_steps):
            h = h + x
            for block in model.blocks:
                h = block(h, model.rope)
    for _ in range(cfg.latent_steps):
        h = h + x
        for block in model.blocks:
            h = block(h, model.rope)
    return h, model.lm_head(h[:, model.prefix_len :]), model.q_head(h[:, 0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_single_state_recursion_equals_a_plain_loop(dtype: torch.dtype) -> None:
    model = TRM(URM_TINY, 12, 16, 5, seed=2).to(dtype)
    model.compute_dtype = dtype
    g = torch.Generator().manual_seed(0)
    inputs, ids = torch.randint(0, 12, (3, 16), generator=g), torch.tensor([1, 2, 1])
    state = model.initial_state(3)
    assert state.latent is None and state.answer.shape == (3, 17, 32)
    state = RecursionState(torch.randn(3, 17, 32, dtype=dtype, generator=g))  # a mid-run h
    out = model(state, inputs, ids)
    h, logits, q = plain_single_state_step(model, state.answer, inputs, ids)
    assert torch.equal(out.logits, logits) and torch.equal(out.q_halt, q[:, 0].float())
    assert torch.equal(out.state.answer, h) and out.state.latent is None
    assert not out.state.answer.requires_grad
    (out.logits.sum() + out.q_halt.sum()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    assert all(grads[n].abs().sum() > 0 for n in grads if n != "q_head.weight")
    model.zero_grad()
    (logits.sum() + q[:, 0].sum()).backward()
    for name, p in model.named_parameters():
        assert torch.equal(p.grad, grads[name]), name


def test_single_state_gradients_stop_at_the_last_latent_steps() -> None:
    """Differentiating all T n loops gives other gradients: the no-grad boundary is where URM's."""
    model = TRM(URM_TINY, 12, 16, 5, seed=2).double()
    model.compute_dtype = torch.float64
    inputs, ids = torch.randint(0, 12, (2, 16)), torch.tensor([1, 2])
    out = model(model.initial_state(2), inputs, ids)
    truncated = torch.autograd.grad(out.logits.sum(), model.embed.weight)[0]
    x = model.embed_input(inputs, ids)
    h = model.initial_state(2).answer
    for _ in range(URM_TINY.cycles * URM_TINY.latent_steps):
        h = model.f(h, x)
    torch.testing.assert_close(model.lm_head(h[:, 1:]), out.logits, rtol=1e-12, atol=1e-12)
    full = torch.autograd.grad(model.lm_head(h[:, 1:]).sum(), model.embed.weight)[0]
    assert not torch.allclose(full, truncated, rtol=1e-3)


def test_single_state_reset_restarts_only_masked_samples() -> None:
    model = TRM(URM_TINY, 12, 16, 5).eval()
    state = RecursionState(torch.zeros(2, 17, 32))
    reset = model.reset(state, torch.tensor([True, False]))
    assert torch.equal(reset.answer[0], model.answer_init.expand(17, 32))
    assert (reset.answer[1] == 0).all() and reset.latent is None


def trm_run_statistics(config: ModelConfig) -> list[float]:
    """Three supervision steps and AdamATan2 updates in float64: logits, gradients and weights."""
    from arcpipe.config import TrainConfig
    from arcpipe.train.optim import make_optimizer

    model = TRM(config, 12, 16, 5, seed=0).double()
    model.compute_dtype = torch.float64
    optimizer = make_optimizer(model.parameters(), TrainConfig())
    for group in optimizer.param_groups:
        group["lr"] = 1e-3
    g = torch.Generator().manual_seed(1)
    state = model.initial_state(3)
    for _ in range(3):
        inputs, ids = torch.randint(0, 12, (3, 16), generator=g), torch.tensor([1, 2, 3])
        out = model(state, inputs, ids)
        (out.logits.square().mean() + out.q_halt.sum()).backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        optimizer.step()
        optimizer.zero_grad()
        state = out.state
    weights = torch.cat([t.flatten() for t in model.state_dict().values()])
    return [t.sum().item() for t in (out.logits, grads, weights)] + [out.logits.norm().item()]


def test_two_states_with_swiglu_is_the_trm_of_before_urm() -> None:
    """Golden float64 values from the code before the URM options existed (same maths, same
    init draws, same optimizer): state="two", mlp="swiglu" is today's TRM."""
    config = ModelConfig(**{**TINY.__dict__, "state": "two", "mlp": "swiglu"})
    assert config == TINY  # the defaults are TRM's
    golden = [-65.5287511413105, 17.103248047457495, -10.959180540810117, 12.734212626168489]
    # The initial weights are drawn in float32, whose vectorised kernels differ by an ulp here and
    # there between CPUs: one ulp in one weight moves these sums by about 1e-8 relative, and
    # another CPU's draws moved them by 1e-6 (rope_theta 10000 -> 10001 moves them by 2e-5).
    assert trm_run_statistics(config) == pytest.approx(golden, rel=5e-6)


# ----------------------------------------------------------------------------- boxed boards


def boxed_dataset(tmp_path, size: int, canvas: int):
    """One training task and one target whose grids are ``size`` square on ``canvas``."""
    from helpers import write_task

    from arcpipe.data.build import BuildOptions, build_arc_dataset
    from arcpipe.data.dataset import Dataset

    rng = torch.Generator().manual_seed(size)

    def pair() -> dict:
        grid = torch.randint(0, 10, (size, size), generator=rng).tolist()
        return {"input": grid, "output": [row[::-1] for row in grid]}

    for folder, name in ((tmp_path / "train", "t"), (tmp_path / "eval", "e")):
        write_task(folder, name, {"train": [pair(), pair()], "test": [pair()]})
    options = BuildOptions(num_aug=3, canvas=canvas)
    build_arc_dataset([tmp_path / "train"], tmp_path / "eval", tmp_path / "ds", options, True)
    return Dataset.open(tmp_path / "ds")


def loss_and_grads(model: TRM, batch) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    from arcpipe.train.losses import step_loss

    model.zero_grad()
    state = model.initial_state(batch.inputs.shape[0], board_len=batch.inputs.shape[1])
    out = model(state, batch.inputs, batch.puzzle_ids, batch.positions, batch.mask)
    loss = step_loss(out.logits, out.q_halt, batch.labels, "stablemax", 0.5).total
    loss.backward()
    return out.logits, loss, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("pos", ["rope", "rope2d", "learned"])
def test_boxed_equals_full_when_the_box_is_the_whole_canvas(tmp_path, pos: str) -> None:
    """A task whose grids fill the canvas: its box is the canvas, in canvas order, no fillers;
    the same logits, losses and gradients, bit for bit."""
    from arcpipe.data.layout import Bucket, Layout
    from arcpipe.data.sampler import encode_batch

    dataset = boxed_dataset(tmp_path, size=6, canvas=6)
    rows = torch.arange(len(dataset.examples("train"))).numpy()
    layout = Layout(dataset, "boxed")
    assert (layout.row_cells("train", rows) == 36).all()
    cfg = ModelConfig(**{**TINY.__dict__, "pos_encodings": pos})
    model = TRM(cfg, 12, 36, dataset.num_puzzle_identifiers, seed=1)
    full = encode_batch(dataset, "train", rows)
    boxed = encode_batch(dataset, "train", rows, layout, Bucket(36, False))
    assert boxed.positions is not None and boxed.mask is None
    assert torch.equal(boxed.positions, torch.arange(36).expand(len(rows), -1))
    (logits_a, loss_a, grads_a), (logits_b, loss_b, grads_b) = (
        loss_and_grads(model, full),
        loss_and_grads(model, boxed),
    )
    assert torch.equal(logits_a, logits_b) and torch.equal(loss_a, loss_b)
    for (name, _), a, b in zip(model.named_parameters(), grads_a, grads_b):
        if name == "pos":  # a scatter-add of the same terms in another order: rounding only
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
        else:
            assert torch.equal(a, b), name


@pytest.mark.parametrize("family", ["trm", "urm"])
def test_fillers_change_nothing_for_the_real_cells(tmp_path, family: str) -> None:
    """The same boxes in a longer bucket: fillers are masked out, the real cells' logits, the
    loss and the gradients stay (to float rounding). URM's left-looking convolution never reads
    a filler either: fillers come after every real cell."""
    from arcpipe.data.layout import Bucket, Layout
    from arcpipe.data.sampler import encode_batch

    dataset = boxed_dataset(tmp_path, size=3, canvas=8)
    rows = torch.arange(len(dataset.examples("train"))).numpy()
    layout = Layout(dataset, "boxed")
    cells = int(layout.row_cells("train", rows).max())
    assert cells == 16  # 3 x 3 grids and their EOS row and column
    config = TINY if family == "trm" else URM_TINY
    model = TRM(config, 12, 64, dataset.num_puzzle_identifiers, seed=2)
    tight = loss_and_grads(model, encode_batch(dataset, "train", rows, layout, Bucket(16, False)))
    padded = loss_and_grads(model, encode_batch(dataset, "train", rows, layout, Bucket(23, True)))
    torch.testing.assert_close(tight[0], padded[0][:, :16], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(tight[1], padded[1], rtol=1e-5, atol=1e-6)
    for a, b in zip(tight[2], padded[2]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    unmasked = encode_batch(dataset, "train", rows, layout, Bucket(23, False))
    assert not torch.allclose(loss_and_grads(model, unmasked)[0][:, :16], tight[0], atol=1e-5)


# ----------------------------------------------------------------------------- 2D rotary positions


def test_rope2d_positions_are_canvas_rows_and_columns_and_the_prefix_its_own() -> None:
    """Cell q of a 3x3 canvas at divmod(q, 3); the prefix slots off the canvas on its diagonal;
    no two positions alike."""
    from arcpipe.model.trm import canvas_coordinates

    coordinates = canvas_coordinates(2, 9)
    assert coordinates[:2].tolist() == [[-1, -1], [-2, -2]]
    assert coordinates[2:].tolist() == [[r, c] for r in range(3) for c in range(3)]
    assert len({tuple(p) for p in coordinates.tolist()}) == 11
    with pytest.raises(ArcpipeError, match="square canvas"):
        canvas_coordinates(2, 12)
    with pytest.raises(ArcpipeError, match="multiple of 4"):
        ModelConfig(hidden_size=24, num_heads=4, pos_encodings="rope2d")


def shifted_logits(model: TRM, shift: int, canvas: int = 6) -> torch.Tensor:
    """One step's logits of two boxed 3x3 boards placed at canvas cell ``shift`` onwards."""
    g = torch.Generator().manual_seed(5)
    inputs, ids = torch.randint(2, 12, (2, 9), generator=g), torch.tensor([1, 2])
    cells = torch.tensor([r * canvas + c for r in range(3) for c in range(3)])
    positions = (cells + shift).expand(2, -1)
    out = model(model.initial_state(2, board_len=9), inputs, ids, positions, None)
    return out.logits


@pytest.mark.parametrize("pos", ["rope", "rope2d"])
def test_a_translated_box_without_a_prefix_gives_the_same_logits(pos: str) -> None:
    """Positions are canvas positions: without a puzzle prefix (whose position is fixed) moving
    a box on the canvas, down and right, changes nothing but rounding; with the prefix it does."""
    bare = ModelConfig(**{**TINY.__dict__, "pos_encodings": pos, "puzzle_emb_dim": 0})
    model = TRM(bare, 12, 36, 5, seed=4)
    for shift in (1, 6, 14):  # right, down, and both
        torch.testing.assert_close(shifted_logits(model, shift), shifted_logits(model, 0))
    prefixed = TRM(ModelConfig(**{**TINY.__dict__, "pos_encodings": pos}), 12, 36, 5, seed=4)
    assert not torch.allclose(shifted_logits(prefixed, 14), shifted_logits(prefixed, 0), atol=1e-4)
