"""Model selection as helm-run does it: HELM's groups, default deployments, generators, labels,
and HELM's registry files read as HELM reads them."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from pytest_llmeval.clients.factory import unbuildable_reason
from pytest_llmeval.errors import ConfigError, ConfigWarning
from pytest_llmeval.registry import ModelDeployment, ObjectSpec, Registry
from pytest_llmeval.registry.generators import generated_deployment
from pytest_llmeval.registry.selection import Pick, Selection, default_deployment, model_groups

HELM_CONFIG = next((p / "shared" / "peers" / "helm" / "config" for p in Path(__file__).resolve().parents
                    if (p / "shared" / "peers" / "helm" / "config").is_dir()), Path("/nonexistent"))
needs_helm_config = pytest.mark.skipif(not HELM_CONFIG.is_dir(), reason="HELM's registry files are not here")

METADATA = """
models:
  - {name: m/text, tags: [TEXT_MODEL_TAG, ABLATION_MODEL_TAG]}
  - {name: m/code, tags: [CODE_MODEL_TAG]}
  - {name: m/both, tags: [TEXT_MODEL_TAG, CODE_MODEL_TAG, INSTRUCTION_FOLLOWING_MODEL_TAG]}
  - {name: m/gone, tags: [TEXT_MODEL_TAG, DEPRECATED_MODEL_TAG]}
  - {name: m/never, tags: [TEXT_MODEL_TAG, UNSUPPORTED_MODEL_TAG]}
  - {name: m/lonely, tags: [TEXT_MODEL_TAG]}
"""
DEPLOYMENTS = """
model_deployments:
  - {name: d/text-a, model_name: m/text, client_spec: {class_name: pytest_llmeval.clients.OpenAICompatibleClient}}
  - {name: d/text-b, model_name: m/text, client_spec: {class_name: pytest_llmeval.clients.OpenAICompatibleClient}}
  - {name: d/text-c, model_name: m/text, deprecated: true,
     client_spec: {class_name: pytest_llmeval.clients.OpenAICompatibleClient}}
  - {name: d/code, model_name: m/code, client_spec: {class_name: helm.clients.anthropic_client.AnthropicClient}}
  - {name: d/both, model_name: m/both, client_spec: {class_name: pytest_llmeval.clients.OpenAICompatibleClient}}
  - {name: d/orphan, model_name: m/orphan, client_spec: {class_name: pytest_llmeval.clients.OpenAICompatibleClient}}
