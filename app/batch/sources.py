"""Expand the command line's sources into the ordered list of inputs.

A source is an image file, a folder (searched recursively for image
files by their extension), a glob pattern, a URL, or a ``.csv`` or
``.txt`` file listing URLs: one per line, or in a column named ``url``.
Inputs keep the order of the sources, and within a folder or a glob the
sorted order of the paths, so that two runs over the same files list
them alike and ``--resume`` can tell which ones a run has done.
"""

import csv
import dataclasses
import glob
import io
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif",
                            ".bmp"})
LIST_SUFFIXES = frozenset({".csv", ".txt"})
URL_PREFIXES = ("http://", "https://")
_GLOB_CHARACTERS = frozenset("*?[")


class SourceError(ValueError):
    """A source names nothing that can be scored."""


@dataclasses.dataclass(frozen=True)
class Input:
    """One image to score: a file path or a URL, as the output names it."""

    source: str
    is_url: bool


def expand(sources):
    """Return the inputs of every source, in order; raise SourceError."""
    inputs = [item for source in sources for item in _expand_one(source)]
    if not inputs:
        raise SourceError("the sources hold no image file and no URL")
    return inputs


def _expand_one(source):
    """Return the inputs one command-line source stands for."""
    if source.lower().startswith(URL_PREFIXES):
        return [Input(source, True)]
    path = Path(source)
    if path.is_dir():
        return _folder(path)
    if path.is_file():
        if path.suffix.lower() in LIST_SUFFIXES:
            return read_url_list(path)
        # A file named on purpose is scored whatever its extension: a
        # file that is not an image gets its own error row.
        return [Input(source, False)]
    if _GLOB_CHARACTERS & set(source):
        matches = sorted(glob.glob(source, recursive=True))
        if not matches:
            raise SourceError(f"{source}: no file matches the pattern")
        return [item for match in matches for item in _expand_one(match)]
    raise SourceError(f"{source}: no such file or folder")


def _folder(path):
    """Return the image files under a folder, sorted, recursively."""
    return [Input(str(found), False) for found in sorted(path.rglob("*"))
            if found.suffix.lower() in IMAGE_SUFFIXES and found.is_file()]


def read_url_list(path):
    """Return the URLs a list file holds, blank and ``#`` lines skipped.

    A first row with a cell ``url`` makes the file a CSV table whose
    ``url`` column is read; otherwise every line is one URL, read
    whole, since URLs may hold commas.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise SourceError(f"{path}: cannot read the URL list: {error}")
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next((row for row in rows if any(cell.strip() for cell in row)),
                  [])
    names = [cell.strip().lower() for cell in header]
    if "url" in names:
        column = names.index("url")
        values = [row[column] if column < len(row) else "" for row in rows]
    else:
        values = text.splitlines()
    return [Input(value.strip(), True) for value in values
            if value.strip() and not value.strip().startswith("#")]
