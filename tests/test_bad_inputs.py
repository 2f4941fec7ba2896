"""A corpus of malformed user files and values: each gives one line naming file, entry and field.

Most cases call the readers directly (fast); a sample runs end to end through pytest to show
the message reaches the user as one line, with a usage-error exit code and no traceback.
Typos (unknown keys) are warnings that name the field and suggest the closest known key.
"""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.builtins import builtin_registries
from pytest_llmeval.collect import read_entries
from pytest_llmeval.errors import ConfigError, ConfigWarning
from pytest_llmeval.extensions import Registries
from pytest_llmeval.games.game_spec import read_spec_file
from pytest_llmeval.games.games_file import read_games_file
from pytest_llmeval.gates import Gate
from pytest_llmeval.registry import Registry
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios.custom import register_yaml_scenarios
from pytest_llmeval.scenarios.data import DataLocator
from tests.projects import letters_project

PEERS = next((p / "shared" / "peers" for p in Path(__file__).resolve().parents if (p / "shared" / "peers").is_dir()),
             Path("/nonexistent"))
_DEP = "model_deployments:\n  - name: my/model\n    client_spec: {class_name: 'x:Y'}\n"


@pytest.fixture
def registries() -> Registries:
    """A session's registries: what a test's files declare stays in them."""
    return builtin_registries()


def _one_line(error: BaseException, file: Path, field: str | None, entry: str | None) -> None:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text, text
    assert isinstance(error, ConfigError), text
    assert error.file == str(file), text
    assert error.field == field, text
    if entry is not None:
        assert error.entry == entry, text
    assert text.startswith(f"file {file}"), text


# --- HELM registries ----------------------------------------------------------------------------------------

