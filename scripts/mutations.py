"""Deliberate bugs against the test suite: which reliability promises the tests really guard.

Each mutation edits one place of a scratch copy of the repository (the working tree, or a base
revision with ``--base``), runs the tests that should catch it, and reports whether they failed
("caught") or passed ("missed"). A mutation whose text is not in the base revision's code is
"n/a" there (the behaviour did not exist, or was written differently).

    python scripts/mutations.py                       # the working tree
    python scripts/mutations.py --base dd0fb45        # also the suite before the reliability work
    python scripts/mutations.py --only resume-restores-nothing

The tests run with the interpreter running this script, whose environment must have arcpipe's
dependencies (the project's venv). Prints a markdown table (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    promise: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments in the working tree's suite
    base_tests: tuple[str, ...] = ()  # in the base revision's suite (default: ``tests``)


MUTATIONS = [
    Mutation(
        "resume-restores-nothing",
        "resume continues from the checkpoint",
        "arcpipe/train/loop.py",
        '(bit-exact on CPU)."""\n',
        '(bit-exact on CPU)."""\n        return\n',
        ("tests/train/test_train.py", "-k", "sigkill"),
        ("tests/train/test_train.py", "-k", "resume or gloo"),
    ),
    Mutation(
        "carry-not-restored",
        "the ACT carry in mid-flight is restored",
        "arcpipe/train/loop.py",
        '        if "carry" in t:\n',
        "        if False:\n",
        ("tests/train/test_train.py", "-k", "sigkill"),
        ("tests/train/test_train.py", "-k", "resume or gloo"),
    ),
    Mutation(
        "exploration-draws-not-restored",
        "the exploration generator is restored",
        "arcpipe/train/loop.py",
        '        self.exploration_rng.set_state(t["rng"]["exploration"])\n',
        "        pass\n",
        ("tests/train/test_train.py", "-k", "sigkill"),
        ("tests/train/test_train.py", "-k", "resume or gloo"),
    ),
    Mutation(
        "log-window-not-saved",
        "a resumed run logs the same records",
        "arcpipe/train/loop.py",
        '            "log_window": self.log_window,\n',
        '            "log_window": [],\n',
        ("tests/train/test_train.py", "-k", "sigkill"),
    ),
    Mutation(
        "link-replaced-in-two-steps",
        "last/ always points at a complete checkpoint",
        "arcpipe/train/checkpoint.py",
        "    tmp.symlink_to(os.path.relpath(target, run))\n    os.replace(tmp, link)\n",
        "    link.unlink(missing_ok=True)\n    link.symlink_to(os.path.relpath(target, run))\n",
        ("tests/test_reliability.py", "-k", "training_killed"),
        ("tests/train/test_train.py",),
    ),
    Mutation(
        "checkpoint-replaced-in-two-steps",
        "re-saving a step's checkpoint is atomic",
        "arcpipe/fsutil.py",
        "    if _exchange(tmp, target):\n",
        "    if False:\n",
        ("tests/test_reliability.py", "-k", "training_killed"),
    ),
    Mutation(
        "checkpoint-digests-not-checked",
        "damaged checkpoints are refused",
        "arcpipe/train/checkpoint.py",
        '    _verify_files(path, state.get("files", {}))\n',
        "",
        ("tests/test_reliability.py", "-k", "bit_flipped"),
    ),
    Mutation(
        "unpickling-allowed",
        "loading never runs code",
        "arcpipe/train/checkpoint.py",
        "weights_only=True)",
        "weights_only=False)",
        ("tests/test_reliability.py", "-k", "pickle"),
        (
            "tests/train/test_train.py",
            "tests/test_predict.py",
            "tests/test_export.py",
            "-m",
            "not slow",
        ),
    ),
    Mutation(
        "dataset-digests-not-checked",
        "damaged datasets are refused",
        "arcpipe/data/dataset.py",
        "        _verify_files(path, manifest)\n",
        "",
        ("tests/test_reliability.py", "-k", "datasets_cut_short"),
    ),
    Mutation(
        "predict-overwrites-the-previous-submission",
        "a killed predict leaves the previous submission",
        "arcpipe/predict.py",
        "    if topo.is_main and not _holds_valid_submission(",
        "    if topo.is_main or _holds_valid_submission(",
        ("tests/test_reliability.py", "-k", "prediction_killed"),
    ),
    Mutation(
        "predict-ignores-sigterm",
        "SIGTERM keeps the vote of the views done",
        "arcpipe/predict.py",
        "            if signal_stop.received is not None:\n",
        "            if False:\n",
        ("tests/test_reliability.py", "-k", "sigterm"),
    ),
    Mutation(
        "no-out-of-memory-retry",
        "out of memory retries at half the batch",
        "arcpipe/kaggle/flow.py",
        "            if result.out_of_memory and self.checkpoint() is None",
        "            if False",
        ("tests/test_kaggle.py", "-k", "out_of_memory"),
        ("tests/test_kaggle.py",),
    ),
    Mutation(
        "finish-does-not-check",
        "finish repairs an invalid submission",
        "arcpipe/kaggle/flow.py",
        "            validate_submission(submission, self.expected, self.submission, "
        "self.settings.attempts)\n",
        "            pass\n",
        ("tests/test_kaggle.py", "-k", "finish_repairs"),
        ("tests/test_kaggle.py",),
    ),
    Mutation(
        "metrics-torn-line-fatal",
        "a torn metrics line does not stop a resume",
        "arcpipe/train/loop.py",
        "        except orjson.JSONDecodeError:\n            break",
        "        except orjson.JSONDecodeError:\n            raise",
        ("tests/test_reliability.py", "-k", "training_killed"),
    ),
    Mutation(
        "metrics-truncated-by-step",
        "a resumed run drops the records written after its checkpoint",
        "arcpipe/train/loop.py",
        "trainer.step, trainer.records)",
        "trainer.step, None)",
        ("tests/test_reliability.py", "-k", "training_killed"),
    ),
    Mutation(
        "final-evaluation-repeated",
        "a run resumed after its final evaluation does not evaluate again",
        "arcpipe/train/loop.py",
        '    if trainer.evaluation.get("step") == trainer.step:',
        "    if False:",
        ("tests/test_reliability.py", "-k", "training_killed"),
    ),
    Mutation(
        "install-cell-takes-a-leftover-directory",
        "the notebook installs unless the package is installed",
        "kaggle/arcpipe-submission.ipynb",
        "spec is None or spec.origin is None",
        "spec is None",
        ("tests/test_kaggle.py", "-k", "install_cell"),
    ),
    Mutation(
        "import-unpickling-allowed",
        "importing a reference checkpoint never runs code",
        "arcpipe/importer/reference_file.py",
        "mmap=True, weights_only=True)",
        "mmap=True, weights_only=False)",
        ("tests/test_reliability.py", "-k", "hostile"),
    ),
    Mutation(
        "import-archive-not-checked",
        "a truncated or foreign checkpoint is refused by name",
        "arcpipe/importer/reference_file.py",
        "        _check_archive(path)\n",
        "",
        ("tests/test_reliability.py", "-k", "hostile"),
    ),
    Mutation(
        "import-inits-swapped",
        "an imported network computes the reference's step",
        "arcpipe/importer/reference_file.py",
        '"answer_init": "H_init",\n    "latent_init": "L_init",',
        '"answer_init": "L_init",\n    "latent_init": "H_init",',
        ("tests/test_import.py", "-k", "reference_step"),
    ),
    Mutation(
        "named-colours-inverted",
        "--variants-from builds the variants the names describe",
        "arcpipe/arc/identifiers.py",
        "return self.dihedrals[rows], self.colours[rows]",
        "return self.dihedrals[rows], np.argsort(self.colours[rows], axis=1).astype(np.uint8)",
        ("tests/data/test_build.py", "-k", "variants_from"),
    ),
]