"""


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    (tmp_path / "model_metadata.yaml").write_text(METADATA)
    (tmp_path / "model_deployments.yaml").write_text(DEPLOYMENTS)
    (tmp_path / "tokenizer_configs.yaml").write_text("tokenizer_configs: []\n")
    return Registry.load(None, builtin_dir=tmp_path)


def _deployment(name: str, deprecated: bool = False) -> ModelDeployment:
    return ModelDeployment(name=name, model_name="m", client_spec=ObjectSpec("x"), deprecated=deprecated)


def test_default_deployment_is_the_last_live_one() -> None:
    assert default_deployment([_deployment("a"), _deployment("b"), _deployment("c", True)]).name == "b"  # type: ignore[union-attr]
    assert default_deployment([_deployment("a", True), _deployment("b", True)]).name == "b"  # type: ignore[union-attr]
    assert default_deployment([]) is None


def test_groups_are_model_names_in_helm_order(registry: Registry) -> None:
    groups = model_groups(registry.metadata, registry.deployments.values())
    # a model only a deployment names counts as a text model with full functionality (HELM)
    assert groups["text"] == ["m/text", "m/both", "m/lonely", "m/orphan"]
    assert groups["code"] == ["m/code", "m/both"]
    assert groups["text_code"] == ["m/text", "m/both", "m/lonely", "m/orphan", "m/code"]  # text, then code
    assert groups["all"] == ["m/text", "m/code", "m/both", "m/lonely", "m/orphan"]  # not gone, not never
    assert groups["full_functionality_text"] == ["m/orphan"]
    assert groups["instruction_following"] == ["m/both"]
    assert groups["ablation_text"] == ["m/text"] and groups["ablation"] == ["m/text"]
    assert groups["summarization_zs"] == ["openai/davinci", "openai/curie", "openai/text-davinci-002",
                                          "openai/text-curie-001"]


def test_choose_a_group(registry: Registry) -> None:
    chosen = registry.choose("text", unbuildable_reason)
    assert chosen.picks == [Pick("d/text-b", "m/text", True, "m/text"), Pick("d/both", "m/both", True, "m/both"),
                            Pick("d/orphan", "m/orphan", True, "m/orphan")]
    assert chosen.skipped == {"m/lonely": "the model has no deployment"}
    code = registry.choose("CODE_MODEL_TAG", unbuildable_reason)
    assert code.deployments == ["d/both"]
    assert code.skipped == {"d/code": "the client class needs crfm-helm (pip install 'pytest-llmeval[helm]')"}
    assert registry.choose("text").deployments == ["d/text-b", "d/both", "d/orphan"]  # no reason: none is judged


def test_choose_names(registry: Registry) -> None:
    assert registry.choose("m/text").picks == [Pick("d/text-b", "m/text", True, "m/text")]
    assert registry.choose("d/text-a").picks == [Pick("d/text-a", "m/text", False, "d/text-a")]
    # the model's default deployment named by its name is still labelled with that name
    assert registry.choose("d/text-a, m/text, d/text-b").deployments == ["d/text-a", "d/text-b"]
    with pytest.raises(ConfigError) as excinfo:
        registry.choose("d/code", unbuildable_reason)
    assert (excinfo.value.entry, excinfo.value.field) == ("d/code", "client_spec.class_name")
    assert "helm.clients.anthropic_client.AnthropicClient: the client class needs crfm-helm" in str(excinfo.value)


def test_labels_stay_unique() -> None:
    # a model's name that is also another deployment's name: both fall back to deployment names
    picks = Selection([Pick("x/model", "a/model", True, "a/model"), Pick("a/model", "b/other", False, "a/model")])
    assert [p.label for p in picks.labelled().picks] == ["x/model", "a/model"]


def test_generators() -> None:
    together = generated_deployment("together/meta-llama/Llama-3-8b-chat-hf")
    assert together is not None and together.model_name == "meta-llama/Llama-3-8b-chat-hf"
    assert together.client_spec.class_name == "helm.clients.together_client.TogetherChatClient"
    assert unbuildable_reason(together) is None
    claude = generated_deployment("anthropic/claude-x")
    assert claude is not None and "crfm-helm" in str(unbuildable_reason(claude))
    assert generated_deployment("gemini/not-google") is None and generated_deployment("nosuchhost/x") is None
    registry = Registry.load()
    assert registry.select("together/qwen/qwen-9") == ["together/qwen/qwen-9"]
    assert registry.deployment("together/qwen/qwen-9").model_name == "qwen/qwen-9"


def test_helm_registry_keys_only_likely_typos_warn(tmp_path: Path) -> None:
    (tmp_path / "model_deployments.yaml").write_text("""
model_deployments:
  - name: a/b
    client_spec: {class_name: x, deployment: gpt-4o}
    max_sequnce_length: 10
    args: {pretrained_model_name_or_path: y}
    comment: HELM ignores it and so do we
""")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Registry.load(tmp_path)
    messages = sorted(str(w.message) for w in caught if issubclass(w.category, ConfigWarning))
    assert len(messages) == 2, messages
    assert messages[0].endswith("field args: unknown key args is ignored: did you mean client_spec.args?")
    assert messages[1].endswith("unknown key max_sequnce_length is ignored: did you mean max_sequence_length?")


@needs_helm_config
def test_helm_registry_loads_as_helm_reads_it() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = Registry.load(HELM_CONFIG)
    messages = [str(w.message) for w in caught if issubclass(w.category, ConfigWarning)]
    # HELM's own file has 17 `release:` (its field is release_date, so HELM drops them too) and one
    # `args` beside client_spec (huggingface/sabia-7b); nothing else is reported
    assert sum("unknown key release is ignored: did you mean release_date?" in m for m in messages) == 17
    assert sum("'huggingface/sabia-7b'), field args" in m and "client_spec.args" in m for m in messages) == 1
    assert len(messages) == 18
    assert len(registry.deployments) > 600 and len(registry.tokenizers) > 180
    deployment = registry.deployment("stanfordhealthcare_shc/gpt-4o-2024-05-13")
    assert deployment.client_spec.args == {}  # its client_spec.deployment is not a field of HELM's ObjectSpec
    assert registry.deployment("huggingface/sabia-7b").client_spec.args == {}  # as HELM reads it
    for group in ("text", "code", "all", "text_code", "instruction_following", "full_functionality_text",
                  "limited_functionality_text", "ablation_text", "summarization_zs", "opinions_qa_openai"):
        chosen = registry.choose(group, unbuildable_reason)
        assert all(unbuildable_reason(registry.deployment(p.deployment)) is None for p in chosen.picks)
        assert len({p.label for p in chosen.picks}) == len(chosen.picks)
