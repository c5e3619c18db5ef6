"""Labels and traffic weights of the served versions, from serving.json.

``<repository>/serving.json`` is optional::

    {"labels": {"stable": 1, "canary": 2},
     "traffic": {"stable": 90, "canary": 10}}

A label names a version; ``traffic`` splits the requests of the default
route between labels by integer weights. Without traffic the default
route serves the default version.
"""

import dataclasses
import hashlib
import json
import random
import re

FILE_NAME = "serving.json"
# A label must not look like a version route ("v2") or a number.
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}\Z")
_VERSION_LIKE = re.compile(r"[vV]?[0-9]+\Z")
_KEYS = {"labels", "traffic"}


@dataclasses.dataclass(frozen=True)
class ServingConfig:
    """Which version each label names, and the traffic weight of each."""

    labels: dict = dataclasses.field(default_factory=dict)
    traffic: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_document(cls, document):
        """Check a parsed serving.json; raise ValueError saying what is bad."""
        if not isinstance(document, dict) or set(document) - _KEYS:
            raise ValueError(f"{FILE_NAME} must be an object with "
                             "\"labels\" and optionally \"traffic\"")
        labels = document.get("labels", {})
        traffic = document.get("traffic", {})
        if not isinstance(labels, dict) or not isinstance(traffic, dict):
            raise ValueError("labels and traffic must be objects")
        for label, version in labels.items():
            if not _LABEL.match(label) or _VERSION_LIKE.match(label):
                raise ValueError(f"label {label!r} must be a name, not a "
                                 "number or v<N>")
            if type(version) is not int or version < 1:
                raise ValueError(f"label {label!r} must name a version "
                                 "number")
        for label, weight in traffic.items():
            if label not in labels:
                raise ValueError(f"traffic names {label!r}, which is not "
                                 "a label")
            if type(weight) is not int or weight < 0:
                raise ValueError(f"the weight of {label!r} must be a "
                                 "non-negative integer")
        if traffic and not sum(traffic.values()):
            raise ValueError("traffic weights must not all be 0")
        return cls(dict(labels), dict(traffic))


def read_serving_config(repository):
    """Return the repository's serving config; an absent file is empty.

    Raise OSError or ValueError for a file that cannot be used.
    """
    try:
        with open(repository / FILE_NAME, encoding="utf-8") as handle:
            return ServingConfig.from_document(json.load(handle))
    except FileNotFoundError:
        return ServingConfig()


def pick_label(traffic, variant_key=None):
    """Return the label a request goes to, by weight.

    The same ``variant_key`` always gets the same label while the weights
    stay the same (its hash is the draw); without one the draw is random.
    """
    labels = sorted(traffic)
    total = sum(traffic[label] for label in labels)
    if variant_key is None:
        draw = random.randrange(total)
    else:
        digest = hashlib.sha256(variant_key.encode("utf-8")).digest()
        draw = int.from_bytes(digest[:8], "big") % total
    for label in labels:
        draw -= traffic[label]
        if draw < 0:
            return label
    raise AssertionError("weights changed while picking")
