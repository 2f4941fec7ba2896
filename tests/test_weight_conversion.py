"""A cold machine's one-time GGUF conversion: done in view at session start, once for all workers."""

from __future__ import annotations

import pytest

from pytest_llmeval.clients.factory import gguf_weights
from pytest_llmeval.registry import Registry

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]
BUNDLED = "local/smollm2-135m-instruct"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

USER_TEST = '''
def test_one_token(llm):
    assert llm.complete("The capital of France is", max_tokens=1).completions[0].text.strip()
'''


def test_only_local_gguf_deployments_have_weights_to_convert() -> None:
    registry = Registry.load()
    source = gguf_weights(registry.deployment(BUNDLED))
    assert source is not None and source.gguf_file == GGUF and source.gguf_path is not None
    assert source.gguf_path.is_file()  # the package: name is resolved to the installed folder
    served = [name for name, d in registry.deployments.items() if "OpenAI" in d.client_spec.class_name]
    assert served and all(gguf_weights(registry.deployment(name)) is None for name in served)


def test_a_missing_gguf_file_is_one_line_and_the_items_still_run(pytester: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_CACHE_DIR", str(pytester.path / "cold"))
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(
        "model_deployments:\n  - name: local/broken\n    model_name: local/broken\n    client_spec:\n"
        "      class_name: pytest_llmeval.clients.HuggingFaceClient\n"
        f"      args: {{pretrained_model_name_or_path: {pytester.path}, gguf_file: gone.gguf}}\n")
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest("--llmeval-models", "local/broken")
    result.assert_outcomes(passed=1)
    registry = pytester.path / "prod_env" / "model_deployments.yaml"
    result.stdout.fnmatch_lines([f"file {registry}, entry local/broken, field client_spec.args.gguf_file: "
                                 f"GGUF file {pytester.path}/gone.gguf does not exist"])


@pytest.mark.slow
@pytest.mark.parametrize("xdist", XDIST)
def test_a_cold_run_converts_once_in_view_and_a_warm_one_says_nothing(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]) -> None:
    monkeypatch.setenv("LLMEVAL_CACHE_DIR", str(pytester.path / "cold"))
    pytester.makepyfile(test_user=USER_TEST)
    cold = pytester.runpytest(*xdist, "--llmeval-models", BUNDLED)
    cold.assert_outcomes(passed=1)
    cold.stdout.fnmatch_lines([f"converting {GGUF} to safetensors, once per machine, into *{pytester.path}/cold/*",
                               f"converted {GGUF} in * s; later runs load the copy"])
    assert cold.stdout.str().count("converting ") == 1  # the workers found the copy made
    assert "Converting and de-quantizing GGUF tensors" in cold.stderr.str()  # the progress bar, uncaptured
    warm = pytester.runpytest(*xdist, "--llmeval-models", BUNDLED)
    warm.assert_outcomes(passed=1)
    said = warm.stdout.str() + warm.stderr.str()
    assert "converting " not in said and "GGUF tensors" not in said
