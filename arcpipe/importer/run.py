"""``arcpipe import``: a reference checkpoint -> an arcpipe run directory like a trained one's.

    RUN/config.toml                the checkpoint's architecture and loop counts (and its run's
                                   training settings), as arcpipe's config
    RUN/checkpoints/step-N/        weights.pt, puzzle_table.pt, config.toml, state.json: an
                                   ordinary arcpipe checkpoint (N: the reference's step)
    RUN/last -> checkpoints/step-N
    RUN/metrics.jsonl              empty: no training happened here
    RUN/import.json                the record: source file (path, size, sha256), layout, the
                                   config fields and tensors mapped, the puzzle rows kept

``predict``, ``export``, ``train --init-from``, ``vote``, ``report`` and the Kaggle flow take it as
they take a trained run. The weights are the file's: the EMA copy of the parameters when its run
used EMA (the reference checkpoints its EMA model), else the live ones; the puzzle table is always
the live one (the reference's EMA leaves it out).

The puzzle table: with ``--identifiers`` and ``--data`` (a dataset built with
``build-data --variants-from`` the same file) every dataset variant gets the row its name has in
the checkpoint, and the run predicts on that dataset. Without them only the table's mean row is
kept (what post-training on new tasks starts from, as the reference's loader does for a table of
another shape): ``export`` and ``train --init-from`` take the run, ``predict`` refuses it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from arcpipe import __version__
from arcpipe.arc.encode import DEFAULT_CANVAS, VOCAB_SIZE
from arcpipe.arc.identifiers import VariantNames, read_identifiers
from arcpipe.config import Config, ModelConfig, TrainConfig, save_config
from arcpipe.data.dataset import Dataset
from arcpipe.errors import ArcpipeError
from arcpipe.fsutil import atomic_directory, file_digest, write_bytes_atomic, write_json_atomic
from arcpipe.importer.architecture import ReferenceConfig, reference_config
from arcpipe.importer.reference_file import ReferenceFile, match_tensors, read_reference_file
from arcpipe.importer.yaml_subset import read_yaml
from arcpipe.model.trm import TRM
from arcpipe.train.checkpoint import (
    checkpoint_name,
    dataset_identity,
    point_link,
    write_checkpoint_files,
)

IMPORT_FORMAT = "arcpipe-import"
IMPORT_VERSION = 1
CONFIG_NAME = "all_config.yaml"
TABLE = "puzzle_table.weights"
CHUNK_ROWS = 1 << 14  # rows of the puzzle table handled at a time (32 MB of float32 at 512)
CONV_DTYPES = {torch.bfloat16: "bfloat16", torch.float32: "float32"}
_STEP = re.compile(r"step_(\d+)(?:\.pt)?")


@dataclass
class ImportOptions:
    """What to import and where."""

    checkpoint: Path  # the reference's step_N file
    out: Path  # the run directory to write
    config_file: Path | None = None  # all_config.yaml; default: beside the checkpoint
    identifiers: Path | None = None  # the reference dataset's identifiers.json
    data: Path | None = None  # a dataset built with build-data --variants-from identifiers
    overwrite: bool = False


@dataclass
class ImportResult:
    """The run written and its record (``import.json``)."""

    run: Path
    config: Config
    record: dict


def import_checkpoint(options: ImportOptions) -> ImportResult:
    """Write the run directory of a reference checkpoint; see the module docstring.

    Everything is checked (config, file, names, shapes, puzzle rows) before anything large is
    allocated or anything is written; the run appears whole, under a temporary name until done.

    Raises:
        ArcpipeError: any of the checks fails (one line; nothing is written).
    """
    config_path = _config_path(options)
    if options.out.exists() and not options.overwrite:
        raise ArcpipeError("already exists (pass --overwrite to replace it)", file=options.out)
    if options.identifiers is not None and options.data is None:
        raise ArcpipeError(
            "--identifiers needs --data: the dataset built with build-data --variants-from it"
        )
    reference = reference_config(read_yaml(config_path), config_path)
    file = read_reference_file(options.checkpoint)
    dataset = None if options.data is None else Dataset.open(options.data)
    config = _config(reference, file, config_path)
    vocab, seq_len = _board(file, config.model, dataset)
    expected = TRM(config.model, vocab, seq_len, 1).state_dict()
    pairs, tensors, skipped = match_tensors(file, expected, reference.family, TABLE)
    names = None if options.identifiers is None else read_identifiers(options.identifiers)
    rows = None if names is None else _dataset_rows(names, dataset, pairs[TABLE].shape[0])
    weights = {k: v.to(expected[k].dtype).clone() for k, v in pairs.items() if k != TABLE}
    table = _table_mean(pairs[TABLE]) if rows is None else _gather_rows(pairs[TABLE], rows)
    _check_loads(config.model, vocab, seq_len, weights, table)

    step = file.step if file.step is not None else _step_of(options.checkpoint)
    identity = _identity(dataset if rows is not None else None, file, vocab, seq_len)
    record = _record(options, config_path, file, reference, tensors, skipped)
    record["puzzle_table"] = _table_record(pairs[TABLE], table, names, dataset)
    record["step"] = step
    _write_run(options, config, weights, table, step, identity, record)
    return ImportResult(options.out, config, record)


def _config_path(options: ImportOptions) -> Path:
    """``--config``, else the ``all_config.yaml`` beside the checkpoint; it must exist."""
    path = options.config_file or options.checkpoint.parent / CONFIG_NAME
    if not path.is_file():
        where = "given" if options.config_file else f"beside the checkpoint ({path})"
        raise ArcpipeError(
            f"no {CONFIG_NAME} {where}: pass the run's config with --config FILE",
            file=options.checkpoint,
        )
    return path


def _config(reference: ReferenceConfig, file: ReferenceFile, source: Path) -> Config:
    """arcpipe's config of the run: the reference's fields, the conv filter's dtype (URM) as the
    file stores it."""
    model = reference.section("model")
    if reference.family == "urm":
        conv = file.tensors.get("layers.0.mlp.dwconv.weight")
        dtype = torch.bfloat16 if conv is None else conv.dtype  # a missing key is named later
        if dtype not in CONV_DTYPES:
            raise ArcpipeError(
                f"layers.0.mlp.dwconv.weight is {dtype}; URM stores its filter in bfloat16 "
                "(or float32)",
                file=file.path,
            )
        model["conv_param_dtype"] = CONV_DTYPES[dtype]
    try:
        built = Config(
            description=f"imported from {file.path.name} ({reference.arch})",
            model=ModelConfig(**model),
            train=TrainConfig(**reference.section("train")),
        )
    except ArcpipeError as err:
        raise err.located(file=source) from None
    return built


def _board(file: ReferenceFile, model: ModelConfig, dataset: Dataset | None) -> tuple[int, int]:
    """(vocabulary, board tokens): the dataset's, else what the tensors say, else ARC's 30x30."""
    embed = file.tensors.get("embed_tokens.embedding_weight")
    if embed is None or embed.dim() != 2:
        raise ArcpipeError(
            f"missing key {file.prefix}embed_tokens.embedding_weight", file=file.path
        )
    vocab = int(embed.shape[0])
    if dataset is not None:
        if dataset.vocab_size != vocab:
            raise ArcpipeError(
                f"the checkpoint's vocabulary has {vocab} tokens (embed_tokens), the dataset's "
                f"{dataset.vocab_size}",
                file=dataset.path,
            )
        return vocab, dataset.seq_len
    positions = file.tensors.get("embed_pos.embedding_weight")
    if model.pos_encodings != "learned":
        mixer = file.tensors.get("L_level.layers.0.mlp_t.down_proj.weight")
        positions = mixer if model.token_mixer == "mlp" else None
    if positions is not None and positions.dim() == 2:
        seq_len = int(positions.shape[0]) - model.prefix_len
    elif vocab == VOCAB_SIZE:
        seq_len = DEFAULT_CANVAS * DEFAULT_CANVAS
    else:
        raise ArcpipeError(
            f"a {vocab}-token vocabulary is not ARC's and the board size is in no tensor: give "
            "--data (a dataset of the checkpoint's task)",
            file=file.path,
        )
    if math.isqrt(seq_len) ** 2 != seq_len:
        raise ArcpipeError(f"{seq_len} board positions are not a square canvas", file=file.path)
    return vocab, seq_len


def _dataset_rows(names: VariantNames, dataset: Dataset, table_rows: int) -> np.ndarray:
    """int64 [puzzle ids]: the checkpoint's row for each of the dataset's puzzle ids."""
    built_from = dataset.manifest.get("variants_from") or {}
    if built_from.get("sha256") != file_digest(names.path):
        raise ArcpipeError(
            f"was not built from {names.path} (build it with build-data --variants-from that "
            "file, so that its variants are the ones the table's rows were trained on)",
            file=dataset.path,
        )
    if names.rows != table_rows:
        raise ArcpipeError(
            f"names {names.rows:,} rows, the checkpoint's puzzle table has {table_rows:,}: "
            "the identifiers of another dataset",
            file=names.path,
        )
    variants = np.asarray(dataset.arrays["variants"])
    found = names.find(
        [t.id for t in dataset.tasks], variants[:, 0], variants[:, 1], dataset.arrays["colours"]
    )
    rows = np.zeros(dataset.num_puzzle_identifiers, dtype=np.int64)  # id 0: the blank row
    rows[variants[:, 2]] = found
    if (found < 0).any():
        v = int(np.flatnonzero(found < 0)[0])
        raise ArcpipeError(
            f"the dataset's variant {v} (task {dataset.tasks[variants[v, 0]].id}) has no row",
            file=names.path,
        )
    return rows


def _gather_rows(table: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
    """float32 [len(rows), E]: ``table``'s rows in the order ``rows`` gives, a chunk at a time."""
    out = torch.empty(len(rows), table.shape[1], dtype=torch.float32)
    index = torch.from_numpy(rows)
    for lo in range(0, len(rows), CHUNK_ROWS):
        out[lo : lo + CHUNK_ROWS] = table[index[lo : lo + CHUNK_ROWS]]
    return out


