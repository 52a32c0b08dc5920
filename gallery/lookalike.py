"""How close each SKU's nearest look-alike sits, and the open-set score that accounts for it.

The best cosine similarity alone makes confident mistakes between look-alike SKUs (apple varieties,
citrus, sibling packs of one brand): a 0.97 means less for a Gala apple, whose Pink Lady neighbour
sits close, than for a carton of oat milk. The decision score subtracts ``beta`` times the cosine
between the SKU's reference centroid and the nearest *other* enrolled SKU's centroid
(``lookalike``). ``beta`` is fitted with the threshold on the fold protocol (``fit_beta``) and
stored in ``model.json``; ``beta = 0`` is the plain best similarity.

Centroids are kept as per-SKU sums so that adding or removing a reference vector is exact, and the
nearest-other similarity of every SKU is updated with one ``(n_skus, d)`` product per change
instead of the ``n_skus²`` matrix (our own code: no library keeps incremental nearest centroids).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

#: the lookalike of a SKU with no other SKU enrolled: nothing to confuse it with
NO_LOOKALIKE = 0.0


def adjusted_score(similarity: float | np.ndarray, lookalike: float | np.ndarray, beta: float) -> np.ndarray:
    """The open-set decision score: best similarity minus ``beta`` × the SKU's lookalike."""
    return np.asarray(similarity, dtype=np.float64) - beta * np.asarray(lookalike, dtype=np.float64)


