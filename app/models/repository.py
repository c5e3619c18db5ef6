"""Read a model repository: version folders, labels and file checksums.

The repository has TF Serving's layout: one folder per integer version,
each holding ``model.json`` (see ``contract``), the model file and its
labels::

    model/1/model.json  model/1/model.tflite  model/1/labels.txt
    model/2/...
"""

import hashlib


class ModelRepositoryError(Exception):
    """The repository cannot serve: nothing loads, or the default is bad."""


def version_folders(repository):
    """Return ``{version number: folder}``, empty if there is none."""
    try:
        entries = sorted(repository.iterdir())
    except OSError:
        return {}
    return {int(folder.name): folder for folder in entries
            if folder.name.isascii() and folder.name.isdigit()
            and folder.is_dir()}


def find_version_folders(repository):
    """Return ``{version number: folder}``; raise if there is none."""
    folders = version_folders(repository)
    if not folders:
        raise ModelRepositoryError(f"no model version in {repository}")
    return folders


def read_labels(path):
    """Return the class labels, one per line, line i naming class i."""
    with open(path, encoding="utf-8") as handle:
        labels = [line.rstrip("\n") for line in handle]
    if not labels or not all(labels):
        raise ValueError(f"{path} must hold one non-empty label per line")
    return labels


def verify_sha256(path, expected):
    """Raise unless the file's SHA-256 is the one model.json records."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ValueError(f"{path.name} has SHA-256 {digest.hexdigest()}, "
                         f"model.json expects {expected}")
