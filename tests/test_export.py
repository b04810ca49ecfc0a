"""Export: a slim safetensors model that post-training starts from exactly as from the run."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import torch
from click.testing import CliRunner
from helpers import TINY_MODEL, TINY_URM

from arcpipe.cli import main
from arcpipe.errors import ArcpipeError
from arcpipe.export import MEAN_KEY, load_tensors, save_tensors
from arcpipe.train.checkpoint import load_checkpoint


def test_safetensors_round_trip(tmp_path: Path) -> None:
    tensors = {
        "a": torch.randn(3, 4),
        "b": torch.randn(5).to(torch.bfloat16),
        "c": torch.arange(7, dtype=torch.int64),
        "d": torch.tensor(3.5),
        "e": torch.zeros(0, 2),
        "f": torch.tensor([True, False]),
        "g": torch.randn(4, 3).T,  # not contiguous
    }
    save_tensors(tensors, tmp_path / "x.safetensors", metadata={"k": "v"})
    loaded, metadata = load_tensors(tmp_path / "x.safetensors")
    assert metadata == {"k": "v"} and set(loaded) == set(tensors)
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name
    assert not list(tmp_path.glob(".*"))  # written under a temporary name, then renamed


def test_unreadable_tensor_file_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ArcpipeError, match="not a readable safetensors file") as err:
        load_tensors(bad)
    assert str(bad) in str(err.value)
    with pytest.raises(ArcpipeError, match="not a readable safetensors file"):
        load_tensors(tmp_path / "missing.safetensors")


def train(data: Path, out: Path, *extra: str, model: list[str] = TINY_MODEL) -> None:
    args = ["train", "--data", str(data), "--out", str(out), "--quiet", "--max-steps", "3", *extra]
    for s in model:
        args += ["--set", s]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output


TASK_TABLE = "model.puzzle_table=task"


@pytest.mark.parametrize(
    ("model", "family"),
    [
        (TINY_MODEL, "trm"),
        (TINY_URM, "urm"),
        ([*TINY_MODEL, TASK_TABLE], "trm"),
        ([*TINY_URM, TASK_TABLE], "urm"),
    ],
    ids=["trm", "urm", "trm-task-table", "urm-task-table"],
)
def test_export_is_slim_and_post_training_from_it_equals_from_the_run(
    sample_dataset: Path, tmp_path: Path, model: list[str], family: str
) -> None:
    """TRM and URM (whose conv filter is stored in bfloat16) alike; the export says which. A
    task table's export holds the mean task row and the augmentation code."""
    run = tmp_path / "run"
    train(sample_dataset, run, "--set", "train.ema=true", model=model)  # exports take EMA weights
    result = CliRunner().invoke(main, ["export", str(run), str(tmp_path / "export")])
    assert result.exit_code == 0, result.output
    assert family.upper() in result.stdout
    record = orjson.loads((tmp_path / "export" / "export.json").read_bytes())
    trained = load_checkpoint(run)
    assert record["model"]["family"] == family and record["model"]["state"] == (
        "single" if family == "urm" else "two"
    )
    assert record["model"]["parameters"] == sum(
        t.numel() for k, t in trained.tensors["weights"].items() if not k.endswith("_init")
    )
    files = sorted(p.name for p in (tmp_path / "export").iterdir())
    assert files == ["config.toml", "export.json", "model.safetensors"]
    tensors, _ = load_tensors(tmp_path / "export" / "model.safetensors")
    ckpt = load_checkpoint(run)
    assert not any(k.startswith("puzzle_table.weights") for k in tensors)
    assert torch.allclose(tensors[MEAN_KEY], ckpt.tensors["puzzle_table"]["weights"].mean(0))
    for key, value in ckpt.model_weights(prefer_ema=True).items():
        assert torch.equal(tensors[key], value), key
    table = "task" if TASK_TABLE in model else "variant"
    assert record["model"]["puzzle_table"] == table
    assert ("augmentation_code.dihedral" in tensors) == (table == "task")

    frozen = ["--set", "train.lr=0", "--set", "train.puzzle_emb_lr=0", "--set", "train.ema=false"]
    train(sample_dataset, tmp_path / "from-run", "--init-from", str(run), *frozen)
    export = str(tmp_path / "export")
    train(sample_dataset, tmp_path / "from-export", "--init-from", export, *frozen)
    a, b = load_checkpoint(tmp_path / "from-run"), load_checkpoint(tmp_path / "from-export")
    for name in ("weights", "puzzle_table"):
        for key, value in a.tensors[name].items():
            assert torch.allclose(value, b.tensors[name][key], atol=1e-6), (name, key)
