"""The model registry: built-in files, local overrides, schema errors, clembench JSON and selection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.errors import ConfigError, ConfigWarning
from pytest_llmeval.registry import DEFAULT_MODEL, Registry
from pytest_llmeval.registry.loader import _parse_context_size, unifies

LOCAL_DEPLOYMENTS = """\
model_deployments:
  - name: my/model
    model_name: my/model
    max_sequence_length: 2048
    client_spec:
      class_name: mymod:generate
      args: {temperature_scale: 2}
  - name: local/smollm2-135m-instruct
    model_name: HuggingFaceTB/SmolLM2-135M-Instruct
    client_spec:
      class_name: pytest_llmeval.clients.HuggingFaceClient
      args: {pretrained_model_name_or_path: /models/smol}
"""


def _prod_env(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "prod_env"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text, encoding="utf-8")
    return folder


def _load_error(tmp_path: Path, **files: str) -> ConfigError:
    folder = _prod_env(tmp_path, **files)
    with pytest.raises(ConfigError) as excinfo:
        Registry.load(folder)
    return excinfo.value


# --- built-in registry and local overrides ----------------------------------------------------------


def test_builtin_registry() -> None:
    registry = Registry.load()
    assert DEFAULT_MODEL == "local/smollm2-135m-instruct"
    deployment = registry.deployment(DEFAULT_MODEL)
    assert deployment.model_name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert deployment.client_spec.class_name == "pytest_llmeval.clients.HuggingFaceClient"
    assert deployment.max_sequence_length == 8192
    assert deployment.host_organization == "local"
    assert registry.model_metadata(deployment.model_name).tags  # metadata loaded too
    assert registry.tokenizers  # and tokenizer configs


def test_local_dir_adds_and_overrides(tmp_path: Path) -> None:
    builtin = Registry.load()
    registry = Registry.load(_prod_env(tmp_path, model_deployments__yaml=LOCAL_DEPLOYMENTS))
    added = registry.deployment("my/model")
    assert added.client_spec.class_name == "mymod:generate"
    assert added.client_spec.args == {"temperature_scale": 2}
    assert added.max_sequence_length == 2048
    assert added.source.endswith("model_deployments.yaml") and "prod_env" in added.source
    overridden = registry.deployment(DEFAULT_MODEL)
    assert overridden.client_spec.args == {"pretrained_model_name_or_path": "/models/smol"}
    assert overridden.max_sequence_length is None  # the whole entry is replaced, not merged
    # Other built-in entries are still there.
    assert set(builtin.deployments) <= set(registry.deployments)
    assert "my/model" not in builtin.deployments


def test_local_metadata_adds_tags(tmp_path: Path) -> None:
    registry = Registry.load(_prod_env(
        tmp_path, model_deployments__yaml=LOCAL_DEPLOYMENTS,
        model_metadata__yaml=("models:\n  - name: my/model\n    tags: [MY_SPECIAL_MODEL_TAG]\n"
                              "    release_date: 2024-07-18\n"),
    ))
    assert registry.select("my_special") == ["my/model"]
    assert registry.model_metadata("my/model").release_date == "2024-07-18"  # a date in YAML, kept as text
    unknown = registry.model_metadata("nobody/knows")
    assert (unknown.name, unknown.display_name) == ("nobody/knows", "nobody/knows")


def test_missing_local_dir_is_builtin_only(tmp_path: Path) -> None:
    assert Registry.load(tmp_path / "absent").deployments.keys() == Registry.load().deployments.keys()


# --- errors -------------------------------------------------------------------------------------------


def test_wrong_type(tmp_path: Path) -> None:
    error = _load_error(tmp_path, model_deployments__yaml=(
        "model_deployments:\n  - name: my/model\n    max_sequence_length: big\n"
        "    client_spec: {class_name: x}\n"))
    text = str(error)
    assert str(tmp_path / "prod_env" / "model_deployments.yaml") in text
    assert "#0 ('my/model')" in text
    assert "max_sequence_length" in text and "'big'" in text
    assert (error.entry, error.field) == ("#0 ('my/model')", "max_sequence_length")


def test_missing_field(tmp_path: Path) -> None:
    error = _load_error(tmp_path, model_deployments__yaml=(
        "model_deployments:\n  - name: ok/model\n    client_spec: {class_name: x}\n"
        "  - name: my/model\n    model_name: my/model\n"))
    text = str(error)
    assert str(tmp_path / "prod_env" / "model_deployments.yaml") in text
    assert "#1 ('my/model')" in text
    assert "client_spec" in text and "required" in text
    assert error.field == "client_spec"


def test_nested_unknown_key_warns_with_the_closest_key(tmp_path: Path) -> None:
    folder = _prod_env(tmp_path, model_deployments__yaml=(
        "model_deployments:\n  - name: my/model\n    client_spec: {class_name: x, argz: {}}\n"))
    with pytest.warns(ConfigWarning) as record:
        Registry.load(folder)
    (warning,) = [str(w.message) for w in record]
    where = f"file {folder / 'model_deployments.yaml'}, entry #0 ('my/model'), field client_spec.argz:"
    assert warning.startswith(where)
    assert warning.endswith("did you mean args?")


def test_nested_field(tmp_path: Path) -> None:
    error = _load_error(tmp_path, model_deployments__yaml=(
        "model_deployments:\n  - name: my/model\n    client_spec: {class_name: x, args: [1]}\n"))
    assert (error.entry, error.field) == ("#0 ('my/model')", "client_spec.args")
    assert "[1] is not a mapping" in str(error)


def test_invalid_yaml(tmp_path: Path) -> None:
    error = _load_error(tmp_path, model_deployments__yaml="model_deployments:\n  - name: [unclosed\n")
    text = str(error)
    assert str(tmp_path / "prod_env" / "model_deployments.yaml") in text
    assert "not valid YAML" in text
    assert "line" in text  # the parser's position is kept


def test_invalid_json(tmp_path: Path) -> None:
    error = _load_error(tmp_path, model_registry__json='[{"model_name": "x",}]')
    assert "model_registry.json" in str(error) and "not valid JSON" in str(error)


def test_top_level_missing(tmp_path: Path) -> None:
    error = _load_error(tmp_path, tokenizer_configs__yaml="tokenizers: []\n")
    assert error.field == "tokenizer_configs"
    assert "tokenizer_configs.yaml" in str(error)


# --- clembench model_registry.json ----------------------------------------------------------------------


CLEMBENCH: list[dict[str, Any]] = [
    {"model_name": "gpt-x", "backend": "openai", "model_id": "gpt-x-2024", "context_size": "128k"},
    {"model_name": "hf-one", "backend": "huggingface_local", "huggingface_id": "org/one",
     "premade_chat_template": True, "eos_to_cull": "<\\|im_end\\|>", "model_config": {"quant": {"bits": 4}}},
    {"model_name": "hf-two", "backend": "huggingface_local", "huggingface_id": "org/two",
     "model_config": {"quant": {"bits": 8}}, "context_size": 4096},
]


def _clembench(tmp_path: Path, entries: list[dict[str, Any]] = CLEMBENCH) -> Registry:
    return Registry.load(_prod_env(tmp_path, model_registry__json=json.dumps(entries)))


def test_partial_spec_picks_first_entry_that_unifies(tmp_path: Path) -> None:
    registry = _clembench(tmp_path)
    assert registry.deployment('{"backend": "huggingface_local"}').name == "hf-one"
    assert registry.deployment('{"backend": "openai"}').name == "gpt-x"


def test_partial_spec_with_nested_dict(tmp_path: Path) -> None:
    registry = _clembench(tmp_path)
    spec = '{"backend": "huggingface_local", "model_config": {"quant": {"bits": 8}}}'
    assert registry.deployment(spec).name == "hf-two"
    assert registry.select(spec) == ["hf-two"]
    assert registry.deployment('{"model_config": {"quant": {"bits": 4}}, "backend": "huggingface_local"}').name \
        == "hf-one"


def test_partial_spec_without_match(tmp_path: Path) -> None:
    registry = _clembench(tmp_path)
    with pytest.raises(ConfigError, match="unifies"):
        registry.deployment('{"backend": "huggingface_local", "model_config": {"quant": {"bits": 2}}}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        registry.deployment('{"backend": huggingface_local}')


def test_unifies_rule() -> None:
    entry = {"a": 1, "nested": {"x": 1, "y": {"z": 2}}}
    assert unifies({}, entry)
    assert unifies({"a": 1, "other": 5}, entry)  # keys only one side has never conflict
    assert unifies({"nested": {"y": {"z": 2}}}, entry)
    assert not unifies({"a": 2}, entry)
    assert not unifies({"nested": {"y": {"z": 3}}}, entry)
    assert not unifies({"nested": 1}, entry)


def test_clembench_lookup_by_model_name(tmp_path: Path) -> None:
    registry = _clembench(tmp_path)
    openai = registry.deployment("gpt-x")
    assert openai.client_spec.class_name == "pytest_llmeval.clients.OpenAICompatibleClient"
    assert openai.client_spec.args == {"model": "gpt-x-2024", "backend": "openai"}
    assert openai.max_sequence_length == 128 * 1024
    hf = registry.deployment("hf-one")
    assert hf.client_spec.class_name == "pytest_llmeval.clients.HuggingFaceClient"
    assert hf.client_spec.args == {"pretrained_model_name_or_path": "org/one", "premade_chat_template": True,
                                   "eos_to_cull": "<\\|im_end\\|>"}
    assert registry.deployment("hf-two").max_sequence_length == 4096
    assert registry.select("gpt-x,hf-two") == ["gpt-x", "hf-two"]


def test_local_clembench_entries_come_first(tmp_path: Path) -> None:
    builtin_dir = tmp_path / "builtin"
    builtin_dir.mkdir()
    (builtin_dir / "model_registry.json").write_text(json.dumps(
        [{"model_name": "base", "backend": "huggingface_local", "huggingface_id": "org/base"}]))
    local = _prod_env(tmp_path, model_registry__json=json.dumps(
        [{"model_name": "mine", "backend": "huggingface_local", "huggingface_id": "org/mine"}]))
    registry = Registry.load(local, builtin_dir=builtin_dir)
    assert registry.deployment('{"backend": "huggingface_local"}').name == "mine"
    assert registry.deployment("base").model_name == "base"


def test_huggingface_local_needs_huggingface_id(tmp_path: Path) -> None:
    error = _load_error(tmp_path, model_registry__json=json.dumps(
        [CLEMBENCH[0], {"model_name": "hf-bad", "backend": "huggingface_local"}]))
    assert error.field == "huggingface_id"
    assert error.entry == "#1 ('hf-bad')"
    assert "model_registry.json" in str(error) and "huggingface_id" in str(error)


def test_clembench_schema_error(tmp_path: Path) -> None:
    error = _load_error(tmp_path, model_registry__json=json.dumps([{"model_name": "x"}]))
    assert (error.entry, error.field) == ("#0 ('x')", "backend")


def test_bad_context_size(tmp_path: Path) -> None:
    error = _load_error(tmp_path, model_registry__json=json.dumps(
        [{"model_name": "x", "backend": "openai", "context_size": "lots"}]))
    assert (error.entry, error.field) == ("#0 ('x')", "context_size")
    assert "'lots'" in str(error)


@pytest.mark.parametrize(("value", "size"), [(None, None), (4096, 4096), ("128k", 131072), ("8K", 8192),
                                             (" 32k ", 32768), ("2048", 2048), ("4M", 4194304), ("", None)])
def test_parse_context_size(value: Any, size: int | None) -> None:
    assert _parse_context_size(value) == size


# --- selection -------------------------------------------------------------------------------------------


def test_select_comma_list_dedupes_in_order() -> None:
    registry = Registry.load()
    assert registry.select(f"{DEFAULT_MODEL}, openai/gpt-4o-2024-08-06,{DEFAULT_MODEL}") == [
        DEFAULT_MODEL, "openai/gpt-4o-2024-08-06"]
    assert registry.select([DEFAULT_MODEL]) == [DEFAULT_MODEL]
    assert registry.select("") == []


def test_select_by_model_name() -> None:
    assert Registry.load().select("HuggingFaceTB/SmolLM2-135M-Instruct") == [DEFAULT_MODEL]


def test_select_tags() -> None:
    registry = Registry.load()
    text = registry.select("text")
    assert DEFAULT_MODEL in text and "openai/gpt-4o-2024-08-06" in text
    assert registry.select("TEXT_MODEL_TAG") == text
    assert registry.select("text_model_tag") == text
    everything = registry.select("all")
    assert set(text) <= set(everything)
    # one deployment per model (its default), not every deployment of a tagged model
    models = list(dict.fromkeys(d.model_name for d in registry.deployments.values()))
    assert everything == [registry.default_deployment(m) for m in models]
    assert "local-server/smollm2-135m-instruct" not in everything
    local = registry.select("local")
    assert DEFAULT_MODEL in local and "openai/gpt-4o-2024-08-06" not in local


def test_deprecated_models_are_left_out_of_groups(tmp_path: Path) -> None:
    registry = Registry.load(_prod_env(tmp_path, model_metadata__yaml=(
        "models:\n  - name: old/model\n    tags: [TEXT_MODEL_TAG, DEPRECATED_MODEL_TAG]\n"),
        model_deployments__yaml=(
        "model_deployments:\n  - name: old/model\n    client_spec: {class_name: x}\n")))
    assert "old/model" not in registry.select("all") and "old/model" not in registry.select("text")
    assert registry.select("old/model") == ["old/model"]  # still selectable by name


def test_huggingface_on_the_fly() -> None:
    registry = Registry.load()
    assert registry.select("huggingface/org/repo") == ["huggingface/org/repo"]
    deployment = registry.deployment("huggingface/org/repo")
    assert deployment.model_name == "org/repo"
    assert deployment.tokenizer_name == "org/repo"
    assert deployment.client_spec.class_name == "pytest_llmeval.clients.HuggingFaceClient"
    assert deployment.client_spec.args == {"pretrained_model_name_or_path": "org/repo"}


def test_local_checkpoint_folder(tmp_path: Path) -> None:
    folder = tmp_path / "my-checkpoint"
    folder.mkdir()
    registry = Registry.load()
    assert registry.select(str(folder)) == [str(folder)]
    deployment = registry.deployment(str(folder))
    assert deployment.client_spec.args == {"pretrained_model_name_or_path": str(folder.resolve())}
    assert deployment.source == "<generated>"


def test_unknown_name() -> None:
    registry = Registry.load()
    for selection in ("nope/model", f"{DEFAULT_MODEL},nope/model"):
        with pytest.raises(ConfigError) as excinfo:
            registry.select(selection)
        text = str(excinfo.value)
        assert "'nope/model'" in text
        assert DEFAULT_MODEL in text  # known names are suggested
        assert "huggingface/" in text
