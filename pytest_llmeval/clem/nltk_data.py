"""NLTK data that clembench's games read at play time, written from the project's own copy.

clembench's taboo runs ``nltk.download('stopwords')`` and ``stopwords.words('english')`` when
its master is imported; offline the download fails (quietly) and the lookup raises
``LookupError``, so the game cannot even be loaded. No package on PyPI ships NLTK's corpora,
so the English stop word list is kept here and written into an ``NLTK_DATA`` folder.
"""

from __future__ import annotations

from pathlib import Path

# NLTK's stopwords.words("english") as distributed in nltk_data from 2018 until the
# 2025-02-20 update (nltk_data 47111d8, which appended 19 pronoun contractions): 179 words,
# in the file's order.
ENGLISH_STOPWORDS: tuple[str, ...] = (
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "you're", "you've",
    "you'll", "you'd", "your", "yours", "yourself", "yourselves", "he", "him", "his", "himself",
    "she", "she's", "her", "hers", "herself", "it", "it's", "its", "itself", "they", "them",
    "their", "theirs", "themselves", "what", "which", "who", "whom", "this", "that", "that'll",
    "these", "those", "am", "is", "are", "was", "were", "be", "been", "being", "have", "has",
    "had", "having", "do", "does", "did", "doing", "a", "an", "the", "and", "but", "if", "or",
    "because", "as", "until", "while", "of", "at", "by", "for", "with", "about", "against",
    "between", "into", "through", "during", "before", "after", "above", "below", "to", "from",
    "up", "down", "in", "out", "on", "off", "over", "under", "again", "further", "then", "once",
    "here", "there", "when", "where", "why", "how", "all", "any", "both", "each", "few", "more",
    "most", "other", "some", "such", "no", "nor", "not", "only", "own", "same", "so", "than",
    "too", "very", "s", "t", "can", "will", "just", "don", "don't", "should", "should've", "now",
    "d", "ll", "m", "o", "re", "ve", "y", "ain", "aren", "aren't", "couldn", "couldn't", "didn",
    "didn't", "doesn", "doesn't", "hadn", "hadn't", "hasn", "hasn't", "haven", "haven't", "isn",
    "isn't", "ma", "mightn", "mightn't", "mustn", "mustn't", "needn", "needn't", "shan", "shan't",
    "shouldn", "shouldn't", "wasn", "wasn't", "weren", "weren't", "won", "won't", "wouldn",
    "wouldn't",
)

_README = """Stopwords Corpus (English only)

Written by pytest-llmeval so that clembench's games run offline. The list is NLTK's English
stop word list (nltk_data, packages/corpora/stopwords.zip, file english) as distributed from
2018 until the update of 2025-02-20, which appended 19 pronoun contractions: 179 words, one
a line, in NLTK's order. NLTK's own stopwords README names the original sources.
"""


def ensure_nltk_data(folder: str | Path) -> Path:
    """Make ``folder`` usable as ``NLTK_DATA`` for clembench's games and return it.

    Writes ``corpora/stopwords/english`` (and a README saying where the list comes from) where
    they are missing; files already there are kept, so a user's own NLTK data wins.
    """
    root = Path(folder)
    stopwords = root / "corpora" / "stopwords"
    stopwords.mkdir(parents=True, exist_ok=True)
    english = stopwords / "english"
    if not english.exists():
        english.write_text("".join(f"{word}\n" for word in ENGLISH_STOPWORDS), encoding="utf-8")
    readme = stopwords / "README"
    if not readme.exists():
        readme.write_text(_README, encoding="utf-8")
    return root
