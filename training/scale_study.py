"""The "other day" top-1 broken down by how small the product was in the shifted frame.

``training.shifts`` shrinks each shifted query to a drawn scale (0.6-1.0 of the frame's side) among
other shifts. A change that helps only the shrunk queries (a larger serving size, a zoom-out
augmentation) answers a question of framing, not of light, blur or occlusion; this table tells the two
apart. It reads the fold vectors ``skulens folds`` saved (``fold*/vectors-<tag>.npz``):

    python -m training.scale_study "256 px=runs/folds/gem_seed0" \\
        "288 px=runs/folds/gem_seed0,vectors-keras-288px.npz" [--edges 0.6 0.73 0.87 1.0]

Each row is one run (the folds it has), each column a band of scales, plus the clean top-1 of the
same queries for reference.
"""

from __future__ import annotations

import argparse
import json
from itertools import pairwise
from pathlib import Path

import numpy as np

from training.fold_metrics import Vectors, top1
from training.shifts import drawn_scales


def top1_by_scale(v: Vectors, scales: np.ndarray, edges: list[float]) -> list[tuple[float, int]]:
    """(top-1 of the shifted queries, their count) for each band ``edges[i] <= scale < edges[i + 1]``
    (the last band includes its upper edge); closed set, every SKU enrolled."""
    if len(scales) != len(v.shifted):
        raise ValueError(f"{len(scales)} scales for {len(v.shifted)} shifted queries")
    if len(edges) < 2 or list(edges) != sorted(edges):
        raise ValueError(f"edges must be at least two increasing numbers, got {edges!r}")
    out = []
    for i, (low, high) in enumerate(pairwise(edges)):
        last = i == len(edges) - 2
        rows = np.flatnonzero((scales >= low) & ((scales <= high) if last else (scales < high)))
        accuracy = top1(v.shifted, v.gallery, v.gallery_labels, v.query_labels, len(v.skus), rows) if len(rows) else 0.0
        out.append((accuracy, len(rows)))
    return out


def main(argv: list[str] | None = None) -> int:
    from training.data import grocery_dir, list_skus
    from training.folds import load_vectors

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=DIR[,VECTORS]", help="default vectors-keras.npz")
    parser.add_argument("--edges", type=float, nargs="+", default=[0.6, 0.73, 0.87, 1.0])
    parser.add_argument("--seed", type=int, default=0, help="the shift seed of the fold protocol (0)")
    args = parser.parse_args(argv)
    print("| run | " + " | ".join(f"other-day, scale {a:g}-{b:g}" for a, b in pairwise(args.edges)), end="")
    print(" | other-day, all | clean, all |")
    print("| --- |" + " --- |" * (len(args.edges) + 1))
    for spec in args.runs:
        label, _, target = spec.rpartition("=")
        path, _, name = target.partition(",")
        files = sorted(Path(path).glob(f"fold*/{name or 'vectors-keras.npz'}"))
        if not files:
            raise SystemExit(f"no fold*/{name or 'vectors-keras.npz'} under {path!r}")
        config = json.loads((files[0].parent / "config.json").read_text())
        root = Path(config["data_dir"]) if config.get("data_dir") else grocery_dir()
        skus = tuple(list_skus(root / "train"))
        correct = {"bands": np.zeros(len(args.edges) - 1), "count": np.zeros(len(args.edges) - 1)}
        shifted = clean = queries = 0.0
        for file in files:
            v = load_vectors(file, skus)
            bands = top1_by_scale(v, drawn_scales(len(v.shifted), args.seed), args.edges)
            correct["bands"] += [a * n for a, n in bands]
            correct["count"] += [n for _, n in bands]
            n, k = len(v.query_labels), len(v.skus)
            shifted += top1(v.shifted, v.gallery, v.gallery_labels, v.query_labels, k) * n
            clean += top1(v.queries, v.gallery, v.gallery_labels, v.query_labels, k) * n
            queries += n
        cells = [f"{c / max(n, 1):.3f} ({int(n)})" for c, n in zip(correct["bands"], correct["count"])]
        print(f"| {label or path} ({len(files)} folds) | " + " | ".join(cells), end="")
        print(f" | {shifted / queries:.3f} | {clean / queries:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
