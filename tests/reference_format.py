"""Checkpoints in the reference's format, written from its key list (issue 19), not from arcpipe.

``reference_state`` names every tensor as the reference's ``pretrain.py`` saves it
(``_orig_mod.model.inner.NAME``), with the shapes and dtypes trm-reference.md §4 and
urm-reference.md §2 give: float32 parameters, bfloat16 ``H_init`` / ``L_init`` / ``init_hidden``
and URM conv filter, a float32 puzzle table. ``all_config_yaml`` writes the run's config as
``yaml.dump`` does (sorted keys, block style, lists under their key at the same indentation).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

PREFIX = "_orig_mod.model.inner."
TRM_NAME = "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"
URM_NAME = "urm.urm@URM"
LOSS = {"loss_type": "stablemax_cross_entropy", "name": "losses@ACTLossHead"}

# Three TRM configs (the paper's with rope, mlp_t without positions, learned positions) and URM's,
# at a CPU size; loop counts unlike arcpipe's defaults, so that keeping them is visible.
PAPER_ROPE = {
    "name": TRM_NAME, "loss": LOSS, "H_cycles": 4, "L_cycles": 5, "H_layers": 0, "L_layers": 2,
    "hidden_size": 32, "num_heads": 2, "expansion": 4, "puzzle_emb_ndim": 32,
    "puzzle_emb_len": 16, "pos_encodings": "rope", "halt_max_steps": 10,
    "halt_exploration_prob": 0.1, "forward_dtype": "bfloat16", "mlp_t": False,
    "no_ACT_continue": True,
}  # fmt: skip
MLP_T = {**PAPER_ROPE, "mlp_t": True, "pos_encodings": "none", "H_cycles": 2, "L_cycles": 6,
         "puzzle_emb_len": 2, "halt_max_steps": 3}  # fmt: skip
LEARNED = {**PAPER_ROPE, "pos_encodings": "learned", "H_cycles": 3, "L_cycles": 2,
           "puzzle_emb_len": 1, "halt_max_steps": 5}  # fmt: skip
URM = {
    "name": URM_NAME, "loss": LOSS, "H_cycles": 2, "L_cycles": 3, "num_layers": 3,
    "hidden_size": 32, "num_heads": 2, "expansion": 4, "puzzle_emb_ndim": 32, "loops": 7,
    "pos_encodings": "rope", "forward_dtype": "bfloat16", "attn_dropout": 0.0,
    "mlp_dropout": 0.0, "loop_deltas": [0, 8], "profile": True, "ema": True, "ema_rate": 0.999,
}  # fmt: skip
TOP_LEVEL = {
    "beta1": 0.9, "beta2": 0.95, "checkpoint_every_eval": True,
    "checkpoint_path": "checkpoints/Arc1concept-aug-1000-ACT-torch/pretrain_att_arc1concept_4",
    "data_paths": ["data/arc1concept-aug-1000"], "data_paths_test": [], "ema": True,
    "ema_rate": 0.999, "epochs": 100000, "eval_interval": 10000, "eval_save_outputs": [],
    "evaluators": [{"name": "arc@ARC"}], "freeze_weights": False, "global_batch_size": 768,
    "load_checkpoint": None, "lr": 0.0001, "lr_min_ratio": 1.0, "lr_warmup_steps": 2000,
    "min_eval_interval": 0, "project_name": "Arc1concept-aug-1000-ACT-torch",
    "puzzle_emb_lr": 0.01, "puzzle_emb_weight_decay": 0.1,
    "run_name": "pretrain_att_arc1concept_4", "seed": 0, "weight_decay": 0.1,
}  # fmt: skip


def swiglu_width(hidden: int, expansion: float) -> int:
    """The reference's ``_find_multiple(round(expansion * hidden * 2 / 3), 256)``."""
    return -(-round(expansion * hidden * 2 / 3) // 256) * 256


def prefix_len(arch: dict) -> int:
    """Puzzle positions: ``puzzle_emb_len`` or, when 0 (always for URM), ceil(ndim / hidden)."""
    length = 0 if arch["name"] == URM_NAME else arch.get("puzzle_emb_len", 16)
    return length or -(arch["puzzle_emb_ndim"] // -arch["hidden_size"])


def reference_state(
    arch: dict, vocab: int = 12, seq_len: int = 900, rows: int = 20, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A state dict of distinct known tensors under the reference's names (without prefix)."""
    g = torch.Generator().manual_seed(seed)
    D, heads, E = arch["hidden_size"], arch["num_heads"], arch["puzzle_emb_ndim"]
    K, W = D // heads, swiglu_width(D, arch["expansion"])
    L = seq_len + prefix_len(arch)

    def t(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(dtype)

    state = {
        "embed_tokens.embedding_weight": t(vocab, D),
        "lm_head.weight": t(vocab, D),
        "q_head.weight": t(2, D),
        "q_head.bias": t(2),
        "puzzle_emb.weights": t(rows, E),
    }
    urm = arch["name"] == URM_NAME
    if urm:
        state["init_hidden"] = t(D, dtype=torch.bfloat16)
    else:
        state["H_init"], state["L_init"] = t(D, dtype=torch.bfloat16), t(D, dtype=torch.bfloat16)
    if arch.get("pos_encodings") == "learned":
        state["embed_pos.embedding_weight"] = t(L, D)
    layers = arch["num_layers"] if urm else arch["L_layers"]
    for i in range(layers):
        block = f"layers.{i}." if urm else f"L_level.layers.{i}."
        if arch.get("mlp_t"):
            Wt = swiglu_width(L, arch["expansion"])
            state[block + "mlp_t.gate_up_proj.weight"] = t(2 * Wt, L)
            state[block + "mlp_t.down_proj.weight"] = t(L, Wt)
        else:
            state[block + "self_attn.qkv_proj.weight"] = t((heads + 2 * heads) * K, D)
            state[block + "self_attn.o_proj.weight"] = t(D, heads * K)
        state[block + "mlp.gate_up_proj.weight"] = t(2 * W, D)
        state[block + "mlp.down_proj.weight"] = t(D, W)
        if urm:
            bound = 1 / math.sqrt(2)
            state[block + "mlp.dwconv.weight"] = (t(W, 1, 2).clamp(-bound, bound)).bfloat16()
            state[block + "mlp.dwconv.bias"] = (t(W).clamp(-bound, bound)).bfloat16()
    return state


def yaml_text(value: object, indent: int = 0) -> str:
    """``value`` as ``yaml.dump`` writes it (block style, sorted keys)."""
    pad = " " * indent
    lines = []
    for key in sorted(value):
        item = value[key]
        if isinstance(item, dict):
            lines.append(f"{pad}{key}:\n{yaml_text(item, indent + 2)}")
        elif isinstance(item, list) and item:
            lines.append(f"{pad}{key}:")
            for element in item:
                if isinstance(element, dict):
                    body = yaml_text(element, indent + 2)
                    lines.append(f"{pad}- {body.strip()}")
                else:
                    lines.append(f"{pad}- {scalar(element)}")
        else:
            lines.append(f"{pad}{key}: {scalar(item)}")
    return "\n".join(lines) + ("\n" if indent == 0 else "")


def scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[]"
    if isinstance(value, float) and 0 < value < 1e-4:
        return f"{value:.1e}"  # 1e-05 -> 1.0e-05, as PyYAML writes it
    return str(value)


def all_config_yaml(arch: dict, **top: object) -> str:
    """The ``all_config.yaml`` pretrain.py writes beside a checkpoint."""
    return yaml_text({**TOP_LEVEL, **top, "arch": arch})


def write_reference_checkpoint(
    folder: Path,
    arch: dict,
    name: str = "step_1234",
    prefix: str = PREFIX,
    state: dict[str, torch.Tensor] | None = None,
    config: bool = True,
    **kwargs: object,
) -> Path:
    """Write ``folder/name`` (``torch.save`` of the prefixed state dict) and, by default,
    ``folder/all_config.yaml``; return the checkpoint's path."""
    folder.mkdir(parents=True, exist_ok=True)
    state = reference_state(arch, **kwargs) if state is None else state
    path = folder / name
    torch.save({prefix + k: v for k, v in state.items()}, path)
    if config:
        (folder / "all_config.yaml").write_text(all_config_yaml(arch))
    return path


# ----------------------------------------------------------------------------- variant names


def reference_view(name: str, grid: np.ndarray) -> np.ndarray:
    """trm-reference §1.3: ``dihedral_transform(mapping[grid], K)``, mapping the name's digits."""
    _, k, perm = name.split("|||")
    mapping = np.array([int(c) for c in perm])
    turned = {
        "t0": lambda g: g,
        "t1": lambda g: np.rot90(g, 1),
        "t2": lambda g: np.rot90(g, 2),
        "t3": lambda g: np.rot90(g, 3),
        "t4": np.fliplr,
        "t5": np.flipud,
        "t6": lambda g: g.T,
        "t7": lambda g: np.fliplr(np.rot90(g, 1)),
    }[k]
    return turned(mapping[grid])


def reference_inverse(name: str, grid: np.ndarray) -> np.ndarray:
    """trm-reference §1.7: undo the dihedral (``DIHEDRAL_INVERSE``), then ``argsort(PERM)``."""
    _, k, perm = name.split("|||")
    inverse = [0, 3, 2, 1, 4, 5, 6, 7][int(k[1])]
    forward = reference_view(f"x|||t{inverse}|||0123456789", grid)
    return np.argsort([int(c) for c in perm])[forward]
