"""Retrieval and open-set metrics: pure functions on NumPy arrays (no TensorFlow, no sklearn).

Conventions used throughout:

* ``similarity`` is ``(n_queries, n_gallery)``, higher is closer (cosine of unit vectors).
* ``gallery_labels`` are ints ``0 .. n_skus-1``; ``query_labels`` use the same ids,
  and ``-1`` for a query whose SKU has no image in the gallery (it can never be right).
* Ties are broken deterministically: between SKUs, the lower SKU id ranks first;
  between gallery images, the lower gallery index ranks first (a stable sort).
  Cosine ties hardly happen with real photos; the rule only makes results reproducible.
* Undefined results (an empty set) are ``nan``, never an exception, so one empty
  group does not sink a whole evaluation; callers print ``nan`` as "n/a".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def best_score_per_sku(similarity: np.ndarray, gallery_labels: np.ndarray, n_skus: int) -> np.ndarray:
    """``(n_queries, n_skus)``: each SKU's best-scoring gallery image; ``-inf`` for a SKU with none."""
    similarity = np.asarray(similarity, dtype=np.float64)
    gallery_labels = np.asarray(gallery_labels)
    if similarity.ndim != 2 or similarity.shape[1] != len(gallery_labels):
        raise ValueError(f"similarity of shape {similarity.shape} does not match {len(gallery_labels)} gallery labels")
    out = np.full((similarity.shape[0], n_skus), -np.inf)
    for sku in np.unique(gallery_labels):
        if not 0 <= sku < n_skus:
            raise ValueError(f"gallery label {sku} is outside 0..{n_skus - 1}")
        out[:, sku] = similarity[:, gallery_labels == sku].max(axis=1)
    return out


def rank_skus(sku_scores: np.ndarray) -> np.ndarray:
    """SKU ids best first per query (ties: lower id first); SKUs without images come last."""
    return np.argsort(-np.asarray(sku_scores), axis=1, kind="stable")


def true_sku_rank(sku_scores: np.ndarray, query_labels: np.ndarray) -> np.ndarray:
    """0-based rank of each query's true SKU among the SKUs (``inf`` when it cannot be found).

    Consistent with :func:`rank_skus`: rank = SKUs scoring strictly higher
    + tied SKUs with a lower id.
    """
    sku_scores = np.asarray(sku_scores, dtype=np.float64)
    labels = np.asarray(query_labels)
    ranks = np.full(len(labels), np.inf)
    present = labels >= 0
    if not present.any():
        return ranks
    rows = np.flatnonzero(present)
    true = sku_scores[rows, labels[rows]]
    ids = np.arange(sku_scores.shape[1])
    higher = (sku_scores[rows] > true[:, None]).sum(axis=1)
    tied_before = ((sku_scores[rows] == true[:, None]) & (ids[None, :] < labels[rows][:, None])).sum(axis=1)
    found = np.isfinite(true)
    ranks[rows[found]] = (higher + tied_before)[found]
    return ranks


def top_k_accuracy(sku_scores: np.ndarray, query_labels: np.ndarray, k: int) -> float:
    """Fraction of queries whose SKU is among the ``k`` best SKUs (best image per SKU)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(query_labels) == 0:
        return float("nan")
    return float(np.mean(true_sku_rank(sku_scores, query_labels) < k))


def _image_order(similarity: np.ndarray) -> np.ndarray:
    return np.argsort(-np.asarray(similarity, dtype=np.float64), axis=1, kind="stable")


def recall_at_k(
    similarity: np.ndarray, gallery_labels: np.ndarray, query_labels: np.ndarray, ks: Sequence[int] = (1, 2, 4, 8)
) -> dict[int, float]:
    """Image-level Recall@k of the metric-learning literature: any of the k nearest images has the right SKU."""
    query_labels = np.asarray(query_labels)
    if len(query_labels) == 0:
        return {int(k): float("nan") for k in ks}
    sorted_labels = np.asarray(gallery_labels)[_image_order(similarity)]
    match = sorted_labels == query_labels[:, None]
    return {int(k): float(match[:, :k].any(axis=1).mean()) for k in ks}


def map_at_r(similarity: np.ndarray, gallery_labels: np.ndarray, query_labels: np.ndarray) -> float:
    """Mean Average Precision at R (Musgrave, Belongie, Lim, "A Metric Learning Reality Check", 2020).

    For a query with R gallery images of its SKU: AP@R = (1/R) * sum_{i<=R} P(i) * rel(i)
    over its R nearest images. Queries whose SKU has no gallery image are left out
    (R = 0 leaves AP@R undefined); ``nan`` when no query is left.
    """
    gallery_labels = np.asarray(gallery_labels)
    query_labels = np.asarray(query_labels)
    order = _image_order(similarity)
    values = []
    for row, label in enumerate(query_labels):
        r = int((gallery_labels == label).sum())
        if r == 0:
            continue
        rel = gallery_labels[order[row, :r]] == label
        precision = np.cumsum(rel) / np.arange(1, r + 1)
        values.append(float((precision * rel).sum() / r))
    return float(np.mean(values)) if values else float("nan")


@dataclass(frozen=True)
class SkuAccuracy:
    sku: str
    queries: int
    correct: int
    accuracy: float


def per_sku_accuracy(true_skus: Sequence[str], predicted_skus: Sequence[str | None]) -> list[SkuAccuracy]:
    """Top-1 accuracy of each SKU's queries, sorted by SKU name."""
    if len(true_skus) != len(predicted_skus):
        raise ValueError(f"{len(true_skus)} true SKUs but {len(predicted_skus)} predictions")
    totals: Counter[str] = Counter(true_skus)
    hits: Counter[str] = Counter(t for t, p in zip(true_skus, predicted_skus) if t == p)
    return [SkuAccuracy(sku, totals[sku], hits[sku], hits[sku] / totals[sku]) for sku in sorted(totals)]


