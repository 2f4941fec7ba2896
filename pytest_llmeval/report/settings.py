"""The report and gate options, parsed and checked once at start-up (a typo stops the session).

As pytest-benchmark does with ``--benchmark-compare-fail``, tolerances and gates are parsed
into objects before any model runs, so a bad value costs seconds, not a whole eval suite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.gates import Gate
from pytest_llmeval.options import _value, option_value
from pytest_llmeval.report.baseline import BaselineStore, check_name
from pytest_llmeval.report.compare import Tolerance, parse_tolerances


@dataclass(frozen=True)
class ReportSettings:
    fail_under: tuple[Gate, ...]
    baseline_dir: Path
    save_baseline: str | None
    compare: str | None
    compare_path: Path | None  # the resolved baseline file compared with
    tolerances: dict[str, Tolerance]
    significance: float
    update_baseline: bool
    write_html: bool

    @classmethod
    def from_config(cls, config: pytest.Config) -> ReportSettings:
        try:
            return cls._parse(config)
        except ConfigError as exc:
            raise pytest.UsageError(f"pytest-llmeval: {exc}") from None

    @classmethod
    def _parse(cls, config: pytest.Config) -> ReportSettings:
        gates = []
        fail_under = option_value(config, "fail-under")
        for text in _split(fail_under.value):
            try:
                gates.append(Gate.fail_under(text))
            except ConfigError as exc:
                raise fail_under.error(exc.message) from None
        directory = option_value(config, "baseline-dir").folder("of saved baselines")
        save = _value(config, "save-baseline") or None
        if save is not None:
            check_name(str(save), "--llmeval-save-baseline")
        compare = _value(config, "compare") or None
        update = bool(_value(config, "update-baseline"))
        if update and not (compare or save):
            raise ConfigError("needs --llmeval-compare NAME (or --llmeval-save-baseline NAME) to say which "
                              "baseline to rewrite", field="--llmeval-update-baseline")
        compare_path = None
        if compare:
            try:
                compare_path = BaselineStore(directory).resolve(str(compare))
            except ConfigError:
                if not update:  # an update may create the baseline it was asked to compare with
                    raise
                check_name(str(compare), "--llmeval-compare")
        compare_fail = option_value(config, "compare-fail")
        try:
            tolerances = parse_tolerances(_split(compare_fail.value))
        except ConfigError as exc:
            raise compare_fail.error(exc.message) from None
        significance = option_value(config, "significance")
        raw_level = significance.value
        try:
            level = float(raw_level)
        except (TypeError, ValueError):
            level = math.nan
        if not 0.0 < level < 1.0:
            raise significance.error(f"{raw_level!r} is not a level between 0 and 1 (such as 0.05)")
        return cls(tuple(gates), directory, str(save) if save else None, str(compare) if compare else None,
                   compare_path, tolerances, level, update, not bool(_value(config, "no-report")))


def _split(value: object) -> list[str]:
    if value in (None, ""):
        return []
    return [part.strip() for part in str(value).split(",") if part.strip()]
