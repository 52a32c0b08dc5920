"""Which SKUs look alike before training, so that P×K batches can hold look-alikes together.

Batch-hard mining can only learn the negatives a batch contains. With 16 of 61 SKUs drawn at random,
a batch rarely holds two apple varieties, yet those are the confusions that cost the till (see
``gallery.lookalike``). Grouping each drawn SKU with its nearest SKUs (by the cosine between class
centroids of the untrained network's pooled features, computed once per run) puts them side by
side, as hierarchical class sampling does for Stanford Online Products (Oh Song et al. 2016).
"""

from __future__ import annotations

import numpy as np

from gallery.lookalike import unit_centroids


def nearest_classes(features: np.ndarray, labels: np.ndarray, count: int) -> dict[int, tuple[int, ...]]:
    """Per label present in ``labels``: the ``count`` other labels whose feature centroids are the most
    cosine-similar to its own, nearest first (ties by label)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count!r}")
    labels = np.asarray(labels, dtype=np.int64)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"features must be (n, d) with n = len(labels) = {len(labels)}, got {features.shape}")
    present = np.unique(labels)
    centroids, _ = unit_centroids(features, labels, int(present.max()) + 1 if len(present) else 0)
    sims = centroids[present] @ centroids[present].T
    np.fill_diagonal(sims, -np.inf)
    out = {}
    for row, label in enumerate(present.tolist()):
        order = np.lexsort((present, -sims[row]))  # most similar first, then by label
        out[label] = tuple(int(present[j]) for j in order[:count] if j != row)
    return out