@dataclass(frozen=True)
class Confusion:
    true_sku: str
    predicted_sku: str
    count: int
    fraction: float  # of the true SKU's queries


def most_confused(true_skus: Sequence[str], predicted_skus: Sequence[str | None], top: int = 10) -> list[Confusion]:
    """The most frequent wrong top-1 answers (true → predicted), most frequent first, then by name."""
    totals: Counter[str] = Counter(true_skus)
    wrong: Counter[tuple[str, str]] = Counter(
        (t, p) for t, p in zip(true_skus, predicted_skus) if p is not None and t != p
    )
    pairs = sorted(wrong.items(), key=lambda item: (-item[1], item[0]))
    return [Confusion(t, p, n, n / totals[t]) for (t, p), n in pairs[:top]]


def auroc(known_scores: np.ndarray, unknown_scores: np.ndarray) -> float:
    """Area under the ROC curve for telling known queries (positives) from unknown ones by score.

    Equals P(score_known > score_unknown) + 0.5 * P(equal) (Mann-Whitney U with
    average ranks for ties). ``nan`` when either set is empty.
    """
    pos = np.asarray(known_scores, dtype=np.float64).ravel()
    neg = np.asarray(unknown_scores, dtype=np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    values = np.concatenate([pos, neg])
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    ranks = np.empty(len(values))
    # average rank (1-based) of each run of equal values
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


@dataclass(frozen=True)
class OpenSetResult:
    """What a threshold does: a query is accepted when its best score >= threshold."""

    threshold: float
    known: int  # queries whose SKU is in the gallery
    unknown: int
    known_accuracy: float  # known queries accepted with the right SKU / known queries
    known_acceptance: float  # known queries accepted (right or wrong) / known queries
    unknown_rejection: float  # unknown queries rejected / unknown queries
    accepted: int
    precision: float  # right answers / accepted answers (accepted unknowns are wrong)


def open_set_at_threshold(
    scores: np.ndarray, correct: np.ndarray, is_known: np.ndarray, threshold: float
) -> OpenSetResult:
    """``scores``: best score per query; ``correct``: top-1 SKU right (ignored for unknowns)."""
    scores = np.asarray(scores, dtype=np.float64)
    return open_set_from_decisions(scores >= threshold, correct, is_known, threshold)


def open_set_from_decisions(
    accepted: np.ndarray, correct: np.ndarray, is_known: np.ndarray, threshold: float
) -> OpenSetResult:
    """The same counts from accept/reject decisions already made (e.g. one threshold per fold)."""
    accepted = np.asarray(accepted, dtype=bool)
    is_known = np.asarray(is_known, dtype=bool)
    correct = np.asarray(correct, dtype=bool)
    if not len(accepted) == len(correct) == len(is_known):
        raise ValueError(f"lengths differ: {len(accepted)} decisions, {len(correct)} correct, {len(is_known)} known")
    correct = correct & is_known

    def mean(mask: np.ndarray, of: np.ndarray) -> float:
        return float(mask[of].mean()) if of.any() else float("nan")

    n_accepted = int(accepted.sum())
    return OpenSetResult(
        threshold=float(threshold),
        known=int(is_known.sum()),
        unknown=int((~is_known).sum()),
        known_accuracy=mean(correct & accepted, is_known),
        known_acceptance=mean(accepted, is_known),
        unknown_rejection=mean(~accepted, ~is_known),
        accepted=n_accepted,
        precision=float((correct & accepted).sum() / n_accepted) if n_accepted else float("nan"),
    )
