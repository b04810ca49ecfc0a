"""Export: a slim safetensors model that post-training starts from exactly as from the run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from helpers import TINY_MODEL

from arcpipe.cli import main
from arcpipe.export import MEAN_KEY
from arcpipe.safetensors import load_file, save_file
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
    save_file(tensors, tmp_path / "x.safetensors", metadata={"k": "v"})
    loaded, metadata = load_file(tmp_path / "x.safetensors")
    assert metadata == {"k": "v"} and set(loaded) == set(tensors)
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name
    raw = (tmp_path / "x.safetensors").read_bytes()
    assert int.from_bytes(raw[:8], "little") % 8 == 0


def test_files_interoperate_with_the_safetensors_library(tmp_path: Path) -> None:
    library = pytest.importorskip("safetensors.torch", reason="safetensors is not installed")
    tensors = {"w": torch.randn(2, 3), "h": torch.randn(4).to(torch.bfloat16)}
    save_file(tensors, tmp_path / "ours.safetensors")
    theirs = library.load_file(str(tmp_path / "ours.safetensors"))
    assert all(torch.equal(theirs[k], v) for k, v in tensors.items())
    library.save_file(tensors, str(tmp_path / "theirs.safetensors"))
    ours, _ = load_file(tmp_path / "theirs.safetensors")
    assert all(torch.equal(ours[k], v) for k, v in tensors.items())


def train(data: Path, out: Path, *extra: str) -> None:
    args = ["train", "--data", str(data), "--out", str(out), "--quiet", "--max-steps", "3", *extra]
    for s in TINY_MODEL:
        args += ["--set", s]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output


def test_export_is_slim_and_post_training_from_it_equals_from_the_run(
    sample_dataset: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    train(sample_dataset, run, "--set", "train.ema=true")  # the export takes the EMA weights
    result = CliRunner().invoke(main, ["export", str(run), str(tmp_path / "export")])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "export").iterdir())
    assert files == ["config.toml", "export.json", "model.safetensors"]
    tensors, _ = load_file(tmp_path / "export" / "model.safetensors")
    ckpt = load_checkpoint(run)
    assert not any(k.startswith("puzzle_table.weights") for k in tensors)
    assert torch.allclose(tensors[MEAN_KEY], ckpt.tensors["puzzle_table"]["weights"].mean(0))
    for key, value in ckpt.model_weights(prefer_ema=True).items():
        assert torch.equal(tensors[key], value), key

    frozen = ["--set", "train.lr=0", "--set", "train.puzzle_emb_lr=0", "--set", "train.ema=false"]
    train(sample_dataset, tmp_path / "from-run", "--init-from", str(run), *frozen)
    train(
        sample_dataset, tmp_path / "from-export", "--init-from", str(tmp_path / "export"), *frozen
    )
    a, b = load_checkpoint(tmp_path / "from-run"), load_checkpoint(tmp_path / "from-export")
    for name in ("weights", "puzzle_table"):
        for key, value in a.tensors[name].items():
            assert torch.allclose(value, b.tensors[name][key], atol=1e-6), (name, key)
