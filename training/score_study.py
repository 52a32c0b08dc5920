"""Which open-set score: cues beside the best similarity, combined and judged on the fold protocol.

The shipped decision score is the best similarity less β × the SKU's lookalike. This study asks
whether more cues, all of them computable in the service from what a search returns or from the
gallery alone, would accept more known queries at the same precision:

* ``runner_up``: the best similarity of the second SKU (the service's matches hold it);
* ``cohort``: the mean best similarity of the SKUs ranked 2-6 (how crowded the query's neighbourhood is);
* ``impostor``: the 99th percentile of other SKUs' reference photos' best similarity to the answer SKU;
* ``genuine``: the median of the answer SKU's reference photos' leave-one-out best similarity to each other.

Each combination is a linear score (the best similarity's weight 1) whose weights come from a
logistic regression of "the answer is right" on the other folds (``evaluation.calibrate.ridge_logistic``),
with the threshold for the target precision also from the other folds: a fold never judges its
own weights or threshold, as for the shipped score (``training.fold_summary.cross_fitted_thresholds``).

``python -m training.score_study runs/folds/<run>``: the fold models' LiteRT float32 files embed
(once; cached as ``fold*/vectors-float32.npz``) and a markdown table is printed. Several runs are the
members of an ensemble (``training.ensemble_folds``), joined fold by fold; ``--precision keras`` or
``int8_float_head`` reads the vectors ``skulens folds`` cached for that precision instead.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation import metrics
from evaluation.calibrate import calibrate_threshold, ridge_logistic
from gallery.lookalike import label_lookalikes
from training.fold_metrics import Vectors

logger = logging.getLogger(__name__)

COMBINATIONS: tuple[tuple[str, ...], ...] = (
    ("lookalike",),  # the shipped score
    ("runner_up",),
    ("lookalike", "runner_up"),
    ("lookalike", "runner_up", "cohort"),
    ("lookalike", "impostor"),
    ("lookalike", "runner_up", "impostor", "genuine"),
)


#: one fold's open-set queries as a study fits them: cue columns (the similarity first), right answers, known products
Stacked = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class ScoreCues:
    """One fold's open-set queries (fold SKUs not enrolled): the cues of each and what is true."""

    similarity: np.ndarray
    runner_up: np.ndarray
    lookalike: np.ndarray
    cohort: np.ndarray
    impostor: np.ndarray
    genuine: np.ndarray
    correct: np.ndarray
    known: np.ndarray


def sku_reference_stats(gallery: np.ndarray, labels: np.ndarray, n_skus: int) -> tuple[np.ndarray, np.ndarray]:
    """Per SKU: the 99th percentile of other SKUs' photos' best similarity to it (impostors) and the
    median of its own photos' leave-one-out best similarity to each other (genuine); 0 where undefined."""
    best = metrics.best_score_per_sku(gallery @ gallery.T, labels, n_skus)
    impostor, genuine = np.zeros(n_skus), np.zeros(n_skus)
    for sku in np.unique(labels):
        own = labels == sku
        if (~own).any():
            impostor[sku] = np.quantile(best[~own, sku], 0.99)
        if own.sum() > 1:
            sims = gallery[own] @ gallery[own].T
            np.fill_diagonal(sims, -np.inf)
            genuine[sku] = np.median(sims.max(axis=1))
    return impostor, genuine


def score_cues(v: Vectors, fold_skus: tuple[str, ...], queries: np.ndarray) -> ScoreCues:
    fold = [v.skus.index(s) for s in fold_skus]
    n = len(v.skus)
    enrolled = ~np.isin(v.gallery_labels, fold)
    gallery, labels = v.gallery[enrolled], v.gallery_labels[enrolled]
    per_sku = metrics.best_score_per_sku(queries @ gallery.T, labels, n)
    per_sku[:, fold] = -np.inf
    ranked = -np.sort(-per_sku, axis=1)
    neighbours = np.where(np.isfinite(ranked[:, 1:6]), ranked[:, 1:6], np.nan)  # fewer than 6 SKUs enrolled
    answer = per_sku.argmax(axis=1)
    known = ~np.isin(v.query_labels, fold)
    impostor, genuine = sku_reference_stats(gallery, labels, n)
    return ScoreCues(
        similarity=ranked[:, 0],
        runner_up=ranked[:, 1],
        lookalike=np.maximum(label_lookalikes(gallery, labels, n)[answer], 0.0),
        cohort=np.nanmean(neighbours, axis=1),
        impostor=impostor[answer],
        genuine=genuine[answer],
        correct=(answer == v.query_labels) & known,
        known=known,
    )


def stack_cues(parts: list[ScoreCues], cues: tuple[str, ...]) -> Stacked:
    x = np.concatenate([np.c_[tuple(getattr(p, c) for c in ("similarity", *cues))] for p in parts])
    return x, np.concatenate([p.correct for p in parts]), np.concatenate([p.known for p in parts])


@dataclass(frozen=True)
class StudyRow:
    cues: tuple[str, ...]
    auroc: float
    precision: float
    known_accepted: float
    known_accepted_std: float
    weights: tuple[float, ...]  # mean over folds, per cue (the similarity's weight is 1)


