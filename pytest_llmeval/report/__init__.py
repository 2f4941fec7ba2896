"""Outputs: HELM-format run files, the suite summary and report, baselines and comparisons."""

from __future__ import annotations

from pytest_llmeval.report.baseline import BaselineStore
from pytest_llmeval.report.collector import ReportSession, get_report
from pytest_llmeval.report.compare import Comparison, Tolerance, compare_run
from pytest_llmeval.report.helm_output import RUN_FILES, run_dir, write_run
from pytest_llmeval.report.run_records import InstanceRecord, RunRecord
from pytest_llmeval.report.significance import mcnemar_exact_p, paired_bootstrap_p

__all__ = [
    "RUN_FILES", "BaselineStore", "Comparison", "InstanceRecord", "ReportSession", "RunRecord", "Tolerance",
    "compare_run", "get_report", "mcnemar_exact_p", "paired_bootstrap_p", "run_dir", "write_run",
]
