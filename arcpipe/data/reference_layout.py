"""Write a dataset in the reference implementation's layout (``build-data --materialize``).

Per split directory (``train/``, ``test/``; the only set is ``all``): ``all__inputs.npy`` and
``all__labels.npy`` (uint8 [N, seq_len]), ``all__puzzle_identifiers.npy`` (int32 [puzzles]),
``all__puzzle_indices.npy`` (int32 [puzzles + 1], CSR over examples), ``all__group_indices.npy``
(int32 [groups + 1], CSR over puzzles; a group is one task with all its variants) and
``dataset.json``; at the top level ``identifiers.json`` (id -> variant name, ``<blank>`` at 0) and
``test_puzzles.json`` (the target tasks with their solutions; unknown ones as ``[[0]]``, as the
reference does). Arrays are written in chunks, so memory stays flat.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.lib.format import write_array_header_1_0

from arcpipe.arc.augment import Transform
from arcpipe.data.dataset import BLANK_PUZZLE_ID, Dataset
from arcpipe.fsutil import write_json_atomic
from arcpipe.progress import Progress

CHUNK_ROWS = 1 << 15


def write_reference_layout(dataset: Dataset, out: Path, quiet: bool = False) -> None:
    """Materialise the train and test splits of ``dataset`` under ``out``."""
    for split in ("train", "test"):
        if split in dataset.splits:
            _write_split(dataset, split, out / split, quiet)
    variants = dataset.arrays["variants"]
    colours = dataset.arrays["colours"]
    names = ["<blank>"] + [
        Transform(int(d), np.asarray(colours[v])).name(dataset.tasks[t].id)
        for v, (t, d, _) in enumerate(variants)
    ]
    write_json_atomic(out / "identifiers.json", names)
    write_json_atomic(out / "test_puzzles.json", _test_puzzles(dataset))


def _write_split(dataset: Dataset, split: str, folder: Path, quiet: bool) -> None:
    records = dataset.examples(split)
    n, seq_len = len(records), dataset.seq_len
    folder.mkdir(parents=True, exist_ok=True)
    header = {"descr": "|u1", "fortran_order": False, "shape": (n, seq_len)}
    with (
        open(folder / "all__inputs.npy", "wb") as inputs,
        open(folder / "all__labels.npy", "wb") as labels,
        Progress(f"materialise {split}", n, quiet=quiet) as progress,
    ):
        for f in (inputs, labels):
            write_array_header_1_0(f, header)
        for lo in range(0, n, CHUNK_ROWS):  # plain appends keep memory flat, unlike a memmap
            hi = min(n, lo + CHUNK_ROWS)
            chunk_in, chunk_lab, _ = dataset.encode_records(np.asarray(records[lo:hi]))
            inputs.write(chunk_in.tobytes())
            labels.write(chunk_lab.tobytes())
            progress.advance(hi - lo)

    variant_of_example = np.asarray(records[:, 0])
    puzzles, starts = np.unique(variant_of_example, return_index=True)
    task_of_puzzle = np.asarray(dataset.arrays["variants"][puzzles, 0])
    group_starts = np.flatnonzero(np.diff(task_of_puzzle, prepend=-1))
    arrays = {
        "puzzle_identifiers": np.asarray(dataset.arrays["variants"][puzzles, 2]),
        "puzzle_indices": np.append(starts, n),
        "group_indices": np.append(group_starts, len(puzzles)),
    }
    for name, array in arrays.items():
        np.save(folder / f"all__{name}.npy", array.astype(np.int32), allow_pickle=False)
    write_json_atomic(
        folder / "dataset.json",
        {
            "seq_len": seq_len,
            "vocab_size": dataset.vocab_size,
            "pad_id": 0,
            "ignore_label_id": 0,
            "blank_identifier_id": BLANK_PUZZLE_ID,
            "num_puzzle_identifiers": dataset.num_puzzle_identifiers,
            "total_groups": len(group_starts),
            "mean_puzzle_examples": n / max(1, len(puzzles)),
            "total_puzzles": len(puzzles),
            "sets": ["all"],
        },
    )


def _test_puzzles(dataset: Dataset) -> dict:
    puzzles = {}
    for task in dataset.tasks:
        if task.role != "target":
            continue
        pairs = dataset.task_pairs(task)
        puzzles[task.id] = {
            "train": [
                {"input": i.tolist(), "output": o.tolist()} for i, o in pairs[: task.num_train]
            ],
            "test": [
                {"input": i.tolist(), "output": [[0]] if o is None else o.tolist()}
                for i, o in pairs[task.num_train :]
            ],
        }
    return puzzles
