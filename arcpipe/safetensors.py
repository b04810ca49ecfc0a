"""A minimal reader and writer of the safetensors format (no extra dependency).

Layout: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the data section, in
name order here) plus an optional ``"__metadata__"`` of strings, then the raw little-endian data.
Files written here load with the ``safetensors`` library and vice versa for these dtypes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

from arcpipe.errors import ArcpipeError
from arcpipe.fsutil import write_bytes_atomic

_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
_FROM_NAME = {name: dtype for dtype, name in _DTYPES.items()}


def save_file(
    tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict | None = None
) -> None:
    """Write ``tensors`` (any device, contiguous or not) to ``path`` atomically."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks, offset = [], 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        if tensor.dtype not in _DTYPES:
            raise ValueError(f"unsupported dtype {tensor.dtype} for {name}")
        data = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        header[name] = {
            "dtype": _DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # align the data section to 8 bytes
    write_bytes_atomic(path, struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks))


def load_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file into CPU tensors; returns (tensors, metadata).

    Raises:
        ArcpipeError: the file is missing or not a valid safetensors file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        (size,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + size])
    except (OSError, struct.error, ValueError) as err:
        raise ArcpipeError(f"not a readable safetensors file: {err}", file=path) from None
    data = memoryview(raw)[8 + size :]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = _FROM_NAME[info["dtype"]]
        buffer = bytearray(data[begin:end])
        flat = torch.frombuffer(buffer, dtype=dtype) if buffer else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(info["shape"])
    return tensors, metadata
