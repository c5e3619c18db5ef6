"""Write result rows as CSV or JSON lines, and read back an earlier run.

Rows go out in input order, each flushed as soon as it is written, so a
run that is killed leaves whole rows for every input it finished before
the one it was writing; :func:`read_done` takes what such a run left
(a torn last line is cut off) so that ``--resume`` skips those inputs.
"""

import csv
import io
import json
from pathlib import Path

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class OutputError(ValueError):
    """The output file cannot be resumed as the options ask."""


def format_of(path):
    """Return ``csv`` or ``jsonl`` from the output file's extension."""
    found = FORMATS.get(Path(path).suffix.lower())
    if found is None:
        raise OutputError(f"{path}: the output must end in .csv or .jsonl")
    return found


def csv_header(top_k):
    """Return the CSV columns for ``top_k`` classes per row."""
    ranks = [(f"label_{rank}", f"index_{rank}", f"score_{rank}")
             for rank in range(1, top_k + 1)]
    return ["source", "model_version", "error", "message",
            *(name for names in ranks for name in names)]


def open_writer(path, kind, top_k, append):
    """Return a writer for ``path``, appending to what a run left if asked."""
    writer = (CsvWriter if kind == "csv" else JsonLinesWriter)(top_k)
    writer.open(path, append)
    return writer


class _Writer:
    """Write rows to a file, one line each, flushed as they come."""

    def __init__(self, top_k):
        """Keep the number of classes per row."""
        self.top_k = top_k
        self._handle = None

    def open(self, path, append):
        """Open the file, writing the header to a new or empty one."""
        self._handle = open(path, "a" if append else "w", encoding="utf-8",
                            newline="")
        if self._handle.tell() == 0:
            self._write_header()

    def _write_header(self):
        """Write what precedes the rows; nothing by default."""

    def write(self, result):
        """Write one row and flush it to the operating system."""
        self._handle.write(self.render(result))
        self._handle.flush()

    def close(self):
        """Close the file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class CsvWriter(_Writer):
    """Rows as CSV: source, model version, error, then k classes."""

    def _write_header(self):
        """Write the column names."""
        self._handle.write(_csv_line(csv_header(self.top_k)))
        self._handle.flush()

    def render(self, result):
        """Return one result as a CSV line."""
        cells = [result.source,
                 "" if result.model_version is None else result.model_version,
                 result.error, result.message]
        for item in result.classes:
            cells += [item["label"], item["index"], repr(item["score"])]
        # Error rows get empty class cells: every row has every column.
        cells += [""] * (len(csv_header(self.top_k)) - len(cells))
        return _csv_line(cells)


class JsonLinesWriter(_Writer):
    """Rows as JSON objects shaped like the service's own answers."""

    def render(self, result):
        """Return one result as a JSON line."""
        if result.failed:
            row = {"source": result.source,
                   "error": {"code": result.error,
                             "message": result.message}}
        else:
            row = {"source": result.source,
                   "model_version": result.model_version,
                   "classes": list(result.classes)}
        return json.dumps(row, ensure_ascii=False) + "\n"


def _csv_line(cells):
    """Return one CSV record, ending in a newline."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def read_done(path, kind, top_k):
    """Return ``[(source, failed)]`` of the rows an earlier run wrote.

    A last line without its newline is what a kill left half-written:
    it is cut off the file, and its input is scored again.
    """
    path = Path(path)
    if not path.exists():
        return []
    _cut_torn_line(path)
    with open(path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    if not text:
        return []
    if kind == "csv":
        return _read_csv(path, text, top_k)
    return _read_jsonl(path, text)


def _cut_torn_line(path):
    """Truncate the file after its last newline."""
    with open(path, "rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


def _read_csv(path, text, top_k):
    """Return ``[(source, failed)]`` of a CSV file this tool wrote."""
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, [])
    if header != csv_header(top_k):
        raise OutputError(
            f"{path} has other columns than this run would write (was it "
            f"written with another --top-k than {top_k}?)")
    return [(row[0], bool(row[2])) for row in rows if row]


def _read_jsonl(path, text):
    """Return ``[(source, failed)]`` of a JSON-lines file this tool wrote."""
    done = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            row = json.loads(line)
            done.append((row["source"], "error" in row))
        except (ValueError, KeyError, TypeError):
            raise OutputError(f"{path}:{number} is not a row this tool "
                              "wrote") from None
    return done
