"""Normalise words and validate counts the same way on every route."""

import re
import unicodedata

from app.errors import InvalidInput
from app.words.store import MAX_COUNT

MAX_WORD_LENGTH = 64
# Letters and digits (``[^\W_]`` is \w without the underscore), with single
# apostrophes or hyphens allowed only between them: "don't", "x-ray".
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
_PREFIX = re.compile(r"[^\W_'-]*(?:[^\W_]['-]?)*")
# NFKC leaves typographic apostrophes alone, yet "don’t" and "don't" are
# the same word to a reader, so they are folded before matching.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "\uff07": "'"})


def fold(text):
    """Return text in the one form words are compared in (NFKC, casefold)."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    # casefold can produce decomposed characters, so normalise again.
    return unicodedata.normalize("NFKC", text.casefold())


def normalize_word(raw):
    """Return the canonical form of a word or raise InvalidInput."""
    if not isinstance(raw, str):
        raise InvalidInput("word must be a string", code="invalid_word")
    word = fold(raw).strip()
    if not 1 <= len(word) <= MAX_WORD_LENGTH or not _WORD.fullmatch(word):
        raise InvalidInput(
            f"word must be 1 to {MAX_WORD_LENGTH} letters or digits, with "
            "an apostrophe or hyphen allowed only between them",
            code="invalid_word")
    return word


def normalize_prefix(raw):
    """Return the canonical form of a listing prefix (may be empty)."""
    prefix = fold(raw).strip()
    if len(prefix) > MAX_WORD_LENGTH or not _PREFIX.fullmatch(prefix):
        raise InvalidInput(
            "prefix must be the start of a valid word", code="invalid_prefix")
    return prefix


def split_words(text):
    """Split text into normalised words, keeping the valid ones in order."""
    return [word for word in _WORD.findall(fold(text))
            if len(word) <= MAX_WORD_LENGTH]


def parse_count(value, name="count"):
    """Return value if it is a JSON integer in 0..2**63-1, else raise."""
    if not _is_integer(value) or not 0 <= value <= MAX_COUNT:
        raise InvalidInput(
            f"{name} must be an integer from 0 to {MAX_COUNT}",
            code="invalid_count")
    return value


def parse_increment(value):
    """Return value if it is an integer whose size fits a count, else raise."""
    if not _is_integer(value) or not -MAX_COUNT <= value <= MAX_COUNT:
        raise InvalidInput(
            f"increment must be an integer from {-MAX_COUNT} to {MAX_COUNT}",
            code="invalid_increment")
    return value


def _is_integer(value):
    """Tell whether value is an int and not a bool (JSON true is not 1)."""
    return isinstance(value, int) and not isinstance(value, bool)
