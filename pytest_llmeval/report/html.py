"""``llmeval_report.html``: one self-contained page (no server, no network, no external files).

The page is ``templates/report.html.j2`` with its ``report.css`` and ``report.js`` inlined,
rendered by Jinja2 with autoescaping on, so every text the leaderboard, charts and baseline
changes show is escaped by the template engine; this module works out what they show (the
leaderboard's grid, the charts' geometry). The instance lists and game transcripts are drawn
by the inline script from JSON embedded in the page, only when their panel opens, so a page
with thousands of instances stays quick; the script writes model text with ``textContent``
only, never as markup, and a Content-Security-Policy forbids loading anything from anywhere.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_llmeval.gates import lower_is_better
from pytest_llmeval.report.run_records import RunRecord
from pytest_llmeval.report.summary import finite, sort_records
from pytest_llmeval.templating import package_environment

if TYPE_CHECKING:
    from jinja2 import Environment

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
SHOWN_CHANGES = 500  # per list and run; the rest are counted
LABEL_WIDTH, BAR_WIDTH, ROW_HEIGHT = 300, 420, 22  # a chart's label column, its bars' full length, one bar's row
TEMPLATE = "report.html.j2"


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


@functools.cache
def _environment() -> Environment:
    """Built once per process and never changed after: compiling the template costs more than
    rendering a small report."""
    return package_environment(__package__ or "pytest_llmeval.report", {"num": _num, "ci": _ci})


_strict_json = json.JSONEncoder(allow_nan=False).encode  # json.dumps(value, allow_nan=False), one encoder


def script_json(data: Any) -> str:
    """JSON that is safe inside a script element: it cannot end the element (no closing tag, no
    HTML-significant characters at all).

    NaN and infinities become null; the walk that replaces them runs only when there is one.
    The JSON is ASCII (``\\uXXXX`` for anything else, U+2028 and U+2029 included), which keeps
    the replacements below fast on a report of many megabytes.
    """
    try:
        text = _strict_json(data)
    except ValueError:
        text = _strict_json(finite(data))
    for char, code in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(char, code)
    return text


# --- what the static parts show ----------------------------------------------------------


@dataclass
class Leaderboard:
    """One column per run label (with its main metric), one row per model; a cell is the index
    of that model's run in the sorted records, or None."""

    columns: list[tuple[str, str]]
    rows: list[tuple[str, list[int | None]]]


def leaderboard(records: list[RunRecord]) -> Leaderboard:
    labels: list[str] = []
    for record in records:
        if record.label not in labels:
            labels.append(record.label)
    cells = {(r.model, r.label): n for n, r in enumerate(records)}
    columns = [(label, next(r.main_metric for r in records if r.label == label)) for label in labels]
    rows = [(model, [cells.get((model, label)) for label in labels]) for model in sorted({r.model for r in records})]
    return Leaderboard(columns, rows)


@dataclass
class Bar:
    """One run's bar: its text (shortened for the label), where it is drawn and its whisker
    ``(left, right, middle height)`` for the 95% interval."""

    text: str
    short_text: str
    y: int
    width: float
    colour: str
    value: float | None
    whisker: tuple[float, float, float] | None


@dataclass
class Chart:
    """A horizontal bar chart of one main metric: a bar per run and model, axis from 0 to ``top``."""

    metric: str
    direction: str
    top: float
    bars: list[Bar]
    legend: list[tuple[str, str]]  # (model, colour)
    label_width: int = LABEL_WIDTH
    bar_width: int = BAR_WIDTH
    row_height: int = ROW_HEIGHT
    width: int = LABEL_WIDTH + BAR_WIDTH + 70
    height: int = field(init=False)
    axis_y: int = field(init=False)

    def __post_init__(self) -> None:
        self.height = self.row_height * len(self.bars) + 30
        self.axis_y = 10 + len(self.bars) * self.row_height + 4


def bar_charts(records: list[RunRecord]) -> list[Chart]:
    """One chart per main metric, in the order the runs first show it."""
    models = sorted({r.model for r in records})
    colour = {m: PALETTE[n % len(PALETTE)] for n, m in enumerate(models)}
    metrics: list[str] = []
    for record in records:
        if record.value is not None and record.main_metric not in metrics:
            metrics.append(record.main_metric)
    charts = []
    for metric in metrics:
        shown = [r for r in records if r.main_metric == metric and r.value is not None]
        values = [r.value for r in shown if r.value is not None]
        highs = [r.ci95[1] for r in shown if r.ci95] + values
        top = 1.0 if min(values) >= 0 and max(highs) <= 1.0 else max(max(highs), 1e-9) * 1.05

        def across(value: float, top: float = top) -> float:
            return max(0.0, min(1.0, value / top)) * BAR_WIDTH

        bars = []
        for n, record in enumerate(shown):
            y = 10 + n * ROW_HEIGHT
            text = f"{record.label} \u00b7 {record.model}"
            whisker = None
            if record.ci95:
                whisker = (LABEL_WIDTH + across(record.ci95[0]), LABEL_WIDTH + across(record.ci95[1]),
                           y + ROW_HEIGHT / 2 - 1)
            bars.append(Bar(text, text if len(text) <= 48 else text[:47] + "\u2026", y, across(record.value or 0.0),
                            colour[record.model], record.value, whisker))
        direction = "lower is better" if lower_is_better(metric) else "higher is better"
        charts.append(Chart(metric, direction, top, bars, [(m, colour[m]) for m in models]))
    return charts


def changes_overview(records: list[RunRecord]) -> list[tuple[int, RunRecord, dict[str, Any] | None]]:
    """Each compared run with its index and its main metric's comparison (None: only a note)."""
    return [(n, r, next((m for m in r.comparison.get("metrics", []) if m["metric"] == r.main_metric), None))
            for n, r in enumerate(records) if r.comparison is not None]


# --- the page --------------------------------------------------------------------------------


def report_data(records: list[RunRecord], episodes: list[dict[str, Any]]) -> str:
    """``script_json({"runs": [...], "episodes": episodes})`` (each run's scenario, main metric,
    game and instances), the same text built instance by instance: a report of many thousands
    of instances never holds all their dicts at once for the garbage collector to walk."""
    runs = ", ".join(
        f'{{"scenario": {script_json(r.scenario)}, "main_metric": {script_json(r.main_metric)}, '
        f'"game": {script_json(r.game)}, "instances": [{", ".join(script_json(i.to_json()) for i in r.instances)}]}}'
        for r in records)
    return f'{{"runs": [{runs}], "episodes": {script_json(episodes)}}}'


def render_report(summary: dict[str, Any], records: list[RunRecord], episodes: list[dict[str, Any]]) -> str:
    return "".join(report_parts(summary, records, episodes))


def report_parts(summary: dict[str, Any], records: list[RunRecord],
                 episodes: list[dict[str, Any]]) -> Iterator[str]:
    """The page in pieces, to be written one after the other: the embedded JSON is one piece,
    so a report of many megabytes is never copied into one string (nor widened to the markup's
    character width)."""
    records = sort_records(records)
    data = report_data(records, episodes)  # inert in a script element: the one text written unescaped
    return _environment().get_template(TEMPLATE).generate(
        summary=summary, totals=summary.get("totals", {}), records=records, leaderboard=leaderboard(records),
        charts=bar_charts(records), overview=changes_overview(records), has_episodes=bool(episodes), data=data,
        shown_changes=SHOWN_CHANGES)
