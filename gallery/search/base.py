"""The interface every vector index implements."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod

import faiss
import numpy as np

from embedder.artifact import write_atomically

__all__ = ["VectorIndex", "limit_search_threads", "write_atomically"]


class VectorIndex(ABC):
    kind: str = "base"
    #: Every search scans all vectors, so asking for more neighbours costs next to nothing
    #: (flat). Where the cost grows with k (HNSW's efSearch), callers should ask for few.
    exhaustive: bool = False

    def __init__(self, dim: int):
        self.dim = dim

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add int64 ``ids`` with float32 unit ``vectors`` of shape ``(n, dim)``."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> None:
        """Forget ``ids``; unknown ids are ignored."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)`` of shape ``(n, k)``, best first; missing slots have id -1."""

    @abstractmethod
    def vectors(self, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(row_ids, vectors)``: every vector stored under ``ids`` (None: all) with its id; an image with
        catalogue views has several rows."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write with ``write_atomically`` (temporary file, fsync, rename, folder fsync)."""

    @classmethod
    @abstractmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> VectorIndex: ...

    def check(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {vectors.shape}")
        return vectors


def limit_search_threads(threads: int) -> None:
    """Set FAISS's OpenMP thread count *for the calling thread*.

    With GNU OpenMP the setting is per thread: set once at start-up it does not
    reach the worker threads that serve requests (``bench/omp_check.py``), so
    the searching thread sets it itself. The call costs well under a microsecond.
    """
    faiss.omp_set_num_threads(threads)
