"""Approximate search for large galleries: FAISS HNSW (inner product).

HNSW cannot delete in place. Deletes are *tombstones*: the id stays in the
graph, is filtered out of results (the search fetches extra neighbours to make
up for them), and the graph is rebuilt from the live vectors once tombstones
exceed ``rebuild_fraction`` of the index. A re-added id is tombstoned and added anew.
An id may have several rows (a reference image and its catalogue views): removing it removes all.
"""

from __future__ import annotations

import io
import os
from typing import cast

import faiss
import numpy as np

from gallery.search.base import VectorIndex, write_atomically


class HNSWIndex(VectorIndex):
    kind = "hnsw"

    def __init__(
        self, dim: int, m: int = 32, ef_construction: int = 80, ef_search: int = 64, rebuild_fraction: float = 0.2
    ):
        super().__init__(dim)
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        self.rebuild_fraction = rebuild_fraction
        self._reset()

    def _reset(self) -> None:
        hnsw = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = self.ef_construction
        hnsw.hnsw.efSearch = self.ef_search
        self._index = hnsw
        self._row_ids = np.zeros(0, dtype=np.int64)  # row in HNSW → external id
        self._live: dict[int, list[int]] = {}  # external id → its rows
        self._rows = 0  # live rows
        self._dead = 0

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = self.check(vectors)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return
        self.remove(ids)
        start = self._index.ntotal
        self._index.add(vectors)
        self._row_ids = np.concatenate([self._row_ids, ids])
        for offset, ext in enumerate(ids.tolist()):
            self._live.setdefault(ext, []).append(start + offset)
        self._rows += len(ids)

    def remove(self, ids: np.ndarray) -> None:
        for ext in np.asarray(ids, dtype=np.int64).tolist():
            for row in self._live.pop(ext, ()):
                self._row_ids[row] = -1
                self._dead += 1
                self._rows -= 1
        if self._dead and self._dead > self.rebuild_fraction * max(1, self._index.ntotal):
            self._rebuild()

    def _rebuild(self) -> None:
        rows = np.array(sorted(r for rows in self._live.values() for r in rows), dtype=np.int64)
        vectors = (
            np.vstack([self._index.reconstruct(int(r)) for r in rows])
            if len(rows)
            else np.zeros((0, self.dim), np.float32)
        )
        ids = self._row_ids[rows] if len(rows) else np.zeros(0, np.int64)
        self._reset()
        if len(ids):
            self.add(ids, vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = self.check(queries)
        n = len(queries)
        if not self._live or k <= 0:
            return np.zeros((n, max(k, 0)), np.float32), np.full((n, max(k, 0)), -1, np.int64)
        fetch = min(self._index.ntotal, k + self._dead)
        # per-call parameters, not the shared index's efSearch: searches run side by side
        # faiss's bundled type information does not declare SearchParametersHNSW (it exists at run time)
        params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, fetch))  # type: ignore[attr-defined]
        scores, rows = self._index.search(queries, fetch, params=params)
        ids = np.where(rows >= 0, self._row_ids[np.maximum(rows, 0)], -1)
        out_scores = np.zeros((n, k), np.float32)
        out_ids = np.full((n, k), -1, np.int64)
        for i in range(n):
            keep = ids[i] >= 0
            kept_ids, kept_scores = ids[i][keep][:k], scores[i][keep][:k]
            out_ids[i, : len(kept_ids)] = kept_ids
            out_scores[i, : len(kept_scores)] = kept_scores
        return out_scores, out_ids

    def vectors(self, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if ids is None:
            rows = np.flatnonzero(self._row_ids >= 0)
            every = self._index.reconstruct_n(0, self._index.ntotal) if len(rows) else None
            return self._row_ids[rows], every[rows] if every is not None else np.zeros((0, self.dim), np.float32)
        picked = [r for i in np.asarray(ids, dtype=np.int64) for r in self._live.get(int(i), ())]
        if not picked:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        return self._row_ids[picked], self._index.reconstruct_batch(np.asarray(picked, np.int64))

    def __len__(self) -> int:
        return self._rows

    def save(self, path: str | os.PathLike[str]) -> None:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            index=faiss.serialize_index(self._index),
            row_ids=self._row_ids,
            params=np.array([self.m, self.ef_construction, self.ef_search, self.rebuild_fraction]),
        )
        write_atomically(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> HNSWIndex:
        with np.load(path, allow_pickle=False) as state:
            m, ef_construction, ef_search, rebuild_fraction = state["params"].tolist()
            index = cls(dim, int(m), int(ef_construction), int(ef_search), float(rebuild_fraction))
            # deserialize_index is declared to answer a plain Index; what was saved is an IndexHNSWFlat
            index._index = cast("faiss.IndexHNSWFlat", faiss.deserialize_index(state["index"]))
            row_ids = state["row_ids"]
        if index._index.d != dim:
            raise ValueError(f"index at {path} has dimension {index._index.d}, expected {dim}")
        index._row_ids = np.asarray(row_ids, dtype=np.int64)
        index._live = {}
        for row, ext in enumerate(index._row_ids.tolist()):
            if ext >= 0:
                index._live.setdefault(int(ext), []).append(row)
        index._dead = int((index._row_ids < 0).sum())
        index._rows = len(index._row_ids) - index._dead
        return index
