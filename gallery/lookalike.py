"""How close each SKU's nearest look-alike sits, and the open-set score that accounts for it.

The best cosine similarity alone makes confident mistakes between look-alike SKUs (apple varieties,
citrus, sibling packs of one brand): a 0.97 means less for a Gala apple, whose Pink Lady neighbour
sits close, than for a carton of oat milk. The decision score subtracts ``beta`` times the cosine
between the SKU's reference centroid and the nearest *other* enrolled SKU's centroid
(``lookalike``, never below 0). ``beta`` is fitted with the threshold on the fold protocol
(``evaluation.calibrate.fit_beta``) and stored in ``model.json``; ``beta = 0`` is the plain best
similarity. A centroid is the normalised mean of the SKU's reference *photos* (each image's first
row: its catalogue views are left out, as in the protocol the beta was fitted on).

Centroids are kept as per-SKU sums; after a change only the changed SKUs' rows are multiplied
with the others (one ``(changed, n_skus)`` product) instead of the ``n_skus²`` matrix (our own
code: no library keeps incremental nearest centroids).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from gallery.open_set_score import penalised
from gallery.search.base import VectorIndex

#: the lookalike of a SKU with no other SKU enrolled: nothing to confuse it with
NO_LOOKALIKE = 0.0


def adjusted_score(similarity: float | np.ndarray, lookalike: float | np.ndarray, beta: float) -> np.ndarray:
    """The open-set decision score: best similarity minus ``beta`` × the SKU's lookalike (clipped at 0:
    a SKU far from every other is not rewarded)."""
    return penalised(similarity, lookalike, beta)


def normalised(rows: np.ndarray) -> np.ndarray:
    """Each row at unit length; an all-zero row stays zero."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    out: np.ndarray = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    return out


