"""The threshold shipped with a model, calibrated on its recipe's fold models (``skulens export
--calibration-from-folds``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.calibrate import fit_beta
from gallery.open_set_score import CUE_WEIGHTS, penalised

#: what each open-set score (``gallery.open_set_score``) subtracts, as ``model.json`` describes it
SCORES = {
    "lookalike": "best similarity - beta x the cosine between the SKU's reference centroid and the "
    "nearest other enrolled SKU's (gallery.lookalike)",
    "runner_up": "best similarity - gamma x the best similarity of the second SKU among the query's matches "
    "(gallery.open_set_score)",
}


def pooled_calibration(
    out: Path,
    target: float,
    conditions: tuple[str, ...] = ("clean", "shifted"),
    result_name: str = "result.json",
    score: str = "runner_up",
) -> dict[str, Any]:
    """Threshold for ``target`` on the open-set scores of every fold in ``out`` pooled (clean and other-day).

    The fold models never saw their fold's SKUs, so those queries are genuine unknown products;
    a model trained on every SKU has none left to calibrate with, hence the fold models' scores.
    ``score``: "runner_up" (gamma fitted; the shipped models' score), "lookalike" (beta fitted) or
    "similarity" (the plain best similarity). ``ValueError`` when the fold results lack the cue (measured
    before it existed: ``skulens folds --remeasure`` adds it from the saved vectors).
    """
    if score not in (*SCORES, "similarity"):
        raise ValueError(f"score must be one of {[*SCORES, 'similarity']}, got {score!r}")
    from evaluation.calibrate import calibrate_for_till, calibration_record

    rows = [json.loads(p.read_text()) for p in sorted(Path(out).glob(f"fold*/{result_name}"))]
    if not rows:
        raise FileNotFoundError(f"no fold*/{result_name} under {str(out)!r}: run `skulens folds` first")
    parts = [r["open_set"][c] for r in rows for c in conditions]
    scores, correct, known = (np.concatenate([np.asarray(p[k]) for p in parts]) for k in ("score", "correct", "known"))
    lacking = sorted(
        {str(r.get("fold")) for r in rows for c in conditions if score in SCORES and score not in r["open_set"][c]}
    )
    if lacking:
        raise ValueError(
            f"the fold results {result_name} of fold(s) {', '.join(lacking)} under {str(out)!r} have no {score!r} "
            f"per query (measured before it existed): run `skulens folds ... --remeasure` on that run first, or "
            "calibrate another score"
        )
    adjustment: dict[str, Any] | None = None
    if score in SCORES and 0 < correct.sum() < len(correct):
        cue = np.concatenate([np.asarray(p[score]) for p in parts])
        fit = fit_beta(scores, cue, correct)
        scores = penalised(scores, cue, fit.beta)
        adjustment = {
            CUE_WEIGHTS[score]: fit.beta,
            "score": SCORES[score],
            "fit": {
                "method": f"logistic regression of a right answer on (similarity, {score})",
                "weights": list(fit.weights),
                "samples": fit.samples,
            },
        }
    calibration = calibrate_for_till(scores, correct.astype(bool), known.astype(bool), target)
    summary = json.loads((Path(out) / "summary.json").read_text()) if (Path(out) / "summary.json").is_file() else {}
    record = calibration_record(
        calibration,
        scores,
        correct,
        known,
        "fold models of this recipe",
        {
            "fold_run": str(out),
            "fold_results": result_name,
            "folds": [r["fold"] for r in rows],
            "conditions": list(conditions),
            "fold_seed": summary.get("fold_seed"),
            "recipe": summary.get("config"),
        },
    )
    if adjustment is not None:
        record[score] = adjustment
    return record
