"""The HTML report: summary numbers, page structure, escaping, and a headless Chromium render."""

from __future__ import annotations

import itertools
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import orjson
import pytest
from helpers import simple_task, write_task

from arcpipe.arc.candidates import Candidates
from arcpipe.data.build import BuildOptions, build_arc_dataset
from arcpipe.data.dataset import Dataset
from arcpipe.errors import ArcpipeError
from arcpipe.report import PALETTE, write_report

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _perturb(grid: np.ndarray) -> np.ndarray:
    wrong = grid.copy()
    wrong[0, 0] = (wrong[0, 0] + 1) % 10
    return wrong


def _truths(dataset: Dataset) -> dict[str, list[np.ndarray | None]]:
    return {
        task.id: [o for _, o in dataset.task_pairs(task)[task.num_train :]]
        for task in dataset.tasks
        if task.role == "target"
    }


def _candidates(task_ids: list[str], num_tests: list[int], plan: list[tuple]) -> Candidates:
    """Candidates from ``(task index, test index, grid, copies)``: each copy is one view."""
    rows = [(t, i, g) for t, i, g, copies in plan for _ in range(copies)]
    n = len(rows)
    return Candidates.from_grids(
        task_ids,
        np.array(num_tests),
        np.array([r[0] for r in rows]),
        np.array([r[1] for r in rows]),
        np.arange(n),
        np.linspace(0.5, 0.9, n),
        np.full(n, -0.1),
        [r[2] for r in rows],
        meta={"malformed": 3},
    )


@pytest.fixture(scope="module")
def sample(sample_dataset: Path) -> tuple[Dataset, dict, Candidates]:
    """Votes built so that colour_swap is solved at top-1 and flip_lr is not solved.

    flip_lr's first test input is right at rank 2 only, its second at rank 3 (outside top-2).
    """
    dataset = Dataset.open(sample_dataset)
    truths = _truths(dataset)
    assert list(truths) == ["colour_swap", "flip_lr"]
    cs, (lr0, lr1) = truths["colour_swap"][0], truths["flip_lr"]
    plan = [
        (0, 0, cs, 3),
        (0, 0, _perturb(cs), 2),
        (1, 0, lr0.T.copy(), 4),
        (1, 0, lr0, 3),
        (1, 1, _perturb(lr1), 5),
        (1, 1, lr1[::-1].copy(), 2),
        (1, 1, lr1, 1),
    ]
    return dataset, truths, _candidates(list(truths), [1, 2], plan)


