"""lm-eval's own files for an lm-eval entry: ``results_<date>.json`` and
``samples_<task>_<date>.jsonl`` under ``<output>/lm_eval/<model>/``, written by lm-eval's
``EvaluationTracker`` exactly as ``lm_eval --output_path ... --log_samples`` writes them, so
lm-eval's tooling and its users' scripts read them."""

from __future__ import annotations

import copy
from pathlib import Path

from pytest_llmeval.harness.outcome import HarnessOutcome

MODEL_SOURCE = "llmeval"  # the "model_source" lm-eval's files name ("hf" for lm_eval --model hf)


def write_harness_files(outcome: HarnessOutcome) -> Path:
    """Write the task's results and samples; returns their folder."""
    from lm_eval.loggers import EvaluationTracker

    tracker = EvaluationTracker(output_path=str(outcome.output_path))
    tracker.general_config_tracker.log_experiment_args(
        model_source=MODEL_SOURCE, model_args=outcome.model_args, system_instruction=outcome.system_instruction,
        chat_template=outcome.chat_template, fewshot_as_multiturn=outcome.fewshot_as_multiturn)
    results = copy.deepcopy(outcome.results)  # the tracker adds its own keys to the dict it is given
    config = results.setdefault("config", {})
    config.update(model=MODEL_SOURCE, model_args=outcome.model_args)
    tracker.save_results_aggregated(results=results, samples=outcome.samples)
    for task_name in results.get("configs", {}):
        tracker.save_results_samples(task_name=task_name, samples=outcome.samples.get(task_name, []))
    return outcome.output_path / str(tracker.general_config_tracker.model_name_sanitized)