REGISTRY_ERRORS = [
    # (file name, content, selected deployment or None, field, entry)
    ("model_deployments.yaml", "model_deployments: [\n", None, None, None),
    ("model_deployments.yaml", "model_deployments:\n  - name: a\n   client_spec: x\n", None, None, None),
    ("model_deployments.yaml", "- just a list\n", None, None, None),
    ("model_deployments.yaml", "deployments: []\n", None, "model_deployments", None),
    ("model_deployments.yaml", "model_deployments: {name: a}\n", None, "model_deployments", None),
    ("model_deployments.yaml", "model_deployments:\n  - client_spec: {class_name: x}\n", None, "name", "#0"),
    ("model_deployments.yaml", "model_deployments:\n  - name: ''\n    client_spec: {class_name: x}\n", None,
     "name", "#0"),
    ("model_deployments.yaml", "model_deployments:\n  - name: 42\n    client_spec: {class_name: x}\n", None,
     "name", "#0"),
    ("model_deployments.yaml", "model_deployments:\n  - name: my/model\n", None, "client_spec", "#0 ('my/model')"),
    ("model_deployments.yaml", "model_deployments:\n  - name: my/model\n    client_spec: x.Y\n", None,
     "client_spec", "#0 ('my/model')"),
    ("model_deployments.yaml", "model_deployments:\n  - name: my/model\n    client_spec: {args: {}}\n", None,
     "client_spec.class_name", "#0 ('my/model')"),
    ("model_deployments.yaml", "model_deployments:\n  - name: my/model\n    client_spec: {class_name: x, args: 3}\n",
     None, "client_spec.args", "#0 ('my/model')"),
    ("model_deployments.yaml", _DEP + "    max_sequence_length: big\n", None, "max_sequence_length",
     "#0 ('my/model')"),
    ("model_deployments.yaml", _DEP + "    max_sequence_length: 0\n", None, "max_sequence_length", "#0 ('my/model')"),
    ("model_deployments.yaml", _DEP + "    max_sequence_length: -5\n", None, "max_sequence_length",
     "#0 ('my/model')"),
    ("model_deployments.yaml", _DEP + "    max_request_length: 1.5\n", None, "max_request_length",
     "#0 ('my/model')"),
    ("model_deployments.yaml", _DEP + "    deprecated: maybe\n", None, "deprecated", "#0 ('my/model')"),
    ("model_deployments.yaml", _DEP + "    tokenizer_name: [a]\n", None, "tokenizer_name", "#0 ('my/model')"),
    ("model_deployments.yaml", _DEP + "    window_service_spec: {args: {}}\n", None, "window_service_spec.class_name",
     "#0 ('my/model')"),
    ("model_deployments.yaml", _DEP + "    tokenizer_name: nobody/defines-this\n", None, "tokenizer_name", "my/model"),
    ("model_deployments.yaml", _DEP + "    model_name: ''\n", None, "model_name", "#0 ('my/model')"),
    ("model_deployments.yaml", "model_deployments:\n  - name: ok\n    client_spec: {class_name: x}\n  - name: b\n"
     "    client_spec: {class_name: x}\n    max_sequence_length: '2k'\n", None, "max_sequence_length", "#1 ('b')"),
    ("model_metadata.yaml", "models:\n  - display_name: X\n", None, "name", "#0"),
    ("model_metadata.yaml", "models:\n  - name: m\n    access: public\n", None, "access", "#0 ('m')"),
    ("model_metadata.yaml", "models:\n  - name: m\n    num_parameters: lots\n", None, "num_parameters", "#0 ('m')"),
    ("model_metadata.yaml", "models:\n  - name: m\n    num_parameters: -1\n", None, "num_parameters", "#0 ('m')"),
    ("model_metadata.yaml", "models:\n  - name: m\n    tags: TEXT_MODEL_TAG\n", None, "tags", "#0 ('m')"),
    ("model_metadata.yaml", "models:\n  - name: m\n    tags: [1, 2]\n", None, "tags.0", "#0 ('m')"),
    ("model_metadata.yaml", "models: 3\n", None, "models", None),
    ("model_metadata.yaml", "models:\n  - name: m\n    display_name: [x]\n", None, "display_name", "#0 ('m')"),
    ("tokenizer_configs.yaml", "tokenizer_configs:\n  - name: t\n", None, "tokenizer_spec", "#0 ('t')"),
    ("tokenizer_configs.yaml", "tokenizer_configs:\n  - tokenizer_spec: {class_name: x}\n", None, "name", "#0"),
    ("tokenizer_configs.yaml", "tokenizer_configs:\n  - name: t\n    tokenizer_spec: {class_name: ''}\n", None,
     "tokenizer_spec.class_name", "#0 ('t')"),
    ("tokenizer_configs.yaml", "tokenizer_configs:\n  - name: t\n    tokenizer_spec: {class_name: x}\n"
     "    end_of_text_token: 7\n", None, "end_of_text_token", "#0 ('t')"),
    ("tokenizer_configs.yaml", "tokenizers: []\n", None, "tokenizer_configs", None),
    # clembench model_registry.json
    ("model_registry.json", "[{\"model_name\": \"x\", ", None, None, None),
    ("model_registry.json", "{\"model_name\": \"x\"}", None, None, None),
    ("model_registry.json", json.dumps([{"backend": "openai"}]), None, "model_name", "#0"),
    ("model_registry.json", json.dumps([{"model_name": "x"}]), None, "backend", "#0 ('x')"),
    ("model_registry.json", json.dumps([{"model_name": "x", "backend": 3}]), None, "backend", "#0 ('x')"),
    ("model_registry.json", json.dumps([{"model_name": "x", "backend": "huggingface_local"}]), None,
     "huggingface_id", "#0 ('x')"),
    ("model_registry.json", json.dumps([{"model_name": "x", "backend": "openai", "context_size": "lots"}]), None,
     "context_size", "#0 ('x')"),
    ("model_registry.json", json.dumps([{"model_name": "x", "backend": "openai", "context_size": [1]}]), None,
     "context_size", "#0 ('x')"),
    ("model_registry.json", json.dumps([{"model_name": "x", "backend": "openai", "model_config": "fast"}]), None,
     "model_config", "#0 ('x')"),
    ("model_registry.json", json.dumps([{"model_name": "x", "backend": "openai", "premade_chat_template": "yes"}]),
     None, "premade_chat_template", "#0 ('x')"),
    ("model_registry.json", json.dumps([{"model_name": "x", "backend": "telepathy"}]), "x", "backend", "x"),
    # an older clembench backend that clemcore 3.7.2 no longer has (anthropic, ... run on clemcore's code)
    ("model_registry.json", json.dumps([{"model_name": "x", "backend": "huggingface_multimodal"}]),
     '{"model_name": "x"}', "backend", "x"),
]


