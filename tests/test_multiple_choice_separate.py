"""Separate multiple choice (HELM's ``multiple_choice_separate_original``): one request per
option, each option scored by the log-probability of its own tokens."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from pytest_llmeval.adapters import ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL, RequestState, adapt
from pytest_llmeval.errors import ClientError
from pytest_llmeval.metrics.multiple_choice import option_logprob, option_tokens, predicted_index, separate_stats
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult, Token
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios import CORRECT_TAG, Instance, Reference
from pytest_llmeval.scenarios.data import DATA_DIR_ENV

DEPLOYMENT = "local/smollm2-135m-instruct"
DATA_DIR = Path(os.environ.get(DATA_DIR_ENV) or Path(__file__).resolve().parents[2] / "shared" / "data")
HAS_MMLU = (DATA_DIR / "mmlu" / "test" / "anatomy_test.csv").is_file()
SEPARATE = "mmlu:subject=anatomy,method=multiple_choice_separate_original"


def _instance(correct: int = 1, split: str = "test") -> Instance:
    options = ("red", "green apple", "blue")
    references = tuple(Reference(o, (CORRECT_TAG,) if i == correct else ()) for i, o in enumerate(options))
    return Instance("Which colour?", references, split, id="id3")


def _scored(instance: Instance, index: int, option_logprobs: list[float]) -> RequestState:
    """A state whose echoed tokens are the prompt's words; the option's words carry the logprobs."""
    option = instance.references[index].output
    prompt = f"{instance.input} {option}"
    words = ["Which", " colour?"] + [" " + w for w in option.split()]
    tokens = [Token(words[0], 0.0), Token(words[1], -1.0)]
    tokens += [Token(w, lp) for w, lp in zip(words[2:], option_logprobs)]
    assert "".join(t.text for t in tokens) == prompt
    state = RequestState(instance, 0, Request(model_deployment="d", prompt=prompt, max_tokens=0, echo_prompt=True),
                         0, reference_index=index, request_mode="original")
    state.result = RequestResult(success=True, completions=[GeneratedOutput(prompt, sum(t.logprob for t in tokens),
                                                                            tokens)])
    return state


# --- the adapter ----------------------------------------------------------------------------------


def test_run_spec_uses_helms_separate_adapter() -> None:
    spec = build_run_spec(Description.parse(SEPARATE), DEPLOYMENT, "m")
    adapter = spec.adapter_spec
    assert adapter.method == ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL
    assert (adapter.instructions, adapter.input_prefix, adapter.input_suffix) == ("", "", "")
    assert (adapter.output_prefix, adapter.output_suffix) == (" ", "")
    assert (adapter.max_train_instances, adapter.max_tokens, adapter.temperature) == (0, 0, 0.0)
    assert spec.metrics == ["exact_match"]
    assert spec.name == f"{SEPARATE},model=m"


def test_one_echo_request_per_option() -> None:
    spec = build_run_spec(Description.parse(SEPARATE), DEPLOYMENT, "m").adapter_spec
    states = adapt(spec, [_instance()])
    assert [s.reference_index for s in states] == [0, 1, 2]
    assert [s.request.prompt for s in states] == ["Which colour? red", "Which colour? green apple",
                                                  "Which colour? blue"]
    for state in states:
        assert state.request.echo_prompt and state.request.max_tokens == 0
        assert state.request.temperature == 0 and state.request.stop_sequences == ()
        assert state.output_mapping is None and state.request_mode == "original"
        assert state.to_json()["reference_index"] == state.reference_index
        assert state.to_json()["request_mode"] == "original"


def test_in_context_examples_carry_their_correct_option() -> None:
    spec = build_run_spec(Description.parse(SEPARATE + ",max_train_instances=1"), DEPLOYMENT, "m").adapter_spec
    train = Instance("Sky?", (Reference("grey"), Reference("blue", (CORRECT_TAG,))), "train", id="id0")
    states = adapt(spec, [train, _instance()])
    assert states[0].request.prompt == "Sky? blue\nWhich colour? red"
    assert states[0].num_train_instances == 1


@pytest.mark.skipif(not HAS_MMLU, reason="no MMLU data mirror")
def test_helms_prompt_on_real_mmlu() -> None:
    from pytest_llmeval.scenarios import DataLocator, MMLUScenario

    instances = MMLUScenario("anatomy", DataLocator(mirror=DATA_DIR, cache=None)).get_instances()
    spec = build_run_spec(Description.parse(SEPARATE + ",eval_split=test"), DEPLOYMENT, "m").adapter_spec
    states = adapt(spec, instances)
    assert len(states) == 4 * 135
    first = states[0]
    assert first.instance.id == "id19"
    assert first.request.prompt == ("A lesion causing compression of the facial nerve at the stylomastoid foramen "
                                    "will cause ipsilateral paralysis of the facial muscles.")


# --- scoring --------------------------------------------------------------------------------------


def test_option_tokens_cover_the_option_and_its_leading_space() -> None:
    tokens = [Token("Which", 0.0), Token(" colour?", -1.0), Token(" green", -2.0), Token(" apple", -3.0)]
    assert [t.text for t in option_tokens(tokens, "green apple")] == [" green", " apple"]
    # A token that straddles the boundary belongs to the option; text after it does not.
    tokens = [Token("Q:", 0.0), Token(" gre", -1.0), Token("en", -2.0), Token("<|im_end|>", -9.0)]
    assert [t.text for t in option_tokens(tokens, "green")] == [" gre", "en"]


def test_option_tokens_fall_back_to_the_end_when_text_does_not_match() -> None:
    tokens = [Token("a", 0.0), Token("\ufffd", -1.0), Token("\ufffd", -2.0)]
    assert len(option_tokens(tokens, "é")) == 1


def test_highest_logprob_per_token_wins() -> None:
    """HELM's score of an option is its log-probability per token, not its total."""
    instance = _instance(correct=1)
    # Per token, "green apple" (-1.5) beats "red" (-2.5), though its total (-3.0) is lower.
    states = [_scored(instance, 0, [-2.5]), _scored(instance, 1, [-1.0, -2.0]), _scored(instance, 2, [-4.0])]
    assert [option_logprob(s) for s in states] == [(-2.5, 1), (-3.0, 2), (-4.0, 1)]
    assert predicted_index(states) == 1
    stats = {s.name.name: s for s in separate_stats(states)}
    assert stats["exact_match"].sum == 1.0
    assert stats["predicted_index"].sum == 1
    expected = 1 / sum(math.exp(v + 1.5) for v in (-2.5, -1.5, -4.0))
    assert stats["max_prob"].sum == pytest.approx(expected)
    assert all(s.name.split == "test" for s in stats.values())


