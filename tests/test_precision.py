"""Compute dtype: bfloat16 only where the hardware has it, float32 elsewhere or when asked."""

from __future__ import annotations

import pytest
import torch

from arcpipe.precision import compute_dtype

CUDA = torch.device("cuda", 0)


@pytest.mark.parametrize(
    ("capability", "expected"),
    [((9, 0), torch.bfloat16), ((8, 9), torch.bfloat16), ((7, 5), torch.float32)],
)
def test_auto_is_bfloat16_only_on_gpus_with_hardware_bfloat16(
    monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], expected: torch.dtype
) -> None:
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # emulation counts
    assert compute_dtype(CUDA) == expected


def test_settings_override_the_device() -> None:
    assert compute_dtype(torch.device("cpu")) == torch.float32
    assert compute_dtype(torch.device("cpu"), "bfloat16") == torch.bfloat16
    assert compute_dtype(CUDA, "float32") == torch.float32
