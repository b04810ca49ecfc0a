"""An HTML report of predictions: one self-contained page to browse a run task by task.

At the top, a summary: tasks, test inputs, solved tasks and inputs, pass@1 and pass@2 (per task
then over tasks, and over all test outputs) when the truth is known, the number of candidates and
malformed views, the voting rule and where the attempts come from; given run directories, their
curves (loss, exact accuracy, mean ACT steps, learning rate, evaluation pass@2; see
:mod:`arcpipe.plots`).
Then one section per target task: its train pairs (input -> output); per test input the input
grid, the attempts (from a submission, else the top-2 voted grids) marked right or wrong when the
truth is known, the truth, the top vote groups with their counts, mean sigmoid(q_halt) and whether
they equal the truth, and each voting rule's top two with the scores behind them (every distinct
grid drawn once, lettered).

Buttons filter the tasks (all, solved, unsolved, unknown truth) and a menu sorts them (task id,
top vote count, vote margin). Grids are CSS grids of cells coloured with the ARC palette. The
page has no external resources: inline CSS and script, system fonts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np

from arcpipe import plots
from arcpipe.arc.candidates import Candidates
from arcpipe.arc.tasks import parse_grid
from arcpipe.arc.vote import CROSS_VIEW_RULES, RULES, Votes, vote
from arcpipe.data.dataset import Dataset, TaskInfo
from arcpipe.errors import ArcpipeError
from arcpipe.fsutil import write_bytes_atomic

PALETTE = (
    "#000000",  # 0 black
    "#0074D9",  # 1 blue
    "#FF4136",  # 2 red
    "#2ECC40",  # 3 green
    "#FFDC00",  # 4 yellow
    "#AAAAAA",  # 5 grey
    "#F012BE",  # 6 magenta
    "#FF851B",  # 7 orange
    "#7FDBFF",  # 8 light blue
    "#870C25",  # 9 maroon
)
STATUSES = ("solved", "unsolved", "unknown")
DEFAULT_ATTEMPTS = 2  # attempts taken from the votes when no submission is given

_CELLS = tuple(f"<i class=c{v}></i>" for v in range(len(PALETTE)))
_ATTEMPT_KEY = re.compile(r"attempt_([1-9][0-9]*)")

CSS = """
:root { --cell: 10px; --ok: #1a7f37; --bad: #cf222e; --muted: #59636e; --line: #d1d9e0; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; background: #f6f8fa; color: #1f2328;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
h1 { margin: 0 0 12px; font-size: 22px; }
h2 { margin: 0; font-size: 17px; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
h3 { margin: 14px 0 6px; font-size: 13px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr));
  gap: 8px; margin-bottom: 16px; }