def unit_centroids(vectors: np.ndarray, labels: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length mean vector per label ``(n_labels, d)`` and which labels have any vector."""
    sums = np.zeros((n_labels, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, np.asarray(labels, dtype=np.int64), vectors.astype(np.float64))
    return normalised(sums), np.linalg.norm(sums, axis=1) > 0


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
    """Per SKU of ``skus`` (sorted): the sum and count of its images' photos among the index rows
    ``(row_ids, vectors)``: the first row of each image id (the photo; its catalogue views follow it)."""
    names = sorted(skus)
    _, first = np.unique(np.asarray(row_ids, np.int64), return_index=True)
    ids = np.asarray(row_ids, np.int64)[first]
    wanted = {sku: i for i, sku in enumerate(names)}
    labels = np.fromiter((wanted.get(sku_of.get(i, ""), -1) for i in ids.tolist()), np.int64, len(ids))
    keep = labels >= 0
    sums = np.zeros((len(names), np.shape(vectors)[1]))
    np.add.at(sums, labels[keep], np.asarray(vectors, np.float64)[first][keep])
    return names, sums, np.bincount(labels[keep], minlength=len(names))


def refreshed(
    book: CentroidBook,
    index: VectorIndex,
    sku_of: Mapping[int, str],
    ids_of: Mapping[str, Collection[int]],
    skus: Collection[str] | None,
) -> CentroidBook:
    """``book`` after the photos of ``skus`` changed in ``index`` (``sku_of``: image → SKU, ``ids_of``: the
    reverse); ``skus`` None: a new book of every SKU, from one pass over the index."""
    if skus is None:
        row_ids, vectors = index.vectors()
        book = CentroidBook(index.dim)
        book.load(*sku_sums(row_ids, vectors, sku_of, set(ids_of)))
    elif skus:
        wanted = [i for sku in skus for i in ids_of.get(sku, ())]
        row_ids, vectors = index.vectors(np.asarray(wanted, np.int64))
        book.set_sums(*sku_sums(row_ids, vectors, sku_of, skus))
    return book


class CentroidBook:
    """Per-SKU sums of reference photos; each SKU's lookalike kept current as they change.

    Not thread-safe: its owner (the index follower) serialises changes and reads.
    """

    #: a change of more SKUs than this (and than a quarter of the book) rebuilds it at once
    rebuild_at = 64

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._reset(0)

    def _reset(self, capacity: int) -> None:
        self._row: dict[str, int] = {}
        self._skus: list[str | None] = []
        self._free: list[int] = []  # rows of dropped SKUs, reused
        self._sums = np.zeros((capacity, self.dim))
        self._units = np.zeros((capacity, self.dim))
        self._counts = np.zeros(capacity, np.int64)  # 0: a free row
        self._near = np.full(capacity, -np.inf)  # cosine to the nearest other SKU's centroid
        self._near_row = np.full(capacity, -1, np.int64)  # which row that is (-1: none)

    def __len__(self) -> int:
        return len(self._row)

    def copy(self) -> CentroidBook:
        """An independent copy (to change while searches read this one)."""
        twin = CentroidBook(self.dim)
        twin.rebuild_at = self.rebuild_at
        twin._row, twin._skus, twin._free = dict(self._row), list(self._skus), list(self._free)
        twin._sums, twin._units, twin._counts = self._sums.copy(), self._units.copy(), self._counts.copy()
        twin._near, twin._near_row = self._near.copy(), self._near_row.copy()
        return twin

    def lookalike(self, sku: str) -> float:
        row = self._row.get(sku)
        return NO_LOOKALIKE if row is None or self._near_row[row] < 0 else float(self._near[row])

    def load(self, skus: Sequence[str], sums: np.ndarray, counts: np.ndarray) -> None:
        """Replace everything at once: one blocked ``C @ C.T`` instead of a row update per SKU."""
        live = [i for i in range(len(skus)) if counts[i] > 0]
        self._reset(len(live))
        self._skus = [skus[i] for i in live]
        self._row = {skus[i]: row for row, i in enumerate(live)}
        self._sums[:] = np.asarray(sums, np.float64)[live].reshape(len(live), self.dim)
        self._counts[:] = np.asarray(counts, np.int64)[live]
        self._units[:] = normalised(self._sums)
        self._recompute(np.arange(len(live)))

    def set_sums(self, skus: Sequence[str], sums: np.ndarray, counts: np.ndarray) -> None:
        """The photos of each of ``skus`` now sum to ``sums[i]``, ``counts[i]`` of them (0: none left)."""
        if len(skus) > max(self.rebuild_at, len(self._row) // 4):  # most of the book: rebuilding it is cheaper
            merged = {s: (self._sums[r], int(self._counts[r])) for s, r in self._row.items()}
            merged.update({s: (np.asarray(t, np.float64), int(c)) for s, t, c in zip(skus, sums, counts)})
            names = list(merged)
            self.load(
                names,
                np.array([merged[n][0] for n in names]).reshape(-1, self.dim),
                np.array([merged[n][1] for n in names]),
            )
            return
        changed, dropped = [], []
        for sku, total, count in zip(skus, sums, counts):
            if count > 0:
                row = self._slot(sku)
                self._sums[row], self._counts[row] = total, count
                self._units[row] = normalised(self._sums[row : row + 1])[0]
                changed.append(row)
            elif sku in self._row:
                dropped.append(self._drop(sku))
        live = self._counts > 0
        moved = np.zeros(len(live), bool)
        if changed:
            rows = np.array(changed)
            sims = self._units[rows] @ self._units.T  # (changed, capacity)
            sims[:, ~live] = -np.inf
            sims[np.arange(len(rows)), rows] = -np.inf
            self._take_best(rows, sims)
            best_changed = sims.max(axis=0)  # for every row: its nearest among the changed ones
            from_row = rows[sims.argmax(axis=0)]
            others = live.copy()
            others[rows] = False
            moved = others & (best_changed >= self._near)
            self._near[moved], self._near_row[moved] = best_changed[moved], from_row[moved]
        gone = np.array(changed + dropped, np.int64)
        stale = live & ~moved & np.isin(self._near_row, gone)  # their nearest moved away or left
        stale[changed] = False
        self._recompute(np.flatnonzero(stale))

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

    def _grow(self, capacity: int) -> None:
        extra = capacity - len(self._counts)
        self._sums = np.concatenate([self._sums, np.zeros((extra, self.dim))])
        self._units = np.concatenate([self._units, np.zeros((extra, self.dim))])
        self._counts = np.concatenate([self._counts, np.zeros(extra, np.int64)])
        self._near = np.concatenate([self._near, np.full(extra, -np.inf)])
        self._near_row = np.concatenate([self._near_row, np.full(extra, -1, np.int64)])

    def _drop(self, sku: str) -> int:
        row = self._row.pop(sku)
        self._skus[row] = None
        self._free.append(row)
        self._sums[row] = self._units[row] = 0.0
        self._counts[row] = 0
        self._near[row], self._near_row[row] = -np.inf, -1
        return row

    def _take_best(self, rows: np.ndarray, sims: np.ndarray) -> None:
        best = sims.argmax(axis=1) if sims.shape[1] else np.full(len(rows), -1)
        value = sims[np.arange(len(rows)), best] if sims.shape[1] else np.full(len(rows), -np.inf)
        found = np.isfinite(value)
        self._near[rows] = np.where(found, value, -np.inf)
        self._near_row[rows] = np.where(found, best, -1)

    def _recompute(self, rows: np.ndarray, block: int = 2048) -> None:
        """Each of ``rows``' nearest other live row, ``block`` rows per product."""
        live = self._counts > 0
        for start in range(0, len(rows), block):
            part = rows[start : start + block]
            sims = self._units[part] @ self._units.T
            sims[:, ~live] = -np.inf
            sims[np.arange(len(part)), part] = -np.inf
            self._take_best(part, sims)
