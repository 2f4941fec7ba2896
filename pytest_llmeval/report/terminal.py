"""The terminal summary: a compact table of runs, baseline changes, and where the files went.

It only prints; the report session (``collector.py``) computed everything, on the controller
after the xdist workers' records were merged.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llmeval.harness.groups import group_aggregates, main_value
from pytest_llmeval.report.collector import comparison_lines, get_report
from pytest_llmeval.report.run_records import RunRecord
from pytest_llmeval.report.summary import sort_records

SHOWN_CHANGES = 3


def format_table(records: list[RunRecord]) -> list[str]:
    header = ("model", "run", "metric", "value", "95% CI", "n", "requests", "cached", "seconds", "")
    body = []
    for r in records:
        ci = f"{r.ci95[0]:.3f}-{r.ci95[1]:.3f}" if r.ci95 else ""
        body.append((r.model, r.label, r.main_metric, f"{r.value:.4f}" if r.value is not None else "n/a", ci,
                     str(r.count), str(r.requests), str(r.cache_hits), f"{r.seconds:.1f}",
                     "" if r.outcome == "passed" else r.outcome.upper()))
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header, *body]]


def group_lines(records: list[RunRecord]) -> list[str]:
    """lm-eval group aggregates, as lm-eval computes them, one line per (model, group)."""
    if not any(r.lm_eval and r.lm_eval.get("groups") for r in records):
        return []
    lines = []
    for row in group_aggregates(records):
        key, value, stderr = main_value(row)
        shown = "n/a" if value is None else f"{value:.4f}" + (f" ± {stderr:.4f}" if stderr is not None else "")
        lines.append(f"lm-eval group {row['group']} on {row['model']}: {key.split(',')[0]} {shown} "
                     f"({row['tasks']} of {row['of']} tasks)")
    return lines


def gate_warnings(records: list[RunRecord], config: pytest.Config) -> list[str]:
    """Command-line gates on a metric no run computed would otherwise pass unnoticed."""
    computed = {s["name"].get("name") for r in records for s in r.stats}
    return [f"--llmeval-fail-under {gate}: no run computed {gate.metric!r}"
            for gate in get_report(config).settings.fail_under if gate.metric not in computed]


def write_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = get_report(config)
    records = sort_records(report.all_records())
    if not records:
        return
    terminalreporter.section("llmeval runs")
    for line in format_table(records):
        terminalreporter.write_line(line)
    for line in group_lines(records):
        terminalreporter.write_line(line)
    for warning in gate_warnings(records, config):
        terminalreporter.write_line(f"warning: {warning}", yellow=True)
    compared = [r for r in records if r.comparison is not None]
    if compared:
        path = report.settings.compare_path
        terminalreporter.section(f"llmeval baseline {path.stem if path else ''}".rstrip())
        for record in compared:
            for line in comparison_lines(record, limit=SHOWN_CHANGES):
                terminalreporter.write_line(line, red="REGRESSION" in line)
    outputs = report.outputs
    update = outputs.update
    if update is not None:
        terminalreporter.write_line(f"baseline rewritten: {update.path} ({len(update.written)} runs)")
        if update.dropped:
            terminalreporter.write_line(f"baseline entries no collected item produced (removed): "
                                        f"{', '.join(update.dropped)}", yellow=True)
        if update.kept:
            terminalreporter.write_line(f"baseline entries of items not run this time (kept): "
                                        f"{', '.join(update.kept)}")
    if outputs.saved_baseline is not None:
        terminalreporter.write_line(f"baseline saved: {outputs.saved_baseline}")
    dirs = sorted({str(r.output_dir).rsplit("/", 1)[0] for r in records if r.output_dir})
    if dirs:
        terminalreporter.write_line(f"HELM run files: {', '.join(dirs)}")
    if outputs.summary is not None:
        terminalreporter.write_line(f"summary: {outputs.summary}")
    if outputs.report is not None:
        terminalreporter.write_line(f"report: {outputs.report}")
    for warning in outputs.warnings:
        terminalreporter.write_line(f"warning: {warning}", yellow=True)
    for error in outputs.errors:
        terminalreporter.write_line(f"error writing the report: {error}", red=True)
