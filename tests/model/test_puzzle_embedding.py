"""The sparse puzzle table and its sign-SGD: only the batch's rows move, duplicates sum."""

from __future__ import annotations

import torch

from arcpipe.model.puzzle_embedding import PuzzleEmbedding, SparseSignSGD


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
