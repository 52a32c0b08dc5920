"""The summary of a fold run: mean and spread over folds, and the cross-fitted thresholds.

A fold never judges its own threshold or the open-set score's weight (β, γ): both are fitted on the
other folds' pooled open-set scores (``cross_fitted_thresholds``), so the precision and acceptance reported are what a
threshold chosen elsewhere does on products it was not chosen on.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from evaluation import metrics
from evaluation.calibrate import calibrate_threshold, fit_beta
from gallery.open_set_score import CUE_WEIGHTS, penalised

logger = logging.getLogger(__name__)


def _pooled(parts: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in keys}


def _weight(pooled: dict[str, np.ndarray], cue: str) -> float:
    """``fit_beta`` of ``cue`` on pooled open-set scores; 0 where they cannot support a fit (all answers right or wrong)."""
    try:
        return fit_beta(pooled["score"], pooled[cue], pooled["correct"]).beta
    except ValueError as exc:
        logger.warning("no %s weight (0 used): %s", cue, exc)
        return 0.0


def cross_fitted_thresholds(
    rows: list[dict[str, Any]], condition: str, target: float, cue: str | None = None
) -> list[dict[str, Any]]:
    """For each fold: the threshold calibrated on the other folds' pooled open-set scores, and what it does here.

    ``cue`` ("lookalike" or "runner_up"): the decision score is the best similarity less a weight × that cue
    (``gallery.open_set_score``), its weight fitted on the other folds too (a fold never judges its own weight
    or threshold); reported as ``beta`` whichever the cue.
    """
    if cue is not None and cue not in CUE_WEIGHTS:
        raise ValueError(f"cue must be one of {sorted(CUE_WEIGHTS)} or None, got {cue!r}")
    keys = ("score", "correct", "known") + ((cue,) if cue else ())
    out = []
    for i, row in enumerate(rows):
        pooled = _pooled([r["open_set"][condition] for j, r in enumerate(rows) if j != i], keys)
        mine = _pooled([row["open_set"][condition]], keys)
        beta = _weight(pooled, cue) if cue else 0.0
        if cue:
            pooled["score"] = penalised(pooled["score"], pooled[cue], beta)
            mine["score"] = penalised(mine["score"], mine[cue], beta)
        cal = calibrate_threshold(pooled["score"], pooled["correct"], pooled["known"], target)
        result = metrics.open_set_at_threshold(mine["score"], mine["correct"], mine["known"], cal.threshold)
        known = mine["known"].astype(bool)
        out.append(
            {
                "threshold": cal.threshold,
                "beta": beta,
                "auroc": metrics.auroc(mine["score"][known], mine["score"][~known]),
                "reached_on_other_folds": cal.reached,
                "precision": result.precision,
                "known_acceptance": result.known_acceptance,
                "known_accuracy": result.known_accuracy,
                "unknown_rejection": result.unknown_rejection,
            }
        )
    return out


def summarise(rows: list[dict[str, Any]], target: float = 0.95) -> dict[str, Any]:
    """Mean and spread (population std) over folds of every figure; cross-fitted threshold figures."""

    def stat(values: list[float]) -> dict[str, Any]:
        arr = np.asarray(values, dtype=np.float64)
        return {"mean": float(np.nanmean(arr)), "std": float(np.nanstd(arr)), "folds": arr.tolist()}

    def pick(path: tuple[str, ...]) -> list[float]:
        out = []
        for r in rows:
            value: Any = r
            for key in path:
                value = value[key]
            out.append(float(value))
        return out

    figures = {}
    for cond in ("clean", "shifted"):
        for group in ("all", "trained", "never_trained"):
            figures[f"top1_{cond}_{group}"] = stat(pick((cond, group)))
        figures[f"auroc_{cond}"] = stat(pick(("open_set", cond, "auroc")))
    for group in ("all", "never_trained"):
        figures[f"top1_clean_flip_tta_{group}"] = stat(pick(("clean_flip_tta", group)))
        for kind in ("photo_only", "with_views"):
            figures[f"catalogue_{kind}_{group}"] = stat(pick(("catalogue", kind, group)))
    if len(rows) >= 2:
        at = f"at_p{int(target * 100)}"
        for cond in ("clean", "shifted"):
            fitted = cross_fitted_thresholds(rows, cond, target)
            for key in ("precision", "known_acceptance", "known_accuracy", "unknown_rejection", "threshold"):
                figures[f"{at}_{cond}_{key}"] = stat([f[key] for f in fitted])
            for cue, weight in CUE_WEIGHTS.items():
                if not all(cue in r["open_set"][cond] for r in rows):  # older results lack the cue
                    continue
                fitted = cross_fitted_thresholds(rows, cond, target, cue=cue)
                figures[f"auroc_{cond}_{cue}"] = stat([f["auroc"] for f in fitted])
                for key in ("precision", "known_acceptance", "unknown_rejection", "threshold"):
                    figures[f"{at}_{cond}_{cue}_{key}"] = stat([f[key] for f in fitted])
                figures[f"{at}_{cond}_{cue}_{weight}"] = stat([f["beta"] for f in fitted])
    return figures


FIGURE_NAMES = {
    "top1_clean_all": "top-1 clean, all SKUs",
    "top1_clean_trained": "top-1 clean, trained SKUs",
    "top1_clean_never_trained": "top-1 clean, never-trained SKUs",
    "top1_shifted_all": "top-1 other-day, all SKUs",
    "top1_shifted_trained": "top-1 other-day, trained SKUs",
    "top1_shifted_never_trained": "top-1 other-day, never-trained SKUs",
    "top1_clean_flip_tta_all": "top-1 clean + flip TTA, all",
    "top1_clean_flip_tta_never_trained": "top-1 clean + flip TTA, never-trained",
    "auroc_clean": "open-set AUROC, clean",
    "auroc_shifted": "open-set AUROC, other-day",
    "auroc_clean_lookalike": "open-set AUROC, clean, lookalike-adjusted score (cross-fitted beta)",
    "auroc_shifted_lookalike": "open-set AUROC, other-day, lookalike-adjusted score (cross-fitted beta)",
    "auroc_clean_runner_up": "open-set AUROC, clean, runner-up-adjusted score (cross-fitted gamma)",
    "auroc_shifted_runner_up": "open-set AUROC, other-day, runner-up-adjusted score (cross-fitted gamma)",
    "catalogue_photo_only_all": "catalogue photo only: top-1 all",
    "catalogue_photo_only_never_trained": "catalogue photo only: top-1 never-trained",
    "catalogue_with_views_all": "catalogue photo + synthetic views: top-1 all",
    "catalogue_with_views_never_trained": "catalogue photo + synthetic views: top-1 never-trained",
}


def summary_markdown(summary: dict[str, Any]) -> str:
    lines = ["| figure | mean | std | per fold |", "| --- | --- | --- | --- |"]
    for key, value in summary["figures"].items():
        name = FIGURE_NAMES.get(key, key.replace("_", " "))
        folds = " / ".join(f"{x:.3f}" for x in value["folds"])
        lines.append(f"| {name} | {value['mean']:.4f} | {value['std']:.4f} | {folds} |")
    return "\n".join(lines)


#: (figure key, column name) of the side-by-side tables the ``*_study`` modules print
STUDY_FIGURES = (
    ("top1_clean_all", "top-1 clean"),
    ("top1_clean_never_trained", "never-trained"),
    ("top1_shifted_all", "top-1 other-day"),
    ("auroc_clean", "AUROC clean"),
    ("auroc_shifted", "AUROC other-day"),
    ("at_p95_clean_lookalike_known_acceptance", "accepted at P=0.95, clean"),
    ("at_p95_clean_lookalike_precision", "precision reached, clean"),
    ("at_p95_shifted_lookalike_known_acceptance", "accepted at P=0.95, other-day"),
    ("at_p95_shifted_lookalike_precision", "precision reached, other-day"),
)


def study_header(first: str, shown: tuple[tuple[str, str], ...]) -> str:
    """The header and rule of a markdown table with one column per ``shown`` figure."""
    return f"| {first} | " + " | ".join(name for _, name in shown) + " |\n| --- |" + " --- |" * len(shown)


def study_row(label: str, figures: dict[str, Any], shown: tuple[tuple[str, str], ...]) -> str:
    """One row of that table: the mean over folds of each figure of ``summarise``'s output."""
    return f"| {label} | " + " | ".join(f"{figures[key]['mean']:.3f}" for key, _ in shown) + " |"
