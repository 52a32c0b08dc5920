"""Would a linear map of the embedding, learned from the enrolled photos alone, separate products better?

Within-class whitening (as in image retrieval's "learned whitening", Radenović et al.): from the
gallery's reference photos, labelled by the SKUs they were enrolled as, the covariance of each photo
around its SKU's mean is estimated and whitened away, so the directions in which one product's photos
vary (light, angle) count less and the rest more. Shrinkage towards the identity (``shrink`` × the mean
eigenvalue) keeps rarely seen directions from being blown up. Vectors are centred on the gallery mean,
mapped, and normalised again.

It needs no training, only the gallery, so the service could fit it at enrolment time. This study asks
whether it helps, on the fold protocol: for each fold, the map is fitted on the gallery photos of the
SKUs enrolled in the open-set condition (the trained ones; the fold's unknown products never take part)
and every vector of the fold is mapped before ``training.fold_metrics.evaluate_fold``:

    python -m training.whitening_study runs/folds/<run> [--shrink 0.1 0.3 1 3]

It reads the ``fold*/vectors-keras.npz`` that ``skulens folds`` leaves (or embeds them, as
``training.ensemble_folds`` does) and prints one markdown row per shrinkage (and one without the map).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from training.fold_metrics import EMBEDDING_FIELDS, Vectors, evaluate_fold
from training.fold_summary import STUDY_FIGURES, study_header, study_row, summarise

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Whitener:
    """``apply(x) = normalise((x - mean) @ projection)``."""

    mean: np.ndarray
    projection: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        y = (np.asarray(x, np.float64) - self.mean) @ self.projection
        out: np.ndarray = (y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)).astype(np.float32)
        return out


def within_class_whitener(vectors: np.ndarray, labels: np.ndarray, shrink: float) -> Whitener:
    """The symmetric inverse square root of the within-class covariance of ``vectors`` (rows labelled by
    ``labels``), shrunk towards ``shrink`` × its mean eigenvalue × identity."""
    if shrink < 0:
        raise ValueError(f"shrink must be >= 0, got {shrink!r}")
    x = np.asarray(vectors, np.float64)
    centred = np.concatenate([x[labels == c] - x[labels == c].mean(axis=0) for c in np.unique(labels)])
    covariance = centred.T @ centred / len(centred)
    dim = len(covariance)
    values, basis = np.linalg.eigh(covariance + shrink * np.trace(covariance) / dim * np.eye(dim))
    values = np.maximum(values, 1e-12 * max(float(values.max()), 1e-12))
    return Whitener(mean=x.mean(axis=0), projection=basis @ np.diag(values**-0.5) @ basis.T)


def whitened(v: Vectors, fold_skus: tuple[str, ...], shrink: float) -> Vectors:
    """Every vector of the fold mapped by the whitener of the gallery photos of the trained SKUs."""
    fold = [v.skus.index(s) for s in fold_skus]
    enrolled = ~np.isin(v.gallery_labels, fold)
    w = within_class_whitener(v.gallery[enrolled], v.gallery_labels[enrolled], shrink)
    mapped: dict[str, Any] = {name: w.apply(getattr(v, name)) for name in EMBEDDING_FIELDS}
    return replace(v, **mapped)


def main(argv: list[str] | None = None) -> int:
    from training.ensemble_folds import fold_vectors
    from training.folds import read_fold_run

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a `skulens folds` output folder (finetune schedule)")
    parser.add_argument("--shrink", type=float, nargs="+", default=[0.1, 0.3, 1.0, 3.0])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run = read_fold_run(args.run)
    loaded = [(fold_skus, fold_vectors(folder, run.skus, run.root)) for folder, fold_skus in run.folds]
    print(f"{len(run.folds)} folds of {args.run}\n")
    print(study_header("map", STUDY_FIGURES))
    for shrink in [None, *args.shrink]:
        rows = [evaluate_fold(v if shrink is None else whitened(v, s, shrink), s) for s, v in loaded]
        figures = summarise(rows)
        label = "none" if shrink is None else f"whitening, shrink {shrink:g}"
        print(study_row(label, figures, STUDY_FIGURES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
