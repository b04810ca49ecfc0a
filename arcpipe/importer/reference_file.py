"""A reference checkpoint file: read safely, its tensors named in arcpipe's terms.

The file is untrusted input. Before ``torch.load`` sees it, its first bytes must be a zip
archive's (what ``torch.save`` writes; a safetensors file, a raw pickle stream and anything else
are refused by name, a raw pickle without being read), the archive must be complete (a truncated
file has no central directory) and its pickle small. ``torch.load`` then runs with
``weights_only=True`` (containers of tensors and numbers only: a pickle that would run code is
refused and nothing of it runs) and ``mmap=True``, so the tensors stay in the file's pages until
they are used and a 2.4 GB puzzle table is never copied whole by loading.

Accepted contents: the state dict of the reference's loss head (``pretrain.py``'s
``torch.save(model.state_dict())``), or a training checkpoint holding one under
``model_state_dict`` (URM's ``step_N.pt``) or ``model`` (forks of the TRM code); an optimizer
state, a PyTorch Lightning checkpoint or any other dict is refused by name. Keys are
``_orig_mod.model.inner.NAME`` (compiled), ``model.inner.NAME``, ``_orig_mod.inner.NAME`` or
``inner.NAME``, one form in a file.

Names (reference -> arcpipe; URM's in brackets where they differ, ``{i}`` a block)::

    embed_tokens.embedding_weight            embed.weight                (V, D)
    lm_head.weight                           lm_head.weight              (V, D)
    q_head.weight, q_head.bias               q_head.weight, .bias        (2, D), (2,)
    H_init [init_hidden], L_init             answer_init, latent_init    (D,) stored bf16
    embed_pos.embedding_weight               pos                         (P + S, D), learned
    puzzle_emb.weights                       puzzle_table.weights        (rows, E) float32
    L_level.layers.{i} [layers.{i}].         blocks.{i}.
      self_attn.qkv_proj.weight                attention.qkv.weight      (3D, D)
      self_attn.o_proj.weight                  attention.out.weight      (D, D)
      mlp.gate_up_proj.weight                  mlp.gate_up.weight        (2W, D)
      mlp.down_proj.weight                     mlp.down.weight           (D, W)
      mlp_t.gate_up_proj.weight                token_mlp.gate_up.weight  (2W', P + S)
      mlp_t.down_proj.weight                   token_mlp.down.weight     (P + S, W')
      [mlp.dwconv.weight, mlp.dwconv.bias]     mlp.conv_weight, .conv_bias  (W, 1, 2), (W,) bf16

The layouts are the same on both sides, so every tensor is copied as it is (bfloat16 and float16
sources widened to float32 exactly; URM's conv filter kept in its dtype): ``qkv`` rows are the H
query heads, then the H key heads, then the H value heads, each head's K = D / H rows together
(the reference views (B, L, 3H, K) and slices heads, arcpipe views (B, L, 3, H, K)); ``gate_up``
rows are the gate's W, then the up projection's W (``chunk(2)``, gate first); the conv weight is
``Conv1d``'s (W, 1, 2), tap 0 on the previous position. The reference's non-persistent buffers
(rotary tables; the sparse embedding's per-batch ``local_weights`` and ``local_ids``) are not
weights and are skipped if present.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from arcpipe.errors import ArcpipeError

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOL = 0x80
MAX_PICKLE_BYTES = 64 << 20  # a state dict's pickle is tens of KB; tensors live outside it
KEY_PREFIXES = ("_orig_mod.model.inner.", "model.inner.", "_orig_mod.inner.", "inner.")
SKIPPED = ("rotary_emb.cos_cached", "rotary_emb.sin_cached", "puzzle_emb.local_weights",
           "puzzle_emb.local_ids")  # fmt: skip
LIGHTNING_KEYS = ("pytorch-lightning_version", "global_step", "epoch", "lr_schedulers",
                  "optimizer_states", "hyper_parameters", "loops", "callbacks")  # fmt: skip
WRAPPERS = {
    "model_state_dict": "the model_state_dict of a training checkpoint (URM's step_N.pt)",
    "model": "the model of a training checkpoint",
}
TOP_NAMES = {  # arcpipe name -> reference name
    "embed.weight": "embed_tokens.embedding_weight",
    "lm_head.weight": "lm_head.weight",
    "q_head.weight": "q_head.weight",
    "q_head.bias": "q_head.bias",
    "answer_init": "H_init",
    "latent_init": "L_init",
    "pos": "embed_pos.embedding_weight",
    "puzzle_table.weights": "puzzle_emb.weights",
}
URM_TOP_NAMES = {**TOP_NAMES, "answer_init": "init_hidden"}
BLOCK_NAMES = {  # within a block: arcpipe -> reference
    "attention.qkv.weight": "self_attn.qkv_proj.weight",
    "attention.out.weight": "self_attn.o_proj.weight",
    "mlp.gate_up.weight": "mlp.gate_up_proj.weight",
    "mlp.down.weight": "mlp.down_proj.weight",
    "token_mlp.gate_up.weight": "mlp_t.gate_up_proj.weight",
    "token_mlp.down.weight": "mlp_t.down_proj.weight",
    "mlp.conv_weight": "mlp.dwconv.weight",
    "mlp.conv_bias": "mlp.dwconv.bias",
}
LAYERS = {"trm": "L_level.layers", "urm": "layers"}
WIDENED = (torch.float32, torch.bfloat16, torch.float16)  # exactly representable in float32
_BLOCK = re.compile(r"blocks\.(\d+)\.(.+)")


@dataclass
class ReferenceFile:
    """A reference checkpoint, loaded lazily (memory-mapped)."""

    path: Path
    size: int  # bytes on disk
    tensors: dict[str, torch.Tensor]  # reference NAME (prefix removed) -> tensor
    prefix: str  # the key prefix the file uses
    layout: str  # what the file held the state dict in
    step: int | None  # the training step, when the file records it


def read_reference_file(path: str | Path) -> ReferenceFile:
    """Check and load a reference checkpoint file; see the module docstring.

    Raises:
        ArcpipeError: missing, truncated, foreign (safetensors, raw pickle, optimizer state,
            Lightning), holding code to run, or keys that are not the reference's form.
    """
    path = Path(path)
    if not path.is_file():
        raise ArcpipeError("no such checkpoint file", file=path)
    size = path.stat().st_size
    _check_container(path, size)
    try:
        loaded = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[-1][:200]
        raise ArcpipeError(
            "refused: holds objects other than tensors, which loading would run as code "
            f"(nothing was run; weights_only: {reason})",
            file=path,
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ArcpipeError(f"damaged checkpoint file: {reason}", file=path) from None
    state, layout, step = _unwrap(loaded, path)
    prefix, tensors = _strip_prefix(state, path)
    return ReferenceFile(path, size, tensors, prefix, layout, step)


def _check_container(path: Path, size: int) -> None:
    """The file is a complete ``torch.save`` zip archive with a small pickle, by its bytes."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:4] == ZIP_MAGIC:
        _check_archive(path)
        return
    header = int.from_bytes(head[:8], "little") if len(head) >= 9 else 0
    if 2 <= header <= size - 8 and head[8:9] == b"{":
        raise ArcpipeError(
            "a safetensors file, not a reference checkpoint (pretrain.py writes torch.save "
            "files; an arcpipe export is taken by train --init-from as it is)",
            file=path,
        )
    if head[:1] == bytes([PICKLE_PROTOCOL]):
        raise ArcpipeError(
            "a raw pickle stream (pickle.dump or torch.save's legacy format), not the zip "
            "archive torch.save writes; refused without reading it",
            file=path,
        )
    what = "empty" if not head else "not a torch.save zip archive"
    raise ArcpipeError(f"{what} (the reference's checkpoints are torch.save files)", file=path)


