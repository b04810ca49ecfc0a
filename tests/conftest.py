"""Shared fixtures: the real ARC data beside the project, and small hand-made task folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import shared_data_root, simple_task, write_task


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip(
            "real ARC data not found: set ARCPIPE_SHARED_DATA or place it at ../shared/data"
        )
    return root


@pytest.fixture(scope="session")
def shared_docs(shared_data: Path) -> Path:
    docs = shared_data.parent / "docs"
    if not docs.is_dir():
        pytest.skip(f"reference docs not found beside the data at {docs}")
    return docs


@pytest.fixture
def tiny_sources(tmp_path: Path) -> tuple[Path, Path]:
    """Two training tasks and one target task with two test inputs."""
    train, target = tmp_path / "train", tmp_path / "eval"
    write_task(train, "aaa", simple_task(1))
    write_task(train, "bbb", simple_task(2, n_train=3, n_test=2, size=4))
    write_task(target, "ccc", simple_task(3, n_train=2, n_test=2, size=2))
    return train, target


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory) -> Path:
    """The project's sample tasks (four of them) as a small dataset on a 10x10 canvas."""
    from helpers import REPO

    from arcpipe.data.build import BuildOptions, build_arc_dataset

    out = tmp_path_factory.mktemp("sample") / "data"
    options = BuildOptions(
        num_aug=3, canvas=10, tasks=("flip_ud", "transpose", "flip_lr", "colour_swap")
    )
    sample = REPO / "data" / "sample"
    build_arc_dataset([sample / "training"], sample / "evaluation", out, options, quiet=True)
    return out
