"""Numeric precision: bfloat16 autocast on GPUs that support it, float32 elsewhere."""

from __future__ import annotations

import contextlib

import torch


def compute_dtype(device: torch.device, setting: str = "auto") -> torch.dtype:
    """The activation dtype for ``setting`` ("auto", "float32" or "bfloat16") on ``device``."""
    if setting == "float32":
        return torch.float32
    if setting == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` for the matrix products; a no-op for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