def unit_centroids(vectors: np.ndarray, labels: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length mean vector per label ``(n_labels, d)`` and which labels have any vector."""
    sums = np.zeros((n_labels, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, np.asarray(labels, dtype=np.int64), vectors.astype(np.float64))
    norms = np.linalg.norm(sums, axis=1)
    present = norms > 0
    sums[present] /= norms[present, None]
    return sums, present


def nearest_other(centroids: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Per label: cosine to the nearest other present label's centroid (``NO_LOOKALIKE`` if none)."""
    sims = centroids @ centroids.T
    np.fill_diagonal(sims, -np.inf)
    sims[:, ~present] = -np.inf
    best = sims.max(axis=1) if len(sims) else np.zeros(0)
    return np.where(np.isfinite(best), best, NO_LOOKALIKE)


def label_lookalikes(vectors: np.ndarray, labels: np.ndarray, n_labels: int) -> np.ndarray:
    """``nearest_other`` of the centroids of a labelled gallery: what the service computes, batched."""
    centroids, present = unit_centroids(vectors, labels, n_labels)
    return nearest_other(centroids, present)


def sku_sums(
    row_ids: np.ndarray, vectors: np.ndarray, sku_of: Mapping[int, str], skus: Collection[str]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per SKU of ``skus`` (sorted): the sum and count of the index rows ``(row_ids, vectors)`` whose
    image ``sku_of`` maps to it (rows of other SKUs ignored)."""
    names = sorted(skus)
    label = {sku: i for i, sku in enumerate(names)}
    labels = np.array([label.get(sku_of.get(int(i), ""), -1) for i in row_ids], np.int64)
    keep = labels >= 0
    sums = np.zeros((len(names), vectors.shape[1]))
    np.add.at(sums, labels[keep], np.asarray(vectors, np.float64)[keep])
    return names, sums, np.bincount(labels[keep], minlength=len(names))


@dataclass(frozen=True)
class BetaFit:
    beta: float
    weights: tuple[float, float, float]  # logistic intercept, similarity, lookalike (standardised inputs undone)
    samples: int


def fit_beta(similarity: np.ndarray, lookalike: np.ndarray, correct: np.ndarray, l2: float = 1e-2) -> BetaFit:
    """``beta`` from a logistic regression of "the answer is right" on (similarity, lookalike).

    The regression's score ``w0 + w1·similarity + w2·lookalike`` orders answers like
    ``similarity − beta·lookalike`` with ``beta = −w2 / w1``; clipped at 0 (a lookalike never helps).
    """
    s = np.asarray(similarity, np.float64)
    look = np.asarray(lookalike, np.float64)
    y = np.asarray(correct, np.float64)
    if not (len(s) == len(look) == len(y)) or len(s) < 3:
        raise ValueError(f"need ≥ 3 equal-length samples, got {len(s)}, {len(look)} and {len(y)}")
    if y.min() == y.max():
        raise ValueError(f"all {len(y)} answers are {'right' if y[0] else 'wrong'}: nothing to fit beta on")
    x = np.c_[s, look]
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-12
    design = np.c_[np.ones(len(x)), (x - mean) / std]
    w = np.zeros(3)
    for _ in range(100):  # Newton steps; a 3-parameter ridge logistic converges in a handful
        p = 1.0 / (1.0 + np.exp(-design @ w))
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + l2 * np.eye(3)
        step = np.linalg.solve(hessian, design.T @ (p - y) + l2 * w)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    w1, w2 = w[1] / std[0], w[2] / std[1]
    w0 = w[0] - w1 * mean[0] - w2 * mean[1]
    beta = max(0.0, float(-w2 / w1)) if w1 > 0 else 0.0
    return BetaFit(beta=beta, weights=(float(w0), float(w1), float(w2)), samples=len(s))


class CentroidBook:
    """Per-SKU sums of reference vectors; each SKU's lookalike kept current as vectors come and go.

    Not thread-safe: its owner (the index follower) serialises changes and reads.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._row: dict[str, int] = {}
        self._skus: list[str | None] = []
        self._sums = np.zeros((0, dim), np.float64)
        self._counts = np.zeros(0, np.int64)
        self._units = np.zeros((0, dim), np.float64)
        self._near = np.zeros(0, np.float64)  # cosine to the nearest other SKU's centroid
        self._near_row = np.zeros(0, np.int64)  # which row that is (-1: none)
        self._free: list[int] = []  # rows of dropped SKUs, reused

    def _grow(self, capacity: int) -> None:
        extra = capacity - len(self._counts)
        self._sums = np.concatenate([self._sums, np.zeros((extra, self.dim))])
        self._units = np.concatenate([self._units, np.zeros((extra, self.dim))])
        self._counts = np.concatenate([self._counts, np.zeros(extra, np.int64)])
        self._near = np.concatenate([self._near, np.full(extra, -np.inf)])
        self._near_row = np.concatenate([self._near_row, np.full(extra, -1, np.int64)])

    def __len__(self) -> int:
        return len(self._row)

    def load(self, skus: list[str], sums: np.ndarray, counts: np.ndarray, block: int = 2048) -> None:
        """Fill an empty book at once: one blocked ``C @ C.T`` instead of a row update per SKU."""
        if len(self._row):
            raise ValueError(f"load fills an empty book; this one holds {len(self._row)} SKUs")
        live = [(s, i) for i, s in enumerate(skus) if counts[i] > 0]
        n = len(live)
        self._skus = [s for s, _ in live]
        self._row = {s: row for row, (s, _) in enumerate(live)}
        self._free = []
        self._sums = np.asarray(sums, np.float64)[[i for _, i in live]].reshape(n, self.dim)
        self._counts = np.asarray(counts, np.int64)[[i for _, i in live]]
        norms = np.linalg.norm(self._sums, axis=1, keepdims=True)
        self._units = np.divide(self._sums, norms, out=np.zeros_like(self._sums), where=norms > 0)
        self._near, self._near_row = np.full(n, -np.inf), np.full(n, -1, np.int64)
        for start in range(0, n, block):
            sims = self._units[start : start + block] @ self._units.T
            sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf
            if n > 1:
                best = sims.argmax(axis=1)
                self._near[start : start + len(sims)] = sims[np.arange(len(sims)), best]
                self._near_row[start : start + len(sims)] = best

    def lookalike(self, sku: str) -> float:
        row = self._row.get(sku)
        return NO_LOOKALIKE if row is None or self._near_row[row] < 0 else float(self._near[row])

    def add(self, sku: str, vectors: np.ndarray) -> None:
        self._change(sku, np.atleast_2d(np.asarray(vectors, np.float64)), +1)

    def remove(self, sku: str, vectors: np.ndarray) -> None:
        self._change(sku, np.atleast_2d(np.asarray(vectors, np.float64)), -1)

    def _slot(self, sku: str) -> int:
        row = self._row.get(sku)
        if row is not None:
            return row
        if self._free:
            row = self._free.pop()
        else:
            row = len(self._skus)
            self._skus.append(None)
            if row == len(self._counts):  # full: double the capacity (amortised O(d) per new SKU)
                self._grow(max(8, 2 * row))
        self._skus[row] = sku
        self._row[sku] = row
        return row

    def _change(self, sku: str, vectors: np.ndarray, sign: int) -> None:
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors of dimension {vectors.shape[1]} for a book of dimension {self.dim}")
        row = self._row.get(sku)
        if sign < 0 and row is None:
            return
        total = (self._sums[row] if row is not None else 0.0) + sign * vectors.sum(axis=0)
        count = (int(self._counts[row]) if row is not None else 0) + sign * len(vectors)
        self.set_sum(sku, total, count)

    def set_sum(self, sku: str, vector_sum: np.ndarray, count: int) -> None:
        """The SKU's reference vectors are now ``count`` vectors summing to ``vector_sum`` (0: it has none)."""
        if count <= 0:
            if sku in self._row:
                self._drop(self._row[sku])
            return
        row = self._slot(sku)
        self._sums[row] = vector_sum
        self._counts[row] = count
        norm = np.linalg.norm(self._sums[row])
        self._units[row] = self._sums[row] / norm if norm > 0 else 0.0
        self._moved(row)

    def _drop(self, row: int) -> None:
        sku = self._skus[row]
        assert sku is not None
        del self._row[sku]
        self._skus[row] = None
        self._free.append(row)
        self._sums[row] = self._units[row] = 0.0
        self._counts[row] = 0
        self._near[row], self._near_row[row] = -np.inf, -1
        for other in np.flatnonzero(self._near_row == row):
            self._recompute(int(other))

    def _live(self) -> np.ndarray:
        return self._counts > 0

    def _recompute(self, row: int) -> None:
        sims = self._units @ self._units[row]
        sims[~self._live()] = -np.inf
        sims[row] = -np.inf
        best = int(np.argmax(sims))
        self._near[row], self._near_row[row] = (sims[best], best) if np.isfinite(sims[best]) else (-np.inf, -1)

    def _moved(self, row: int) -> None:
        """``row``'s centroid changed: its own nearest, and every row it is now nearer to or was nearest of."""
        self._recompute(row)
        sims = self._units @ self._units[row]
        others = self._live()
        others[row] = False
        nearer = others & (sims >= self._near)
        self._near[nearer], self._near_row[nearer] = sims[nearer], row
        for other in np.flatnonzero(others & ~nearer & (self._near_row == row)):
            self._recompute(int(other))  # it moved away from ``other``: someone else may be nearer now
