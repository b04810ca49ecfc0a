"""Typed run configuration: model and training settings, TOML recipes, ``--set key=value``.

A recipe is a TOML file with ``[model]`` and ``[train]`` tables; the named ones ship in
``arcpipe/configs/`` (``arcpipe train --config arc1``). Unknown keys and wrongly typed values are
errors, never silently dropped. The resolved config is saved with every run and checkpoint, and
prediction rebuilds the model from it alone.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

from arcpipe.errors import ArcpipeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class ModelConfig:
    """The recursive network: TRM (reference §4.1) or URM (urm-reference §2-3) by its options.

    ``state = "two"`` is TRM's answer y and latent z; ``"single"`` is URM's one hidden state h,
    updated ``cycles x latent_steps`` times per supervision step, the last ``latent_steps`` with
    gradients (URM's H_cycles x L_cycles and L_cycles). Paper symbols in comments.
    """

    hidden_size: int = 512  # D
    num_heads: int = 8
    expansion: float = 4.0  # SwiGLU width factor
    num_layers: int = 2  # blocks in the single network f (reference: L_layers; URM: num_layers)
    cycles: int = 3  # T: recursion cycles per supervision step (reference: H_cycles)
    latent_steps: int = 4  # n: latent updates per cycle (reference: L_cycles; the paper's n=6)
    supervision_steps: int = 16  # N_sup: ACT steps per sample (reference: halt_max_steps)
    halt_exploration_prob: float = 0.1  # chance a training sample gets a random minimum of steps
    state: str = "two"  # "two" (TRM: y and z) or "single" (URM: one hidden state h)
    halt_init_bias: float = -5.0  # initial bias of the q_halt logit (reference: halting starts off)
    token_mixer: str = "attention"  # "attention" or "mlp" (the reference's mlp_t)
    mlp: str = "swiglu"  # "swiglu" or "conv_swiglu" (URM: a causal depthwise conv inside)
    conv_param_dtype: str = "bfloat16"  # storage of conv_swiglu's filter (URM: bfloat16, §9.1)
    pos_encodings: str = "rope"  # "rope", "rope2d" (row and column), "learned" or "none"
    puzzle_emb_dim: int = 512  # puzzle vector size; 0 disables puzzle embeddings
    puzzle_emb_len: int = 16  # prefix positions (puzzle vector first); 0: ceil(dim / D), URM's
    # "variant": a row per augmented variant (reference); "task": a row per task, shared by its
    # variants, plus a learned code of each variant's augmentation (ARC datasets only)
    puzzle_table: str = "variant"
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    board: str = "full"  # "full" canvas (reference) or "boxed": only each task's box of cells

    def __post_init__(self) -> None:
        _check_choice("model.state", self.state, ("two", "single"))
        _check_choice("model.token_mixer", self.token_mixer, ("attention", "mlp"))
        _check_choice("model.mlp", self.mlp, ("swiglu", "conv_swiglu"))
        _check_choice("model.conv_param_dtype", self.conv_param_dtype, ("bfloat16", "float32"))
        _check_choice(
            "model.pos_encodings", self.pos_encodings, ("rope", "rope2d", "learned", "none")
        )
        _check_choice("model.board", self.board, ("full", "boxed"))
        _check_choice("model.puzzle_table", self.puzzle_table, ("variant", "task"))
        if self.puzzle_table == "task" and self.puzzle_emb_dim == 0:
            raise ArcpipeError(
                "model.puzzle_table = task needs puzzle embeddings (model.puzzle_emb_dim > 0)"
            )
        if self.board == "boxed" and self.token_mixer != "attention":
            raise ArcpipeError(
                "model.board = boxed needs model.token_mixer = attention (the MLP mixer's weights "
                "are tied to the full canvas)"
            )
        if self.hidden_size % self.num_heads:
            raise ArcpipeError(
                f"model.hidden_size ({self.hidden_size}) must be a multiple of model.num_heads "
                f"({self.num_heads})"
            )
        if self.pos_encodings == "rope2d" and (self.hidden_size // self.num_heads) % 4:
            raise ArcpipeError(
                "model.pos_encodings = rope2d needs a head size (hidden_size / num_heads) that is "
                "a multiple of 4: half of its rotary pairs per axis"
            )
        if self.puzzle_emb_len < 0:
            raise ArcpipeError("model.puzzle_emb_len must be >= 0 (0: derived from the widths)")
        if self.puzzle_emb_dim > self.prefix_len * self.hidden_size:
            raise ArcpipeError(
                "model.puzzle_emb_dim must fit in model.puzzle_emb_len x model.hidden_size"
            )
        for name in ("cycles", "latent_steps", "supervision_steps", "num_layers"):
            if getattr(self, name) < 1:
                raise ArcpipeError(f"model.{name} must be >= 1")

    @property
    def prefix_len(self) -> int:
        """Puzzle-prefix positions P: ``puzzle_emb_len``, or ceil(dim / D) when that is 0."""
        if self.puzzle_emb_dim == 0:
            return 0
        return self.puzzle_emb_len or -(-self.puzzle_emb_dim // self.hidden_size)

    @property
    def family(self) -> str:
        """``"trm"`` or ``"urm"`` for the two papers' networks, else ``"custom"``."""
        if (self.state, self.mlp) == ("two", "swiglu"):
            return "trm"
        if (self.state, self.mlp) == ("single", "conv_swiglu"):
            return "urm"
        return "custom"


@dataclass
class TrainConfig:
    """Optimisation, schedule, evaluation and checkpointing (reference §5)."""

    global_batch_size: int = 768  # examples per optimizer step, over all ranks
    epochs: int = 100_000  # reference: total steps = epochs x groups x mean examples / batch
    lr: float = 1e-4
    lr_warmup_steps: int = 2000
    lr_schedule: str = "constant"  # "constant" after warmup (reference) or "cosine"
    lr_min_ratio: float = 1.0  # cosine floor as a fraction of lr; must stay 1.0 when constant
    optimizer: str = (
        "adam_atan2"  # "adam_atan2" (reference), "adamw", "muon" (URM ARC-AGI-2), "normuon"
    )
    # Muon's (NorMuon's) parameters: "matrices", every 2-D one (URM's reference), or "hidden", the
    # network's block matrices only, embeddings and heads on AdamW (Muon's authors)
    muon_params: str = "matrices"
    beta1: float = 0.9
    beta2: float = 0.95
    weight_decay: float = 0.1
    adamw_eps: float = 1e-8  # AdamW (and Muon's AdamW part) only; AdamATan2 has no epsilon
    puzzle_emb_lr: float = 1e-2
    puzzle_emb_weight_decay: float = 0.1
    ema: bool = True
    ema_rate: float = 0.999
    loss: str = "stablemax"  # "stablemax" (reference) or "softmax" cross-entropy
    q_loss_weight: float = 0.5  # weight of the halting BCE
    seed: int = 0
    dtype: str = "auto"  # "auto": bfloat16 autocast on GPUs with it in hardware, else float32
    compile: bool = False  # torch.compile the network
    log_interval: int = 10  # steps between progress lines / metrics records
    eval_interval: int = 0  # steps between evaluations; 0: only at the end
    eval_split: str = "auto"  # "val", "test" or "auto" (val if present, else test if labelled)
    eval_views: int = 0  # views per test input at evaluation; 0: all
    eval_batch_size: int = 0  # 0: the training batch size
    best_metric: str = "pass@2"  # metric that selects the best/ checkpoint
    checkpoint_interval: int = 0  # steps between checkpoints; 0: at evaluations and the end
    keep_checkpoints: int = 2  # step-N checkpoints kept besides best/ and last/
    board_buckets: int = 6  # boxed boards: sequence lengths at most (an ACT carry each)
    # K: train on the first K variants of each task (the original first), and evaluate and predict
    # their views only; 0: every variant the dataset holds (the reference)
    num_variants: int = 0
    # Each training example seen through a fresh uniformly random augmentation (dihedral, colour
    # permutation, translation when the dataset has it) instead of its stored variant's, so a
    # task is trained on up to 8 x 9! views, not its build's few; needs model.puzzle_table = task
    fresh_augmentations: bool = False
    # Denoising (arcpipe.train.act): the chance a training sample starts from its target with a
    # uniformly random share of its cells revealed, instead of blank; 0: the reference's start
    denoise_prob: float = 0.0

    def __post_init__(self) -> None:
        _check_choice("train.lr_schedule", self.lr_schedule, ("constant", "cosine"))
        _check_choice("train.optimizer", self.optimizer, ("adam_atan2", "adamw", "muon", "normuon"))
        _check_choice("train.muon_params", self.muon_params, ("matrices", "hidden"))
        _check_choice("train.loss", self.loss, ("stablemax", "softmax"))
        _check_choice("train.dtype", self.dtype, ("auto", "float32", "bfloat16"))
        _check_choice("train.eval_split", self.eval_split, ("auto", "val", "test"))
        if self.lr_schedule == "constant" and self.lr_min_ratio != 1.0:
            # The reference has one schedule, a cosine from lr down to lr x lr_min_ratio, which is
            # constant only at ratio 1; ignoring the ratio would silently train another schedule.
            raise ArcpipeError(
                f'train.lr_min_ratio = {self.lr_min_ratio} needs train.lr_schedule = "cosine" '
                "(the reference decays with a cosine to that floor); the constant schedule "
                "takes only lr_min_ratio = 1.0"
            )
        if self.global_batch_size < 1:
            raise ArcpipeError("train.global_batch_size must be >= 1")
        if self.board_buckets < 1:
            raise ArcpipeError("train.board_buckets must be >= 1")
        if not 0.0 <= self.denoise_prob <= 1.0:
            raise ArcpipeError(f"train.denoise_prob must be in [0, 1]; got {self.denoise_prob}")
        if self.num_variants < 0:
            raise ArcpipeError("train.num_variants must be >= 0 (0: every variant)")


@dataclass
class Config:
    """A whole run: model and training settings, plus a free-text description."""

    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ArcpipeError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def shipped_configs() -> list[str]:
    """Names of the recipes shipped in the package."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def load_config(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a shipped recipe by name, or a TOML file by path, then apply ``key=value`` overrides.

    A recipe may start from another: ``base = "arc1"`` (a shipped name, or a path relative to
    the recipe) takes that recipe's values, and the recipe's own tables change some of them.

    Raises:
        ArcpipeError: unknown recipe, unreadable TOML, unknown key or wrongly typed value.
    """
    path = _recipe_path(name_or_path)
    raw = _read_recipe(path, ())
    for item in overrides:
        _apply_override(raw, item)
    try:
        return config_from_dict(raw)
    except ArcpipeError as err:
        raise err.located(file=path) from None


def _recipe_path(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    path = Path(name_or_path)
    if relative_to is not None and not path.is_absolute() and path.suffix:
        path = relative_to / path
    if not path.suffix and not path.exists():
        path = CONFIG_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise ArcpipeError(
                f"no config named {name_or_path!r}; shipped: {', '.join(shipped_configs())}"
            )
    return path


def _read_recipe(path: Path, seen: tuple[Path, ...]) -> dict:
    """A recipe's raw tables, its ``base`` recipe's values under them."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as err:
        raise ArcpipeError(f"cannot read: {err.strerror or err}", file=path) from None
    except tomllib.TOMLDecodeError as err:
        raise ArcpipeError(f"not valid TOML: {err}", file=path) from None
    base = raw.pop("base", None)
    if base is None:
        return raw
    base_path = _recipe_path(base, path.parent)
    if base_path.resolve() in seen:
        raise ArcpipeError(f"base recipe {base!r} leads back to itself", file=path)
    merged = _read_recipe(base_path, (*seen, path.resolve()))
    for key, value in raw.items():
        if isinstance(value, dict):
            merged.setdefault(key, {}).update(value)
        else:
            merged[key] = value
    return merged


# Settings a resumed run may change: how long it runs and what it logs, evaluates and keeps, not
# the maths of the steps already taken. (``train.epochs`` moves the end of the run, so under a
# cosine schedule the learning rates still to come change; ``train.compile`` changes rounding.)
RESUMABLE_KEYS = frozenset(
    f"train.{name}"
    for name in (
        "epochs",
        "compile",
        "log_interval",
        "eval_interval",
        "eval_split",
        "eval_views",
        "eval_batch_size",
        "best_metric",
        "checkpoint_interval",
        "keep_checkpoints",
    )
)


def resumed_config(saved: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """A resumed run's config: its saved one, with the ``--set`` overrides it may take.

    Raises:
        ArcpipeError: an override would change a setting outside :data:`RESUMABLE_KEYS`.
    """
    raw = saved.to_dict()
    for item in overrides:
        _apply_override(raw, item)
    config = config_from_dict(raw)
    for section in ("model", "train"):
        old, new = getattr(saved, section), getattr(config, section)
        for f in dataclasses.fields(old):
            key = f"{section}.{f.name}"
            before, after = getattr(old, f.name), getattr(new, f.name)
            if before != after and key not in RESUMABLE_KEYS:
                raise ArcpipeError(
                    f"--set {key}={after!r}: a resumed run keeps its {key} ({before!r}); "
                    f"resumable settings: {', '.join(sorted(RESUMABLE_KEYS))}"
                )
    return config


def config_from_dict(raw: dict) -> Config:
    """Build a :class:`Config` from nested dicts, checking every key and type."""
    unknown = set(raw) - {"description", "model", "train"}
    if unknown:
        raise ArcpipeError(f"unknown config section {sorted(unknown)[0]!r}")
    return Config(
        description=str(raw.get("description", "")),
        model=_build(ModelConfig, raw.get("model", {}), "model"),
        train=_build(TrainConfig, raw.get("train", {}), "train"),
    )


def _build(cls: type, values: dict, section: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    checked = {}
    for key, value in values.items():
        if key not in fields:
            raise ArcpipeError(f"unknown key {section}.{key}")
        checked[key] = _coerce(f"{section}.{key}", value, hints[key])
    return cls(**checked)


def _coerce(name: str, value: object, kind: type) -> object:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is kind:
        return value
    raise ArcpipeError(f"{name} must be {kind.__name__}, got {value!r}")


def _apply_override(raw: dict, item: str) -> None:
    """Apply ``section.key=value`` (or an unambiguous bare ``key=value``) to raw TOML data."""
    key, sep, text = item.partition("=")
    if not sep:
        raise ArcpipeError(f"--set expects key=value, got {item!r}")
    section, _, name = key.strip().rpartition(".")
    if name == "description" and not section:
        raw["description"] = text
        return
    if not section:
        owners = [
            s
            for s, cls in (("model", ModelConfig), ("train", TrainConfig))
            if name in {f.name for f in dataclasses.fields(cls)}
        ]
        if len(owners) != 1:
            raise ArcpipeError(f"--set {item!r}: unknown key {name!r} (use model.KEY or train.KEY)")
        section = owners[0]
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word is a string: --set train.optimizer=adamw
    raw.setdefault(section, {})[name] = value


def save_config(config: Config, path: Path) -> None:
    """Write the resolved config as TOML (round-trips through :func:`load_config`)."""
    from arcpipe.fsutil import write_bytes_atomic

    lines = [f"description = {_toml_value(config.description)}"]
    for section in ("model", "train"):
        lines.append(f"\n[{section}]")
        for key, value in dataclasses.asdict(getattr(config, section)).items():
            lines.append(f"{key} = {_toml_value(value)}")
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
