"""Word normalisation and count validation as pure functions."""

import unicodedata

import pytest

from app.errors import InvalidInput
from app.words.validation import (
    fold, normalize_prefix, normalize_word, parse_count, parse_increment,
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


# Each script's words are written out code point by code point, so what
# a word must become is plain to a reader and not taken from the code.
BEYOND_LATIN = [
    # Devanagari: virama and vowel signs are combining marks.
    ("नमस्ते", "\u0928\u092e\u0938\u094d\u0924\u0947"),
    ("दुनिया", "\u0926\u0941\u0928\u093f\u092f\u093e"),
    # Turkish dotted capital I folds to i + COMBINING DOT ABOVE.
    ("İstanbul", "i\u0307stanbul"),
    ("İSTANBUL", "i\u0307stanbul"),
    ("i\u0307stanbul", "i\u0307stanbul"),
    ("ırmak", "\u0131rmak"),  # dotless i stays itself
    # Arabic with harakat (fatha, sukun, fathatan).
    ("مَرْحَبًا",
     "\u0645\u064e\u0631\u0652\u062d\u064e\u0628\u064b\u0627"),
    # Thai: above and below vowels and tone marks are combining marks.
    ("สวัสดี", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35"),
    ("ไม้", "\u0e44\u0e21\u0e49"),
    # Hebrew with niqqud, the shin dot typed before the qamats: NFKC puts
    # the marks in canonical order.
    ("\u05e9\u05c1\u05b8\u05dc\u05d5\u05b9\u05dd",
     "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd"),
    # Korean: syllables as typed, or as conjoining jamo NFKC composes.
    ("안녕하세요", "\uc548\ub155\ud558\uc138\uc694"),
    ("\u1112\u1161\u11ab\u1100\u1173\u11af", "\ud55c\uae00"),
    # Japanese dakuten: composed where a composed kana exists (half-width
    # too), kept as a combining mark where none does.
    ("ｶﾞｲﾄﾞ", "\u30ac\u30a4\u30c9"),
    ("か\u3099", "\u304c"),
    ("ア\u3099", "\u30a2\u3099"),
    ("x-\u0928\u094d", "x-\u0928\u094d"),  # a mark before the end is fine
    ("\u0928\u094d" * 32, "\u0928\u094d" * 32),  # marks count to 64
]


@pytest.mark.parametrize("raw,word", BEYOND_LATIN)
def test_normalize_word_keeps_combining_marks(raw, word):
    """Letters and digits with their combining marks are words."""
    assert normalize_word(raw) == word


@pytest.mark.parametrize("raw", [
    "\u0301a",  # a mark cannot start a word
    "\u0947",  # nor be one alone
    "a-\u0301b",  # nor follow a hyphen
    "a'\u0947",  # nor an apostrophe
    "\u0928\u094d" * 32 + "\u0928",  # 65 code points
])
def test_normalize_word_refuses_misplaced_marks(raw):
    """A mark only ever follows a letter, a digit or another mark."""
    with pytest.raises(InvalidInput) as caught:
        normalize_word(raw)
    assert caught.value.code == "invalid_word"


@pytest.mark.parametrize("text,words", [
    ("नमस्ते दुनिया", [
        "\u0928\u092e\u0938\u094d\u0924\u0947",
        "\u0926\u0941\u0928\u093f\u092f\u093e"]),
    ("كَتَبَ الوَلَدُ.", [
        "\u0643\u064e\u062a\u064e\u0628\u064e",
        "\u0627\u0644\u0648\u064e\u0644\u064e\u062f\u064f"]),
    ("สวัสดี ครับ", [
        "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
        "\u0e04\u0e23\u0e31\u0e1a"]),
    ("İstanbul'da, İzmir!", ["i\u0307stanbul'da", "i\u0307zmir"]),
    ("\u0301lone mark-\u0301after", ["lone", "mark", "after"]),
])
def test_split_words_keeps_marks_inside_words(text, words):
    """Texts split the way words are checked: marks stay in their word."""
    assert split_words(text) == words


@pytest.mark.parametrize("word", sorted({word for _, word in BEYOND_LATIN}))
def test_every_start_of_a_word_is_a_prefix(word):
    """A prefix is valid exactly up to any point inside a valid word."""
    for end in range(len(word) + 1):
        assert normalize_prefix(word[:end]) == word[:end]


@pytest.mark.parametrize("raw", ["\u0301", "\u0947a", "-", "a-\u0301"])
def test_prefix_cannot_start_a_run_with_a_mark(raw):
    """A prefix refuses what no word can start with."""
    with pytest.raises(InvalidInput) as caught:
        normalize_prefix(raw)
    assert caught.value.code == "invalid_prefix"


def test_ascii_takes_the_same_fold_as_any_text():
    """The ASCII shortcut of fold gives what NFKC and casefold give."""
    def reference(text):
        return unicodedata.normalize(
            "NFKC", unicodedata.normalize("NFKC", text).casefold())
    every_ascii = "".join(map(chr, range(128)))
    assert fold(every_ascii) == reference(every_ascii)
    for text in ("Hello", " MiXeD-case'Word\t", "A1_b2", "\x1c\x1fz"):
        assert fold(text) == reference(text)
