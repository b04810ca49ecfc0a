"""Task-shared puzzle embeddings through training and prediction: the rows a step updates,
resume, the rows and codes prediction and evaluation read, and the size of the table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from faultharness import assert_same_training
from helpers import FAST, TINY_URM, train_args

from arcpipe.cli import main
from arcpipe.config import load_config
from arcpipe.data.build import BuildOptions, build_arc_dataset
from arcpipe.data.dataset import Dataset
from arcpipe.data.layout import Layout
from arcpipe.predict import run_views
from arcpipe.train import distributed
from arcpipe.train.checkpoint import inference_model, load_checkpoint
from arcpipe.train.evaluate import evaluate
from arcpipe.train.trainer import RunOptions, Trainer

TASK = [*FAST, "model.puzzle_table=task"]


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_a_step_updates_exactly_the_task_rows_of_its_batch(
    sample_dataset: Path, tmp_path: Path
) -> None:
    config = load_config("tiny", [*TASK, "train.ema=false"])
    dataset = Dataset.open(sample_dataset)
    options = RunOptions(sample_dataset, config, tmp_path / "run", quiet=True)
    trainer = Trainer(options, distributed.setup("cpu"), dataset)
    table = trainer.model.puzzle_table.weights
    assert table.shape == (len(dataset.tasks), 32)
    touched = []
    for _ in range(6):
        before = table.clone()
        trainer.train_step()
        batch_tasks = sorted(set(trainer.carries[0].batch.puzzle_ids.tolist()))  # this step's
        changed = (table != before).any(1).nonzero().flatten().tolist()
        assert changed == batch_tasks
        touched.append(len(changed))
    assert min(touched) < len(dataset.tasks)  # some step left some task's row alone


FRESH = ["train.fresh_augmentations=true"]


@pytest.mark.parametrize(
    ("model", "board"),
    [(FAST, "full"), (TINY_URM, "boxed"), ([*TINY_URM, *FRESH], "boxed")],
    ids=["trm-full", "urm-boxed", "urm-boxed-fresh"],
)
def test_a_task_table_run_resumes_bit_exactly_from_where_it_stopped(
    sample_dataset: Path, tmp_path: Path, model: list[str], board: str
) -> None:
    sets = [*FAST, *model, "model.puzzle_table=task", f"model.board={board}"]
    sets += ["model.halt_init_bias=3.0", "model.halt_exploration_prob=0.5"]  # mid-flight carries
    sets += ["model.supervision_steps=4", "train.global_batch_size=8"]  # of several variants
    # No evaluation at a sitting's stop (eval_interval 0 would evaluate there and log it).
    sets += ["train.checkpoint_interval=1", "train.ema=true", "train.eval_interval=1000"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert run_cli(*train_args(sample_dataset, whole, "--max-steps", "7", sets=sets)).exit_code == 0
    assert run_cli(*train_args(sample_dataset, split, "--max-steps", "4", sets=sets)).exit_code == 0
    assert load_checkpoint(split).state["step"] == 4
    assert in_flight_codes(split) > 1  # the carry's own codes matter to the resumed steps
    resumed = run_cli(
        *train_args(sample_dataset, split, "--max-steps", "7", "--resume", "auto", sets=sets)
    )
    assert resumed.exit_code == 0, resumed.output
    assert "this sitting ran steps 5-7" in resumed.stdout, resumed.stdout
    assert_same_training(whole, split)  # table, code, optimizers, carry, RNG, metrics
    ckpt = load_checkpoint(whole)
    assert ckpt.tensors["puzzle_table"]["weights"].shape[0] == 4  # the sample's tasks
    assert any(k.endswith("augmentation") for k in ckpt.tensors["carry"])
    assert "augmentation_code.dihedral" in ckpt.tensors["ema"]


def in_flight_codes(run: Path) -> int:
    """Distinct augmentations among the slots of a run's last carry (every bucket's) whose
    sample has taken some, but not all, of its steps."""
    carry = load_checkpoint(run).tensors["carry"]
    prefixes = [k[: -len("steps")] for k in carry if k.endswith("steps")]
    codes = set()
    for p in prefixes:
        flying = (carry[p + "steps"] > 0) & ~carry[p + "halted"]
        codes |= {tuple(c) for c in carry[p + "augmentation"][flying].tolist()}
    return len(codes)


class Recorder:
    """The puzzle-table rows and augmentation codes a model is asked for, call by call."""

    def __init__(self, model) -> None:
        self.ids: list[torch.Tensor] = []
        self.codes: list[torch.Tensor] = []
        model.puzzle_table.register_forward_pre_hook(lambda _, a: self.ids.append(a[0].clone()))
        code = model.augmentation_code
        code.register_forward_pre_hook(lambda _, a: self.codes.append(a[0].clone()))


def expected_rows_and_codes(dataset: Dataset, split: str, rows: np.ndarray):
    """Each view's task index and its (dihedral, colour map), from the dataset's view records."""
    views = [dataset.view(split, int(r)) for r in rows]
    tasks = [dataset.task_ids.index(v.task_id) for v in views]
    codes = [[v.transform.dihedral, *v.transform.colours.tolist()] for v in views]
    return tasks, codes


@pytest.fixture(scope="module")
def task_run(sample_dataset: Path, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("task-run") / "run"
    sets = [*TASK, "model.board=boxed"]
    result = run_cli(*train_args(sample_dataset, run, "--max-steps", "3", sets=sets))
    assert result.exit_code == 0, result.output
    return run


def test_prediction_reads_each_test_view_task_row_with_its_own_code(
    task_run: Path, sample_dataset: Path
) -> None:
    dataset = Dataset.open(sample_dataset)
    model = inference_model(load_checkpoint(task_run), dataset, torch.device("cpu"))
    recorder = Recorder(model)
    rows = np.arange(len(dataset.examples("test")))
    layout = Layout(dataset, "boxed")
    buckets, _ = layout.buckets("test", rows, 1)
    run_views(model, dataset, "test", rows, torch.device("cpu"), layout=layout, bucket=buckets[0])
    tasks, codes = expected_rows_and_codes(dataset, "test", rows)
    assert len(recorder.ids) == model.config.supervision_steps  # one call per step, all views
    for ids, code in zip(recorder.ids, recorder.codes):
        assert ids.tolist() == tasks and code.tolist() == codes
    assert len({tuple(c) for c in codes}) > len(set(tasks))  # several codes per task


def test_evaluation_reads_each_view_task_row_with_its_own_code(
    task_run: Path, sample_dataset: Path
) -> None:
    ckpt = load_checkpoint(task_run)
    dataset = Dataset.open(sample_dataset)
    model = inference_model(ckpt, dataset, torch.device("cpu"))
    recorder = Recorder(model)
    train_config = ckpt.config.train
    train_config.eval_views = 0
    topology = distributed.setup("cpu")
    metrics = evaluate(model, dataset, train_config, topology, 64, None, Layout(dataset, "boxed"))
    assert metrics["views"] == len(dataset.examples("test"))
    seen = {}
    for ids, code in zip(recorder.ids, recorder.codes):
        for task, augmentation in zip(ids.tolist(), code.tolist()):
            seen.setdefault(tuple(augmentation), set()).add(task)
    tasks, codes = expected_rows_and_codes(dataset, "test", np.arange(metrics["views"]))
    assert seen == {tuple(c): {t for t, c2 in zip(tasks, codes) if c2 == c} for c in codes}


def test_a_task_table_checkpoint_holds_a_row_per_task_however_many_variants(
    tmp_path: Path,
) -> None:
    from helpers import REPO

    sample = REPO / "data" / "sample"
    data = tmp_path / "data"
    options = BuildOptions(num_aug=60, canvas=10, tasks=("flip_ud", "transpose", "colour_swap"))
    build_arc_dataset([sample / "training"], sample / "evaluation", data, options, quiet=True)
    variants = Dataset.open(data).num_puzzle_identifiers
    sizes = {}
    for table in ("variant", "task"):
        run = tmp_path / table
        sets = [*FAST, f"model.puzzle_table={table}", "model.puzzle_emb_dim=256"]
        sets.append("model.puzzle_emb_len=8")
        assert run_cli(*train_args(data, run, "--max-steps", "1", sets=sets)).exit_code == 0
        rows = load_checkpoint(run).tensors["puzzle_table"]["weights"]
        assert rows.shape == ((variants if table == "variant" else 3), 256)
        sizes[table] = (run / "last" / "puzzle_table.pt").stat().st_size
    assert variants > 150
    assert sizes["task"] < 3 * 256 * 4 + 2000  # three rows of float32, and the file's framing
    assert sizes["variant"] > 40 * sizes["task"]


def stored_codes(dataset: Dataset) -> set[tuple[int, ...]]:
    """The (dihedral, colour map) of every variant the build made."""
    variants, colours = (
        np.asarray(dataset.arrays["variants"]),
        np.asarray(dataset.arrays["colours"]),
    )
    return {(int(v[1]), *map(int, c)) for v, c in zip(variants, colours)}


def codes_trained_on(dataset_path: Path, run: Path, sets: list[str], steps: int) -> list:
    """The augmentation codes and puzzle rows the network is given over ``steps`` steps."""
    config = load_config("tiny", [*TASK, *sets])
    trainer = Trainer(
        RunOptions(dataset_path, config, run, quiet=True),
        distributed.setup("cpu"),
        Dataset.open(dataset_path),
    )
    recorder = Recorder(trainer.model)
    for _ in range(steps):
        trainer.train_step()
    return [torch.cat(recorder.ids).tolist(), torch.cat(recorder.codes).tolist()]


def test_fresh_augmentations_train_on_views_the_build_did_not_make(
    sample_dataset: Path, tmp_path: Path
) -> None:
    dataset = Dataset.open(sample_dataset)
    stored = stored_codes(dataset)
    plain = codes_trained_on(sample_dataset, tmp_path / "a", [], 3)
    assert {tuple(c) for c in plain[1]} <= stored
    fresh = codes_trained_on(sample_dataset, tmp_path / "b", FRESH, 3)
    seen = {tuple(c) for c in fresh[1]}
    assert len(seen) >= 4 and seen.isdisjoint(stored)  # 8 x 9! views: none is the build's
    assert fresh[0] == plain[0]  # the same examples of the same tasks, seen anew
    assert codes_trained_on(sample_dataset, tmp_path / "c", FRESH, 3) == fresh  # deterministic
    other = codes_trained_on(sample_dataset, tmp_path / "d", [*FRESH, "train.seed=1"], 3)
    assert other[1] != fresh[1]


def test_fresh_augmentations_need_the_task_table(sample_dataset: Path, tmp_path: Path) -> None:
    sets = [*FAST, *FRESH]
    result = run_cli(*train_args(sample_dataset, tmp_path / "run", "--max-steps", "1", sets=sets))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "train.fresh_augmentations needs model.puzzle_table = task" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_task_table_on_a_sudoku_dataset_is_one_clear_line(tmp_path: Path) -> None:
    from arcpipe.puzzles.build import build_sudoku_dataset
    from arcpipe.puzzles.sudoku import generate_easy_sudoku, write_sudoku_csv

    rng = np.random.default_rng(0)
    write_sudoku_csv(tmp_path / "train.csv", generate_easy_sudoku(2, 10, rng))
    write_sudoku_csv(tmp_path / "test.csv", generate_easy_sudoku(1, 10, rng))
    build_sudoku_dataset(
        tmp_path / "train.csv", tmp_path / "test.csv", tmp_path / "d", 1, quiet=True
    )
    result = run_cli(*train_args(tmp_path / "d", tmp_path / "run", "--max-steps", "1", sets=TASK))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "model.puzzle_table = task needs an ARC dataset" in result.stderr
    assert str(tmp_path / "d") in result.stderr and not (tmp_path / "run").exists()