def _check_archive(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [i for i in archive.infolist() if i.filename.endswith("/data.pkl")]
    except (zipfile.BadZipFile, OSError) as err:
        raise ArcpipeError(
            f"damaged checkpoint file: not a complete zip archive (truncated?): {err}", file=path
        ) from None
    if len(pickles) != 1:
        raise ArcpipeError("not a torch.save archive (no single data.pkl in it)", file=path)
    if pickles[0].file_size > MAX_PICKLE_BYTES:
        raise ArcpipeError(
            f"refused: its pickle is {pickles[0].file_size:,} bytes (a state dict's is a few "
            f"KB; at most {MAX_PICKLE_BYTES:,} are read)",
            file=path,
        )


def _is_state_dict(obj: object) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _unwrap(obj: object, path: Path) -> tuple[dict, str, int | None]:
    """(state dict, where it was, step) of what the file holds."""
    if _is_state_dict(obj):
        return obj, "a state dict (pretrain.py's torch.save(model.state_dict()))", None
    if not isinstance(obj, dict):
        raise ArcpipeError(f"holds a {type(obj).__name__}, not a state dict", file=path)
    if "state" in obj and "param_groups" in obj:
        raise ArcpipeError(
            "an optimizer's state (state, param_groups), not model weights", file=path
        )
    if "state_dict" in obj and any(k in obj for k in LIGHTNING_KEYS):
        raise ArcpipeError(
            "a PyTorch Lightning checkpoint, not the reference's: arcpipe imports "
            "pretrain.py's state dicts",
            file=path,
        )
    for key, layout in WRAPPERS.items():
        if _is_state_dict(obj.get(key)):
            step = obj.get("step")
            return obj[key], layout, step if isinstance(step, int) else None
    key = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), next(iter(obj), ""))
    raise ArcpipeError(
        f"not a model state dict: top-level key {key!r} holds a "
        f"{type(obj.get(key)).__name__} (expected tensors, or a model_state_dict)",
        file=path,
    )


