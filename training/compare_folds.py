"""Side-by-side table of several ``skulens folds`` runs (the ablation table of the model card).

Each run is compared on the folds it shares with every other run, so a recipe measured on all four
folds and one measured on two are compared on those two (the table says which); a second table
gives each run's own figures on all its folds.

    .venv/bin/python -m training.compare_folds LABEL=runs/folds/baseline LABEL=runs/folds/recipe_v3 ...
        [--result result-int8.json]

A run given as ``LABEL=DIR,RESULT`` is read from its own per-fold file (e.g. the same fold models served
at another size: ``"288 px=runs/folds/gem_seed0,result-keras-288px.json"``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.fold_summary import FIGURE_NAMES, summarise

ROWS = (
    "top1_clean_all",
    "top1_clean_trained",
    "top1_clean_never_trained",
    "top1_shifted_all",
    "top1_shifted_never_trained",
    "auroc_clean",
    "auroc_shifted",
    "at_p95_shifted_precision",
    "at_p95_shifted_known_acceptance",
    "top1_clean_flip_tta_all",
    "catalogue_photo_only_all",
    "catalogue_photo_only_never_trained",
    "catalogue_with_views_all",
    "catalogue_with_views_never_trained",
)
EXTRA_NAMES = {
    "at_p95_shifted_precision": "at the P=0.95 threshold (cross-fitted), other-day: precision",
    "at_p95_shifted_known_acceptance": "same: known queries accepted",
}


def load_rows(run: Path, result_name: str) -> dict[int, dict[str, Any]]:
    return {
        int(p.parent.name.removeprefix("fold")): json.loads(p.read_text())
        for p in sorted(run.glob(f"fold*/{result_name}"))
    }


def cell(stat: dict[str, Any] | None) -> str:
    if stat is None or not np.isfinite(stat["mean"]):
        return "n/a"
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def table(runs: dict[str, dict[int, dict[str, Any]]], folds: list[int] | None, target: float) -> str:
    figures = {}
    for label, rows in runs.items():
        chosen = [rows[f] for f in (folds if folds is not None else sorted(rows))]
        figures[label] = summarise(chosen, target) if chosen else {}
    lines = ["| figure | " + " | ".join(runs) + " |", "| --- |" + " --- |" * len(runs)]
    for key in ROWS:
        name = EXTRA_NAMES.get(key) or FIGURE_NAMES.get(key, key)
        lines.append(f"| {name} | " + " | ".join(cell(figures[label].get(key)) for label in runs) + " |")
    counts = [str(len(folds) if folds is not None else len(rows)) for rows in runs.values()]
    lines.append("| folds | " + " | ".join(counts) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="side-by-side table of skulens folds runs")
    parser.add_argument("runs", nargs="+", metavar="LABEL=DIR")
    parser.add_argument("--result", default="result.json", help="per-fold file name (e.g. result-int8.json)")
    parser.add_argument("--target-precision", type=float, default=0.95)
    args = parser.parse_args(argv)
    runs = {}
    for spec in args.runs:
        label, _, target = spec.rpartition("=")
        path, _, result = target.partition(",")
        rows = load_rows(Path(path), result or args.result)
        if not rows:
            raise SystemExit(f"no fold*/{result or args.result} under {path!r}")
        runs[label or Path(path).name] = rows
    shared = sorted(set.intersection(*(set(r) for r in runs.values())))
    print(f"### On the folds every run has ({', '.join(map(str, shared))})\n")
    print(table(runs, shared, args.target_precision))
    print("\n### Each run on all its folds\n")
    print(table(runs, None, args.target_precision))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
