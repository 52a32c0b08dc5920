"""Horizontal-flip test-time augmentation: a query embedded as itself and mirrored, the two averaged.

Products are mostly left-right symmetric in what identifies them, so the mean of both views is a
steadier vector. Costs a second inference per query; used for queries only (stored reference
vectors stay one model pass each, so they do not depend on a serving setting).
"""

from __future__ import annotations

import numpy as np


def with_mirrored(pixels: np.ndarray) -> np.ndarray:
    """``(n, h, w, 3)`` → ``(2n, h, w, 3)``: the images, then the same images mirrored left-right."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 4:
        raise ValueError(f"expected a batch of images (n, h, w, c), got shape {pixels.shape}")
    return np.concatenate([pixels, pixels[:, :, ::-1]])


def flip_average(vectors: np.ndarray) -> np.ndarray:
    """``(2n, d)`` from ``with_mirrored`` → ``(n, d)`` unit vectors: each image's two vectors averaged."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) % 2:
        raise ValueError(f"expected (2n, d) vectors from with_mirrored, got shape {vectors.shape}")
    n = len(vectors) // 2
    mean = vectors[:n] + vectors[n:]
    norms = np.linalg.norm(mean, axis=1, keepdims=True)
    averaged: np.ndarray = mean / np.maximum(norms, 1e-12)
    return averaged
