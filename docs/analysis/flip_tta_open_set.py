"""Analysis behind the model card's flip test-time augmentation figures for the open-set decision (not product code;
run from the repository root with SKULENS_GROCERY_DIR set, after the fold runs of the model card's Reproduce).

Each fold's clean queries are replaced by the normalised mean of each query's and its mirror image's vectors (the
``--tta-flip`` setting; the cached ``flipped`` vectors) and measured as the fold protocol measures a model, beside the
plain queries: top-1, AUROC, and the known queries accepted at P = 0.95 on the lookalike score (cross-fitted).

    .venv/bin/python docs/analysis/flip_tta_open_set.py
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from training.data import grocery_dir, list_skus
from training.ensemble_folds import combined
from training.fold_metrics import evaluate_fold
from training.fold_summary import summarise
from training.folds import load_vectors

FOLDS = Path("runs/folds")
RUNS = [
    ("float32", ["gem_dim512_seed0"]),
    ("keras", ["gem_dim512_seed1"]),
    ("int8_float_head", ["gem_dim512_seed0", "v2_gem_dim512_seed0"]),
]
KEYS = ["top1_clean_all", "auroc_clean_lookalike", "at_p95_clean_lookalike_known_acceptance"]


def main() -> None:
    skus = tuple(list_skus(grocery_dir() / "train"))
    for precision, runs in RUNS:
        for tta in (False, True):
            rows = []
            for f in range(4):
                members = [load_vectors(FOLDS / r / f"fold{f}" / f"vectors-{precision}.npz", skus) for r in runs]
                v = members[0] if len(members) == 1 else combined(members)
                if tta:
                    mean = v.queries + v.flipped
                    v = replace(v, queries=mean / np.linalg.norm(mean, axis=1, keepdims=True))
                fold_skus = json.loads((FOLDS / runs[0] / f"fold{f}" / "result.json").read_text())["fold_skus"]
                rows.append({"fold": f, "fold_skus": fold_skus, **evaluate_fold(v, tuple(fold_skus))})
            figures = summarise(rows, 0.95)
            label = f"{'+'.join(runs)} {precision} {'flip TTA' if tta else 'plain'}"
            print(label + ": " + " ".join(f"{k}={figures[k]['mean']:.3f}" for k in KEYS))


if __name__ == "__main__":
    main()
