"""HELM's open-ended generation metrics: rouge_l, bleu_1, bleu_4 (metrics/open_ended.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from pytest_llmeval.adapters.adapter_spec import RequestState
from pytest_llmeval.metrics import MATCHERS, reference_stats
from pytest_llmeval.metrics.open_ended import bleu_1, bleu_4, rouge_l, word_tokenize
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult
from pytest_llmeval.scenarios.scenario import CORRECT_TAG, Instance, Reference

# (gold, pred, rouge_l, bleu_1, bleu_4) as crfm-helm 0.5.16 scores them: recorded by running, in a
# virtual environment with crfm-helm 0.5.16 (nltk 3.10.4, rouge-score 0.1.2) and NLTK's English
# punkt_tab installed,
#     from helm.benchmark.metrics.evaluate_reference_metrics import bleu_1, bleu_4, get_rouge_function
#     rouge_l = get_rouge_function("rougeL")
#     print([gold, pred, rouge_l(gold, pred), bleu_1(gold, pred), bleu_4(gold, pred)])
# on each pair. The tiny bleu_4 values are NLTK's unsmoothed score with no matching 4-gram.
HELM_SCORES = [
    ("The cat sat on the mat.",
     "The cat sat on the mat.",
     1.0, 1.0, 1.0),
    ("The cat sat on the mat.",
     "",
     0, 0, 0),
    ("",
     "The cat sat on the mat.",
     0, 0, 0),
    ("The cat sat on the mat.",
     "A dog ran in the park.",
     0.16666666666666666, 0.2857142857142857, 2.2250738585072626e-308),
    ("The cat sat on the mat.",
     "the cat is on a mat",
     0.6666666666666666, 0.5643211499270759, 1.8834843577582417e-308),
    ("Mr. Smith went to Washington. He arrived at 5 p.m. on Jan. 3rd.",
     "Mr. Smith travelled to Washington. He got there at 5 p.m.",
     0.6923076923076924, 0.5935873286495363, 0.08574039191604416),
    ("He said, \"I can't go.\" Then he left.",
     "He said: 'I cannot go'. Then he left!",
     0.823529411764706, 0.5714285714285714, 2.2250738585072626e-308),
    ("Running runners ran quickly through the running course.",
     "The runner runs quickly through a course.",
     0.5333333333333333, 0.4412484512922977, 1.9636207881546135e-308),
    ("The European Parliament adopted the resolution (with 350 votes in favour).",
     "The European parliament adopted a resolution with 350 votes for.",
     0.761904761904762, 0.5536730085068172, 1.6939495889106837e-308),
    ("U.S. officials said the deal, worth $2.5 billion, was signed on Monday.",
     "American officials said that the $2.5 billion deal was signed Monday.",
     0.6923076923076924, 0.6717807104613434, 1.7665365515873297e-308),
    ("Prague is the capital of the Czech Republic.",
     "Prague is the capital city of the Czech Republic and its largest city. It has 1.3 million inhabitants.",
     0.5925925925925926, 0.45, 0.11764705882352941),
    ("Yes",
     "yes",
     1.0, 0, 0),
    ("I don't know... maybe tomorrow?",
     "I do not know, maybe tomorrow.",
     0.6666666666666666, 0.625, 2.2250738585072626e-308),
    ("Der Hund bellt.",
     "The dog barks.",
     0.0, 0.25, 2.2250738585072626e-308),
    ("\u00dcber 100 Menschen \u2013 darunter Kinder \u2013 wurden verletzt.",
     "More than 100 people, including children, were injured.",
     0.13333333333333333, 0.18181818181818182, 2.2250738585072626e-308),
    ("It costs 3.50 euros per kg. That is e.g. cheap.",
     "It costs 3.50 euros per kg. That's cheap, e.g. compared to Paris.",
     0.7407407407407408, 0.7058823529411765, 0.3571428571428572),
]


@pytest.mark.parametrize(("gold", "pred", "rouge", "bleu1", "bleu4"), HELM_SCORES)
def test_scores_equal_helms(gold: str, pred: str, rouge: float, bleu1: float, bleu4: float) -> None:
    assert rouge_l(gold, pred) == pytest.approx(rouge, abs=1e-12)
    assert bleu_1(gold, pred) == pytest.approx(bleu1, abs=1e-12)
    assert bleu_4(gold, pred) == pytest.approx(bleu4, rel=1e-9, abs=0)


def test_the_metrics_are_built_in_under_helms_names() -> None:
    assert MATCHERS["rouge_l"] is rouge_l
    assert MATCHERS["bleu_1"] is bleu_1
    assert MATCHERS["bleu_4"] is bleu_4


def test_punkt_keeps_english_abbreviations_inside_the_sentence() -> None:
    # Without punkt's English parameters "Mr." would end a sentence and split into "Mr" "."
    assert word_tokenize("Mr. Smith arrived at 5 p.m. yesterday. He left.") == [
        "Mr.", "Smith", "arrived", "at", "5", "p.m.", "yesterday", ".", "He", "left", ".",
    ]


def test_word_tokenize_is_nltks_with_the_same_punkt_tab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NLTK's own word_tokenize reading punkt_tab files written from the same parameters gives the same tokens:
    the sentence splitter and the word tokenizer are put together as nltk.word_tokenize does."""
    import nltk
    import punkt

    model = punkt.load_model("english")
    folder = tmp_path / "tokenizers" / "punkt_tab" / "english"
    folder.mkdir(parents=True)
    (folder / "abbrev_types.txt").write_text("".join(f"{a}\n" for a in sorted(model.abbrev_types)))
    (folder / "sent_starters.txt").write_text("".join(f"{a}\n" for a in sorted(model.sent_starters)))
    (folder / "collocations.tab").write_text("".join(f"{a}\t{b}\n" for a, b in sorted(model.collocations)))
    (folder / "ortho_context.tab").write_text("".join(f"{a}\t{b}\n" for a, b in sorted(model.ortho_context.items())))
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    nltk.tokenize._get_punkt_tokenizer.cache_clear()  # NLTK keeps the tokenizer it loaded first
    texts = [gold for gold, *_ in HELM_SCORES] + [pred for _, pred, *_ in HELM_SCORES] + [
        "Dr. Watson met Sherlock Holmes at 221B Baker St. in London. It was 1881.",
        "The U.S. economy grew 2.5% in Q3. Analysts, e.g. at J.P. Morgan, expected less.",
        "\"Stop!\" she cried. (Nobody did.) Then -- silence.",
    ]
    try:
        for text in texts:
            assert word_tokenize(text) == nltk.word_tokenize(text), text
    finally:
        nltk.tokenize._get_punkt_tokenizer.cache_clear()


def test_no_warning_for_predictions_without_matching_ngrams() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bleu_4("The cat sat on the mat.", "A dog ran in the park.") < 1e-300
        assert bleu_1("The cat sat on the mat.", "completely different words") == 0


def test_reference_stats_take_the_best_gold() -> None:
    golds = (Reference("A cat meows.", (CORRECT_TAG,)), Reference("The dog barks.", (CORRECT_TAG,)))
    state = RequestState(
        instance=Instance("Der Hund bellt.", golds, "test"), train_trial_index=0,
        request=Request(model_deployment="x", prompt="Der Hund bellt."), num_train_instances=0,
        result=RequestResult(success=True, completions=[GeneratedOutput(text=" The dog barks.")]),
    )
    stats = {s.name.name: s.mean for s in reference_stats(state, ["rouge_l", "bleu_1", "bleu_4"], MATCHERS)}
    assert stats == {"max_prob": 1.0, "rouge_l": 1.0, "bleu_1": 1.0, "bleu_4": 1.0}
