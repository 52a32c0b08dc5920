"""Choose the open-set threshold from labelled queries for a precision target.

A query is *accepted* when its best score reaches the threshold. An accepted
answer is right when its top-1 SKU is the query's SKU; an accepted query of an
unknown SKU (one not enrolled) is always wrong. The threshold picked is the
**lowest** one whose accepted answers reach the target precision: of all the
thresholds that meet the target it accepts the most queries.

When no threshold reaches the target, the one with the best precision is
returned (ties: the lowest, accepting the most), ``reached`` is False and
``note`` says so; when not even one accepted answer is right, the threshold is
set just above the best score (reject everything). The caller decides what to
do with an unreached target: ``skulens calibrate`` prints a warning and still
stores it unless ``--dry-run``.

The threshold is placed half-way between the lowest accepted score and the
next score below it, so that float32 vs float64 round-off in the serving path
cannot flip a query that sat exactly on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.metrics import OpenSetResult, open_set_at_threshold, open_set_from_decisions

logger = logging.getLogger(__name__)


def _trunc(value: float) -> str:
    """4 decimals, truncated: a note never claims more precision than was reached."""
    return f"{int(value * 10_000) / 10_000:.4f}"


@dataclass(frozen=True)
class Calibration:
    threshold: float
    target_precision: float
    reached: bool
    result: OpenSetResult  # what the threshold does on the calibration queries
    note: str


def _check(
    scores: np.ndarray, correct: np.ndarray, is_known: np.ndarray, target: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    is_known = np.asarray(is_known, dtype=bool).ravel()
    correct = np.asarray(correct, dtype=bool).ravel() & is_known
    if not len(scores) == len(correct) == len(is_known):
        raise ValueError(f"lengths differ: {len(scores)} scores, {len(correct)} correct, {len(is_known)} known")
    if len(scores) == 0:
        raise ValueError("cannot calibrate a threshold from 0 queries")
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target precision must be in (0, 1], got {target!r}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite (a query with no gallery match has no score)")
    return scores, correct, is_known


def calibrate_threshold(
    scores: np.ndarray, correct: np.ndarray, is_known: np.ndarray, target_precision: float = 0.99
) -> Calibration:
    """Lowest threshold whose accepted answers reach ``target_precision`` (see the module docstring)."""
    scores, correct, is_known = _check(scores, correct, is_known, target_precision)
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    hits = np.cumsum(correct[order])
    # candidate cut after each run of equal scores: accept everything >= that score
    last_of_run = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    accepted = last_of_run + 1
    precision = hits[last_of_run] / accepted
    feasible = np.flatnonzero(precision >= target_precision - 1e-12)
    if len(feasible):
        cut, reached = int(feasible[-1]), True
        note = (
            f"lowest threshold reaching precision {target_precision:g}: accepts {accepted[cut]} of "
            f"{len(scores)} queries at precision {_trunc(precision[cut])}"
        )
    elif precision.max() > 0:
        best = precision.max()
        cut, reached = int(np.flatnonzero(precision == best)[-1]), False
        note = (
            f"target precision {target_precision:g} cannot be reached on these queries: the best is "
            f"{_trunc(best)} (accepting {accepted[cut]} of {len(scores)}); using that threshold"
        )
    else:
        threshold = float(np.nextafter(sorted_scores[0], np.inf))
        note = (
            f"target precision {target_precision:g} cannot be reached: no accepted answer is ever right; "
            f"threshold set above the best score ({sorted_scores[0]:.4f}), rejecting everything"
        )
        return Calibration(
            threshold, target_precision, False, open_set_at_threshold(scores, correct, is_known, threshold), note
        )
    index = last_of_run[cut]
    lowest = sorted_scores[index]
    threshold = float((lowest + sorted_scores[index + 1]) / 2) if index + 1 < len(scores) else float(lowest)
    if index + 1 < len(scores) and not threshold > sorted_scores[index + 1]:
        threshold = float(lowest)  # the two scores are adjacent floats
    return Calibration(
        threshold, target_precision, reached, open_set_at_threshold(scores, correct, is_known, threshold), note
    )


@dataclass(frozen=True)
class CrossFit:
    """Threshold chosen on one fold, measured on the other: an honest estimate of the calibrated result."""

    thresholds: tuple[float, ...]  # one per fold (calibrated on the other folds)
    reached: tuple[bool, ...]
    result: OpenSetResult  # pooled over all queries, each judged by the threshold not fitted on it


def cross_fit(
    scores: np.ndarray, correct: np.ndarray, is_known: np.ndarray, folds: np.ndarray, target_precision: float = 0.99
) -> CrossFit:
    """K-fold calibration: for each fold, calibrate on the rest and apply to it."""
    scores, correct, is_known = _check(scores, correct, is_known, target_precision)
    folds = np.asarray(folds).ravel()
    if len(folds) != len(scores):
        raise ValueError(f"{len(folds)} fold ids for {len(scores)} queries")
    ids = np.unique(folds)
    if len(ids) < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got fold ids {ids.tolist()}")
    accepted = np.zeros(len(scores), dtype=bool)
    thresholds, reached = [], []
    for fold in ids:
        held = folds == fold
        fitted = calibrate_threshold(scores[~held], correct[~held], is_known[~held], target_precision)
        accepted[held] = scores[held] >= fitted.threshold
        thresholds.append(fitted.threshold)
        reached.append(fitted.reached)
    result = open_set_from_decisions(accepted, correct, is_known, float(np.mean(thresholds)))
    return CrossFit(tuple(thresholds), tuple(reached), result)


def make_folds(query_skus: list[str], unknown_skus: set[str], n_folds: int = 2, seed: int = 0) -> np.ndarray:
    """Fold ids: known queries spread over folds within each SKU; unknown queries split *by SKU*.

    Splitting the unknowns by SKU means the threshold is always judged on unknown
    products it was not fitted on, as in deployment.
    """
    rng = np.random.default_rng(seed)
    folds = np.zeros(len(query_skus), dtype=np.int64)
    unknown_order = sorted(unknown_skus & set(query_skus))
    rng.shuffle(unknown_order)
    unknown_fold = {sku: i % n_folds for i, sku in enumerate(unknown_order)}
    by_sku: dict[str, list[int]] = {}
    for index, sku in enumerate(query_skus):
        by_sku.setdefault(sku, []).append(index)
    offset = 0
    for sku in sorted(by_sku):
        indices = by_sku[sku]
        if sku in unknown_fold:
            folds[indices] = unknown_fold[sku]
            continue
        shuffled = rng.permutation(indices)
        folds[shuffled] = (np.arange(len(shuffled)) + offset) % n_folds
        offset += len(shuffled)  # rotate so that small SKUs do not all start in fold 0
    return folds


@dataclass(frozen=True)
class CurvePoint:
    """What one threshold does on the calibration queries."""

    threshold: float
    precision: float  # right answers / accepted answers
    known_coverage: float  # known queries accepted (right or wrong) / known queries
    known_accuracy: float  # known queries accepted with the right SKU / known queries
    unknown_rejection: float  # unknown queries rejected / unknown queries


def threshold_curve(
    scores: np.ndarray, correct: np.ndarray, is_known: np.ndarray, points: int = 101
) -> list[CurvePoint]:
    """The precision/coverage trade-off at ``points`` thresholds evenly spaced over the scores' range."""
    scores, correct, is_known = _check(scores, correct, is_known, 1.0)
    grid = np.linspace(float(scores.min()), float(scores.max()), max(2, points))
    out = []
    for t in grid:
        r = open_set_at_threshold(scores, correct, is_known, float(t))
        out.append(CurvePoint(float(t), r.precision, r.known_acceptance, r.known_accuracy, r.unknown_rejection))
    return out


