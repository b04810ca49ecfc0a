"""The sparse puzzle table and its sign-SGD: only the batch's rows move, duplicates sum; the
task-shared table: a row per task, every variant's gradient on it, and the augmentation code."""

from __future__ import annotations

import pytest
import torch

from arcpipe.arc.augment import NUM_DIHEDRAL
from arcpipe.arc.tasks import NUM_COLOURS
from arcpipe.config import ModelConfig
from arcpipe.model.puzzle_embedding import (
    COLOURS,
    DIHEDRAL_TRANSFORMS,
    PuzzleEmbedding,
    SparseSignSGD,
)
from arcpipe.model.trm import TRM


def test_sign_sgd_updates_only_batch_rows_with_decoupled_decay() -> None:
    table = PuzzleEmbedding(6, 3)
    with torch.no_grad():
        table.weights.copy_(torch.arange(18, dtype=torch.float32).view(6, 3))
    before = table.weights.clone()
    opt = SparseSignSGD(table, lr=0.1, weight_decay=0.5)
    ids = torch.tensor([4, 1, 4])
    rows = table(ids)
    # gradient +1 on row 4 twice, and -3/+0 on row 1
    grad = torch.tensor([[1.0, -1.0, 0.0], [-3.0, 2.0, 0.0], [1.0, -2.0, 0.0]])
    (rows * grad).sum().backward()
    opt.step()
    after = table.weights
    unchanged = [0, 2, 3, 5]
    assert torch.equal(after[unchanged], before[unchanged])
    decay = 1 - 0.1 * 0.5
    summed = torch.tensor([[-3.0, 2.0, 0.0], [2.0, -3.0, 0.0]])  # rows 1 and 4
    expected = before[[1, 4]] * decay - 0.1 * summed.sign()
    assert torch.allclose(after[[1, 4]], expected)


def test_table_is_not_a_parameter_and_eval_gathers_without_grad() -> None:
    table = PuzzleEmbedding(4, 2)
    assert list(table.parameters()) == []
    table.eval()
    assert not table(torch.tensor([1, 2])).requires_grad
    assert table.take_batch() is None


def test_step_without_backward_is_a_no_op() -> None:
    table = PuzzleEmbedding(4, 2)
    table(torch.tensor([1]))
    SparseSignSGD(table, 1.0, 0.0).step()
    assert (table.weights == 0).all()


# ----------------------------------------------------------------------------- task-shared tables

TASK_TINY = ModelConfig(
    hidden_size=32,
    num_heads=4,
    cycles=2,
    latent_steps=1,
    puzzle_emb_dim=32,
    puzzle_emb_len=2,
    puzzle_table="task",
)
IDENTITY = list(range(10))
SWAPPED = [0, 1, 3, 2, 4, 5, 6, 7, 8, 9]  # colours 2 and 3 exchanged


def augmentations(*pairs: tuple[int, list[int]]) -> torch.Tensor:
    """(B, 11) augmentations from (dihedral id, colour map) pairs."""
    return torch.tensor([[d, *colours] for d, colours in pairs])


