"""Analysis behind the stop note's "calibrate on cut galleries too" check (not product code; run from the repository
root with SKULENS_GROCERY_DIR set, after the fold runs of the model card's Reproduce).

The runner-up score's weight and P = 0.95 threshold are fitted on the other folds' full galleries (as shipped) or on
their full *and* cut galleries together (``training.score_gallery_study``'s cuts, 5 draws each), then each fold is
judged on its own full and cut galleries: does calibrating across gallery sizes hold precision at a bearable cost?

    .venv/bin/python docs/analysis/mixed_gallery_calibration.py float32 runs/folds/gem_dim512_seed0
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from evaluation import metrics
from evaluation.calibrate import calibrate_threshold, ridge_logistic
from training.data import grocery_dir, list_skus
from training.score_gallery_study import CUTS, cut_gallery
from training.score_study import ScoreCues, score_cues, stack_cues, study_folds

CUES = ("runner_up",)


def main(precision: str, runs: list[Path]) -> None:
    root = grocery_dir()
    folds = study_folds(runs, tuple(list_skus(root / "train")), root, precision)
    for field in ("queries", "shifted"):
        parts: dict[tuple[int, str, int], ScoreCues] = {}
        for i, fold in enumerate(folds):
            for cut in CUTS:
                for draw in range(1 if cut == CUTS[0] else 5):
                    v = fold.vectors
                    if cut != CUTS[0]:
                        v = cut_gallery(v, fold.fold_skus, cut, np.random.default_rng([i, draw, 99]))
                    parts[(i, cut.name, draw)] = score_cues(v, fold.fold_skus, getattr(v, field))
        for mode in ("full only", "full + cuts"):
            judged: dict[str, list[tuple[float, float]]] = {c.name: [] for c in CUTS}
            for i in range(len(folds)):
                fitted_on = [
                    p for (j, c, _), p in parts.items() if j != i and (mode == "full + cuts" or c == CUTS[0].name)
                ]
                x, correct, known = stack_cues(fitted_on, CUES)
                w = ridge_logistic(x, correct)[1:]
                w = w / w[0]
                threshold = calibrate_threshold(x @ w, correct, known, 0.95).threshold
                for (j, cut_name, _), part in parts.items():
                    if j == i:
                        xm, cm, km = stack_cues([part], CUES)
                        r = metrics.open_set_at_threshold(xm @ w, cm, km, threshold)
                        judged[cut_name].append((r.precision, r.known_acceptance))
            print(
                f"{field} {mode}: "
                + " | ".join(
                    f"{name}: precision {np.nanmean([p for p, _ in v]):.3f} accepted {np.mean([a for _, a in v]):.3f}"
                    for name, v in judged.items()
                )
            )


if __name__ == "__main__":
    main(sys.argv[1], [Path(p) for p in sys.argv[2:]])
