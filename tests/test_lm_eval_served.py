"""lm-eval entries against a real OpenAI-compatible server (``transformers serve`` with the
bundled model): raw prompts go to its completions endpoint, chats to its chat endpoint."""

from __future__ import annotations

import json

import pytest

from tests.servers import ServedModel

pytest.importorskip("lm_eval")
pytestmark = pytest.mark.slow


@pytest.fixture
def running_model(served_model: ServedModel) -> ServedModel:
    if not served_model.running:
        served_model.start()
    return served_model


def _project(pytester: pytest.Pytester, model: ServedModel) -> None:
    (pytester.path / "prod_env").mkdir()
    deployments = "model_deployments:\n" + "".join(
        f"  - name: served/{api}\n    model_name: served/{api}\n"
        f"    tokenizer_name: HuggingFaceTB/SmolLM2-135M-Instruct\n    max_sequence_length: 8192\n"
        f"    client_spec:\n      class_name: pytest_llmeval.clients.OpenAICompatibleClient\n"
        f"      args: {{base_url: '{model.base_url}', model: '{model.model}', api: {api}, timeout: 120}}\n"
        for api in ("completions", "chat"))
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(deployments, encoding="utf-8")


def _samples(pytester: pytest.Pytester) -> list[dict]:
    [path] = (pytester.path / "benchmark_output" / "lm_eval").rglob("samples_*.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_generation_through_completions_and_chat_endpoints(pytester: pytest.Pytester,
                                                           running_model: ServedModel) -> None:
    _project(pytester, running_model)
    (pytester.path / "eval_nq.yaml").write_text('entries:\n  - "lm_eval:task=nq_open,gen_kwargs=max_gen_toks=8"\n'
                                                '  - "lm_eval:task=nq_open,gen_kwargs=max_gen_toks=8,'
                                                'apply_chat_template=true"\n', encoding="utf-8")
    result = pytester.runpytest("--llmeval-models", "served/completions", "--llmeval-max-eval-instances", "2",
                                "-k", "not apply_chat_template", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert all(isinstance(s["resps"][0][0], str) for s in _samples(pytester))
    run = next((pytester.path / "benchmark_output" / "runs" / "default").glob("lm_eval:task=nq_open*"))
    [state, _] = json.loads((run / "scenario_state.json").read_text(encoding="utf-8"))["request_states"]
    assert state["result"]["raw_request"]["prompt"].startswith("Answer these questions:")

    chat = pytester.runpytest("--llmeval-models", "served/chat", "--llmeval-max-eval-instances", "2",
                              "--llmeval-output-path", "chat", "-p", "no:cacheprovider")
    chat.assert_outcomes(passed=1, failed=1)
    chat.stdout.fnmatch_lines(["*served/chat is a chat endpoint, which takes messages only: run lm-eval tasks on "
                               "it with apply_chat_template=true*"])
    run = next((pytester.path / "chat" / "runs" / "default").glob("lm_eval:task=nq_open,*apply_chat_template*"))
    [state, _] = json.loads((run / "scenario_state.json").read_text(encoding="utf-8"))["request_states"]
    system, question = state["request"]["messages"]  # lm-eval's chat: the description as the system turn
    assert (system["role"], question["role"]) == ("system", "user")
    assert system["content"].startswith("Answer these questions:") and question["content"].startswith("Q: when")


def test_a_log_likelihood_task_on_a_chat_endpoint_says_why_not(pytester: pytest.Pytester,
                                                               running_model: ServedModel) -> None:
    _project(pytester, running_model)
    (pytester.path / "eval_copa.yaml").write_text('entries:\n  - "lm_eval:task=copa"\n', encoding="utf-8")
    result = pytester.runpytest("--llmeval-models", "served/chat", "--llmeval-max-eval-instances", "2",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*served/chat is a chat endpoint: it cannot score text*"])