.stat { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.stat b { display: block; font-size: 18px; }
.stat > span { color: var(--muted); font-size: 12px; }
.controls { position: sticky; top: 0; z-index: 1; display: flex; flex-wrap: wrap; gap: 8px;
  align-items: center; padding: 10px 0; background: #f6f8fa; border-bottom: 1px solid
  var(--line); margin-bottom: 16px; }
.controls button, .controls select { font: inherit; padding: 4px 12px; border-radius: 6px;
  border: 1px solid var(--line); background: #fff; cursor: pointer; }
.controls button.on { background: #1f2328; color: #fff; border-color: #1f2328; }
.controls .shown { margin-left: auto; color: var(--muted); }
.task { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 14px 18px;
  margin-bottom: 16px; }
.task > header { display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; }
.task > header .info { color: var(--muted); }
.badge { padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.badge.solved { background: #dafbe1; color: var(--ok); }
.badge.unsolved { background: #ffebe9; color: var(--bad); }
.badge.unknown { background: #eaeef2; color: var(--muted); }
.row { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
.pair { display: flex; gap: 6px; align-items: center; padding: 6px; border: 1px dashed
  var(--line); border-radius: 8px; }
.arrow { color: var(--muted); font-size: 18px; }
.test { border-top: 1px solid var(--line); margin-top: 12px; }
.group { display: flex; flex-direction: column; gap: 4px; }
figure.grid { margin: 0; padding: 4px; border: 2px solid transparent; border-radius: 6px; }
figure.grid.ok { border-color: var(--ok); }
figure.grid.bad { border-color: var(--bad); }
figure.grid.missing { color: var(--muted); font-style: italic; min-width: 80px; }
.cells { display: grid; grid-template-columns: repeat(var(--w), var(--cell));
  grid-auto-rows: var(--cell); gap: 1px; background: #888; border: 1px solid #888;
  width: max-content; }
.cells i { display: block; }
figcaption { font-size: 12px; color: var(--muted); margin-top: 3px; white-space: nowrap; }
figcaption .v.ok { color: var(--ok); font-weight: 700; }
figcaption .v.bad { color: var(--bad); font-weight: 700; }
.empty { color: var(--muted); font-style: italic; }
table.rules { border-collapse: collapse; font-size: 12px; margin: 4px 0 8px; }
table.rules th, table.rules td { border: 1px solid var(--line); padding: 2px 8px;
  text-align: left; white-space: nowrap; }
table.rules th { background: #f6f8fa; }
.ref { font-weight: 700; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.ref.ok { color: var(--ok); }
.ref.bad { color: var(--bad); }
"""
CSS += "".join(f".c{v} {{ background: {colour}; }}\n" for v, colour in enumerate(PALETTE))
CSS += plots.CSS

JS = """
(() => {
  const list = document.getElementById("tasks");
  const tasks = Array.from(list.querySelectorAll("section.task"));
  document.body.dataset.tasks = String(tasks.length);
  const shown = document.getElementById("shown");
  const buttons = Array.from(document.querySelectorAll("button[data-filter]"));
  const filter = (status) => {
    let count = 0;
    for (const task of tasks) {
      task.hidden = status !== "all" && task.dataset.status !== status;
      if (!task.hidden) count += 1;
    }
    for (const b of buttons) b.classList.toggle("on", b.dataset.filter === status);
    shown.textContent = String(count);
  };
  const orders = {
    id: (a, b) => a.dataset.id.localeCompare(b.dataset.id),
    votes: (a, b) => b.dataset.votes - a.dataset.votes || orders.id(a, b),
    margin: (a, b) => a.dataset.margin - b.dataset.margin || orders.id(a, b),
  };
  for (const b of buttons) b.addEventListener("click", () => filter(b.dataset.filter));
  document.getElementById("sort").addEventListener("change", (event) => {
    for (const task of tasks.slice().sort(orders[event.target.value])) list.append(task);
  });
  filter("all");
})();
"""


@dataclass(frozen=True)
class ReportSummary:
    """What a report found: counts over the target tasks and, where the truth is known, scores."""

    tasks: int
    solved: int  # tasks whose every test input is right within the attempts
    test_inputs: int
    solved_inputs: int  # test inputs right within the attempts
    unknown: int  # tasks with at least one unknown test output (neither solved nor unsolved)
    scores: dict[str, float] = field(default_factory=dict)  # pass@k, pass@k_outputs; k = 1, 2


@dataclass
class _Group:
    grid: np.ndarray
    count: int
    mean_q: float


@dataclass
class _Test:
    input: np.ndarray
    truth: np.ndarray | None
    attempts: list[np.ndarray | None]  # None: an invalid or missing attempt
    groups: list[_Group]
    by_rule: dict[str, list[tuple[np.ndarray, str]]] = field(default_factory=dict)  # top 2

    def hits(self, k: int) -> bool:
        """Whether one of the first ``k`` attempts equals the (known) truth."""
        return any(_same(a, self.truth) for a in self.attempts[:k])


@dataclass
class _Task:
    id: str
    train: list[tuple[np.ndarray, np.ndarray | None]]
    tests: list[_Test]

    @property
    def known(self) -> bool:
        return all(t.truth is not None for t in self.tests)

    @property
    def status(self) -> str:
        if not self.known:
            return "unknown"
        return "solved" if all(t.hits(len(t.attempts)) for t in self.tests) else "unsolved"

    @property
    def top_votes(self) -> int:
        """The smallest top-1 vote count over the test inputs (0 without candidates)."""
        return min((t.groups[0].count if t.groups else 0 for t in self.tests), default=0)

    @property
    def margin(self) -> int:
        """The smallest lead of the top vote group over the second, over the test inputs."""
        counts = [[g.count for g in t.groups[:2]] + [0, 0] for t in self.tests]
        return min((c[0] - c[1] for c in counts), default=0)


def write_report(
    candidates: Candidates,
    dataset: Dataset,
    out: Path,
    submission: dict | None = None,
    rule: str = "count",
    top: int = 5,
    title: str = "arcpipe report",
    runs: list[Path] = (),
) -> ReportSummary:
    """Write the HTML report of ``candidates`` atomically to ``out``.

    Args:
        candidates: a prediction run's candidates; its ``task_ids`` are the tasks reported.
        dataset: the dataset the candidates answer, for the train pairs, test inputs and truth.
        out: the HTML file to write.
        submission: Kaggle-style ``{task_id: [{"attempt_1": grid, ...}, ...]}`` whose attempts
            are shown and scored; None shows and scores the top-2 voted grids instead.
        rule: the voting rule (see :mod:`arcpipe.arc.vote`) of the attempts and vote groups.
        top: vote groups shown per test input.
        title: the page title.
        runs: run directories whose curves are drawn at the top.

    Returns:
        The counts and scores shown at the top of the page.

    Raises:
        ArcpipeError: a task of the candidates is not in the dataset or has another number of
            test inputs, the submission is not shaped like a submission, or a run has no
            readable metrics.
    """
    votes = vote(candidates, rule)
    rules = [r for r in RULES if candidates.cross_view_k > 0 or r not in CROSS_VIEW_RULES]
    by_rule = {r: votes if r == rule else vote(candidates, r) for r in rules}
    by_id = {task.id: task for task in dataset.tasks}
    tasks = [
        _task(t, task_id, by_id, dataset, votes, submission, top, by_rule)
        for t, task_id in enumerate(candidates.task_ids)
    ]
    summary = _summarise(tasks)
    source = "top-2 votes" if submission is None else "submission"
    head = _summary_html(summary, candidates, rule, source) + plots.curves_html(list(runs))
    page = _page_html(title, head, tasks)
    write_bytes_atomic(out, page.encode())
    return summary


def rule_score(votes: Votes, rule: str, group: int) -> str:
    """What ranks ``group`` under ``rule``, in words."""
    count = int(votes.count[group])
    if rule == "count":
        return f"{_count(count, 'vote')}, q {votes.mean_q[group]:.3f}"
    if rule == "q_weighted":
        return f"Σq {votes.sum_q[group]:.3f}"
    if rule == "consistency":
        return f"lp {votes.mean_logprob[group]:.4f}, {_count(count, 'vote')}"
    if votes.cross_over[group] == 0:
        return f"not scored, {_count(count, 'vote')}"
    cross = f"xv {votes.cross_logprob[group]:.3f}/view over {votes.cross_over[group]}"
    if rule == "poe":
        return cross
    if rule == "poe_cells":
        return f"xv {votes.cross_cell_logprob[group]:.4f}/cell"
    return f"{votes.poe_count[group]:.3f} = ln {count} + {cross}"


def grid_html(grid: np.ndarray | None, label: str = "", correct: bool | None = None) -> str:
    """One grid as a ``<figure>`` of coloured cells, captioned with its label and size.

    Args:
        grid: uint8 [h, w] of colours 0-9; None draws a placeholder (missing or invalid grid).
        label: caption text (escaped here).
        correct: True or False to mark the grid right or wrong; None leaves it unmarked.
    """
    mark = {None: "", True: " ok", False: " bad"}[correct]
    verdict = {None: "", True: ' <b class="v ok">✓</b>', False: ' <b class="v bad">✗</b>'}[correct]
    caption = escape(label)
    if grid is None:
        return (
            f'<figure class="grid missing{mark}">no grid'
            f"<figcaption>{caption}{verdict}</figcaption></figure>"
        )
    h, w = grid.shape
    cells = "".join(map(_CELLS.__getitem__, grid.reshape(-1).tolist()))
    return (
        f'<figure class="grid{mark}"><div class="cells" style="--w:{w}">{cells}</div>'
        f'<figcaption>{caption} <span class="size">{h}×{w}</span>{verdict}'
        "</figcaption></figure>"
    )


def _task(
    t: int,
    task_id: str,
    by_id: dict[str, TaskInfo],
    dataset: Dataset,
    votes: Votes,
    submission: dict | None,
    top: int,
    by_rule: dict[str, Votes],
) -> _Task:
    info = by_id.get(task_id)
    if info is None:
        raise ArcpipeError("is not in the dataset", file=dataset.path, task=task_id)
    expected = int(votes.candidates.num_tests[t])
    if info.num_test != expected:
        raise ArcpipeError(
            f"has {info.num_test} test inputs in the dataset, {expected} in the candidates",
            file=dataset.path,
            task=task_id,
        )
    pairs = dataset.task_pairs(info)
    entries = None if submission is None else _entries(submission, task_id)
    tests = []
    for i, (grid, truth) in enumerate(pairs[info.num_train :]):
        groups = [
            _Group(votes.grid(g), int(votes.count[g]), float(votes.mean_q[g]))
            for g in votes.top(t, i, top)
        ]
        if entries is None:
            attempts = [votes.grid(g) for g in votes.top(t, i, DEFAULT_ATTEMPTS)]
        else:
            attempts = _attempts(entries[i] if i < len(entries) else {}, task_id, i)
        ranked = {
            r: [(v.grid(g), rule_score(v, r, g)) for g in v.top(t, i, 2)]
            for r, v in by_rule.items()
        }
        tests.append(_Test(grid, truth, attempts, groups, ranked))
    return _Task(task_id, pairs[: info.num_train], tests)


def _entries(submission: dict, task_id: str) -> list:
    entries = submission.get(task_id, [])
    if not isinstance(entries, list):
        raise ArcpipeError("expected a list of attempt objects in the submission", task=task_id)
    return entries


def _attempts(entry: object, task_id: str, index: int) -> list[np.ndarray | None]:
    """The attempts of one submission entry in key order; None for an invalid grid."""
    if not isinstance(entry, dict):
        raise ArcpipeError(
            "expected an object of attempts in the submission", task=task_id, index=index
        )
    numbered = sorted((int(m.group(1)), key) for key in entry if (m := _ATTEMPT_KEY.fullmatch(key)))
    return [_parse_or_none(entry[key]) for _, key in numbered]


def _parse_or_none(value: object) -> np.ndarray | None:
    try:
        return parse_grid(value)
    except ArcpipeError:
        return None


def _summarise(tasks: list[_Task]) -> ReportSummary:
    known = [task for task in tasks if task.known]
    scores = {}
    for k in (1, 2):
        per_task = [np.mean([t.hits(k) for t in task.tests]) for task in known if task.tests]
        per_output = [t.hits(k) for task in known for t in task.tests]
        if per_task:
            scores[f"pass@{k}"] = float(np.mean(per_task))
            scores[f"pass@{k}_outputs"] = float(np.mean(per_output))
    return ReportSummary(
        tasks=len(tasks),
        solved=sum(task.status == "solved" for task in tasks),
        test_inputs=sum(len(task.tests) for task in tasks),
        solved_inputs=sum(
            t.truth is not None and t.hits(len(t.attempts)) for task in tasks for t in task.tests
        ),
        unknown=len(tasks) - len(known),
        scores=scores,
    )


def _summary_html(summary: ReportSummary, candidates: Candidates, rule: str, source: str) -> str:
    """The row of headline numbers at the top of the page."""
    known = summary.tasks - summary.unknown
    stats = [
        (f'<span id="task-count">{summary.tasks}</span>', "tasks"),
        (str(summary.test_inputs), "test inputs"),
        (f"{summary.solved} / {known}", "solved tasks (truth known)"),
        (str(summary.solved_inputs), "solved test inputs"),
        (str(summary.unknown), "tasks with unknown truth"),
    ]
    for k in (1, 2):
        if f"pass@{k}" in summary.scores:
            stats.append((f"{summary.scores[f'pass@{k}']:.1%}", f"pass@{k} (per task)"))
            stats.append((f"{summary.scores[f'pass@{k}_outputs']:.1%}", f"pass@{k} (per output)"))
    stats += [
        (str(len(candidates)), "candidates"),
        (str(int(candidates.meta.get("malformed", 0))), "malformed views"),
        (str(candidates.cross_view_k or "none"), "grids scored across views (K)"),
        (escape(rule), "voting rule"),
        (escape(source), "attempts from"),
    ]
    items = "".join(
        f'<div class="stat"><b>{value}</b><span>{name}</span></div>' for value, name in stats
    )
    return f'<div class="summary">{items}</div>'


def _controls_html(tasks: list[_Task]) -> str:
    """Filter buttons with their counts, the sort menu, and the number of tasks shown."""
    counts = {s: sum(task.status == s for task in tasks) for s in STATUSES}
    buttons = [f'<button data-filter="all" class="on">All ({len(tasks)})</button>'] + [
        f'<button data-filter="{s}">{s.capitalize()} ({counts[s]})</button>' for s in STATUSES
    ]
    return (
        f'<nav class="controls">{"".join(buttons)}'
        '<label>Sort <select id="sort"><option value="id">task id</option>'
        '<option value="votes">top vote count</option>'
        '<option value="margin">vote margin (closest first)</option></select></label>'
        f'<span class="shown">showing <span id="shown">{len(tasks)}</span> tasks</span></nav>'
    )


def _task_html(task: _Task) -> str:
    """One task's section: header, train pairs, then each test input."""
    status = task.status
    name = escape(task.id)
    header = (
        f'<header><h2>{name}</h2><span class="badge {status}">{status}</span>'
        f'<span class="info">{_count(len(task.train), "train pair")} · '
        f"{_count(len(task.tests), 'test input')} · "
        f"top votes {task.top_votes} · margin {task.margin}</span></header>"
    )
    train = "".join(
        f'<div class="pair">{grid_html(i, "input")}<span class="arrow">→</span>'
        f"{grid_html(o, 'output')}</div>"
        for i, o in task.train
    )
    tests = "".join(_test_html(i, test) for i, test in enumerate(task.tests))
    return (
        f'<section class="task" id="task-{name}" data-id="{name}" data-status="{status}" '
        f'data-votes="{task.top_votes}" data-margin="{task.margin}">{header}'
        f'<h3>Train</h3><div class="row">{train}</div>{tests}</section>'
    )


def _test_html(index: int, test: _Test) -> str:
    """One test input: input, attempts, truth, then the top vote groups."""
    known = test.truth is not None
    attempts = (
        "".join(
            grid_html(a, f"attempt {k}", _same(a, test.truth) if known else None)
            for k, a in enumerate(test.attempts, 1)
        )
        or '<span class="empty">no attempts</span>'
    )
    truth = grid_html(test.truth, "truth") if known else '<span class="empty">truth unknown</span>'
    groups = (
        "".join(
            grid_html(
                g.grid,
                f"#{rank} · {_count(g.count, 'vote')} · q {g.mean_q:.3f}",
                _same(g.grid, test.truth) if known else None,
            )
            for rank, g in enumerate(test.groups, 1)
        )
        or '<span class="empty">no candidates</span>'
    )
    return (
        f'<div class="test"><h3>Test {index + 1}</h3><div class="row">'
        f'{grid_html(test.input, "input")}<span class="arrow">→</span>'
        f'<div class="row">{attempts}</div>{truth}</div>'
        f'<h3>Votes</h3><div class="row">{groups}</div>{_rules_html(test)}</div>'
    )


def _rules_html(test: _Test) -> str:
    """Each rule's top two (lettered grids, with their scores), then each distinct grid once."""
    if not test.by_rule:
        return ""
    letters: dict[bytes, tuple[str, np.ndarray]] = {}
    known = test.truth is not None
    rows = []
    for rule, top in test.by_rule.items():
        cells = []
        for grid, score in top:
            key = bytes(grid.shape) + grid.tobytes()
            if key not in letters:
                letters[key] = (_letter(len(letters)), grid)
            letter = letters[key][0]
            mark = "" if not known else (" ok" if _same(grid, test.truth) else " bad")
            cells.append(f'<td><span class="ref{mark}">{letter}</span> {escape(score)}</td>')
        cells += ["<td>-</td>"] * (2 - len(cells))
        rows.append(f"<tr><th>{escape(rule)}</th>{''.join(cells)}</tr>")
    figures = "".join(
        grid_html(grid, letter, _same(grid, test.truth) if known else None)
        for letter, grid in letters.values()
    )
    return (
        '<h3>By rule</h3><table class="rules"><tr><th>rule</th><th>1st</th><th>2nd</th></tr>'
        f'{"".join(rows)}</table><div class="row">{figures}</div>'
    )


def _letter(i: int) -> str:
    """A, B, ..., Z, AA, AB, ..."""
    return (_letter(i // 26 - 1) if i >= 26 else "") + chr(ord("A") + i % 26)


def _page_html(title: str, summary: str, tasks: list[_Task]) -> str:
    sections = "".join(map(_task_html, tasks)) or '<p class="empty">no tasks</p>'
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>{summary}{_controls_html(tasks)}"
        f'<main id="tasks">{sections}</main><script>{JS}</script></body></html>\n'
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return a is not None and b is not None and a.shape == b.shape and bool((a == b).all())
