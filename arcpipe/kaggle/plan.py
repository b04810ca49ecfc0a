"""The notebook's settings and the time plan that shares the budget between the phases."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "ARCPIPE_KAGGLE_"
PHASES = ("build", "train", "predict")


# ----------------------------------------------------------------------------- the time plan


@dataclass(frozen=True)
class TimePlan:
    """How the budget is shared between the phases, re-planned from the time actually left.

    Each phase's allowance is computed when it starts, from the elapsed time, so a slow phase
    shortens the next ones instead of overrunning: ``build`` gets at most ``build_share`` of the
    budget (capped at ``build_cap_s``); ``train`` gets what is left minus the ``predict_share``
    reservation; ``predict`` gets what is left; a final margin is always kept back.
    """

    total_s: float = 11 * 3600.0
    build_share: float = 0.05
    build_cap_s: float = 20 * 60.0
    predict_share: float = 0.2
    margin_share: float = 0.025
    margin_cap_s: float = 15 * 60.0

    @property
    def margin_s(self) -> float:
        """Time kept back at the end for the final check and score."""
        return min(self.margin_share * self.total_s, self.margin_cap_s)

    def max_time(self, phase: str, elapsed_s: float) -> float:
        """Seconds ``phase`` may run when it starts ``elapsed_s`` into the budget (never < 0).

        Args:
            phase: one of ``build``, ``train``, ``predict``.
            elapsed_s: seconds since the flow started.
        """
        left = self.total_s - self.margin_s - max(0.0, elapsed_s)
        if phase == "build":
            allowed = min(self.build_share * self.total_s, self.build_cap_s, left)
        elif phase == "train":
            allowed = left - self.predict_share * self.total_s
        elif phase == "predict":
            allowed = left
        else:
            raise ValueError(f"unknown phase {phase!r}; expected one of {', '.join(PHASES)}")
        return max(0.0, allowed)

    def describe(self) -> str:
        """One line for the log."""
        build = min(self.build_share * self.total_s, self.build_cap_s)
        return (
            f"budget {hms(self.total_s)}: build <= {hms(build)}, post-train until "
            f"{hms(self.predict_share * self.total_s)} are left for predict, "
            f"final margin {hms(self.margin_s)}"
        )


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """What the notebook's configuration cell sets; ``ARCPIPE_KAGGLE_<FIELD>`` overrides each."""

    root: Path = Path("/kaggle")  # holds input/ (read-only), working/ (output), temp/ (scratch)
    budget_hours: float = 11.0  # all phases together; Kaggle stops the notebook at 12 h
    posttrain_config: str = "auto"  # a shipped recipe or a TOML file; auto: by the export's model
    posttrain_steps: int = 12_500  # --max-steps; 0: the recipe's own length; time caps either
    posttrain_set: str = ""  # extra config overrides, "train.lr=5e-5 train.ema_rate=0.99"
    views: int = 256  # augmented views per test input; 0: all
    halt_early: bool = False  # stop a view when its halting head says so
    vote_rule: str = "count"  # arcpipe.arc.vote rule; a cross-view rule also scores across views
    programs: bool = False  # a fitted whole-grid program's answer first (predict --programs)
    num_aug: int = 1000  # augmented variants per task in the built dataset
    attempts: int = 2
    extra_sources: str = ""  # comma-separated: training, evaluation, or SOURCE paths
    export: str = ""  # the export folder; empty: found by globbing input/ for export.json
    canvas: int = 0  # board side; 0: the export's canvas (30 when there is no export)
    gpus: int = -1  # GPUs (processes) to use; 0: CPU; -1: every visible GPU, else CPU
    fault: str = ""  # comma-separated phases whose command is made to fail (tests)

    def with_env(self, environ: Mapping[str, str] | None = None) -> Settings:
        """A copy with every field that has an ``ARCPIPE_KAGGLE_<FIELD>`` variable overridden."""
        environ = os.environ if environ is None else environ
        changes = {}
        for f in dataclasses.fields(self):
            text = environ.get(ENV_PREFIX + f.name.upper())
            if text is not None:
                changes[f.name] = _coerce(text, getattr(self, f.name))
        return dataclasses.replace(self, **changes)

    def time_plan(self) -> TimePlan:
        """The default :class:`TimePlan` for ``budget_hours``."""
        return TimePlan(total_s=self.budget_hours * 3600.0)

    def faults(self) -> set[str]:
        """The phases named in ``fault``."""
        return {p.strip() for p in self.fault.split(",") if p.strip()}


def _coerce(text: str, default: object) -> object:
    if isinstance(default, bool):
        return text.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, Path):
        return Path(text)
    return type(default)(text)


def hms(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
