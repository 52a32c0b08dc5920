"""Evaluate an embedding model on a gallery folder and a query folder (one sub-folder per SKU).

Everything a run measures comes from one pass of embeddings (cached per model
version and file content, so a second run or a second model on the same photos
is cheap):

* closed set: every gallery SKU enrolled; queries of those SKUs; top-1/top-5
  (best image per SKU, as the service answers), Recall@k, mAP@R, per-SKU accuracy,
  the most confused pairs, and top-1/top-5 per group (e.g. SKUs held out of training);
* open set (when some query SKUs are not enrolled, or ``unknown_skus`` are removed
  from the gallery): AUROC known-vs-unknown on the best score, and known accuracy /
  unknown rejection at a threshold (given, or calibrated on these queries, together
  with a 2-fold cross-fitted estimate that never judges a threshold on its own data);
* robustness: the closed-set accuracy again with degraded queries (``robustness.py``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import numpy as np

from embedder.runtime import Embedder
from evaluation import metrics
from evaluation.calibrate import calibrate_threshold, cross_fit, make_folds
from evaluation.data import EmbeddingCache, ImageSet, embed_files
from evaluation.results import (
    ClosedSet,
    EvalResult,
    GroupScore,
    OpenSet,
    QueryOutcome,
    RobustnessRow,
)
from evaluation.robustness import CLEAN, CONDITIONS
from gallery.lookalike import label_lookalikes
from gallery.open_set_score import OpenSetScore, TableDecisions

logger = logging.getLogger(__name__)


def _groups(ranks: np.ndarray, skus: list[str], groups: dict[str, set[str]]) -> list[GroupScore]:
    out = []
    for name, members in groups.items():
        mask = np.array([s in members for s in skus], dtype=bool)
        top1 = float(np.mean(ranks[mask] < 1)) if mask.any() else float("nan")
        top5 = float(np.mean(ranks[mask] < 5)) if mask.any() else float("nan")
        out.append(GroupScore(name, int(mask.sum()), top1, top5))
    return out


def _outcomes(
    sim: np.ndarray,
    per_sku_scores: np.ndarray,
    g_labels: np.ndarray,
    vocab: list[str],
    gallery: ImageSet,
    q_paths: Sequence[Path],
    q_skus: Sequence[str],
    top: int = 5,
) -> list[QueryOutcome]:
    """Each query's ``top`` SKUs with scores and the gallery photo that scored best for each."""
    order = metrics.rank_skus(per_sku_scores)[:, :top]
    members = [np.flatnonzero(g_labels == j) for j in range(len(vocab))]
    outcomes = []
    for row, (path, sku) in enumerate(zip(q_paths, q_skus)):
        best = [int(j) for j in order[row] if np.isfinite(per_sku_scores[row, j])]
        photos = [int(members[j][np.argmax(sim[row, members[j]])]) for j in best]
        outcomes.append(
            QueryOutcome(
                str(path),
                sku,
                [vocab[j] for j in best],
                [float(per_sku_scores[row, j]) for j in best],
                [str(gallery.paths[i]) for i in photos],
            )
        )
    return outcomes


def closed_set(
    similarity: np.ndarray,
    gallery: ImageSet,
    queries: ImageSet,
    groups: dict[str, set[str]],
    ks: Sequence[int] = (1, 2, 4, 8),
    top_confused: int = 10,
) -> tuple[ClosedSet, list[QueryOutcome]]:
    """Closed-set metrics on the queries whose SKU has gallery images (``similarity`` covers all queries)."""
    vocab = sorted(set(gallery.skus))
    index = {sku: i for i, sku in enumerate(vocab)}
    g_labels = np.array([index[s] for s in gallery.skus], dtype=np.int64)
    keep = np.array([s in index for s in queries.skus], dtype=bool)
    q_skus = [s for s, k in zip(queries.skus, keep) if k]
    q_labels = np.array([index[s] for s in q_skus], dtype=np.int64)
    sim = similarity[keep]
    per_sku_scores = metrics.best_score_per_sku(sim, g_labels, len(vocab))
    ranks = metrics.true_sku_rank(per_sku_scores, q_labels)
    q_paths = [p for p, k in zip(queries.paths, keep) if k]
    outcomes = _outcomes(sim, per_sku_scores, g_labels, vocab, gallery, q_paths, q_skus)
    predicted = [o.top_skus[0] if o.top_skus else None for o in outcomes]
    result = ClosedSet(
        gallery_images=len(gallery.paths),
        gallery_skus=len(vocab),
        queries=len(q_skus),
        top1=metrics.top_k_accuracy(per_sku_scores, q_labels, 1),
        top5=metrics.top_k_accuracy(per_sku_scores, q_labels, 5),
        recall_at_k=metrics.recall_at_k(sim, g_labels, q_labels, ks),
        map_at_r=metrics.map_at_r(sim, g_labels, q_labels),
        groups=_groups(ranks, q_skus, groups),
        per_sku=metrics.per_sku_accuracy(q_skus, predicted),
        confused=metrics.most_confused(q_skus, predicted, top_confused),
    )
    return result, outcomes


