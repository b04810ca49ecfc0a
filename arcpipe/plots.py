"""Run curves for the HTML report: a run's ``metrics.jsonl`` drawn as inline SVG line charts.

One chart per quantity (training loss, exact accuracy, mean ACT steps, learning rate, evaluation
pass@2), every run a coloured series with a legend; plain SVG written here, so the page needs no
script library and no network to show them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from pathlib import Path

import orjson

from arcpipe.errors import ArcpipeError

# (title, record key, from evaluation records)
CURVES = (
    ("training loss (lm_loss)", "lm_loss", False),
    ("exact accuracy (training)", "exact_accuracy", False),
    ("mean ACT steps", "steps", False),
    ("learning rate", "lr", False),
    ("evaluation pass@2", "pass@2", True),
)
SERIES_COLOURS = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a")
CSS = """
.curves { background: #fff; border: 1px solid var(--line); border-radius: 10px;
  padding: 14px 18px; margin-bottom: 16px; }
.curves h2 { font-family: inherit; margin-bottom: 6px; }
.legend { display: flex; gap: 14px; flex-wrap: wrap; margin-bottom: 8px; font-size: 12px; }
.legend .key i { display: inline-block; width: 12px; height: 3px; margin-right: 5px;
  vertical-align: middle; }
.charts { display: flex; flex-wrap: wrap; gap: 14px; }
figure.chart { margin: 0; }
figure.chart svg text { font-size: 10px; fill: var(--muted); }
figure.chart .frame { fill: #fff; stroke: var(--line); }
figure.chart .tick { stroke: #888; }
""" + "".join(f".legend .k{i} {{ background: {c}; }}\n" for i, c in enumerate(SERIES_COLOURS))
WIDTH, HEIGHT = 340, 190
LEFT, RIGHT, TOP, BOTTOM = 54, 12, 12, 30  # plot margins in pixels


@dataclass(frozen=True)
class Series:
    """One run's values of one quantity."""

    name: str
    steps: list[float]
    values: list[float]


def read_metrics(run: Path) -> list[dict]:
    """The records of ``run/metrics.jsonl`` (or of the file itself).

    Raises:
        ArcpipeError: the file is missing or a line is not a JSON object.
    """
    path = run / "metrics.jsonl" if run.is_dir() else run
    try:
        lines = path.read_bytes().splitlines()
    except OSError as err:
        raise ArcpipeError(f"cannot read run metrics: {err.strerror or err}", file=path) from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or "step" not in record:
            raise ArcpipeError(f"line {number} is not a metrics record", file=path)
        records.append(record)
    return records


def run_series(name: str, records: list[dict], key: str, evaluation: bool) -> Series:
    """The (step, value) points of ``key`` in a run's training or evaluation records."""
    steps, values = [], []
    for record in records:
        source = record.get("eval") if evaluation else record
        if not isinstance(source, dict) or (not evaluation and "eval" in record):
            continue
        value = source.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            steps.append(float(record["step"]))
            values.append(float(value))
    return Series(name, steps, values)


def curves_html(runs: list[Path]) -> str:
    """A section of charts, one per quantity of :data:`CURVES`, every run a series."""
    if not runs:
        return ""
    records = [(_run_name(run), read_metrics(run)) for run in runs]
    charts = []
    for title, key, evaluation in CURVES:
        series = [run_series(name, recs, key, evaluation) for name, recs in records]
        charts.append(line_chart(title, [s for s in series if s.steps]))
    legend = "".join(
        f'<span class="key"><i class="k{i % len(SERIES_COLOURS)}"></i>{escape(name)}</span>'
        for i, (name, _) in enumerate(records)
    )
    return (
        f'<section class="curves" id="curves"><h2>Run curves</h2>'
        f'<div class="legend">{legend}</div><div class="charts">{"".join(charts)}</div></section>'
    )


def line_chart(title: str, series: list[Series]) -> str:
    """One SVG chart (a ``<figure class="chart">``) of the given series against steps."""
    head = f'<figure class="chart" data-curve="{escape(title)}"><figcaption>{escape(title)}'
    if not series:
        return f'{head}</figcaption><p class="empty">no records</p></figure>'
    xs = [x for s in series for x in s.steps]
    ys = [y for s in series for y in s.values]
    x0, x1 = _span(min(xs), max(xs))
    y0, y1 = _span(min(ys), max(ys))
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * width

    def py(y: float) -> float:
        return TOP + (1 - (y - y0) / (y1 - y0)) * height

    parts = [
        f'<rect x="{LEFT}" y="{TOP}" width="{width}" height="{height}" class="frame"/>',
        *(_tick_x(px(v), v, a) for v, a in ((x0, "start"), ((x0 + x1) / 2, "middle"), (x1, "end"))),
        *(_tick_y(py(v), v) for v in (y0, (y0 + y1) / 2, y1)),
    ]
    for i, s in enumerate(series):
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(s.steps, s.values))
        colour = _colour(i)
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.6">'
            f"<title>{escape(s.name)}</title></polyline>"
        )
        if len(s.steps) <= 40:  # sparse series (evaluations): mark each point
            parts += [
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}"/>'
                for x, y in zip(s.steps, s.values)
            ]
    svg = (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img">'
        f"{''.join(parts)}</svg>"
    )
    return f"{head} <span class=size>(x: step)</span></figcaption>{svg}</figure>"


def _span(lo: float, hi: float) -> tuple[float, float]:
    """An axis range that never has zero width."""
    if hi > lo:
        return lo, hi
    pad = abs(lo) * 0.05 or 1.0
    return lo - pad, hi + pad


def _tick_x(x: float, value: float, anchor: str) -> str:
    y = HEIGHT - BOTTOM
    return (
        f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" class="tick"/>'
        f'<text x="{x:.1f}" y="{y + 16}" text-anchor="{anchor}">{_number(value)}</text>'
    )


def _tick_y(y: float, value: float) -> str:
    return (
        f'<line x1="{LEFT - 4}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}" class="tick"/>'
        f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(value)}</text>'
    )


def _number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"  # steps
    if value != 0 and abs(value) < 1e-2:
        return f"{value:.1e}"
    return f"{value:.3g}"


def _colour(i: int) -> str:
    return SERIES_COLOURS[i % len(SERIES_COLOURS)]


def _run_name(run: Path) -> str:
    return run.name if run.is_dir() else run.parent.name
