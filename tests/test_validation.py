"""Word normalisation and count validation as pure functions."""

import pytest

from app.errors import InvalidInput
from app.words.validation import (
    normalize_prefix, normalize_word, parse_count, parse_increment,
    split_words)


@pytest.mark.parametrize("raw,word", [
    ("Hello", "hello"), ("  hello\t", "hello"), ("ＨＥＬＬＯ", "hello"),
    ("Straße", "strasse"), ("don’t", "don't"), ("X-Ray", "x-ray"),
    ("e\u0301te\u0301", "été"), ("42", "42"), ("ﬁne", "fine"),
    ("a" * 64, "a" * 64),
])
def test_normalize_word(raw, word):
    """Words are NFKC-normalised, case-folded and stripped."""
    assert normalize_word(raw) == word


@pytest.mark.parametrize("raw", [
    "", " ", "'quote", "quote'", "a--b", "a'-b", "a_b", "a b", "a" * 65,
    "x!", 5, None])
def test_normalize_word_refuses(raw):
    """Invalid words raise InvalidInput with code invalid_word."""
    with pytest.raises(InvalidInput) as caught:
        normalize_word(raw)
    assert caught.value.code == "invalid_word"


@pytest.mark.parametrize("raw,prefix", [("", ""), ("He", "he"),
                                        ("don'", "don'"), ("x-", "x-")])
def test_normalize_prefix(raw, prefix):
    """Prefixes normalise like words and may be partial."""
    assert normalize_prefix(raw) == prefix


def test_split_words_keeps_valid_words_in_order():
    """Texts split into valid normalised words, in order."""
    text = "The cat's HAT -- and 2 x-rays; " + "z" * 65 + " end"
    assert split_words(text) == ["the", "cat's", "hat", "and", "2",
                                 "x-rays", "end"]


def test_parse_count_accepts_only_json_integers_in_range():
    """Only integers in 0..2**63-1 are counts."""
    assert parse_count(0) == 0
    assert parse_count(2 ** 63 - 1) == 2 ** 63 - 1
    for bad in (True, False, 1.0, "1", -1, 2 ** 63, None):
        with pytest.raises(InvalidInput):
            parse_count(bad)


def test_parse_increment_allows_negative():
    """Increments may be negative but must fit a count."""
    assert parse_increment(-3) == -3
    for bad in (True, 0.5, 2 ** 63, -(2 ** 63)):
        with pytest.raises(InvalidInput):
            parse_increment(bad)