@pytest.mark.parametrize(("name", "content", "select", "field", "entry"), REGISTRY_ERRORS)
def test_registry_file_errors(tmp_path: Path, name: str, content: str, select: str | None, field: str | None,
                              entry: str | None) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        registry = Registry.load(tmp_path)
        if select is not None:
            registry.select(select)
    _one_line(excinfo.value, tmp_path / name, field, entry)


REGISTRY_TYPOS = [
    ("model_deployments.yaml", _DEP + "    max_sequnce_length: 2048\n", "max_sequnce_length", "max_sequence_length"),
    ("model_deployments.yaml", _DEP + "    tokenizer: x\n", "tokenizer", "tokenizer_name"),
    ("model_deployments.yaml", _DEP + "    deprecatd: true\n", "deprecatd", "deprecated"),
    ("model_deployments.yaml", "model_deployments:\n  - name: my/model\n    client_spec: {class_name: x, arg: {}}\n",
     "client_spec.arg", "args"),
    ("model_metadata.yaml", "models:\n  - name: m\n    tag: [TEXT_MODEL_TAG]\n", "tag", "tags"),
    ("model_metadata.yaml", "models:\n  - name: m\n    release: 2024-01-01\n", "release", "release_date"),
    ("model_metadata.yaml", "models:\n  - name: m\n    num_params: 7\n", "num_params", "num_parameters"),
    ("tokenizer_configs.yaml", "tokenizer_configs:\n  - name: t\n    tokenizer_spec: {class_name: x}\n"
     "    end_of_text: x\n", "end_of_text", "end_of_text_token"),
    ("model_registry.json", json.dumps([{"model_name": "x", "backend": "openai", "modelid": "y"}]), "modelid",
     "model_id"),
    ("model_registry.json", json.dumps([{"model_name": "x", "backend": "openai", "contextsize": 4}]), "contextsize",
     "context_size"),
]


@pytest.mark.parametrize(("name", "content", "field", "suggestion"), REGISTRY_TYPOS)
def test_registry_typos_warn_with_the_closest_key(tmp_path: Path, name: str, content: str, field: str,
                                                  suggestion: str) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.warns(ConfigWarning) as record:
        Registry.load(tmp_path)
    (message,) = [str(w.message) for w in record if issubclass(w.category, ConfigWarning)]
    assert "\n" not in message and message.startswith(f"file {tmp_path / name}, entry #0 "), message
    assert f"field {field}: " in message and message.endswith(f"did you mean {suggestion}?"), message


def test_upstream_registries_load_as_they_are(tmp_path: Path) -> None:
    """HELM's own config folder (client_spec.deployment) and clemcore's registries (model_config)."""
    if not PEERS.is_dir():
        pytest.skip("no peer files")
    with pytest.warns(ConfigWarning) as record:
        registry = Registry.load(PEERS / "helm" / "config")
    assert len(registry.deployments) > 500
    # HELM's own files hold two mistakes HELM silently drops: `release:` for release_date, and
    # one deployment's `args` outside its client_spec. Nothing else is unknown.
    fields = {str(w.message).split(", field ")[1].split(":")[0] for w in record}
    assert fields == {"release", "args"}
    for name in ("model_registry.json", "model_registry_full_2025.json"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "model_registry.json").write_bytes((PEERS / "clemcore" / name).read_bytes())
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConfigWarning)
            assert len(Registry.load(folder).clembench) >= 18


# --- eval files -------------------------------------------------------------------------------------------

