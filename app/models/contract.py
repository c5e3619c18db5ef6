"""The typed contract of one model version, parsed once from model.json.

``model.json`` says which file holds the model, its SHA-256, its labels
and how its input and output tensors look. The defaults for optional
entries (tensor names, the output activation) live here and nowhere else.
"""

import dataclasses
import json

_REQUIRED_KEYS = ("name", "version", "file", "sha256", "labels", "input",
                  "output")
_ACTIVATIONS = frozenset({"softmax", "none"})


@dataclasses.dataclass(frozen=True)
class ModelContract:
    """What a version promises: files, tensors and how to read the output.

    ``input`` is the ``"input"`` object of model.json as it is, since the
    pre-processing stages read their own entries from it (shape, dtype,
    resize, normalisation). ``document`` keeps the whole file for clients
    that ask to see it.
    """

    name: str
    version: int
    file: str
    sha256: str
    labels_file: str
    input: dict
    output: dict
    input_name: str
    output_name: str
    activation: str
    document: dict

    @classmethod
    def from_document(cls, document, folder_version):
        """Check a parsed model.json and return its contract.

        Raise ValueError naming what is missing or inconsistent.
        """
        if not isinstance(document, dict):
            raise ValueError("model.json must hold a JSON object")
        missing = [key for key in _REQUIRED_KEYS if key not in document]
        if missing:
            raise ValueError(f"model.json lacks {', '.join(missing)}")
        if document["version"] != folder_version:
            raise ValueError(
                f"model.json says version {document['version']} but its "
                f"folder is {folder_version}")
        inputs, output = document["input"], document["output"]
        if not isinstance(inputs, dict) or not isinstance(output, dict):
            raise ValueError("model.json input and output must be objects")
        activation = output.get("activation", "softmax")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown output activation {activation!r}")
        return cls(
            name=str(document["name"]), version=folder_version,
            file=str(document["file"]), sha256=str(document["sha256"]),
            labels_file=str(document["labels"]), input=inputs,
            output=output, input_name=inputs.get("name", "input"),
            output_name=output.get("name", "output"),
            activation=activation, document=document)


def read_contract(folder, folder_version):
    """Read and check ``folder/model.json``; raise OSError or ValueError."""
    with open(folder / "model.json", encoding="utf-8") as handle:
        return ModelContract.from_document(json.load(handle), folder_version)