def test_correct_prediction_and_ties_share_credit() -> None:
    instance = _instance(correct=2)
    states = [_scored(instance, 0, [-1.0]), _scored(instance, 1, [-5.0, -5.0]), _scored(instance, 2, [-1.0])]
    stats = {s.name.name: s.sum for s in separate_stats(states)}
    assert stats["exact_match"] == 0.5  # two options tie at the top, one of them correct (as HELM)
    assert stats["predicted_index"] == 0  # the first of the tied options
    assert stats["max_prob"] == pytest.approx(math.exp(-1) / (2 * math.exp(-1) + math.exp(-5)))  # -5 per token
    # Order of the states does not matter.
    assert separate_stats(list(reversed(states)))[1].sum == 0.5


def test_missing_logprobs_name_the_deployment() -> None:
    state = _scored(_instance(), 0, [-1.0])
    assert state.result is not None
    state.result.completions = [GeneratedOutput("Which colour? red")]  # a text-only client
    with pytest.raises(ClientError, match="log-probabilities"):
        option_logprob(state)


# --- the real bundled model ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MMLU, reason="no MMLU data mirror")
def test_real_model_scores_equal_a_direct_transformers_computation(tmp_path: Path) -> None:
    """Three anatomy questions on SmolLM2: the prediction is the best per-token option score (HELM),
    and each sum equals log-softmax over the model's logits computed here with transformers."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from pytest_llmeval.adapters.context_window import ContextWindow
    from pytest_llmeval.clients.credentials import Credentials
    from pytest_llmeval.clients.factory import make_client
    from pytest_llmeval.clients.hf_loading import loadable_path
    from pytest_llmeval.pipeline import execute
    from pytest_llmeval.registry import Registry
    from pytest_llmeval.scenarios import DataLocator

    deployment = Registry.load(None).deployment(DEPLOYMENT)
    client = make_client(deployment, Credentials.load(tmp_path))
    spec = build_run_spec(Description.parse(SEPARATE + ",eval_split=test"), DEPLOYMENT, deployment.model_name)
    result = execute(spec, client, DataLocator(mirror=DATA_DIR, cache=None), tmp_path, "t", 3,
                     window=ContextWindow.for_deployment(deployment, client.tokenizer))  # type: ignore[attr-defined]
    assert len(result.states) == 12

    path = loadable_path(client.source)  # type: ignore[attr-defined]
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
    by_instance: dict[str, list[RequestState]] = {}
    for state in result.states:
        by_instance.setdefault(state.instance.id, []).append(state)
    correct = 0.0
    for states in by_instance.values():
        ours, direct, counts = [], [], []
        for state in states:
            assert state.reference_index is not None
            option = state.instance.references[state.reference_index].output
            context = state.request.prompt[: -len(option) - 1]  # the space goes with the option
            context_ids = tokenizer.encode(context, add_special_tokens=False)
            whole_ids = tokenizer.encode(state.request.prompt, add_special_tokens=False)
            assert whole_ids[: len(context_ids)] == context_ids
            with torch.inference_mode():
                logprobs = model(torch.tensor([whole_ids])).logits[0].float().log_softmax(-1)
            direct.append(sum(float(logprobs[i - 1, whole_ids[i]]) for i in range(len(context_ids), len(whole_ids))))
            total, count = option_logprob(state)
            assert count == len(whole_ids) - len(context_ids)
            ours.append(total)
            counts.append(count)
        assert ours == pytest.approx(direct, abs=1e-4)
        chosen = predicted_index(states)
        assert chosen == max(range(len(direct)), key=lambda i: direct[i] / counts[i])  # HELM: per token
        correct += float(states[0].instance.references[chosen].is_correct)
    exact = next(s for s in result.stats if s.name.name == "exact_match" and s.name.split == "test")
    assert exact.count == 3 and exact.sum == correct
