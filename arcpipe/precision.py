"""Numeric precision: bfloat16 autocast on GPUs with it in hardware, float32 elsewhere."""

from __future__ import annotations

import contextlib

import torch


def compute_dtype(device: torch.device, setting: str = "auto") -> torch.dtype:
    """The activation dtype for ``setting`` ("auto", "float32" or "bfloat16") on ``device``."""
    if setting == "float32":
        return torch.float32
    if setting == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda" and has_native_bfloat16(device):
        return torch.bfloat16
    return torch.float32


def has_native_bfloat16(device: torch.device) -> bool:
    """bfloat16 in hardware: NVIDIA Ampere or later (compute capability 8), or ROCm.

    ``torch.cuda.is_bf16_supported()`` also says yes where bfloat16 is only emulated (T4, P100,
    as Kaggle's older GPUs), which would run slower than float32 there.
    """
    return bool(torch.version.hip) or torch.cuda.get_device_capability(device)[0] >= 8


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` for the matrix products; a no-op for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
