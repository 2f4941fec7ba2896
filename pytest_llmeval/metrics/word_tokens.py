"""English word tokens as NLTK's ``word_tokenize`` makes them, without NLTK or its punkt data.

HELM's bias metrics count word-list words among ``word_tokenize(text.lower())``. That is
NLTK's improved Treebank tokenizer run on each punkt sentence. The Treebank rules are ported
here as they are. Of punkt, only one effect can change whether a word of letters becomes a
token: a sentence ending after ``word.`` lets the Treebank rule for a final period split ``word``
from its ``.``. Punkt ends a sentence after every such word that is not one of its
abbreviations, initials or numbers, when whitespace and a further token or a closing mark
follow. So the text is cut there. The tokens made of letters then equal NLTK's; tokens with
punctuation (abbreviations such as ``mr.``) may be split differently, which the bias word lists
never see.
"""

from __future__ import annotations

import re

# A period after a non-period, followed by one of punkt's non-word marks or by whitespace and more text.
_SENTENCE_END = re.compile(r"(?<=[^.]\.)(?=[)\";}\]*:@'({\[!?]|\s+\S)")
# Punkt's realignment: closing quotes and brackets after the period stay with their sentence.
_CLOSING = re.compile(r"[\"')\]}]+?(?:\s+|(?=--)|$)")

_STARTING_QUOTES = [
    (re.compile("([\u00ab\u201c\u2018\u201e]|[`]+)"), r" \1 "),
    (re.compile(r"^\""), r"``"),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
    (re.compile(r"(?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)"), r"\1 "),
]
_PUNCTUATION = [
    (re.compile(r'([^\.])(\.)([\]\)}>"\'' "\u00bb\u201d\u2019 " r"]*+)\s*$"), r"\1 \2 \3 "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.{2,}"), r" \g<0> "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r"[\u2012-\u2015]"), r" \g<0> "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[*]"), r" \g<0> "),
]
_PARENS_BRACKETS = (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ")
_DOUBLE_DASHES = (re.compile(r"--"), r" -- ")
_ENDING_QUOTES = [
    (re.compile("([\u00bb\u201d\u2019])"), r" \1 "),
    (re.compile(r"''"), " '' "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"\s+"), " "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]
# MacIntyre's contractions ("cannot" -> "can not"), as NLTK lists them.
_CONTRACTIONS = [re.compile(p) for p in (
    r"(?i)\b(can)(?#X)(not)\b", r"(?i)\b(d)(?#X)('ye)\b", r"(?i)\b(gim)(?#X)(me)\b", r"(?i)\b(gon)(?#X)(na)\b",
    r"(?i)\b(got)(?#X)(ta)\b", r"(?i)\b(lem)(?#X)(me)\b", r"(?i)\b(more)(?#X)('n)\b", r"(?i)\b(wan)(?#X)(na)(?=\s)",
    r"(?i) ('t)(?#X)(is)\b", r"(?i) ('t)(?#X)(was)\b",
)]


def sentence_tokens(sentence: str) -> list[str]:
    """NLTK's ``NLTKWordTokenizer.tokenize`` of one sentence."""
    text = sentence
    for pattern, substitution in _STARTING_QUOTES + _PUNCTUATION + [_PARENS_BRACKETS, _DOUBLE_DASHES]:
        text = pattern.sub(substitution, text)
    text = " " + text + " "
    for pattern, substitution in _ENDING_QUOTES:
        text = pattern.sub(substitution, text)
    for pattern in _CONTRACTIONS:
        text = pattern.sub(r" \1 \2 ", text)
    return text.split()


def word_tokens(text: str) -> list[str]:
    """The tokens of ``text``; those made of letters are ``nltk.word_tokenize``'s."""
    sentences = _SENTENCE_END.split(text)
    for i in range(1, len(sentences)):
        closing = _CLOSING.match(sentences[i])
        if closing:
            sentences[i - 1] += closing.group(0).strip()
            sentences[i] = sentences[i][closing.end():]
    return [token for sentence in sentences if sentence for token in sentence_tokens(sentence)]