EVAL_ERRORS = [
    ("entries: [mmlu\n", None, None),
    ("entries:\n  - 'a\n", None, None),
    ("", None, None),
    ("just text\n", None, None),
    ("- mmlu:subject=anatomy\n", None, None),
    ("entrys:\n  - mmlu:subject=anatomy\n", "entries", None),
    ("entries: mmlu:subject=anatomy\n", "entries", None),
    ("entries:\n  - 42\n", "entries", "#0"),
    ("entries:\n  - {priority: 1}\n", "description", "#0"),
    ("entries:\n  - {description: ''}\n", "description", "#0"),
    ("entries:\n  - {description: [mmlu]}\n", "description", "#0"),
    ("entries:\n  - {description: 'mmlu:subject=anatomy', priority: high}\n", "priority",
     "#0 ('mmlu:subject=anatomy')"),
    ("entries:\n  - {description: 'mmlu:subject=anatomy', gates: {exact_match: 1}}\n", "gates",
     "#0 ('mmlu:subject=anatomy')"),
    ("entries:\n  - {description: 'mmlu:subject=anatomy', gates: ['exact_match is high']}\n", "gates",
     "#0 ('mmlu:subject=anatomy')"),
    ("entries:\n  - {description: 'mmlu:subject=anatomy', gates: ['exact_match@tset >= 0.2']}\n", "gates",
     "#0 ('mmlu:subject=anatomy')"),
    ("entries:\n  - {description: 'mmlu:subject=anatomy', gates: ['exact_match >= 0.2.5']}\n", "gates",
     "#0 ('mmlu:subject=anatomy')"),
    ("entries:\n  - {description: 'mmlu:subject=anatomy', expand: [0, 5]}\n", "expand",
     "#0 ('mmlu:subject=anatomy')"),
    ("entries:\n  - {description: 'mmlu:subject=anatomy', expand: {max_train_instances: 5}}\n",
     "expand.max_train_instances", "#0 ('mmlu:subject=anatomy')"),
    ("entries:\n  - {description: 'mmlu:subject=anatomy', expand: {max_train_instances: []}}\n",
     "expand.max_train_instances", "#0 ('mmlu:subject=anatomy')"),
    ("entries:\n  - {description: 'mmlu:subject=anatomy', expand: {max_train_instances: [[0]]}}\n",
     "expand.max_train_instances.0", "#0 ('mmlu:subject=anatomy')"),
    ("entries:\n  - {description: 'mmlu:subject=anatomy', groups: 3}\n", "groups", "#0 ('mmlu:subject=anatomy')"),
    ("entries:\n  - mmlu:subject=anatomy\n  - {description: 'mmlu:subject=anatomy', priority: [1]}\n", "priority",
     "#1 ('mmlu:subject=anatomy')"),
    ("entries: []\nscenarios: [quiz]\n", "scenarios", None),
]


@pytest.mark.parametrize(("text", "field", "entry"), EVAL_ERRORS)
def test_eval_file_errors(tmp_path: Path, registries: Registries, text: str, field: str | None,
                          entry: str | None) -> None:
    path = tmp_path / "eval_bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        read_entries(path, registries)
    _one_line(excinfo.value, path, field, entry)


def test_eval_file_not_utf8_or_missing(tmp_path: Path, registries: Registries) -> None:
    path = tmp_path / "eval_binary.yaml"
    path.write_bytes(b"entries:\n  - \xff\xfe\n")
    with pytest.raises(ConfigError) as excinfo:
        read_entries(path, registries)
    _one_line(excinfo.value, path, None, None)
    with pytest.raises(ConfigError) as excinfo:
        read_entries(tmp_path / "eval_gone.yaml", registries)
    _one_line(excinfo.value, tmp_path / "eval_gone.yaml", None, None)


@pytest.mark.parametrize(("text", "field", "suggestion"), [
    ("entries:\n  - {description: 'mmlu:subject=anatomy', gate: ['exact_match >= 0']}\n", "gate", "gates"),
    ("entries:\n  - {description: 'mmlu:subject=anatomy', priorty: 1}\n", "priorty", "priority"),
    ("entries:\n  - {description: 'mmlu:subject=anatomy', expnd: {max_train_instances: [0]}}\n", "expnd", "expand"),
    ("entries:\n  - mmlu:subject=anatomy\nscenario: {}\n", "scenario", "scenarios"),
])
def test_eval_file_typos_warn(tmp_path: Path, registries: Registries, text: str, field: str, suggestion: str) -> None:
    path = tmp_path / "eval_typo.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.warns(ConfigWarning, match=rf"^file {path}.*field {field}: .*did you mean {suggestion}\?$"):
        assert read_entries(path, registries)


