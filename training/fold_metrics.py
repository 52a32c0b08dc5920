"""What the fold protocol measures of one fold model's vectors (``training.folds`` makes them).

Pure NumPy on the embeddings: closed-set top-1 (all, trained and never-trained SKUs; clean, "other
day" and flip-TTA queries), the open-set scores with the fold's SKUs not enrolled, and catalogue-photo
enrolment. ``training.fold_summary`` turns the rows of several folds into the summary.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from evaluation import metrics
from gallery.lookalike import label_lookalikes
from gallery.open_set_score import TableDecisions


@dataclass(frozen=True)
class Vectors:
    """One fold model's embeddings of everything the protocol needs (labels index ``skus``)."""

    skus: tuple[str, ...]
    gallery: np.ndarray
    gallery_labels: np.ndarray
    queries: np.ndarray
    shifted: np.ndarray
    flipped: np.ndarray
    query_labels: np.ndarray
    catalogue: np.ndarray  # (n_skus_with_photo, d)
    catalogue_labels: np.ndarray
    views: np.ndarray  # (n, d) synthetic views of the catalogue photos
    view_labels: np.ndarray


def top1(
    queries: np.ndarray,
    gallery: np.ndarray,
    gallery_labels: np.ndarray,
    query_labels: np.ndarray,
    n_skus: int,
    rows: np.ndarray | None = None,
) -> float:
    rows = np.arange(len(queries)) if rows is None else rows
    scores = metrics.best_score_per_sku(queries[rows] @ gallery.T, gallery_labels, n_skus)
    return metrics.top_k_accuracy(scores, query_labels[rows], 1)


def open_set_scores(
    queries: np.ndarray, v: Vectors, fold: set[int], lookalikes: np.ndarray | None = None
) -> dict[str, Any]:
    """Best score, its SKU's lookalike (``gallery.lookalike``), the second SKU's score (the runner-up,
    ``gallery.open_set_score``), right-or-wrong and known-or-not of every query with the fold's SKUs not
    enrolled (``lookalikes`` per label: computed when not given)."""
    enrolled = np.array([lab not in fold for lab in v.gallery_labels])
    scores = metrics.best_score_per_sku(queries @ v.gallery[enrolled].T, v.gallery_labels[enrolled], len(v.skus))
    known = np.array([lab not in fold for lab in v.query_labels])
    correct = (metrics.true_sku_rank(scores, np.where(known, v.query_labels, -1)) < 1) & known
    if lookalikes is None:
        lookalikes = label_lookalikes(v.gallery[enrolled], v.gallery_labels[enrolled], len(v.skus))
    decisions = TableDecisions.of(scores)
    return {
        "score": decisions.similarity,
        "lookalike": lookalikes[decisions.answer],
        "runner_up": decisions.runner_up,
        "correct": correct,
        "known": known,
    }


def evaluate_fold(v: Vectors, fold_skus: tuple[str, ...]) -> dict[str, Any]:
    fold = {v.skus.index(s) for s in fold_skus}
    n = len(v.skus)
    never = np.flatnonzero([lab in fold for lab in v.query_labels])
    trained = np.flatnonzero([lab not in fold for lab in v.query_labels])
    row: dict[str, Any] = {"queries": len(v.query_labels), "never_trained_queries": len(never)}
    for name, queries in (("clean", v.queries), ("shifted", v.shifted)):
        row[name] = {
            group: top1(queries, v.gallery, v.gallery_labels, v.query_labels, n, rows)
            for group, rows in (("all", None), ("trained", trained), ("never_trained", never))
        }
    tta = v.queries + v.flipped
    tta /= np.linalg.norm(tta, axis=1, keepdims=True)
    row["clean_flip_tta"] = {
        "all": top1(tta, v.gallery, v.gallery_labels, v.query_labels, n),
        "never_trained": top1(tta, v.gallery, v.gallery_labels, v.query_labels, n, never),
    }
    row["open_set"] = {}
    enrolled = np.array([lab not in fold for lab in v.gallery_labels])
    lookalikes = label_lookalikes(v.gallery[enrolled], v.gallery_labels[enrolled], n)  # one gallery, both conditions
    for name, queries in (("clean", v.queries), ("shifted", v.shifted)):
        s = open_set_scores(queries, v, fold, lookalikes)
        row["open_set"][name] = {
            "auroc": metrics.auroc(s["score"][s["known"]], s["score"][~s["known"]]),
            **{k: s[k].tolist() for k in ("score", "lookalike", "runner_up", "correct", "known")},
        }
    with_views = np.concatenate([v.catalogue, v.views])
    with_view_labels = np.concatenate([v.catalogue_labels, v.view_labels])
    row["catalogue"] = {
        "photo_only": {
            "all": top1(v.queries, v.catalogue, v.catalogue_labels, v.query_labels, n),
            "never_trained": top1(v.queries, v.catalogue, v.catalogue_labels, v.query_labels, n, never),
        },
        "with_views": {
            "all": top1(v.queries, with_views, with_view_labels, v.query_labels, n),
            "never_trained": top1(v.queries, with_views, with_view_labels, v.query_labels, n, never),
        },
    }
    return row


#: the fields of ``Vectors`` that hold embeddings (the rest are labels and the SKU names)
EMBEDDING_FIELDS = tuple(f.name for f in fields(Vectors) if f.name != "skus" and not f.name.endswith("labels"))