class CalibrationRefused(ValueError):
    """The data cannot support a threshold for the target (no unknown queries, or the target is out of reach)."""


def calibrate_for_till(
    scores: np.ndarray, correct: np.ndarray, is_known: np.ndarray, target_precision: float
) -> Calibration:
    """``calibrate_threshold`` that refuses instead of returning a threshold that means nothing.

    Without unknown queries the precision counts no wrongly accepted unknown product, so the
    threshold would reject nothing it should; an unreached target is not a threshold for it.
    """
    scores, correct, is_known = _check(scores, correct, is_known, target_precision)
    if is_known.all():
        raise CalibrationRefused(
            f"no unknown queries among the {len(scores)} given: a threshold must be calibrated with products "
            "that are not enrolled present (e.g. SKUs left out of the gallery with --unknown-skus)"
        )
    if not is_known.any():
        raise CalibrationRefused(f"all {len(scores)} queries are of unknown products: no known query to accept")
    calibration = calibrate_threshold(scores, correct, is_known, target_precision)
    if not calibration.reached:
        raise CalibrationRefused(calibration.note)
    return calibration


def calibration_record(
    calibration: Calibration,
    scores: np.ndarray,
    correct: np.ndarray,
    is_known: np.ndarray,
    model_version: str,
    data: dict[str, Any],
    points: int = 101,
) -> dict[str, Any]:
    """The chosen threshold with its whole curve and provenance (model, data, date), as stored."""
    import datetime
    from dataclasses import asdict

    is_known = np.asarray(is_known, dtype=bool)
    return {
        "threshold": calibration.threshold,
        "target_precision": calibration.target_precision,
        "at_threshold": asdict(calibration.result),
        "note": calibration.note,
        "provenance": {
            "model_version": model_version,
            "data": data,
            "known_queries": int(is_known.sum()),
            "unknown_queries": int((~is_known).sum()),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
        "curve": [asdict(p) for p in threshold_curve(scores, correct, is_known, points)],
    }


@dataclass(frozen=True)
class BetaFit:
    beta: float
    weights: tuple[float, float, float]  # logistic intercept, similarity, the cue (standardised inputs undone)
    samples: int


def ridge_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1e-2) -> np.ndarray:
    """Weights ``(intercept, w_1, ..., w_d)`` of a logistic regression of ``labels`` (0/1) on the
    columns of ``features`` ``(n, d)``, ridge-penalised on standardised columns, returned on the
    original scale. Our own Newton solver: a handful of parameters, no scikit-learn in the install."""
    x = np.asarray(features, np.float64)
    y = np.asarray(labels, np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-12
    design = np.c_[np.ones(len(x)), (x - mean) / std]
    w = np.zeros(design.shape[1])
    for _ in range(100):  # Newton steps; a few-parameter ridge logistic converges in a handful
        p = 1.0 / (1.0 + np.exp(-design @ w))
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + l2 * np.eye(len(w))
        step = np.linalg.solve(hessian, design.T @ (p - y) + l2 * w)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    slopes = w[1:] / std
    weights: np.ndarray = np.concatenate([[w[0] - slopes @ mean], slopes])
    return weights


def fit_beta(similarity: np.ndarray, lookalike: np.ndarray, correct: np.ndarray, l2: float = 1e-2) -> BetaFit:
    """The weight of one penalising cue of ``gallery.open_set_score`` (the lookalike's beta, or the runner-up's
    gamma, passed as ``lookalike``): a logistic regression of "the answer is right" on (similarity, cue).

    The regression's score ``w0 + w1·similarity + w2·cue`` orders answers like
    ``similarity − beta·cue`` with ``beta = −w2 / w1``; clipped at 0 (a cue never helps).
    """
    s = np.asarray(similarity, np.float64)
    look = np.maximum(np.asarray(lookalike, np.float64), 0.0)  # clipped as gallery.open_set_score uses it
    y = np.asarray(correct, np.float64)
    if not (len(s) == len(look) == len(y)) or len(s) < 3:
        raise ValueError(f"need ≥ 3 equal-length samples, got {len(s)}, {len(look)} and {len(y)}")
    if y.min() == y.max():
        raise ValueError(f"all {len(y)} answers are {'right' if y[0] else 'wrong'}: nothing to fit beta on")
    w0, w1, w2 = (float(w) for w in ridge_logistic(np.c_[s, look], y, l2))
    beta = max(0.0, -w2 / w1) if w1 > 0 else 0.0
    return BetaFit(beta=beta, weights=(w0, w1, w2), samples=len(s))