def copy_tree(source: Path, revision: str | None, into: Path) -> Path:
    """The working tree (tracked and untracked files, no venv) or ``revision`` at ``into``."""
    if revision is None:
        files = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=source, capture_output=True, check=True,
        ).stdout.decode().split("\0")  # fmt: skip
        for name in filter(None, files):
            if (source / name).is_file():
                (into / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / name, into / name)
    else:
        archive = subprocess.run(
            ["git", "archive", revision], cwd=source, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_tests(tree: Path, args: tuple[str, ...]) -> tuple[bool, float]:
    """True when the tests pass in ``tree`` (its own arcpipe first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "ARCPIPE_SHARED_DATA": str(shared_data())}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         f"--basetemp={tree / '.pytest-tmp'}", *args],
        cwd=tree, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode == 0, time.monotonic() - start


def shared_data() -> Path:
    return Path(os.environ.get("ARCPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))


_UNMUTATED: dict[tuple[str | None, tuple[str, ...]], bool] = {}


def check(mutation: Mutation, revision: str | None) -> str:
    """caught / missed / n/a for one mutation on one revision's code and tests."""
    tests = mutation.tests if revision is None else (mutation.base_tests or mutation.tests)
    with tempfile.TemporaryDirectory(prefix="arcpipe-mutation-") as scratch:
        tree = copy_tree(REPO, revision, Path(scratch))
        path = tree / mutation.file
        text = path.read_text()
        if mutation.old not in text:
            return "n/a"
        if (revision, tests) not in _UNMUTATED:
            _UNMUTATED[(revision, tests)] = run_tests(tree, tests)[0]
        if not _UNMUTATED[(revision, tests)]:
            return "unmutated tests fail"
        path.write_text(text.replace(mutation.old, mutation.new))  # every occurrence
        passed, seconds = run_tests(tree, tests)
        return f"missed ({seconds:.0f} s)" if passed else f"caught ({seconds:.0f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="also run each mutation on this revision's code and tests")
    parser.add_argument("--only", nargs="*", help="mutation names")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    header = "| mutation | promise | this suite |" + (
        f" suite at {args.base} |" if args.base else ""
    )
    print(header)
    print("|---|---|---|" + ("---|" if args.base else ""), flush=True)
    for mutation in chosen:
        row = f"| `{mutation.name}` | {mutation.promise} | {check(mutation, None)} |"
        if args.base:
            row += f" {check(mutation, args.base)} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
