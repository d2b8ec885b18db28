"""The words of a question made comparable: language, traditional → simplified, full-width → half-width,
punctuation, case, and English typos corrected against the words the service knows.

Libraries: `opencc` (the reference converter, C++ with its dictionaries in the wheel: phrase-level
traditional → simplified, offline) and `rapidfuzz` (edit-distance matching in C++, microseconds per word).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

import opencc
from rapidfuzz import fuzz, process

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Everything that is neither a letter, a digit nor a CJK ideograph separates words (after NFKC).
_SEPARATORS = re.compile(r"[^\w\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|_")
_EN_WORD = re.compile(r"[a-z0-9]+")
MIN_FUZZY_LENGTH = 4  # shorter words are too easily mistaken for one another
FUZZY_SCORE = 84  # rapidfuzz ratio (0-100) a misspelt word needs to be read as a known one
SHORT_FUZZY_SCORE = 74  # for 4-letter words: one swap of neighbours (lnad → land) scores 75
# Everyday words that are never typos of the graph's words (they would otherwise be "corrected" to them).
COMMON = frozenset(
    [
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "whose",
        "that",
        "this",
        "these",
        "those",
        "there",
        "their",
        "them",
        "they",
        "then",
        "than",
        "does",
        "done",
        "have",
        "has",
        "had",
        "with",
        "without",
        "from",
        "into",
        "onto",
        "over",
        "under",
        "about",
        "after",
        "before",
        "again",
        "also",
        "just",
        "only",
        "very",
        "much",
        "many",
        "some",
        "same",
        "such",
        "each",
        "every",
        "both",
        "other",
        "more",
        "most",
        "less",
        "least",
        "your",
        "yours",
        "mine",
        "ours",
        "please",
        "tell",
        "show",
        "give",
        "list",
        "know",
        "need",
        "want",
        "like",
        "find",
        "look",
        "make",
        "made",
        "take",
        "takes",
        "said",
        "says",
        "say",
        "says",
        "here",
        "good",
        "well",
        "work",
        "works",
        "working",
        "office",
        "name",
        "names",
        "year",
        "years",
        "month",
        "week",
        "today",
        "time",
        "times",
        "part",
        "parts",
        "kind",
        "kinds",
        "sort",
        "able",
        "would",
        "could",
        "should",
        "will",
        "shall",
        "must",
        "might",
        "being",
        "been",
        "were",
        "was",
        "are",
        "is",
        "the",
        "and",
        "for",
        "not",
        "but",
        "all",
        "any",
        "can",
        "how",
        "why",
        "our",
        "out",
    ]
)


@functools.lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def language(text: str) -> str:
    """'zh' when the question holds Chinese characters, else 'en'."""
    return "zh" if _CJK.search(text) else "en"


def to_simplified(text: str) -> str:
    """Traditional characters as simplified ones (phrase-level, OpenCC's t2s)."""
    return _converter().convert(text)


def normalise(text: str) -> str:
    """NFKC (full-width → half-width), simplified characters, lower case, punctuation as single spaces."""
    text = unicodedata.normalize("NFKC", text)
    if _CJK.search(text):
        text = to_simplified(text)
    text = _SEPARATORS.sub(" ", text.casefold())
    return " ".join(text.split())


def words(text: str) -> list[str]:
    """The Latin-script words and numbers of a normalised text."""
    return _EN_WORD.findall(text)


def correct(text: str, known: Iterable[str] | frozenset[str]) -> str:
    """The normalised text with each unknown Latin word of 4+ letters replaced by the nearest known word."""
    vocabulary = known if isinstance(known, frozenset) else frozenset(known)
    pool = [w for w in vocabulary if len(w) >= MIN_FUZZY_LENGTH]

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        if len(word) < MIN_FUZZY_LENGTH or word in vocabulary or word in COMMON or word.isdigit():
            return word
        cutoff = SHORT_FUZZY_SCORE if len(word) == MIN_FUZZY_LENGTH else FUZZY_SCORE
        best = process.extractOne(word, pool, scorer=fuzz.ratio, score_cutoff=cutoff)
        return best[0] if best else word

    return _EN_WORD.sub(fix, text)