# --- gates on the command line -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["exact_match", "exact_match >= high", "exact_match@tests >= 0.5",
                                  "exact_match@dev = 0.5", ">= 0.5", "exact match >= 0.5"])
def test_bad_gates(text: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        Gate.fail_under(text)
    assert excinfo.value.field == "gates" and "\n" not in str(excinfo.value) and repr(text) in str(excinfo.value)


def test_gate_on_a_split_the_run_has_not_says_so() -> None:
    from pytest_llmeval.metrics.stat import MetricName, Stat

    message = Gate.parse("exact_match@valid >= 0.5").check([Stat(MetricName("exact_match", "test")).add(1)])
    assert message is not None and "split 'valid'" in message and "only on: test" in message


def test_unknown_split_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"unknown split 'tset'.*did you mean test\?"):
        Gate.parse("exact_match@tset >= 0.5")


# --- games files and clemgame.json -------------------------------------------------------------------------

GAMES_ERRORS = [
    ("games: [taboo\n", None, None),
    ("nothing: here\n", "games", None),
    ("games: taboo\n", "games", None),
    ("games:\n  - 7\n", "games", "#0"),
    ("games:\n  - {experiments: [high_en]}\n", "game", "#0"),
    ("games:\n  - {game: taboo, experiments: 3}\n", "experiments", "#0 ('taboo')"),
    ("games:\n  - {game: taboo, experiments: [1]}\n", "experiments.0", "#0 ('taboo')"),
    ("games:\n  - {game: taboo, max_episodes: 0}\n", "max_episodes", "#0 ('taboo')"),
    ("games:\n  - {game: taboo, max_episodes: many}\n", "max_episodes", "#0 ('taboo')"),
    ("games:\n  - {game: taboo, max_episodes: true}\n", "max_episodes", "#0 ('taboo')"),
    ("games:\n  - {game: taboo, gates: ['played is high']}\n", "gates", "#0 ('taboo')"),
    ("games:\n  - {game: taboo, gates: ['played@tset >= 0.5']}\n", "gates", "#0 ('taboo')"),
    ("games: [taboo]\ngame_dirs: my_games\n", "game_dirs", None),
    ("games: [taboo]\ngame_dirs: [no_such_folder]\n", "game_dirs.0", None),
    ("games: [taboo]\ngame_dirs: [3]\n", "game_dirs.0", None),
]


def _read_bad_file(path: Path, text: str, reader: Any, field: str | None, entry: str | None) -> None:
    """``text`` written to ``path`` and read by ``reader`` fails with one line naming file, entry and field."""
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        reader(path)
    _one_line(excinfo.value, path, field, entry)


@pytest.mark.parametrize(("text", "field", "entry"), GAMES_ERRORS)
def test_games_file_errors(tmp_path: Path, text: str, field: str | None, entry: str | None) -> None:
    _read_bad_file(tmp_path / "games.yaml", text, read_games_file, field, entry)


def test_games_file_typo_warns(tmp_path: Path) -> None:
    path = tmp_path / "games.yaml"
    path.write_text("games:\n  - {game: taboo, experiment: [high_en], max_episode: 2}\n", encoding="utf-8")
    with pytest.warns(ConfigWarning) as record:
        read_games_file(path)
    messages = sorted(str(w.message) for w in record)
    assert [m.rsplit(": ", 1)[-1] for m in messages] == ["did you mean experiments?", "did you mean max_episodes?"]
    assert all(m.startswith(f"file {path}, entry #0 ('taboo'), field ") for m in messages)


