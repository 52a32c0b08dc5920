"""Analysis behind the model card's "The runner-up score" pooled figures (not product code; run from the repository
root after the fold runs of the model card's Reproduce, their results measured again with ``--remeasure``).

For each fold run's results (each query's best similarity, its SKU's lookalike, the runner-up SKU's similarity), pooled
over the four folds, clean and other-day together and apart, as ``skulens export --calibration-from-folds`` pools
them: each score's weight fitted in-sample (``evaluation.calibrate.fit_beta``), its AUROC, and the share of known
queries accepted at the lowest threshold reaching each precision.

    .venv/bin/python docs/analysis/runner_up_pooled.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from evaluation import metrics
from evaluation.calibrate import calibrate_threshold, fit_beta

RUNS = [
    ("gem_dim512_seed0", "result-float32.json"),
    ("gem_dim512_seed0", "result-int8_float_head.json"),
    ("gem_dim512_seed1", "result.json"),
    ("ens_v3_v2_dim512", "result.json"),
    ("ens_v3_v2_dim512", "result-int8_float_head.json"),
]
PRECISIONS = (0.97, 0.95, 0.90, 0.85)


def main() -> None:
    for run, name in RUNS:
        rows = [json.loads(p.read_text()) for p in sorted(Path("runs/folds", run).glob(f"fold*/{name}"))]
        for conditions in (("clean", "shifted"), ("clean",), ("shifted",)):
            parts = [r["open_set"][c] for r in rows for c in conditions]

            def pooled(key: str, parts: list[dict] = parts) -> np.ndarray:
                return np.concatenate([np.asarray(p[key], float) for p in parts])

            similarity, correct, known = pooled("score"), pooled("correct") > 0, pooled("known") > 0
            cells = []
            for cue in ("lookalike", "runner_up"):
                value = pooled(cue)
                weight = fit_beta(similarity, value, correct).beta
                score = similarity - weight * np.maximum(value, 0.0)
                accepted = [calibrate_threshold(score, correct, known, p).result.known_acceptance for p in PRECISIONS]
                cells.append(
                    f"{cue}: weight {weight:.3f} AUROC {metrics.auroc(score[known], score[~known]):.3f} accepted at "
                    + " / ".join(f"{p}: {a:.3f}" for p, a in zip(PRECISIONS, accepted, strict=True))
                )
            print(f"{run} {name} {'+'.join(conditions)} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
