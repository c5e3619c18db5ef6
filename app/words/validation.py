"""Normalise words and validate counts the same way on every route."""

import re
import unicodedata

from app.errors import InvalidInput
from app.words.store import MAX_COUNT

MAX_WORD_LENGTH = 64
# A word is letters and digits (``[^\W_]`` is \w without the underscore)
# and the combining marks that follow them (Devanagari vowel signs, Arabic
# harakat, Hebrew niqqud, ...: NFKC leaves those with no precomposed form
# apart), with single apostrophes or hyphens only between two such runs:
# "don't", "x-ray", "नमस्ते". Python's re has no class for marks, so each
# text's pattern lists the marks that text holds (see _word_patterns).
_LETTER = r"[^\W_]"
_SEPARATOR = "['-]"
# Characters that are neither \w nor space: the marks are among them.
_NEITHER_WORD_NOR_SPACE = re.compile(r"[^\w\s]")
# NFKC leaves typographic apostrophes alone, yet "don’t" and "don't" are
# the same word to a reader, so they are folded before matching.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "\uff07": "'"})


def fold(text):
    """Return text in the one form words are compared in (NFKC, casefold).

    casefold knows no locale: the Turkish dotted capital I folds to "i"
    and U+0307 COMBINING DOT ABOVE, which has no precomposed form, so
    "İstanbul" is the word "i̇stanbul", one code point longer and apart
    from "istanbul" (plain I), while the dotless "ı" stays itself.
    """
    if text.isascii():
        # ASCII is its own NFKC form and holds no typographic apostrophe,
        # and casefold and lower agree on it: the common case, cheaply.
        return text.lower()
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    # casefold can produce decomposed characters, so normalise again.
    return unicodedata.normalize("NFKC", text.casefold())


def normalize_word(raw):
    """Return the canonical form of a word or raise InvalidInput."""
    if not isinstance(raw, str):
        raise InvalidInput("word must be a string", code="invalid_word")
    word = fold(raw).strip()
    if (not 1 <= len(word) <= MAX_WORD_LENGTH
            or not _word_patterns(word)[0].fullmatch(word)):
        raise InvalidInput(
            f"word must be 1 to {MAX_WORD_LENGTH} letters or digits (with "
            "their combining marks), with an apostrophe or hyphen allowed "
            "only between them",
            code="invalid_word")
    return word


def normalize_prefix(raw):
    """Return the canonical form of a listing prefix (may be empty)."""
    prefix = fold(raw).strip()
    if (len(prefix) > MAX_WORD_LENGTH
            or not _word_patterns(prefix)[1].fullmatch(prefix)):
        raise InvalidInput(
            "prefix must be the start of a valid word", code="invalid_prefix")
    return prefix


def split_words(text):
    """Split text into normalised words, keeping the valid ones in order."""
    text = fold(text)
    return [word for word in _word_patterns(text)[0].findall(text)
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


def _word_patterns(text):
    """Return the patterns of a word and of a prefix, for marks in text.

    A prefix is the start of a word: it may end after a separator.
    """
    if text.isascii():
        return _PLAIN_PATTERNS  # no ASCII character is a mark
    marks = re.escape("".join(sorted({
        char for char in _NEITHER_WORD_NOR_SPACE.findall(text)
        if unicodedata.category(char).startswith("M")})))
    if not marks:
        return _PLAIN_PATTERNS
    return _compile_patterns(marks)


def _compile_patterns(marks):
    """Return the patterns of a word and of a prefix allowing ``marks``."""
    # A mark may follow a letter, a digit or another mark, never start.
    run = (f"{_LETTER}(?:{_LETTER}|[{marks}])*" if marks
           else f"{_LETTER}+")
    word = f"{run}(?:{_SEPARATOR}{run})*"
    # re caches what it compiles, so a text's marks cost one compile.
    return re.compile(word), re.compile(f"(?:{word}{_SEPARATOR}?)?")


def _is_integer(value):
    """Tell whether value is an int and not a bool (JSON true is not 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


# The patterns of every text without marks, compiled once: re's own cache
# would still cost a lookup per call.
_PLAIN_PATTERNS = _compile_patterns("")
