"""Does an open-set score's threshold keep its precision when the gallery is not the one it was fitted on?

The fold protocol fits a score's weights and threshold on galleries of about 45 SKUs with every train
photo enrolled. A store's gallery has fewer or more SKUs and often a handful of photos each, and a
cue read from the query's neighbourhood (the runner-up SKU's similarity) moves with it. For each score
of ``training.score_study``, fitted as there (on the other folds' full galleries), each fold is judged
on its full gallery and on galleries cut down, each cut drawn ``--seeds`` times:

* ``3/4 of the SKUs``: a quarter of the enrolled SKUs (and their queries) dropped; every unknown query kept;
* ``1/2 of the SKUs``: half dropped, and half the unknown queries too (the known:unknown mix kept);
* ``5 photos a SKU``: every enrolled SKU cut to 5 reference photos, as a merchandiser enrols.

``python -m training.score_gallery_study runs/folds/<run> [more runs: an ensemble] [--precision P]``
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, replace

import numpy as np

from evaluation import metrics
from evaluation.calibrate import calibrate_threshold, ridge_logistic
from training.fold_metrics import Vectors
from training.score_study import ScoreCues, StudyFold, add_study_arguments, score_cues, stack_cues, study_folds

logger = logging.getLogger(__name__)

SCORES: tuple[tuple[str, ...], ...] = (("lookalike",), ("runner_up",))


@dataclass(frozen=True)
class GalleryCut:
    name: str
    keep_skus: float = 1.0  # share of the enrolled SKUs kept
    keep_mix: bool = False  # drop the same share of unknown queries
    photos: int | None = None  # reference photos kept per SKU (None: all)


CUTS = (
    GalleryCut("full gallery"),
    GalleryCut("3/4 of the SKUs", keep_skus=0.75),
    GalleryCut("1/2 of the SKUs", keep_skus=0.5, keep_mix=True),
    GalleryCut("5 photos a SKU", photos=5),
)


def cut_gallery(v: Vectors, fold_skus: tuple[str, ...], cut: GalleryCut, rng: np.random.Generator) -> Vectors:
    """``v`` with the enrolled SKUs and their photos cut as ``cut`` says; the queries of dropped SKUs are
    removed (they are neither known nor one of the fold's unknown products)."""
    fold = np.array([v.skus.index(s) for s in fold_skus])
    enrolled = np.setdiff1d(np.unique(v.gallery_labels), fold)
    kept = rng.choice(enrolled, round(len(enrolled) * cut.keep_skus), replace=False)
    rows = np.flatnonzero(np.isin(v.gallery_labels, kept) | np.isin(v.gallery_labels, fold))
    if cut.photos is not None:
        rows = np.concatenate(
            [
                rng.choice(r, min(cut.photos, len(r)), replace=False)
                for r in (rows[v.gallery_labels[rows] == k] for k in kept)
            ]
        )
    unknown = np.flatnonzero(np.isin(v.query_labels, fold))
    if cut.keep_mix:
        unknown = rng.choice(unknown, round(len(unknown) * cut.keep_skus), replace=False)
    queries = np.sort(np.concatenate([np.flatnonzero(np.isin(v.query_labels, kept)), unknown]))
    return replace(
        v,
        gallery=v.gallery[rows],
        gallery_labels=v.gallery_labels[rows],
        queries=v.queries[queries],
        shifted=v.shifted[queries],
        flipped=v.flipped[queries],
        query_labels=v.query_labels[queries],
    )


@dataclass(frozen=True)
class CutResult:
    precision: float
    known_accepted: float
    auroc: float


def judged_on_cuts(
    folds: list[StudyFold], field: str, cues: tuple[str, ...], target: float, seeds: int
) -> dict[str, CutResult]:
    """Per cut: means over folds (and draws) at the weights and threshold fitted on the other folds' full
    galleries. ``field``: which queries (``queries`` clean, ``shifted`` other day)."""
    full = [score_cues(f.vectors, f.fold_skus, getattr(f.vectors, field)) for f in folds]
    out: dict[str, list[tuple[float, float, float]]] = {c.name: [] for c in CUTS}
    for i, fold in enumerate(folds):
        x, correct, known = stack_cues([p for j, p in enumerate(full) if j != i], cues)
        w = ridge_logistic(x, correct)[1:]
        w = w / w[0]
        threshold = calibrate_threshold(x @ w, correct, known, target).threshold
        for cut in CUTS:
            for seed in range(1 if cut == CUTS[0] else seeds):
                parts: list[ScoreCues] = [full[i]]
                if cut != CUTS[0]:
                    v = cut_gallery(fold.vectors, fold.fold_skus, cut, np.random.default_rng([i, seed]))
                    parts = [score_cues(v, fold.fold_skus, getattr(v, field))]
                xm, cm, km = stack_cues(parts, cues)
                score = xm @ w
                result = metrics.open_set_at_threshold(score, cm, km, threshold)
                out[cut.name].append((result.precision, result.known_acceptance, metrics.auroc(score[km], score[~km])))
    return {name: CutResult(*(float(np.nanmean(col)) for col in zip(*rows))) for name, rows in out.items()}


def main(argv: list[str] | None = None) -> None:
    from training.data import grocery_dir, list_skus

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_study_arguments(parser)
    parser.add_argument("--seeds", type=int, default=10, help="draws of each cut gallery per fold")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = grocery_dir()
    folds = study_folds(args.runs, tuple(list_skus(root / "train")), root, args.precision)
    if len(folds) < 2:
        raise SystemExit(f"need >= 2 folds measured in every one of {[str(r) for r in args.runs]}, found {len(folds)}")
    print(f"| score | condition | gallery | precision at the P={args.target} threshold | known accepted | AUROC |")
    print("| --- | --- | --- | --- | --- | --- |")
    for cues in SCORES:
        for condition, field in (("clean", "queries"), ("other day", "shifted")):
            for name, r in judged_on_cuts(folds, field, cues, args.target, args.seeds).items():
                print(
                    f"| {' + '.join(cues)} | {condition} | {name} | {r.precision:.3f} | {r.known_accepted:.3f} | "
                    f"{r.auroc:.3f} |"
                )


if __name__ == "__main__":
    main()
