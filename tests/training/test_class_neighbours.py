"""Nearest classes by feature centroids, against a naive loop."""

from __future__ import annotations

import numpy as np
import pytest

from training.class_neighbours import nearest_classes


def _naive(features: np.ndarray, labels: np.ndarray, count: int) -> dict[int, tuple[int, ...]]:
    centroid = {}
    for label in sorted(set(labels.tolist())):
        mean = features[labels == label].mean(axis=0)
        centroid[label] = mean / np.linalg.norm(mean)
    out = {}
    for a in centroid:
        others = sorted((b for b in centroid if b != a), key=lambda b: (-float(centroid[a] @ centroid[b]), b))
        out[a] = tuple(others[:count])
    return out


def test_matches_a_naive_loop_with_gaps_in_the_labels():
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 2, 2, 2, 5, 7, 7, 7, 9])
    features = rng.normal(size=(len(labels), 6))
    for count in (1, 2, 4, 10):
        assert nearest_classes(features, labels, count) == _naive(features, labels, count)


def test_look_alikes_are_nearest():
    apple, pear, milk = np.array([1.0, 0.1, 0.0]), np.array([0.9, 0.3, 0.0]), np.array([0.0, 0.0, 1.0])
    features = np.stack([apple, apple * 1.1, pear, pear * 0.9, milk, milk])
    out = nearest_classes(features, np.array([0, 0, 1, 1, 2, 2]), 1)
    assert out == {0: (1,), 1: (0,), 2: (0,)}  # milk is as far from both: the tie goes to the lower label


def test_bad_arguments_quote_what_was_received():
    with pytest.raises(ValueError, match="count must be >= 1, got 0"):
        nearest_classes(np.zeros((2, 3)), np.array([0, 1]), 0)
    with pytest.raises(ValueError, match=r"got \(3, 3\)"):
        nearest_classes(np.zeros((3, 3)), np.array([0, 1]), 1)