#: Operating points reported besides the calibrated threshold: fractions of unknown queries rejected.
REJECTION_POINTS = (0.5, 0.8, 0.9, 0.95)


def _rejecting(unknown_scores: np.ndarray, fractions: Sequence[float]) -> list[float]:
    """For each fraction r, the lowest threshold that rejects at least r of the unknown queries (score < t)."""
    ordered = np.sort(unknown_scores)
    return [float(np.nextafter(ordered[max(1, math.ceil(r * len(ordered) - 1e-9)) - 1], np.inf)) for r in fractions]


def open_set(
    similarity: np.ndarray,
    gallery: ImageSet,
    queries: ImageSet,
    unknown_skus: set[str],
    threshold: float | None = None,
    target_precision: float = 0.99,
    seed: int = 0,
    examples: int = 8,
    gallery_vectors: np.ndarray | None = None,
    lookalike_beta: float = 0.0,
    runner_up_gamma: float = 0.0,
) -> OpenSet | None:
    """Remove ``unknown_skus`` from the gallery; their queries (and any of SKUs absent from it) must be rejected.

    The score is the one the service decides on (``gallery.open_set_score``): the best similarity, less
    ``lookalike_beta`` × the best SKU's lookalike (``gallery.lookalike``, from ``gallery_vectors``) and
    ``runner_up_gamma`` × the second SKU's similarity, when the model has them."""
    enrolled = np.array([s not in unknown_skus for s in gallery.skus], dtype=bool)
    vocab = sorted({s for s, e in zip(gallery.skus, enrolled) if e})
    if not vocab:
        raise ValueError(f"no SKU left in the gallery once the unknown SKUs {sorted(unknown_skus)} are removed")
    index = {sku: i for i, sku in enumerate(vocab)}
    g_labels = np.array([index[s] for s, e in zip(gallery.skus, enrolled) if e], dtype=np.int64)
    is_known = np.array([s in index for s in queries.skus], dtype=bool)
    if is_known.all():
        return None
    per_sku_scores = metrics.best_score_per_sku(similarity[:, enrolled], g_labels, len(vocab))
    lookalikes = None
    if lookalike_beta:
        if gallery_vectors is None:
            raise ValueError("a lookalike_beta needs the gallery_vectors to find each SKU's lookalike")
        lookalikes = label_lookalikes(gallery_vectors[enrolled], g_labels, len(vocab))
    best = TableDecisions.of(per_sku_scores).scores(OpenSetScore(lookalike_beta, runner_up_gamma), lookalikes)
    q_labels = np.array([index.get(s, -1) for s in queries.skus], dtype=np.int64)
    correct = metrics.true_sku_rank(per_sku_scores, q_labels) < 1
    unknown_names = sorted({s for s, k in zip(queries.skus, is_known) if not k})
    unknown_rows = np.flatnonzero(~is_known)
    worst = unknown_rows[np.argsort(-best[unknown_rows], kind="stable")[:examples]]
    g_sub = gallery.subset(enrolled.tolist())
    dangerous = _outcomes(
        similarity[worst][:, enrolled],
        per_sku_scores[worst],
        g_labels,
        vocab,
        g_sub,
        [queries.paths[i] for i in worst],
        [queries.skus[i] for i in worst],
    )
    points = [
        metrics.open_set_at_threshold(best, correct, is_known, t) for t in _rejecting(best[~is_known], REJECTION_POINTS)
    ]
    calibration = fitted = None
    if threshold is None:
        calibration = calibrate_threshold(best, correct, is_known, target_precision)
        threshold, source = (
            calibration.threshold,
            f"calibrated on these queries (target precision {target_precision:g})",
        )
        try:
            folds = make_folds(list(queries.skus), set(unknown_names), n_folds=2, seed=seed)
            fitted = cross_fit(best, correct, is_known, folds, target_precision)
        except ValueError as exc:
            logger.warning("no cross-fitted threshold estimate: %s", exc)
    else:
        source = "given"
    return OpenSet(
        gallery_skus=len(vocab),
        unknown_skus=unknown_names,
        auroc=metrics.auroc(best[is_known], best[~is_known]),
        threshold_source=source,
        at_threshold=metrics.open_set_at_threshold(best, correct, is_known, threshold),
        calibration=calibration,
        cross_fitted=fitted,
        operating_points=points,
        known_scores=best[is_known].tolist(),
        unknown_scores=best[~is_known].tolist(),
        unknown_examples=dangerous,
    )


