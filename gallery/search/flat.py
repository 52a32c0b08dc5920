"""Exact search: FAISS ``IndexFlatIP`` behind an id map. The default."""

from __future__ import annotations

import os
from typing import Any

import faiss
import numpy as np

from gallery.search.base import VectorIndex, write_atomically


class FlatIndex(VectorIndex):
    kind = "flat"
    exhaustive = True

    def __init__(self, dim: int, index: faiss.Index | None = None):
        super().__init__(dim)
        self._index: faiss.Index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = self.check(vectors)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids):
            self.remove(ids)  # re-adding an id replaces it
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) and self._index.ntotal:
            self._index.remove_ids(faiss.IDSelectorBatch(ids))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = self.check(queries)
        if self._index.ntotal == 0 or k <= 0:
            n = len(queries)
            return np.zeros((n, max(k, 0)), np.float32), np.full((n, max(k, 0)), -1, np.int64)
        return self._index.search(queries, k)

    def vectors(self, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        mapped: Any = self._index  # an IndexIDMap2 (faiss's type information knows only Index)
        row_ids = faiss.vector_to_array(mapped.id_map).astype(np.int64)
        if ids is None:
            all_rows = mapped.index.reconstruct_n(0, len(row_ids)) if len(row_ids) else None
            return row_ids, all_rows if all_rows is not None else np.zeros((0, self.dim), np.float32)
        rows = np.flatnonzero(np.isin(row_ids, np.asarray(ids, np.int64)))
        if not len(rows):
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        return row_ids[rows], mapped.index.reconstruct_batch(rows)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def save(self, path: str | os.PathLike[str]) -> None:
        write_atomically(path, faiss.serialize_index(self._index).tobytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> FlatIndex:
        index = faiss.deserialize_index(np.fromfile(os.fspath(path), dtype=np.uint8))
        if index.d != dim:
            raise ValueError(f"index at {path} has dimension {index.d}, expected {dim}")
        return cls(dim, index)