def _table_mean(table: torch.Tensor) -> torch.Tensor:
    """float32 [1, E]: the mean row, summed in float64 a chunk at a time."""
    total = torch.zeros(table.shape[1], dtype=torch.float64)
    for lo in range(0, table.shape[0], CHUNK_ROWS):
        total += table[lo : lo + CHUNK_ROWS].to(torch.float64).sum(0)
    return (total / table.shape[0]).to(torch.float32)[None]


def _check_loads(
    model: ModelConfig, vocab: int, seq_len: int, weights: dict, table: torch.Tensor
) -> None:
    """The converted tensors load into arcpipe's network as ``predict`` will load them."""
    network = TRM(model, vocab, seq_len, 1)
    missing = network.load_state_dict(weights, strict=False).missing_keys
    assert missing == [TABLE] and table.shape[1:] == network.puzzle_table.weights.shape[1:]


def _step_of(path: Path) -> int:
    """The step in a ``step_N`` (or ``step_N.pt``) file name; 0 for any other name."""
    match = _STEP.fullmatch(path.name)
    return int(match[1]) if match else 0


def _identity(dataset: Dataset | None, file: ReferenceFile, vocab: int, seq_len: int) -> dict:
    """What the checkpoint records of its dataset: the dataset's identity when the rows were
    mapped onto it; else the board only, so that predict refuses it and post-training takes it."""
    if dataset is not None:
        return dataset_identity(dataset)
    return {
        "fingerprint": None,
        "path": f"the reference dataset of {file.path.name} (imported without --identifiers)",
        "vocab_size": vocab,
        "seq_len": seq_len,
        "canvas": math.isqrt(seq_len),
        "num_puzzle_identifiers": int(file.tensors["puzzle_emb.weights"].shape[0]),
    }