def evaluate_model(
    embedder: Embedder,
    label: str,
    gallery: ImageSet,
    queries: ImageSet,
    *,
    unknown_skus: AbstractSet[str] = frozenset(),
    groups: dict[str, set[str]] | None = None,
    threshold: float | None = None,
    target_precision: float = 0.99,
    conditions: tuple[str, ...] = (),
    cache: EmbeddingCache | None = None,
    batch_size: int = 32,
    workers: int = 2,
    seed: int = 0,
    model_info: dict[str, Any] | None = None,
    ks: Sequence[int] = (1, 2, 4, 8),
    top_confused: int = 10,
    lookalike_beta: float = 0.0,
    runner_up_gamma: float = 0.0,
) -> EvalResult:
    """Embed both folders once and measure everything (see the module docstring)."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    g_vectors = embed_files(embedder, gallery.paths, cache=cache, batch_size=batch_size, workers=workers)
    q_vectors = embed_files(embedder, queries.paths, cache=cache, batch_size=batch_size, workers=workers)
    seconds["embed"] = time.perf_counter() - start
    groups = groups or {}
    similarity = q_vectors @ g_vectors.T
    closed, outcomes = closed_set(similarity, gallery, queries, groups, ks, top_confused)
    opened = open_set(
        similarity,
        gallery,
        queries,
        set(unknown_skus),
        threshold,
        target_precision,
        seed,
        gallery_vectors=g_vectors,
        lookalike_beta=lookalike_beta,
        runner_up_gamma=runner_up_gamma,
    )
    rows = [RobustnessRow(CLEAN, closed.queries, closed.top1, closed.top5, closed.groups)] if conditions else []
    enrolled = set(gallery.skus)
    known_queries = queries.subset([s in enrolled for s in queries.skus])
    for condition in conditions:
        if condition not in CONDITIONS:
            raise ValueError(f"unknown robustness condition {condition!r}; choose from {list(CONDITIONS)}")
        t0 = time.perf_counter()
        vectors = embed_files(
            embedder, known_queries.paths, cache=cache, condition=condition, batch_size=batch_size, workers=workers
        )
        seconds[f"embed_{condition}"] = time.perf_counter() - t0
        degraded, _ = closed_set(vectors @ g_vectors.T, gallery, known_queries, groups, ks)
        rows.append(RobustnessRow(condition, degraded.queries, degraded.top1, degraded.top5, degraded.groups))
    seconds["total"] = time.perf_counter() - start
    info = dict(model_info or {})
    info.setdefault("version", embedder.version)
    return EvalResult(label, info, closed, opened, rows, outcomes, seconds)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, dicts, lists and floats → JSON-ready values (``nan``/``inf`` become ``None``)."""
    if hasattr(value, "__dataclass_fields__"):
        return {name: to_jsonable(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value
