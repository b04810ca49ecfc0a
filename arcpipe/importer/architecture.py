"""The reference run's ``all_config.yaml`` -> arcpipe's config: which field becomes which.

TRM (``recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1``, reference §4.1) and URM
(``urm.urm@URM``, urm-reference §2.1) are the two networks arcpipe implements; every other
architecture (HRM, ``trm_hier6``, ``trm_singlez``, the transformer baseline, an unknown name), a
loss head other than ``losses@ACTLossHead`` with stablemax or softmax cross-entropy, and any arch
key this table does not know is refused with one line: a config arcpipe cannot build exactly is
never imported as a different model.

Inference-time loop counts are the checkpoint's: H_cycles -> ``model.cycles`` (T), L_cycles ->
``model.latent_steps`` (n), halt_max_steps (URM: loops) -> ``model.supervision_steps`` (N_sup).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from arcpipe.errors import ArcpipeError

TRM_ARCH = "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"
URM_ARCH = "urm.urm@URM"
LOSS_HEAD = "losses@ACTLossHead"
LOSSES = {"stablemax_cross_entropy": "stablemax", "softmax_cross_entropy": "softmax"}
# Architectures of the reference repositories that arcpipe does not implement, by module.
REFUSED = {
    "hrm": "HRM (separate H and L networks, one-step gradient)",
    "trm_singlez": "TRM with a single latent (trm_singlez)",
    "trm_hier6": "TRM with six latents (trm_hier6)",
    "transformers_baseline": "the transformer baseline",
}
REQUIRED = object()  # a field the reference's config class requires (no code default)


@dataclass(frozen=True)
class Field:
    """One config field: its reference key, arcpipe key, type and the reference's default."""

    reference: str  # key in the arch block (or top level for training settings)
    arcpipe: str  # "model.NAME" or "train.NAME"
    kind: type
    default: object = REQUIRED


TRM_FIELDS = (
    Field("H_cycles", "model.cycles", int),
    Field("L_cycles", "model.latent_steps", int),
    Field("L_layers", "model.num_layers", int),
    Field("hidden_size", "model.hidden_size", int),
    Field("num_heads", "model.num_heads", int),
    Field("expansion", "model.expansion", float),
    Field("puzzle_emb_ndim", "model.puzzle_emb_dim", int, 0),
    Field("puzzle_emb_len", "model.puzzle_emb_len", int, 16),
    Field("pos_encodings", "model.pos_encodings", str),
    Field("halt_max_steps", "model.supervision_steps", int),
    Field("halt_exploration_prob", "model.halt_exploration_prob", float),
    Field("mlp_t", "model.token_mixer", bool, False),
    Field("rms_norm_eps", "model.rms_norm_eps", float, 1e-5),
    Field("rope_theta", "model.rope_theta", float, 10000.0),
    Field("forward_dtype", "train.dtype", str, "bfloat16"),
)
URM_FIELDS = (
    Field("H_cycles", "model.cycles", int),
    Field("L_cycles", "model.latent_steps", int),
    Field("num_layers", "model.num_layers", int),
    Field("hidden_size", "model.hidden_size", int),
    Field("num_heads", "model.num_heads", int),
    Field("expansion", "model.expansion", float),
    Field("puzzle_emb_ndim", "model.puzzle_emb_dim", int, 0),
    Field("loops", "model.supervision_steps", int),
    Field("rms_norm_eps", "model.rms_norm_eps", float, 1e-5),
    Field("rope_theta", "model.rope_theta", float, 10000.0),
    Field("forward_dtype", "train.dtype", str, "bfloat16"),
)
# Arch keys the reference reads for something else, or never reads: why each changes nothing.
TRM_UNUSED = {
    "H_layers": "ignored by the reference",
    "no_ACT_continue": "training only (the continue loss); must be true",
    "causal": "ignored by the reference",
}
URM_UNUSED = {
    "pos_encodings": "ignored by URM: rotary positions always",
    "attn_dropout": "never passed to URM's layers",
    "mlp_dropout": "never passed to URM's layers",
    "loop_deltas": "dropped by URM's config (evaluation only)",
    "profile": "dropped by URM's config",
    "eval_interval": "dropped by URM's config",
    "checkpoint_every_eval": "dropped by URM's config",
    "checkpoint_path": "dropped by URM's config",
    "ema": "dropped by URM's config (the top-level key is the live one)",
    "ema_rate": "dropped by URM's config (the top-level key is the live one)",
    "causal": "ignored by the reference",
}
# URM's fixed choices (no config key) and TRM's, in arcpipe's terms.
URM_FIXED = {
    "model.state": "single",
    "model.mlp": "conv_swiglu",
    "model.puzzle_emb_len": 0,  # ceil(puzzle_emb_ndim / hidden_size) positions
    "model.pos_encodings": "rope",
    "model.token_mixer": "attention",
    "model.halt_exploration_prob": 0.1,
}
TRM_FIXED = {"model.state": "two", "model.mlp": "swiglu"}
# Top-level training settings of the reference's run, kept in the run's [train] table.
TRAIN_FIELDS = (
    Field("global_batch_size", "train.global_batch_size", int, None),
    Field("epochs", "train.epochs", int, None),
    Field("lr", "train.lr", float, None),
    Field("lr_warmup_steps", "train.lr_warmup_steps", int, None),
    Field("lr_min_ratio", "train.lr_min_ratio", float, None),
    Field("weight_decay", "train.weight_decay", float, None),
    Field("beta1", "train.beta1", float, None),
    Field("beta2", "train.beta2", float, None),
    Field("puzzle_emb_lr", "train.puzzle_emb_lr", float, None),
    Field("puzzle_emb_weight_decay", "train.puzzle_emb_weight_decay", float, None),
    Field("ema", "train.ema", bool, None),
    Field("ema_rate", "train.ema_rate", float, None),
    Field("seed", "train.seed", int, None),
    Field("use_muon", "train.optimizer", bool, None),
)


