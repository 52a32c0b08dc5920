"""A micro-batch's queries in one FAISS search give each query the answer it gets alone (real FAISS, real SQLite)."""

import hashlib

import numpy as np
import pytest

from gallery.gallery import Gallery
from gallery.stores.base import NewImage

DIM = 128
SKUS = 2000


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def fill(g: Gallery, rng: np.random.Generator) -> np.ndarray:
    """SKUS SKUs of random unit vectors: most with 1-4 images, 20 with 40 images in a tight cluster
    (queries near those find one SKU in their first fetch and must be widened)."""
    centres = []
    for s in range(SKUS):
        clustered = s < 20
        centre = unit(rng.normal(size=(1, DIM)))
        count = 40 if clustered else int(rng.integers(1, 5))
        vectors = unit(centre + (0.05 if clustered else 0.6) * rng.normal(size=(count, DIM)))
        records = [NewImage(hashlib.sha256(f"{s}-{i}".encode()).hexdigest(), "image/jpeg", 8, 8) for i in range(count)]
        g.store.add_images(f"sku-{s:03d}", records, vectors[:, None, :], g.model_version, name=f"Product {s}")
        centres.append(centre[0])
    g.catch_up()
    return np.stack(centres)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_batched_answers_equal_per_query_answers(tmp_path, kind, monkeypatch):
    rng = np.random.default_rng(7)
    g = Gallery(tmp_path, "model-a", DIM, index_kind=kind)
    centres = fill(g, rng)
    queries = np.concatenate(
        [
            unit(rng.normal(size=(40, DIM))),  # anywhere
            unit(centres[:12] + 0.05 * rng.normal(size=(12, DIM))),  # in a 40-image cluster
            unit(centres[100:112] + 0.3 * rng.normal(size=(12, DIM))),
        ]
    )  # near a small SKU
    alone = [g.search(q[None], k=5)[0] for q in queries]

    calls: list[int] = []
    search = g._index.search

    def counted(q: np.ndarray, fetch: int):
        calls.append(len(q))
        return search(q, fetch)

    monkeypatch.setattr(g._index, "search", counted)
    together = g.search(queries, k=5)
    assert together == alone  # same SKUs, same order, same float scores, same names (widening every query
    # whenever one was short, as before, gave 5 of these 64 HNSW queries other answers)
    assert calls[0] == len(queries)  # every query in the first FAISS call
    if kind == "hnsw":  # only the short ones go again, with a wider fetch
        assert len(calls) > 1 and all(later < len(queries) for later in calls[1:])
    assert all(len(r) == 5 for r in together)
    assert together[0][0].name.startswith("Product ")
    g.close(snapshot=False)


def test_recognize_batched_equals_per_query(tmp_path):
    rng = np.random.default_rng(3)
    g = Gallery(tmp_path, "model-a", DIM)
    centres = fill(g, rng)
    queries = unit(centres[:30] + 0.2 * rng.normal(size=(30, DIM)))
    alone = [g.recognize(q[None], threshold=0.8)[0] for q in queries]
    assert g.recognize(queries, threshold=0.8) == alone
    g.close(snapshot=False)


def test_empty_gallery_and_empty_batch(tmp_path):
    g = Gallery(tmp_path, "model-a", DIM, index_kind="hnsw")
    assert g.search(unit(np.ones((3, DIM))), k=5) == [[], [], []]
    assert g.search(np.zeros((0, DIM), np.float32), k=5) == []
    g.close(snapshot=False)