def _strip_prefix(state: dict, path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """The key prefix every key shares, and the tensors by the name after it."""
    counts = {p: sum(k.startswith(p) for k in state) for p in KEY_PREFIXES}
    prefix = max(KEY_PREFIXES, key=lambda p: counts[p])
    stray = next((k for k in state if not k.startswith(prefix)), None)
    if stray is not None:
        expected = f"like the others, {prefix!r}" if counts[prefix] else "_orig_mod.model.inner."
        raise ArcpipeError(f"unknown key {stray!r} (reference keys start {expected})", file=path)
    return prefix, {k[len(prefix) :]: v for k, v in state.items()}


def reference_name(name: str, family: str) -> str:
    """The reference's name of arcpipe's parameter or buffer ``name`` (see the module table)."""
    block = _BLOCK.fullmatch(name)
    if block:
        return f"{LAYERS[family]}.{block[1]}.{BLOCK_NAMES[block[2]]}"
    return (URM_TOP_NAMES if family == "urm" else TOP_NAMES)[name]


def match_tensors(
    file: ReferenceFile, expected: dict[str, torch.Tensor], family: str, table_key: str
) -> tuple[dict[str, torch.Tensor], list[dict], list[str]]:
    """Pair the file's tensors with arcpipe's ``expected`` ones (name -> a tensor of the right
    shape and dtype), by name, checking names, shapes and dtypes; nothing is copied yet.

    ``table_key`` (the puzzle table) may have any number of rows.

    Returns:
        (arcpipe name -> the file's tensor, one record per tensor, the skipped names).

    Raises:
        ArcpipeError: an unknown key, a missing key, a shape or dtype that does not fit.
    """
    names = {reference_name(k, family): k for k in expected}
    for name in file.tensors:
        if name not in names and name not in SKIPPED:
            raise ArcpipeError(
                f"unknown key {file.prefix}{name}: not a tensor of the reference's "
                f"{family.upper()} with this config",
                file=file.path,
            )
    pairs, report = {}, []
    for name, ours in names.items():
        if name not in file.tensors:
            raise ArcpipeError(f"missing key {file.prefix}{name}", file=file.path)
        tensor, want = file.tensors[name], expected[ours]
        _check_shape(file, name, tensor, want, ours == table_key)
        _check_dtype(file, name, tensor, want.dtype)
        pairs[ours] = tensor
        report.append(
            {
                "reference": name,
                "arcpipe": ours,
                "shape": list(tensor.shape),
                "dtype": _dtype_name(tensor.dtype),
                "stored_as": _dtype_name(want.dtype),
            }
        )
    return pairs, report, sorted(n for n in file.tensors if n in SKIPPED)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _check_shape(
    file: ReferenceFile, name: str, tensor: torch.Tensor, want: torch.Tensor, any_rows: bool
) -> None:
    shape, expected = tuple(tensor.shape), tuple(want.shape)
    fits = shape[1:] == expected[1:] and len(shape) == 2 if any_rows else shape == expected
    if not fits or (any_rows and shape[0] < 1):
        wanted = f"(rows, {expected[1]})" if any_rows else str(expected)
        raise ArcpipeError(
            f"shape mismatch: {file.prefix}{name} is {shape}, the config gives {wanted}",
            file=file.path,
        )


def _check_dtype(file: ReferenceFile, name: str, tensor: torch.Tensor, want: torch.dtype) -> None:
    if tensor.dtype == want or (want == torch.float32 and tensor.dtype in WIDENED):
        return
    raise ArcpipeError(
        f"{file.prefix}{name} is {_dtype_name(tensor.dtype)}, which arcpipe cannot store "
        f"exactly as {_dtype_name(want)}",
        file=file.path,
    )