class _Page(HTMLParser):
    """Collects the task sections and every grid figure (its section, cells and caption)."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[dict] = []
        self.figures: list[dict] = []
        self.cell_classes: set[str] = set()
        self.body: dict = {}
        self._figure: dict | None = None
        self._caption = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "body":
            self.body = a
        elif tag == "section" and "task" in classes:
            self.sections.append(a)
        elif tag == "figure":
            section = self.sections[-1]["data-id"] if self.sections else None
            self._figure = {"section": section, "classes": classes, "cells": 0, "caption": ""}
        elif tag == "i" and self._figure is not None:
            self._figure["cells"] += 1
            self.cell_classes.update(classes)
        elif tag == "figcaption":
            self._caption = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "figcaption":
            self._caption = False
        elif tag == "figure" and self._figure is not None:
            self.figures.append(self._figure)
            self._figure = None

    def handle_data(self, data: str) -> None:
        if self._caption and self._figure is not None:
            self._figure["caption"] += data


def _parse(path: Path) -> tuple[str, _Page]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return text, page


def _captioned(page: _Page, section: str, label: str) -> list[dict]:
    return [f for f in page.figures if f["section"] == section and f["caption"].startswith(label)]


def test_report_from_votes(sample, tmp_path: Path) -> None:
    dataset, _, candidates = sample
    out = tmp_path / "report" / "report.html"
    summary = write_report(candidates, dataset, out, top=3, title="run <1> & co")

    assert (summary.tasks, summary.solved, summary.unknown) == (2, 1, 0)
    assert (summary.test_inputs, summary.solved_inputs) == (3, 2)
    assert summary.scores == pytest.approx(
        {"pass@1": 0.5, "pass@1_outputs": 1 / 3, "pass@2": 0.75, "pass@2_outputs": 2 / 3}
    )
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary left

    text, page = _parse(out)
    assert [(s["data-id"], s["data-status"]) for s in page.sections] == [
        ("colour_swap", "solved"),
        ("flip_lr", "unsolved"),
    ]
    assert [s["data-votes"] for s in page.sections] == ["3", "4"]  # smallest top-1 count
    assert [s["data-margin"] for s in page.sections] == ["1", "1"]  # smallest lead over #2
    assert '<span id="task-count">2</span>' in text
    assert "<title>run &lt;1&gt; &amp; co</title>" in text
    assert "http://" not in text and "https://" not in text
    assert "<link" not in text and "src=" not in text and "@import" not in text

    # palette: the CSS defines c0..c9 with the ARC colours; cells only use those classes
    for v, colour in enumerate(PALETTE):
        assert f".c{v} {{ background: {colour}; }}" in text
    assert page.cell_classes <= {f"c{v}" for v in range(10)}
    assert len(page.cell_classes) >= 5
    assert 'style="background' not in text

    # every drawn grid has h*w cells, as its caption says
    for figure in page.figures:
        h, w = map(int, re.search(r"(\d+)×(\d+)", figure["caption"]).groups())
        assert figure["cells"] == h * w
    test_input = _captioned(page, "colour_swap", "input")[-1]  # after the 4 train inputs
    assert (test_input["cells"], "8×9" in test_input["caption"]) == (72, True)

    # attempts are the top-2 votes, marked against the truth; 3 vote groups at most per input
    marks = [f["classes"][-1] for f in _captioned(page, "flip_lr", "attempt")]
    assert marks == ["bad", "ok", "bad", "bad"]
    assert len(_captioned(page, "flip_lr", "#")) == 5  # 2 groups + 3 groups
    assert len(_captioned(page, "colour_swap", "truth")) == 1


def test_report_from_submission(sample, tmp_path: Path) -> None:
    dataset, truths, candidates = sample
    cs, (lr0, lr1) = truths["colour_swap"][0], truths["flip_lr"]
    submission = {
        "colour_swap": [{"attempt_1": _perturb(cs).tolist(), "attempt_2": cs.tolist()}],
        "flip_lr": [
            {"attempt_1": lr0.tolist(), "attempt_2": [[1, 2], [3]]},  # ragged: invalid
            {"attempt_2": lr1.tolist(), "attempt_1": lr0.tolist()},  # key order does not matter
        ],
    }
    submission = orjson.loads(orjson.dumps(submission))
    out = tmp_path / "report.html"
    summary = write_report(candidates, dataset, out, submission=submission)

    assert (summary.tasks, summary.solved, summary.solved_inputs) == (2, 2, 3)
    assert summary.scores == pytest.approx(
        {"pass@1": 0.25, "pass@1_outputs": 1 / 3, "pass@2": 1.0, "pass@2_outputs": 1.0}
    )
    text, page = _parse(out)
    assert [s["data-status"] for s in page.sections] == ["solved", "solved"]
    invalid = [f for f in page.figures if "missing" in f["classes"]]
    assert [(f["section"], f["caption"].split()[:2]) for f in invalid] == [
        ("flip_lr", ["attempt", "2"])
    ]
    assert "submission" in text


def test_report_unknown_truth_and_escaping(tmp_path: Path) -> None:
    task_id = 'a<b>&"c"'
    train, target = tmp_path / "train", tmp_path / "eval"
    write_task(train, "aaa", simple_task(1))
    task = simple_task(2, n_test=2)
    del task["test"][1]["output"]
    (target / "x_challenges.json").parent.mkdir()
    (target / "x_challenges.json").write_bytes(orjson.dumps({task_id: task}))
    build_arc_dataset([train], target / "x_challenges.json", tmp_path / "data", BuildOptions(2))
    dataset = Dataset.open(tmp_path / "data")
    first = np.array(task["test"][0]["output"], dtype=np.uint8)
    candidates = _candidates([task_id], [2], [(0, 0, first, 2)])

    summary = write_report(candidates, dataset, tmp_path / "r.html")
    assert (summary.tasks, summary.solved, summary.unknown, summary.scores) == (1, 0, 1, {})
    text, page = _parse(tmp_path / "r.html")
    assert [(s["data-id"], s["data-status"]) for s in page.sections] == [(task_id, "unknown")]
    assert "a&lt;b&gt;&amp;&quot;c&quot;" in text and task_id not in text
    assert "truth unknown" in text and "no candidates" in text


def test_report_rejects_a_task_missing_from_the_dataset(sample, tmp_path: Path) -> None:
    dataset, _, _ = sample
    candidates = _candidates(["nope"], [1], [(0, 0, np.zeros((2, 2), np.uint8), 1)])
    with pytest.raises(ArcpipeError, match="not in the dataset"):
        write_report(candidates, dataset, tmp_path / "r.html")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium not installed (Debian package chromium; .ci/run installs it)")


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, timeout=60, check=True)


def _png(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the inflated image data (filtered scanlines) of a PNG file."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    chunks, pos = {}, 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunks[kind] = chunks.get(kind, b"") + data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    return width, height, zlib.decompress(chunks[b"IDAT"])


# clicks "Unsolved" and sorts by top vote count, as a reader would, after the page's own script
INTERACT = """<script>
document.querySelector('button[data-filter="unsolved"]').click();
const sort = document.getElementById("sort");
sort.value = "votes";
sort.dispatchEvent(new Event("change"));
</script></body>"""


def test_report_renders_in_headless_chromium(sample, tmp_path: Path) -> None:
    binary = _chromium()
    dataset, _, candidates = sample
    report = tmp_path / "report.html"
    write_report(candidates, dataset, report)

    shot = tmp_path / "shot.png"
    _run_chromium(
        binary,
        tmp_path / "profile1",
        f"--screenshot={shot}",
        "--window-size=1200,2000",
        report.resolve().as_uri(),
    )
    assert shot.stat().st_size > 5000
    width, height, pixels = _png(shot)
    assert (width, height) == (1200, 2000)
    channels = (len(pixels) // height - 1) // width
    assert channels in (3, 4) and len(pixels) == height * (1 + width * channels)
    assert len(set(pixels)) > 16  # not one flat colour

    clicked = tmp_path / "clicked.html"
    clicked.write_text(report.read_text(encoding="utf-8").replace("</body>", INTERACT, 1))
    dom = _run_chromium(
        binary,
        tmp_path / "profile2",
        "--dump-dom",
        "--virtual-time-budget=2000",
        clicked.resolve().as_uri(),
    ).stdout.decode()
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-tasks="2"' in body  # set by the page's script
    sections = re.findall(r'<section class="task"[^>]*>', dom)
    assert len(sections) == 2
    assert 'data-id="flip_lr"' in sections[0] and "hidden" not in sections[0]  # 4 votes first
    assert 'data-id="colour_swap"' in sections[1] and "hidden" in sections[1]  # solved: hidden
    assert '<span id="shown">1</span>' in dom


def _with_scores(candidates: Candidates, scores: list[tuple[int, int, float]]) -> Candidates:
    """(view, views, summed logprob); 40 cells per view (5x8 grids)."""
    scored = candidates.with_scores(list(zip(*[(*r, 40 * r[1]) for r in scores])))
    scored.meta = {**candidates.meta, "cross_view_k": 3}
    return scored


def _metrics_run(folder: Path) -> Path:
    """A run directory whose metrics.jsonl has 10 training records and 2 evaluations."""
    folder.mkdir()
    records = [
        {"step": s, "lm_loss": 2.0 - s / 100, "exact_accuracy": s / 200, "steps": 2.0, "lr": 1e-3}
        for s in range(10, 110, 10)
    ]
    records.insert(5, {"step": 50, "eval": {"pass@2": 0.25, "exact_accuracy": 0.1}})
    records.append({"step": 100, "eval": {"pass@2": 0.5, "exact_accuracy": 0.2}})
    (folder / "metrics.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return folder


def test_report_shows_each_rules_top_two_and_the_run_curves(sample, tmp_path: Path) -> None:
    dataset, _, candidates = sample
    # flip_lr's second test input: the truth is third by count but best across views
    scored = _with_scores(candidates, [(12, 20, -100.0), (17, 20, -80.0), (19, 20, -20.0)])
    out = tmp_path / "r.html"
    run = _metrics_run(tmp_path / "run-seed0")
    summary = write_report(scored, dataset, out, rule="poe", runs=[run])
    assert summary.solved == 2  # flip_lr too, under poe

    text, page = _parse(out)
    tables = re.findall(r'<table class="rules">(.*?)</table>', text)
    assert len(tables) == 3  # one per test input
    row = dict(re.findall(r"<tr><th>([a-z_]+)</th>(<td>.*?)</tr>", tables[2]))
    assert list(row) == ["count", "q_weighted", "consistency", "poe", "poe_cells", "poe_count"]
    assert '<span class="ref ok">C</span> xv -0.0250/cell' in row["poe_cells"]
    assert '<span class="ref bad">A</span> 5 votes' in row["count"]
    assert '<span class="ref ok">C</span> xv -1.000/view over 20' in row["poe"]
    both = '<span class="ref ok">C</span> -1.000 = ln 1 + xv -1.000/view over 20'
    assert both in row["poe_count"]
    letters = [f["caption"].split()[0] for f in page.figures if f["section"] == "flip_lr"]
    assert letters.count("C") == 1  # every distinct grid drawn once per test input

    curves = re.search(r'<section class="curves" id="curves">(.*?)</section>', text).group(1)
    charts = re.findall(r'<figure class="chart" data-curve="([^"]+)">(.*?)</figure>', curves)
    assert [title for title, _ in charts] == [
        "training loss (lm_loss)",
        "exact accuracy (training)",
        "mean ACT steps",
        "learning rate",
        "evaluation pass@2",
    ]
    for title, body in charts:
        points = re.search(r'<polyline points="([^"]+)"', body).group(1).split()
        assert len(points) == (2 if title.startswith("evaluation") else 10)
    points = re.search(r'points="([^"]+)"', charts[0][1]).group(1).split()
    loss = [tuple(map(float, p.split(","))) for p in points]
    assert all(b[0] > a[0] and b[1] > a[1] for a, b in itertools.pairwise(loss))  # y grows down
    assert "run-seed0" in curves and "http" not in text


def test_report_rejects_unreadable_run_metrics(sample, tmp_path: Path) -> None:
    dataset, _, candidates = sample
    run = _metrics_run(tmp_path / "run")
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(b"{not json\n")
    with pytest.raises(ArcpipeError, match="line 13 is not a metrics record"):
        write_report(candidates, dataset, tmp_path / "r.html", runs=[run])
    with pytest.raises(ArcpipeError, match="cannot read run metrics"):
        write_report(candidates, dataset, tmp_path / "r.html", runs=[tmp_path / "none"])
    assert not (tmp_path / "r.html").exists()


# measures what Chromium laid out: the curves' polylines and the rules tables
MEASURE = """<script>
const lines = Array.from(document.querySelectorAll("#curves polyline"));
document.body.dataset.curves = String(lines.length);
document.body.dataset.widest = String(Math.round(Math.max(...lines.map((l) => l.getBBox().width))));
const table = document.querySelector("table.rules");
document.body.dataset.rulesHeight = String(Math.round(table.getBoundingClientRect().height));
</script></body>"""


def test_report_curves_and_rules_render_in_headless_chromium(sample, tmp_path: Path) -> None:
    binary = _chromium()
    dataset, _, candidates = sample
    scored = _with_scores(candidates, [(12, 20, -100.0), (17, 20, -80.0), (19, 20, -20.0)])
    report = tmp_path / "report.html"
    write_report(scored, dataset, report, runs=[_metrics_run(tmp_path / "run")])
    shot = tmp_path / "shot.png"
    _run_chromium(
        binary,
        tmp_path / "profile1",
        f"--screenshot={shot}",
        "--window-size=1200,900",
        report.resolve().as_uri(),
    )
    width, height, pixels = _png(shot)
    assert (width, height) == (1200, 900) and len(set(pixels)) > 16

    measured = tmp_path / "measured.html"
    measured.write_text(report.read_text(encoding="utf-8").replace("</body>", MEASURE, 1))
    dom = _run_chromium(
        binary,
        tmp_path / "profile2",
        "--dump-dom",
        "--virtual-time-budget=2000",
        measured.resolve().as_uri(),
    ).stdout.decode()
    body = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', re.search(r"<body[^>]*>", dom).group(0)))
    assert body["curves"] == "5"  # one series in each of the five charts
    assert int(body["widest"]) > 200  # the steps span the plot's width (274 px)
    assert int(body["rules-height"]) > 6 * 12  # a header and six rule rows laid out
