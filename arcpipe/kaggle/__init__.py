"""The Kaggle submission flow as library code; the notebook in ``kaggle/`` only calls it.

Phases, in order (one :class:`Flow` method each), every one guarded so that a failure (an
exception, a nonzero exit, a CUDA error, out of memory, a timeout) is logged and the flow goes on
with what it has, leaving the last valid ``submission.json`` in place:

1. ``fallback``: write a valid submission (every attempt is the test input itself) from the test
   challenges, with the standard library only, before torch is imported.
2. ``build``: ``arcpipe build-data`` with the test challenges as the target set, on the export's
   canvas. By default the hidden tasks are the only source: post-training is on their
   demonstrations, as in the reference recipe (Trelis 2025), and a bigger dataset would only
   dilute the fixed number of steps. ``extra_sources`` adds the public ``training`` /
   ``evaluation`` challenges (with solutions) or any SOURCE path. The build passes
   ``--leakage allow``: with nothing to score, a public source that holds a hidden test pair is
   trained on (and recorded), never a refused build.
3. ``posttrain``: ``arcpipe train --init-from EXPORT`` on all visible GPUs (``torchrun``), one
   process on one GPU, or one CPU process, with ``--max-time`` from the :class:`TimePlan`. Out of
   memory with no checkpoint yet: one retry at half the batch.
4. ``predict``: ``arcpipe predict`` straight into the working ``submission.json`` (which it only
   ever replaces atomically with a complete, validated submission), from whatever checkpoint
   post-training left, even when it failed later. Out of memory: one retry at a smaller batch.
5. ``finish``: validate ``submission.json`` (writing the fallback again should it not be valid)
   and, unless ``KAGGLE_IS_COMPETITION_RERUN`` is set, score it on the test tasks whose solutions
   are public (the placeholder's tasks are all in the training challenges).

Every :class:`Settings` field can be overridden by an environment variable
``ARCPIPE_KAGGLE_<FIELD>`` (``ARCPIPE_KAGGLE_ROOT`` points the flow at a simulated root holding
``input/`` and ``working/``), so tests run the unchanged notebook. ``ARCPIPE_KAGGLE_FAULT`` names
phases (``build,train,predict``) whose command gets the unknown option ``--injected-fault``, so
arcpipe exits with status 2 before doing any work, as a crashed phase would: an explicit,
documented fault injection, not a mock.
"""

from arcpipe.kaggle.files import (
    TEST_CHALLENGES,
    CompetitionFiles,
    find_competition,
    find_export,
    find_wheelhouse,
    known_solutions,
    read_test_inputs,
    write_fallback,
)
from arcpipe.kaggle.flow import FAULT_OPTION, RERUN_ENV, Flow, PhaseResult
from arcpipe.kaggle.plan import ENV_PREFIX, PHASES, Settings, TimePlan
from arcpipe.kaggle.process import CommandResult, arcpipe_command, run_command, visible_gpus

__all__ = [
    "ENV_PREFIX",
    "FAULT_OPTION",
    "PHASES",
    "RERUN_ENV",
    "TEST_CHALLENGES",
    "CommandResult",
    "CompetitionFiles",
    "Flow",
    "PhaseResult",
    "Settings",
    "TimePlan",
    "arcpipe_command",
    "find_competition",
    "find_export",
    "find_wheelhouse",
    "known_solutions",
    "read_test_inputs",
    "run_command",
    "visible_gpus",
    "write_fallback",
]