CLEMGAME_ERRORS = [
    ("{\"game_name\": ", None, None),
    ("[1]", None, "#0"),
    (json.dumps({"master": "M"}), "game_name", "#0"),
    (json.dumps({"game_name": "", "master": "M"}), "game_name", "#0"),
    (json.dumps({"game_name": "g"}), "master", "#0 ('g')"),
    (json.dumps({"game_name": "g", "master": 3}), "master", "#0 ('g')"),
    (json.dumps({"game_name": "g", "master": "M", "players": "three"}), "players", "#0 ('g')"),
    (json.dumps({"game_name": "g", "master": "M", "players": 0}), "players", "#0 ('g')"),
    (json.dumps({"game_name": "g", "master": "M", "max_tokens": 0}), "max_tokens", "#0 ('g')"),
    (json.dumps({"game_name": "g", "master": "M", "max_requests": "ten"}), "max_requests", "#0 ('g')"),
    (json.dumps({"game_name": "g", "master": "M", "scorer": ["S"]}), "scorer", "#0 ('g')"),
    (json.dumps([{"game_name": "a", "master": "M"}, {"game_name": "b", "master": "M", "instances": 1}]),
     "instances", "#1 ('b')"),
]


@pytest.mark.parametrize(("text", "field", "entry"), CLEMGAME_ERRORS)
def test_clemgame_errors(tmp_path: Path, text: str, field: str | None, entry: str | None) -> None:
    _read_bad_file(tmp_path / "clemgame.json", text, read_spec_file, field, entry)


