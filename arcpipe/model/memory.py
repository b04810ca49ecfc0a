"""How much activation memory autograd keeps for the backward pass (benchmarks and tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


def saved_activation_bytes(fn: Callable[[], object], weights: Iterable[torch.Tensor] = ()) -> int:
    """Bytes of the distinct storages autograd keeps for the backward pass of ``fn()``.

    ``weights`` are left out, and so are autocast's low-precision copies of them and their
    transposes (recognised by shape): they are kept once per model, not per example.
    """
    weights = list(weights)
    weight_storages = {w.untyped_storage().data_ptr() for w in weights}
    weight_shapes = {tuple(w.shape) for w in weights} | {tuple(w.shape)[::-1] for w in weights}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        pointer = t.untyped_storage().data_ptr()
        if pointer not in weight_storages and tuple(t.shape) not in weight_shapes:
            storages[pointer] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())