@dataclass
class ReferenceConfig:
    """What an ``all_config.yaml`` says, in arcpipe's terms."""

    family: str  # "trm" or "urm"
    arch: str  # the reference's class name
    values: dict[str, object]  # "model.NAME" / "train.NAME" -> value
    fields: list[dict] = field(default_factory=list)  # the mapping, one record per field
    ema: bool | None = None  # whether the run kept an EMA copy (then the file holds it)

    def section(self, name: str) -> dict:
        """The values of ``model`` or ``train`` keyed by their arcpipe field name."""
        prefix = f"{name}."
        return {k[len(prefix) :]: v for k, v in self.values.items() if k.startswith(prefix)}


def reference_config(raw: object, source: Path) -> ReferenceConfig:
    """Map the reference's resolved config (the parsed ``all_config.yaml``) to arcpipe's fields.

    Raises:
        ArcpipeError: no ``arch`` block, an architecture or loss arcpipe does not implement, a
            missing required field, a wrongly typed value or an arch key it does not know.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("arch"), dict):
        raise ArcpipeError("no 'arch:' block (not the reference's all_config.yaml)", file=source)
    arch = raw["arch"]
    family = _family(arch.get("name"), source)
    fields, unused, fixed = (
        (TRM_FIELDS, TRM_UNUSED, TRM_FIXED)
        if family == "trm"
        else (URM_FIELDS, URM_UNUSED, URM_FIXED)
    )
    known = {f.reference for f in fields} | set(unused) | {"name", "loss"}
    for key in arch:
        if key not in known:
            raise ArcpipeError(
                f"arch.{key} is not a field of the reference's {family.upper()} config: arcpipe "
                "cannot tell what it changes (remove it in a copy and pass that with --config)",
                file=source,
            )
    config = ReferenceConfig(family, str(arch["name"]), dict(fixed))
    config.values["train.loss"] = _loss(arch.get("loss"), source)
    for f in fields:
        value = _read(arch, f, "arch", source)
        config.values[f.arcpipe] = _convert(f, value, source)
        config.fields.append(
            {"reference": f"arch.{f.reference}", "value": value, "arcpipe": f.arcpipe}
        )
    for key, why in unused.items():
        if key in arch:
            config.fields.append(
                {"reference": f"arch.{key}", "value": arch[key], "arcpipe": "", "note": why}
            )
    _check_trm_only(config, arch, source)
    for f in TRAIN_FIELDS:
        if f.reference in raw:
            value = _read(raw, f, "", source)
            config.values.update(_train_value(f, value))
            config.fields.append(_field_record(f.reference, value, f.arcpipe))
    config.ema = raw.get("ema") if isinstance(raw.get("ema"), bool) else None
    return config


def _field_record(reference: str, value: object, arcpipe: str, note: str = "") -> dict:
    """One line of the mapping report: a reference field, its value, where it went (or why not)."""
    record = {"reference": reference, "value": value, "arcpipe": arcpipe}
    return {**record, "note": note} if note else record


def _family(name: object, source: Path) -> str:
    if name == TRM_ARCH:
        return "trm"
    if name == URM_ARCH:
        return "urm"
    module = str(name).split("@")[0].rsplit(".", 1)[-1]
    if module in REFUSED:
        raise ArcpipeError(
            f"arch.name {name}: {REFUSED[module]} is not implemented by arcpipe (it imports "
            f"{TRM_ARCH} and {URM_ARCH})",
            file=source,
        )
    raise ArcpipeError(
        f"arch.name {name!r} is not an architecture arcpipe implements ({TRM_ARCH} or {URM_ARCH})",
        file=source,
    )


def _loss(loss: object, source: Path) -> str:
    name = loss.get("name") if isinstance(loss, dict) else None
    kind = loss.get("loss_type") if isinstance(loss, dict) else None
    extra = sorted(set(loss) - {"name", "loss_type"}) if isinstance(loss, dict) else []
    if name != LOSS_HEAD or kind not in LOSSES or extra:
        raise ArcpipeError(
            f"arch.loss {loss!r}: arcpipe implements {LOSS_HEAD} with {' or '.join(LOSSES)} only",
            file=source,
        )
    return LOSSES[kind]


def _read(table: dict, f: Field, section: str, source: Path) -> object:
    where = f"{section}.{f.reference}" if section else f.reference
    if f.reference not in table:
        if f.default is REQUIRED:
            raise ArcpipeError(f"{where} is missing (the reference requires it)", file=source)
        return f.default
    value = table[f.reference]
    ok = (
        isinstance(value, (int, float)) and not isinstance(value, bool)
        if f.kind is float
        else type(value) is f.kind
    )
    if not ok:
        raise ArcpipeError(f"{where} must be {f.kind.__name__}, got {value!r}", file=source)
    return value


def _convert(f: Field, value: object, source: Path) -> object:
    """A reference value in arcpipe's terms."""
    if f.reference == "pos_encodings":
        return value if value in ("rope", "learned") else "none"  # anything else: none (§4.1)
    if f.reference == "mlp_t":
        return "mlp" if value else "attention"
    if f.reference == "forward_dtype":
        dtypes = {"bfloat16": "auto", "float32": "float32"}
        if value not in dtypes:
            raise ArcpipeError(
                f"arch.forward_dtype {value!r}: arcpipe computes in bfloat16 (train.dtype = auto "
                "on GPUs with it) or float32",
                file=source,
            )
        return dtypes[value]
    return float(value) if f.kind is float else value


def _check_trm_only(config: ReferenceConfig, arch: dict, source: Path) -> None:
    if config.family == "trm" and arch.get("no_ACT_continue", True) is not True:
        raise ArcpipeError(
            "arch.no_ACT_continue false: the ACT continue loss is not implemented (the "
            "reference's own path for it cannot run)",
            file=source,
        )
    model = config.section("model")
    if model["puzzle_emb_dim"] == 0 and model.get("puzzle_emb_len", 0) != 0:
        raise ArcpipeError(
            "arch.puzzle_emb_ndim 0 with puzzle_emb_len > 0: the reference then cuts board "
            "positions off its output, a model arcpipe does not build",
            file=source,
        )


def _train_value(f: Field, value: object) -> dict[str, object]:
    if f.reference == "use_muon":
        return {"train.optimizer": "muon" if value else "adam_atan2"}
    if f.reference == "lr_min_ratio":
        return {
            "train.lr_min_ratio": float(value),
            "train.lr_schedule": "constant" if value == 1.0 else "cosine",
        }
    return {f.arcpipe: float(value) if f.kind is float else value}
