"""Vector index backends behind one small interface (inner product on unit vectors = cosine)."""

from gallery.search.base import VectorIndex
from gallery.search.flat import FlatIndex
from gallery.search.hnsw import HNSWIndex

INDEX_KINDS = {"flat": FlatIndex, "hnsw": HNSWIndex}


def make_index(kind: str, dim: int) -> VectorIndex:
    try:
        return INDEX_KINDS[kind](dim)
    except KeyError:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {sorted(INDEX_KINDS)}") from None


__all__ = ["VectorIndex", "FlatIndex", "HNSWIndex", "INDEX_KINDS", "make_index"]
