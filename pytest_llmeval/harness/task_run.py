"""One lm-eval task on one model, start to end: lm-eval's ``simple_evaluate`` drives the task
(documents, prompts, few-shot examples, filters, metrics, aggregation) against
:class:`~pytest_llmeval.harness.lm.ClientLM`, and its results become one :class:`RunResult`,
from which the HELM run folder, lm-eval's own files, the report and the gates are written.

A run that fails part-way keeps what it did: answers are in the cache as each batch finishes,
and the run folder is written with the requests sent so far.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_llmeval.clients.protocol import Client
from pytest_llmeval.errors import DataNotFoundError
from pytest_llmeval.harness.hf_data import check_needed, mirrored_datasets
from pytest_llmeval.harness.lm import ClientLM, Ledger
from pytest_llmeval.harness.outcome import HarnessOutcome, HarnessTask
from pytest_llmeval.harness.results import build_result
from pytest_llmeval.harness.task_index import group_infos, task_manager_for
from pytest_llmeval.report.harness_output import write_harness_files
from pytest_llmeval.report.helm_output import run_dir, write_run
from pytest_llmeval.run_result import RunFailed, RunResult
from pytest_llmeval.runspec import RunSpec
from pytest_llmeval.scenarios.data import DataLocator

log = logging.getLogger("pytest_llmeval.run")

Progress = Callable[[int, int], None]
BOOTSTRAP_ITERS = 100000  # lm_eval's default, so stderrs match its own


def needed_splits(task: Any, settings: HarnessTask) -> list[str]:
    """The splits a run reads: the one lm-eval scores and, with examples, the few-shot one."""
    config = task.config
    scored = config.test_split or config.validation_split
    shots = config.num_fewshot or 0
    if settings.num_fewshot is not None and config.num_fewshot != 0:
        shots = settings.num_fewshot
    if not shots:
        return [s for s in (scored,) if s]
    examples = config.fewshot_split or config.training_split or config.validation_split
    return [s for s in (scored, examples) if s]


def evaluate_task(lm: ClientLM, task: Any, settings: HarnessTask, limit: int | None, manager: Any) -> dict[str, Any]:
    """lm-eval's ``simple_evaluate`` on one built task, with the entry's arguments as lm_eval's
    command line passes them."""
    from lm_eval.evaluator import simple_evaluate

    random_seed, numpy_seed, torch_seed, fewshot_seed = settings.seeds
    results = simple_evaluate(
        model=lm, tasks=[task], num_fewshot=settings.num_fewshot, limit=limit, log_samples=True,
        bootstrap_iters=BOOTSTRAP_ITERS, system_instruction=settings.system_instruction,
        apply_chat_template=settings.apply_chat_template, fewshot_as_multiturn=settings.fewshot_as_multiturn,
        gen_kwargs=settings.gen_kwargs or None, task_manager=manager, random_seed=random_seed,
        numpy_random_seed=numpy_seed, torch_random_seed=torch_seed, fewshot_random_seed=fewshot_seed,
        confirm_run_unsafe_code=settings.confirm_run_unsafe_code)
    if results is None:
        raise RuntimeError("lm-eval returned no results")
    return dict(results)


def execute_task(run_spec: RunSpec, client: Client, locator: DataLocator, output_path: Path, suite: str,
                 max_eval_instances: int | None = None, progress: Progress | None = None, *,
                 tokenizer: Any = None, max_length: int | None = None) -> RunResult:
    """Run one lm-eval task entry; ``max_eval_instances`` is lm_eval's ``--limit`` (the first N
    documents). Raises :class:`RunFailed` with the partial result when it fails part-way."""
    settings = run_spec.harness
    assert settings is not None
    started = time.perf_counter()
    spec = run_spec.adapter_spec
    ledger = Ledger()
    lm = ClientLM(client, spec.model_deployment, spec.model, tokenizer, max_length=max_length,
                  progress=progress, ledger=ledger)
    manager = task_manager_for(settings.task, settings.include_paths)
    folder = run_dir(output_path, suite, run_spec.name)
    task: Any = None
    try:
        with mirrored_datasets(locator) as missing:
            try:
                task = manager.load([settings.task])["tasks"][settings.task]
            except Exception:
                if missing:  # built on a split the data lacks: say which, not lm-eval's IndexError
                    raise DataNotFoundError(list(missing.values())[-1]) from None
                raise
            check_needed(getattr(task, "dataset", None), needed_splits(task, settings))
            raw = evaluate_task(lm, task, settings, max_eval_instances, manager)
    except Exception as exc:  # what was done is kept: the cache has the answers, the folder the requests
        partial = build_result(run_spec, task, None, ledger, folder)
        partial.seconds = time.perf_counter() - started
        write_run(partial)
        raise RunFailed(exc, partial) from exc
    samples = raw.pop("samples", {})
    outcome = HarnessOutcome(
        task=settings.task, results=raw, samples=samples, groups=group_infos(settings.groups, settings.include_paths),
        model_args=f"pretrained={spec.model_deployment}", output_path=output_path / "lm_eval",
        chat_template=lm.chat_template(settings.apply_chat_template) if settings.apply_chat_template else None,
        system_instruction=settings.system_instruction, fewshot_as_multiturn=settings.fewshot_as_multiturn)
    result = build_result(run_spec, task, outcome, ledger, folder)
    result.seconds = time.perf_counter() - started
    write_run(result)
    write_harness_files(outcome)
    return result