def test_clembench_games_keys_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "clemgame.json"
    path.write_text(json.dumps({"game_name": "g", "master": "M", "main_game": "g", "image": "none", "roles": [],
                                "languages": ["en"], "benchmark": ["2.0"], "regression": "large"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        assert read_spec_file(path)[0].game_name == "g"


# --- custom scenario sections -------------------------------------------------------------------------------

SCENARIO_ERRORS = [
    ({"input": "q", "references": "a"}, "data"),
    ({"data": 3, "input": "q", "references": "a"}, "data"),
    ({"data": {"uri": 3}, "input": "q", "references": "a"}, "data.uri"),
    ({"data": {"uri": "x.csv", "storage_options": "anon"}, "input": "q", "references": "a"}, "data.storage_options"),
    ({"data": {"uri": "x.csv", "columns": []}, "input": "q", "references": "a"}, "data.columns"),
    ({"data": {"uri": "x.jsonl", "columns": ["a"]}, "input": "q", "references": "a"}, "data.columns"),
    ({"data": {"uri": "x.csv", "format": "excel"}, "input": "q", "references": "a"}, "data.format"),
    ({"data": "x.csv", "input": 3, "references": "a"}, "input"),
    ({"data": "x.csv", "input": "q", "references": [1]}, "references.0"),
    ({"data": "x.csv", "input": "q", "choices": [1, 2], "answer": "a"}, "choices.0"),
    ({"data": "x.csv", "input": "q", "references": "a", "split_column": ""}, "split_column"),
    ({"data": "x.csv", "input": "q", "references": "a", "temperature": -1}, "temperature"),
    ({"data": "x.csv", "input": "q", "references": "a", "max_train_instances": -1}, "max_train_instances"),
    ({"data": "x.csv", "input": "q", "references": "a", "num_outputs": 0}, "num_outputs"),
    ({"data": "x.csv", "input": "q", "references": "a", "sample_train": "yes"}, "sample_train"),
    ({"data": "x.csv", "input": "q", "references": "a", "stop": [""]}, "stop.0"),
    ({"data": "x.csv", "input": "q", "references": "a", "metrics": "bleu_9"}, "metrics"),
    ({"data": "x.csv", "input": "q", "references": "a", "main_metric": "f1"}, "main_metric"),
    ({"data": "x.csv", "input": "q", "references": "a", "tags": [1]}, "tags.0"),
    ("not a mapping", None),
]


@pytest.mark.parametrize(("definition", "field"), SCENARIO_ERRORS)
def test_custom_scenario_errors(tmp_path: Path, registries: Registries, definition: Any, field: str | None) -> None:
    eval_file = tmp_path / "eval_custom.yaml"
    with pytest.raises(ConfigError) as excinfo:
        register_yaml_scenarios(eval_file, {"bad": definition}, registries)
    _one_line(excinfo.value, eval_file, field, "scenarios.bad")


def _declare_and_read(tmp_path: Path, registries: Registries, data_name: str, content: bytes,
                      field: str = "data") -> ConfigError:
    (tmp_path / data_name).write_bytes(content)
    eval_file = tmp_path / "eval_cells.yaml"
    eval_file.write_text(f"entries: [cells]\nscenarios:\n  cells:\n    data: {data_name}\n    input: q\n"
                         "    references: a\n", encoding="utf-8")
    read_entries(eval_file, registries)
    spec = build_run_spec(Description.parse("cells"), "scripted/x", "scripted/x", registries)
    with pytest.raises(ConfigError) as excinfo:
        spec.build_scenario(DataLocator(cache=None)).get_instances()
    _one_line(excinfo.value, eval_file, field, "scenarios.cells")
    return excinfo.value


@pytest.mark.parametrize(("name", "content", "row", "column"), [
    ("cells.csv", b"q,a\nok,fine\nbad\x00cell,x\n", 2, "q"),
    ("cells.csv", b"q,a\nok,fi\x07ne\n", 1, "a"),
    ("cells.tsv", b"q\ta\nok\tx\x1by\n", 1, "a"),
    ("cells.jsonl", b'{"q": "ok", "a": "x"}\n{"q": "nul \\u0000 here", "a": "x"}\n', 2, "q"),
    ("cells.json", b'[{"q": "esc \\u001b", "a": "x"}]', 1, "q"),
    ("cells.jsonl", b'{"q": "deep", "a": {"t": "\\u0001"}}\n', 1, "a"),
])
def test_control_characters_in_cells_are_errors(tmp_path: Path, registries: Registries, name: str, content: bytes,
                                                row: int, column: str) -> None:
    error = _declare_and_read(tmp_path, registries, name, content)
    assert f"row {row} of " in error.message and f"column {column!r}" in error.message
    assert name in error.message and "control character" in error.message


@pytest.mark.parametrize(("name", "content", "text", "field"), [
    ("cells.jsonl", b'{"q": "ok", "a": "x"}\n{"q": broken}\n', "line 2 of", "data"),
    ("cells.jsonl", b'["q", "a"]\n', "not a JSON object", "data"),
    ("cells.json", b'{"q": "a"}', "JSON list", "data"),
    ("cells.csv", b"q,a\n\xff\xfe,x\n", "not UTF-8", "data"),
    ("cells.csv", b"", "empty", "data"),
    ("cells.csv", b"q,q\nx,y\n", "twice", "data"),
    ("cells.csv", b"q,a\nx,y,z\n", "more than", "data"),
    ("cells.csv", b"question,a\nx,y\n", "column 'q'", "input"),
])
def test_malformed_data_files(tmp_path: Path, registries: Registries, name: str, content: bytes, text: str,
                              field: str) -> None:
    assert text in _declare_and_read(tmp_path, registries, name, content, field).message


def test_jsonl_records_may_hold_line_separators(tmp_path: Path, registries: Registries) -> None:
    """U+2028 and U+0085 are not line ends in JSON lines: the record stays whole."""
    (tmp_path / "seps.jsonl").write_text('{"q": "one\u2028two\x85three", "a": "x"}\n', encoding="utf-8")
    eval_file = tmp_path / "eval_seps.yaml"
    eval_file.write_text("entries: [seps]\nscenarios:\n  seps: {data: seps.jsonl, input: q, references: a}\n")
    read_entries(eval_file, registries)
    spec = build_run_spec(Description.parse("seps"), "scripted/x", "scripted/x", registries)
    (instance,) = spec.build_scenario(DataLocator(cache=None)).get_instances()
    assert instance.input == "one\u2028two\x85three"


def test_scenario_typo_warns(tmp_path: Path, registries: Registries) -> None:
    eval_file = tmp_path / "eval_typo.yaml"
    with pytest.warns(ConfigWarning, match=r"field max_token: .*did you mean max_tokens\?$"):
        register_yaml_scenarios(eval_file, {"typo": {"data": "x.csv", "input": "q", "references": "a",
                                                     "max_token": 3}}, registries)


# --- end to end: the message reaches the user as one line ------------------------------------------------------

E2E = [
    ("eval_bad.yaml", "entries:\n  - {description: 'mmlu:subject=anatomy', priority: high}\n",
     "*eval_bad.yaml, entry #0 ('mmlu:subject=anatomy'), field priority: 'high' must be a whole number"),
    ("eval_bad.yaml", "entries:\n  - {description: 'mmlu:subject=anatomy', gates: ['exact_match@tset >= 1']}\n",
     "*eval_bad.yaml, entry #0 ('mmlu:subject=anatomy'), field gates: gate * unknown split 'tset'*"),
    ("eval_bad.yaml", "entries: [mmlu\n", "*eval_bad.yaml: is not valid YAML: line *"),
    ("eval_bad.yaml", "entries:\n  - 42\n", "*eval_bad.yaml, entry #0, field entries: 42 needs a *"),
    ("eval_bad.yaml", "entries: [bad]\nscenarios:\n  bad: {data: x.csv, input: 3, references: a}\n",
     "*eval_bad.yaml, entry scenarios.bad, field input:*"),
    ("games.yaml", "games: [taboo]\ngame_dirs: [missing]\n", "*games.yaml, field game_dirs.0: 'missing' is not a "
     "folder*"),
    ("games.yaml", "games:\n  - {game: taboo, max_episodes: 0}\n",
     "*games.yaml, entry #0 ('taboo'), field max_episodes: 0 must be a whole number of at least 1"),
    ("prod_env/model_deployments.yaml", "model_deployments:\n  - {name: scripted/letters, client_spec: "
     "{class_name: 'scripted_model:LetterModel'}, max_sequence_length: big}\n",
     "*model_deployments.yaml, entry #0 ('scripted/letters'), field max_sequence_length: 'big' is not a whole number"),
    ("prod_env/model_deployments.yaml", "model_deployments:\n  - {name: scripted/letters, client_spec: "
     "{class_name: 'scripted_model:LetterModel'}, tokenizer_name: nobody/tok}\n",
     "*model_deployments.yaml, entry scripted/letters, field tokenizer_name: no tokenizer config defines*"),
    ("prod_env/model_registry.json", json.dumps([{"model_name": "clem-x", "backend": "telepathy"}]),
     "*model_registry.json, entry clem-x, field backend: *backend 'telepathy'*"),
]


@pytest.mark.parametrize(("name", "content", "line"), E2E)
def test_end_to_end_one_line_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str,
                                         content: str, line: str) -> None:
    letters_project(pytester, monkeypatch)
    (pytester.path / name).write_text(content, encoding="utf-8")
    if "eval_" not in name and "games" not in name:
        (pytester.path / "eval_ok.yaml").write_text("entries: ['mmlu:subject=anatomy']\n")
    model = "clem-x" if "model_registry" in name else "scripted/letters"
    result = pytester.runpytest("--llmeval-models", model, "--collect-only", "-q", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    # Registries are read at start-up (a usage error); eval and games files when collected.
    expected = pytest.ExitCode.USAGE_ERROR if name.startswith("prod_env/") else pytest.ExitCode.INTERRUPTED
    assert result.ret == expected, output
    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    pytest.LineMatcher(output.splitlines()).fnmatch_lines([line])


def test_end_to_end_typo_warning_in_the_summary(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    letters_project(pytester, monkeypatch)
    (pytester.path / "eval_typo.yaml").write_text(textwrap.dedent("""\
        entries:
          - {description: 'mmlu:subject=anatomy', gate: ['exact_match >= 0']}
    """))
    result = pytester.runpytest("--llmeval-models", "scripted/letters", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*ConfigWarning: file *eval_typo.yaml, entry #0 ('mmlu:subject=anatomy'), "
                                 "field gate: unknown key gate is ignored: did you mean gates?"])
