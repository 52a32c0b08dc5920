"""The fold protocol for an ensemble of fold runs: would averaging several models' similarities help?

For each fold that every run has, each run's fold model embeds the protocol's photos (cached by
``skulens folds`` as ``fold*/vectors-keras.npz``; embedded here when missing), the runs' unit vectors are
concatenated over ``sqrt(n_runs)`` (``training.distill.teacher_embedding``: inner products are the mean of the
runs' cosine similarities) and measured exactly as one model's (``training.fold_metrics.evaluate_fold``). The
result is written as a fold run of its own, so ``training.compare_folds`` puts it beside its members:

    python -m training.ensemble_folds --out runs/folds/ensemble runs/folds/seed0 runs/folds/seed1

This measures a teacher for ``distill_from`` (an ensemble costs its members' inference; the service runs one).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from training.distill import teacher_embedding
from training.fold_metrics import EMBEDDING_FIELDS, Vectors, evaluate_fold
from training.fold_summary import summarise
from training.folds import cached_vectors, result_file, vectors_file

logger = logging.getLogger(__name__)


def combined(members: list[Vectors]) -> Vectors:
    """One ``Vectors`` whose inner products are the members' mean cosine similarities."""
    first = members[0]
    for other in members[1:]:
        if other.skus != first.skus or (other.query_labels != first.query_labels).any():
            raise ValueError("the runs' vectors are not of the same photos")
    mapped: dict[str, Any] = {name: teacher_embedding([getattr(m, name) for m in members]) for name in EMBEDDING_FIELDS}
    return replace(first, **mapped)


def fold_vectors(fold_dir: Path, skus: tuple[str, ...], root: Path, precision: str | None = None) -> Vectors:
    """The fold's Keras model's vectors, from ``skulens folds``' cache or embedded now (and cached); with
    ``precision``, those ``skulens folds --precision`` measured through the LiteRT file (never made here)."""
    from training.folds import embed_fold, keras_embed, load_vectors

    if precision is not None:
        path = fold_dir / vectors_file(precision)
        if not path.is_file():
            raise FileNotFoundError(
                f"no {path.name} in {str(fold_dir)!r}: run `skulens folds --precision {precision}` on that run first"
            )
        return load_vectors(path, skus)

    def make() -> Vectors:
        config = json.loads((fold_dir / "config.json").read_text())
        embed = keras_embed(fold_dir / "finetune" / "model.keras")
        return embed_fold(embed, skus, root, config["input_size"], config["cache_dir"])

    return cached_vectors(fold_dir / vectors_file("keras"), skus, make)


def main(argv: list[str] | None = None) -> int:
    from training.data import grocery_dir, list_skus

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="`skulens folds` output folders (finetune schedule)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the ensemble's fold*/result.json")
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument(
        "--precision",
        help="join the members' LiteRT vectors at this precision (skulens folds --precision P measured them); "
        "writes result-P.json and summary-P.json, which skulens export --precision P calibrates from",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(args.runs) < 2:
        parser.error(f"an ensemble needs at least 2 runs, got {len(args.runs)}")
    name = result_file(args.precision or "")
    per_run = [{p.parent.name for p in run.glob(f"fold*/{name}")} for run in args.runs]
    folds = sorted(set.intersection(*per_run))
    if not folds:
        raise SystemExit(f"no fold has a {name} in every run of {[str(r) for r in args.runs]}")
    config = json.loads((args.runs[0] / folds[0] / "config.json").read_text())
    root = Path(config["data_dir"]) if config.get("data_dir") else grocery_dir()
    skus = tuple(list_skus(root / "train"))
    rows = []
    for fold in folds:
        result = json.loads((args.runs[0] / fold / name).read_text())
        v = combined([fold_vectors(run / fold, skus, root, args.precision) for run in args.runs])
        row = {
            "fold": result["fold"],
            "fold_skus": result["fold_skus"],
            "model": [str(run / fold) for run in args.runs],
            "precision": args.precision or "keras",
            **evaluate_fold(v, tuple(result["fold_skus"])),
        }
        (args.out / fold).mkdir(parents=True, exist_ok=True)
        (args.out / fold / name).write_text(json.dumps(row) + "\n")
        rows.append(row)
        logger.info("%s: %s", fold, json.dumps({k: row[k] for k in ("clean", "shifted")}))
    summary = {"members": [str(r) for r in args.runs], "figures": summarise(rows, args.target)}
    suffix = f"-{args.precision}" if args.precision else ""
    (args.out / f"summary{suffix}.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
