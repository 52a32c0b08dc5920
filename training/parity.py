"""Export parity: a served (LiteRT) model against the Keras model it came from, on real photos.

Both embed the same uint8 pixels (decoded once by ``embedder.preprocess``); we
report the largest absolute difference of any embedding component, the largest
cosine distance between paired vectors, and val recall@1 of each (queries: val
photos; gallery: train photos of the same SKUs).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from training.loop import recall_at_1

if TYPE_CHECKING:
    from embedder.runtime import Embedder

logger = logging.getLogger(__name__)


def compare(keras_vectors: np.ndarray, litert_vectors: np.ndarray) -> dict[str, Any]:
    if keras_vectors.shape != litert_vectors.shape:
        raise ValueError(f"shapes differ: Keras {keras_vectors.shape}, LiteRT {litert_vectors.shape}")
    cosine = np.sum(keras_vectors * litert_vectors, axis=1)
    return {
        "max_abs_diff": float(np.abs(keras_vectors - litert_vectors).max()),
        "max_cosine_distance": float(np.max(1.0 - cosine)),
    }


def export_parity(
    keras_embedder: Embedder,
    litert_embedder: Embedder,
    gallery_pixels: np.ndarray,
    gallery_labels: np.ndarray,
    query_pixels: np.ndarray,
    query_labels: np.ndarray,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Embed gallery and queries with both; differences and recall@1 of each."""

    def embed(embedder: Embedder, pixels: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [embedder.embed(np.asarray(pixels[i : i + batch_size])) for i in range(0, len(pixels), batch_size)]
        )

    k_gallery, k_queries = embed(keras_embedder, gallery_pixels), embed(keras_embedder, query_pixels)
    l_gallery, l_queries = embed(litert_embedder, gallery_pixels), embed(litert_embedder, query_pixels)
    result = compare(np.concatenate([k_gallery, k_queries]), np.concatenate([l_gallery, l_queries]))
    result.update(
        photos=int(len(gallery_pixels) + len(query_pixels)),
        keras_recall_at_1=recall_at_1(k_gallery, gallery_labels, k_queries, query_labels),
        litert_recall_at_1=recall_at_1(l_gallery, gallery_labels, l_queries, query_labels),
    )
    logger.info("export parity: %s", result)
    return result
