"""Turn a model's output scores into ranked, labelled classes."""

import numpy as np


def to_probabilities(scores, activation):
    """Return scores as probabilities; apply softmax to raw logits."""
    if activation == "softmax":
        return scores
    if activation != "none":
        raise ValueError(f"unknown output activation {activation!r}")
    shifted = scores - scores.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def top_indices(scores, k):
    """Return the indices of the k highest scores, highest first."""
    k = min(k, scores.shape[-1])
    # argpartition finds the k best in linear time; only they get sorted.
    best = np.argpartition(scores, -k)[-k:]
    return best[np.argsort(-scores[best], kind="stable")]


def get_classes(scores, k, labels):
    """Return the k best classes of one image as JSON-ready dicts."""
    return [{"label": labels[index], "index": int(index),
             "score": float(scores[index])}
            for index in top_indices(scores, k)]