def cross_fit(
    folds: list[Stacked], cues: tuple[str, ...] = (), target: float = 0.95, judged: list[Stacked] | None = None
) -> StudyRow:
    """Linear-score weights (logistic regression of "the answer is right") and the threshold for ``target``
    precision fitted on the other folds, each fold judged on its own queries or, given, on ``judged[i]`` (the
    same queries in another condition); means over folds. ``cues`` names the columns after the similarity."""
    aurocs, precisions, accepted, weights = [], [], [], []
    for i in range(len(folds)):
        x = np.concatenate([f[0] for j, f in enumerate(folds) if j != i])
        correct = np.concatenate([f[1] for j, f in enumerate(folds) if j != i])
        known = np.concatenate([f[2] for j, f in enumerate(folds) if j != i])
        w = ridge_logistic(x, correct)[1:]
        w = w / w[0]
        threshold = calibrate_threshold(x @ w, correct, known, target).threshold
        x_mine, correct_mine, known_mine = folds[i] if judged is None else judged[i]
        score = x_mine @ w
        result = metrics.open_set_at_threshold(score, correct_mine, known_mine, threshold)
        aurocs.append(metrics.auroc(score[known_mine], score[~known_mine]))
        precisions.append(result.precision)
        accepted.append(result.known_acceptance)
        weights.append(w[1:])
    return StudyRow(
        cues,
        float(np.mean(aurocs)),
        float(np.nanmean(precisions)),
        float(np.mean(accepted)),
        float(np.std(accepted)),
        tuple(float(w) for w in np.mean(weights, axis=0)),
    )


def cross_fitted(parts: list[ScoreCues], cues: tuple[str, ...], target: float = 0.95) -> StudyRow:
    """Weights and threshold fitted on the other folds, judged on each fold; means over folds."""
    return cross_fit([stack_cues([p], cues) for p in parts], cues, target)


def fold_vectors(fold_dir: Path, skus: tuple[str, ...], root: Path, size: int, cache_dir: str) -> Vectors:
    """The fold model's LiteRT float32 embeddings of the protocol's photos (cached beside it)."""
    from embedder.artifact import load_artifact
    from embedder.runtime import LiteRTEmbedder
    from training.folds import cached_vectors, embed_fold, vectors_file

    def make() -> Vectors:
        embedder = LiteRTEmbedder(load_artifact(fold_dir / "litert-float32"), num_threads=2)
        return embed_fold(
            lambda pixels, desc=None: embedder.embed(np.asarray(pixels, np.uint8)), skus, root, size, cache_dir
        )

    return cached_vectors(fold_dir / vectors_file("float32"), skus, make)


@dataclass(frozen=True)
class StudyFold:
    """One fold of a study: its SKUs (never trained on, not enrolled) and the (joined) vectors."""

    fold_skus: tuple[str, ...]
    vectors: Vectors


def study_folds(runs: list[Path], skus: tuple[str, ...], root: Path, precision: str) -> list[StudyFold]:
    """The folds every run has, each run's vectors at ``precision`` joined as ``training.ensemble_folds`` does
    (one run: its own); float32 vectors are embedded when missing, other precisions read from the cache."""
    import json

    from training.ensemble_folds import combined
    from training.ensemble_folds import fold_vectors as cached_fold_vectors

    names = sorted(set.intersection(*({p.parent.name for p in run.glob("fold*/result.json")} for run in runs)))
    out = []
    for name in names:
        members = []
        for run in runs:
            fold_dir = run / name
            if precision == "float32":
                config = json.loads((fold_dir / "config.json").read_text())
                members.append(fold_vectors(fold_dir, skus, root, config["input_size"], config["cache_dir"]))
            else:
                members.append(cached_fold_vectors(fold_dir, skus, root, None if precision == "keras" else precision))
        fold_skus = tuple(json.loads((runs[0] / name / "result.json").read_text())["fold_skus"])
        out.append(StudyFold(fold_skus, members[0] if len(members) == 1 else combined(members)))
    return out


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="`skulens folds` output folders (several: an ensemble)")
    parser.add_argument("--precision", default="float32", help="float32 (embedded when missing), keras or a cached P")
    parser.add_argument("--target", type=float, default=0.95)


def main(argv: list[str] | None = None) -> None:
    from training.data import grocery_dir, list_skus

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_study_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = grocery_dir()
    skus = tuple(list_skus(root / "train"))
    folds = study_folds(args.runs, skus, root, args.precision)
    if len(folds) < 2:
        raise SystemExit(f"need >= 2 folds measured in every one of {[str(r) for r in args.runs]}, found {len(folds)}")
    conditions: dict[str, list[ScoreCues]] = {
        "clean": [score_cues(f.vectors, f.fold_skus, f.vectors.queries) for f in folds],
        "other day": [score_cues(f.vectors, f.fold_skus, f.vectors.shifted) for f in folds],
    }
    print(
        f"| cues beside the best similarity | condition | AUROC | precision | known accepted at P={args.target} | weights |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for cues in COMBINATIONS:
        for name, parts in conditions.items():
            row = cross_fitted(parts, cues, args.target)
            weights = ", ".join(f"{c} {w:+.3f}" for c, w in zip(cues, row.weights))
            print(
                f"| {' + '.join(cues)} | {name} | {row.auroc:.4f} | {row.precision:.3f} | "
                f"{row.known_accepted:.3f} ± {row.known_accepted_std:.3f} | {weights} |"
            )


if __name__ == "__main__":
    main()
