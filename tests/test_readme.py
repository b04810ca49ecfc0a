"""The README's first lines are the commands CI runs, and the documented CLI exists."""

from __future__ import annotations

from helpers import REPO


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_first_lines_are_setup_test_and_demo() -> None:
    setup, test, demo = readme_commands()
    assert "pip install torch==2.13.0" in setup and 'pip install -e ".[dev]"' in setup
    assert test == "python -m pytest"
    assert demo == "arcpipe demo"


def test_ci_runs_the_readme_commands_verbatim() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    setup, test, _ = readme_commands()
    assert setup in ci and test in ci
