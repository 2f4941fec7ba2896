"""Our client as lm-eval's model gives lm-eval's own Hugging Face model's answers: the same
log-likelihood per (document, choice) within 1e-4 and the same metrics, on the bundled model,
the same documents and lm-eval's own task code for both (``benchmarks/lm_eval_parity.py``
runs 100 documents a task against the ``lm_eval`` command itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lm_eval")
pytestmark = pytest.mark.slow

TASKS = ("hellaswag", "winogrande", "piqa", "copa", "mmlu_anatomy")
DOCS = 4
TEMPLATED = ("mmlu_anatomy",)  # its few-shot split (dev) is in the mirror


def _evaluate(model: Any, locator: Any, tasks: tuple[str, ...] = TASKS, **options: Any) -> dict[str, Any]:
    from lm_eval.evaluator import simple_evaluate

    from pytest_llmeval.harness.hf_data import mirrored_datasets
    from pytest_llmeval.harness.task_index import task_manager

    manager = task_manager(())
    with mirrored_datasets(locator):
        built = list(manager.load(list(tasks))["tasks"].values())
        results = simple_evaluate(model=model, tasks=built, limit=DOCS, log_samples=True, task_manager=manager,
                                  bootstrap_iters=0, **options)
    assert results is not None
    return dict(results)


def _models() -> tuple[Any, Any, Any]:
    """Ours (the bundled model's client as lm-eval's model), lm-eval's own HFLM on the same
    weights, and the data locator."""
    from lm_eval.models.huggingface import HFLM

    from pytest_llmeval.clients import Credentials, make_client
    from pytest_llmeval.clients.hf_loading import converted_copy
    from pytest_llmeval.harness.lm import ClientLM
    from pytest_llmeval.registry import DEFAULT_MODEL, Registry
    from pytest_llmeval.scenarios.data import DataLocator

    locator = DataLocator.from_settings(None)
    if locator.mirror is None or not (locator.mirror / "hf").is_dir():
        pytest.skip("no data mirror with hf/ copies")
    client = make_client(Registry.load().deployment(DEFAULT_MODEL), Credentials())
    folder = Path(converted_copy(client.source))
    return (ClientLM(client, DEFAULT_MODEL, DEFAULT_MODEL, client.tokenizer, max_length=8192),
            HFLM(pretrained=str(folder), dtype="float32", device="cpu", batch_size=1), locator)


def _same(ours: dict[str, Any], theirs: dict[str, Any], tasks: tuple[str, ...]) -> None:
    for task in tasks:
        a, b = ours["samples"][task], theirs["samples"][task]
        assert [s["doc_id"] for s in a] == [s["doc_id"] for s in b] == list(range(DOCS))
        for mine, lm_evals in zip(a, b, strict=True):
            assert mine["arguments"] == lm_evals["arguments"]
            for (ll, greedy), (expected, expected_greedy) in zip(mine["filtered_resps"], lm_evals["filtered_resps"],
                                                                  strict=True):
                assert abs(ll - expected) < 1e-4, (task, mine["doc_id"])
                assert greedy == expected_greedy
            assert {m: mine[m] for m in mine["metrics"]} == {m: lm_evals[m] for m in lm_evals["metrics"]}
        assert ours["results"][task] == theirs["results"][task]


def test_client_lm_matches_lm_evals_hf_model() -> None:
    mine, lm_evals, locator = _models()
    _same(_evaluate(mine, locator), _evaluate(lm_evals, locator), TASKS)


def test_chat_templated_prompts_match_lm_evals_too() -> None:
    mine, lm_evals, locator = _models()
    options: dict[str, Any] = {"apply_chat_template": True, "fewshot_as_multiturn": True,
                               "system_instruction": "Pick the likelier answer.", "num_fewshot": 1}
    ours, theirs = _evaluate(mine, locator, TEMPLATED, **options), _evaluate(lm_evals, locator, TEMPLATED, **options)
    assert ours["samples"]["mmlu_anatomy"][0]["arguments"][0][0].startswith("<|im_start|>system\nPick")
    _same(ours, theirs, TEMPLATED)
