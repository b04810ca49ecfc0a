"""The GPU path: float32 maths equal to the CPU's, bfloat16 training that learns, compile, and
checkpoints that move between devices. Skipped without CUDA (CI has none); run them where a GPU
is: ``pytest -m gpu`` or ``scripts/device_check.sh``.
"""

from __future__ import annotations

from pathlib import Path
from statistics import mean

import pytest
import torch
from click.testing import CliRunner
from helpers import REPO, TINY_MODEL, metrics

from arcpipe.arc.submission import load_submission, validate_submission
from arcpipe.cli import main
from arcpipe.data.build import BuildOptions, build_arc_dataset
from arcpipe.data.dataset import Dataset
from arcpipe.predict import target_test_inputs
from arcpipe.train.checkpoint import load_checkpoint

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

TASKS = ("flip_ud", "transpose", "flip_lr", "colour_swap")
SHORT = [*TINY_MODEL, "model.cycles=2", "model.supervision_steps=3", "train.log_interval=1"]
# URM's network at the same size (its filter in float32: bf16 storage would round differently).
URM = ["model.state=single", "model.mlp=conv_swiglu", "model.conv_param_dtype=float32"]
MODELS = pytest.mark.parametrize("model", [[], URM], ids=["trm", "urm"])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gpu") / "data"
    sample = REPO / "data" / "sample"
    options = BuildOptions(num_aug=3, canvas=10, tasks=TASKS)
    build_arc_dataset([sample / "training"], sample / "evaluation", out, options, quiet=True)
    return out


def train(data: Path, run: Path, device: str, steps: int, sets: list[str], quiet=True) -> str:
    args = ["train", "--data", str(data), "--config", "tiny", "--out", str(run)]
    args += ["--device", device, "--max-steps", str(steps)] + (["--quiet"] if quiet else [])
    for s in sets:
        args += ["--set", s]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output


def lm_losses(run: Path) -> list[float]:
    return [m["lm_loss"] for m in metrics(run) if "lm_loss" in m]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "last").model_weights()


def assert_close_runs(a: Path, b: Path) -> None:
    assert lm_losses(a) == pytest.approx(lm_losses(b), rel=1e-3)
    wa, wb = weights(a), weights(b)
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-3, atol=1e-4, msg=name)


@MODELS
def test_float32_training_on_gpu_equals_cpu(data: Path, tmp_path: Path, model: list[str]) -> None:
    """Sampling, ACT exploration and initialisation do not depend on the device."""
    sets = [*SHORT, *model, "train.dtype=float32"]
    train(data, tmp_path / "cpu", "cpu", 8, sets)
    train(data, tmp_path / "gpu", "cuda", 8, sets)
    assert_close_runs(tmp_path / "cpu", tmp_path / "gpu")


@MODELS
def test_compiled_training_on_gpu_equals_eager(
    data: Path, tmp_path: Path, model: list[str]
) -> None:
    sets = [*SHORT, *model, "train.dtype=float32"]
    train(data, tmp_path / "eager", "cuda", 5, sets)
    train(data, tmp_path / "compiled", "cuda", 5, [*sets, "train.compile=true"])
    assert_close_runs(tmp_path / "eager", tmp_path / "compiled")


def test_bfloat16_training_learns_like_float32_and_predicts_on_either_device(
    data: Path, tmp_path: Path
) -> None:
    run, reference = tmp_path / "bf16", tmp_path / "fp32"
    output = train(data, run, "cuda", 200, SHORT, quiet=False)
    assert "in bfloat16" in output  # the run's announcement: autocast is on
    train(data, reference, "cpu", 200, [*SHORT, "train.dtype=float32"])
    curve = lm_losses(run)
    assert mean(curve[-20:]) < 0.9 * mean(curve[:20])
    assert mean(curve[-20:]) == pytest.approx(mean(lm_losses(reference)[-20:]), rel=0.1)

    expected = {t: len(grids) for t, grids in target_test_inputs(Dataset.open(data)).items()}
    for device in ("cpu", "cuda"):
        out = tmp_path / f"submission-{device}.json"
        args = ["predict", "--run", str(run), "--checkpoint", "last", "--data", str(data)]
        result = CliRunner().invoke(main, [*args, "--out", str(out), "--device", device, "--quiet"])
        assert result.exit_code == 0, result.output
        validate_submission(load_submission(out), expected, out, k=2)