def randomised(model: TRM) -> TRM:
    """The model with its table and augmentation code filled with distinct random values."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        model.puzzle_table.weights.normal_(generator=g)
        for p in model.augmentation_code.parameters():
            p.normal_(generator=g)
    return model


def expected_vector(model: TRM, task: int, dihedral: int, colours: list[int]) -> torch.Tensor:
    code = model.augmentation_code
    pairs = [10 * c + m for c, m in enumerate(colours)]
    return model.puzzle_table.weights[task] + code.dihedral[dihedral] + code.colour[pairs].mean(0)


def test_task_table_reads_the_task_row_for_every_variant_and_adds_its_code() -> None:
    model = randomised(TRM(TASK_TINY, 12, 16, 3)).eval()
    ids = torch.tensor([1, 1, 1, 2])
    aug = augmentations((0, IDENTITY), (5, SWAPPED), (0, IDENTITY), (0, IDENTITY))
    with torch.no_grad():
        vectors = model.puzzle_vector(ids, aug)
    for b, (task, (d, colours)) in enumerate(
        zip([1, 1, 1, 2], [(0, IDENTITY), (5, SWAPPED), (0, IDENTITY), (0, IDENTITY)])
    ):
        assert torch.allclose(vectors[b], expected_vector(model, task, d, colours)), b
    assert torch.equal(vectors[0], vectors[2])  # one task, one augmentation: one vector
    assert not torch.allclose(vectors[0], vectors[3])  # other task, same code: another row
    assert model.puzzle_table.weights.shape == (3, 32)  # a row per task, no blank row


def test_the_code_knows_the_task_level_augmentations() -> None:
    assert DIHEDRAL_TRANSFORMS == NUM_DIHEDRAL and COLOURS == NUM_COLOURS  # model sits below arc/


def test_the_code_tells_every_dihedral_and_colour_map_apart_and_starts_at_zero() -> None:
    fresh = TRM(TASK_TINY, 12, 16, 3)
    codes = [(d, IDENTITY) for d in range(8)] + [(0, SWAPPED), (3, SWAPPED)]
    ids = torch.ones(len(codes), dtype=torch.long)
    with torch.no_grad():
        assert (fresh.puzzle_vector(ids, augmentations(*codes)) == 0).all()
        vectors = randomised(fresh).puzzle_vector(ids, augmentations(*codes))
    distances = torch.cdist(vectors, vectors) + torch.eye(len(codes))
    assert distances.min() > 0.1  # ten augmentations, ten different vectors


def test_a_fresh_task_table_model_computes_what_the_reference_model_does() -> None:
    """Zero rows and a zero code: the first step is the reference's (same seed, same weights)."""
    reference = TRM(ModelConfig(**{**TASK_TINY.__dict__, "puzzle_table": "variant"}), 12, 16, 9)
    shared = TRM(TASK_TINY, 12, 16, 3)
    inputs = torch.randint(0, 12, (2, 16), generator=torch.Generator().manual_seed(0))
    aug = augmentations((2, SWAPPED), (7, IDENTITY))
    a = reference(reference.initial_state(2), inputs, torch.tensor([4, 8]))
    b = shared(shared.initial_state(2), inputs, torch.tensor([1, 2]), augmentation=aug)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.q_halt, b.q_halt)


def test_gradients_of_every_variant_reach_the_task_row() -> None:
    """Three variants of task 1 and one of task 2 in a batch: task 1's row moves by the sign of
    the sum of its three variants' gradients (no single variant's sign), the code by each."""
    model = TRM(TASK_TINY, 12, 16, 3).train()
    ids = torch.tensor([1, 1, 2, 1])
    aug = augmentations((0, IDENTITY), (5, SWAPPED), (0, IDENTITY), (3, IDENTITY))
    grad = torch.zeros(4, 32)
    grad[:, :2] = torch.tensor([[2.0, -1.0], [-3.0, 1.0], [5.0, 5.0], [0.5, -1.0]])
    (model.puzzle_vector(ids, aug) * grad).sum().backward()
    SparseSignSGD(model.puzzle_table, lr=0.1, weight_decay=0.0).step()
    rows = model.puzzle_table.weights
    assert rows[1, :2].tolist() == pytest.approx([0.1, 0.1])  # -0.1 sign([-0.5, -1.0])
    assert rows[2, :2].tolist() == pytest.approx([-0.1, -0.1])
    assert (rows[0] == 0).all() and (rows[:, 2:] == 0).all()
    dihedral = model.augmentation_code.dihedral.grad
    assert dihedral[0, :2].tolist() == pytest.approx([7.0, 4.0])  # examples 0 and 2
    assert dihedral[5, :2].tolist() == pytest.approx([-3.0, 1.0])
    assert (dihedral[[1, 2, 4, 6, 7]] == 0).all()