def _record(
    options: ImportOptions,
    config_path: Path,
    file: ReferenceFile,
    reference: ReferenceConfig,
    tensors: list[dict],
    skipped: list[str],
) -> dict:
    """``import.json`` without the puzzle table's part: source, architecture, loops, mapping."""
    model = reference.section("model")
    return {
        "format": IMPORT_FORMAT,
        "format_version": IMPORT_VERSION,
        "arcpipe_version": __version__,
        "source": {
            "checkpoint": str(file.path.resolve()),
            "bytes": file.size,
            "sha256": file_digest(file.path),
            "layout": file.layout,
            "key_prefix": file.prefix,
            "config": str(config_path.resolve()),
            "config_sha256": file_digest(config_path),
        },
        "architecture": {"name": reference.arch, "family": reference.family},
        "loops": {k: model[k] for k in ("cycles", "latent_steps", "supervision_steps")},
        "weights": (
            "the EMA copy of the parameters (the run used EMA)"
            if reference.ema
            else "the parameters as the run saved them"
            + ("" if reference.ema is False else " (whether EMA was used is not recorded)")
        ),
        "config_fields": reference.fields,
        "tensors": tensors,
        "skipped_keys": skipped,
    }


def _table_record(
    source: torch.Tensor, table: torch.Tensor, names: VariantNames | None, dataset: Dataset | None
) -> dict:
    """What was kept of the puzzle table, and with identifiers what the names covered."""
    record = {"source_rows": int(source.shape[0]), "dim": int(source.shape[1])}
    if names is None:
        return {
            **record,
            "kept": "mean",
            "note": "no identifiers: the mean row only, for post-training on new tasks "
            "(export, train --init-from); predict refuses this run",
        }
    coverage = dict(dataset.manifest["variants_from"])
    return {
        **record,
        "kept": "per-variant",
        "rows_kept": int(table.shape[0]),
        "dataset": str(dataset.path),
        "identifiers": {
            "path": str(names.path.resolve()),
            "sha256": coverage["sha256"],
            "names_used": coverage["names_used"],
            "names_of_unknown_tasks": coverage["names_of_unknown_tasks"],
            "unknown_tasks": len(coverage["unknown_tasks"]),
            "unnamed_tasks": coverage["unnamed_tasks"],
        },
    }


def _write_run(
    options: ImportOptions,
    config: Config,
    weights: dict,
    table: torch.Tensor,
    step: int,
    identity: dict,
    record: dict,
) -> None:
    """The run directory, written under a temporary name and renamed into place."""
    state = {
        "step": step,
        "dataset": identity,
        "imported": {k: record[k] for k in ("source", "architecture", "loops")},
    }
    with atomic_directory(options.out, overwrite=options.overwrite) as tmp:
        folder = tmp / "checkpoints" / checkpoint_name(step)
        folder.mkdir(parents=True)
        tensors = {"weights": weights, "puzzle_table": {"weights": table}}
        write_checkpoint_files(folder, tensors, state, config)
        point_link(tmp, "last", folder)
        save_config(config, tmp / "config.toml")
        write_bytes_atomic(tmp / "metrics.jsonl", b"")
        write_json_atomic(tmp / "import.json", record)
