"""Analysis behind the model card's "ensemble weighting" and "ensemble-aware open-set score" figures (not product
code; run from the repository root with SKULENS_GROCERY_DIR set, after the fold runs of the model card's Reproduce).

For every V3 x MobileNetV2 seed pairing and every fold, from the cached fold vectors (``vectors-keras.npz``):
  * weights: the similarity ``w cos_V3 + (1 - w) cos_V2`` for w in 0.3..0.7 (members' vectors scaled by sqrt(w));
  * scores: the served score (best mean similarity) against the lower of the two members' best similarities to the
    predicted SKU, and the served score less a penalty when either member's own first choice differs.
Each variant is measured exactly as the fold protocol measures a model (``evaluate_fold`` / ``summarise``).
  * mistakes: which unknown products the V3 s0 + V2 s0 ensemble accepts at a 95 % threshold on the pooled folds
    (lookalike-adjusted score, beta 0.19), and as what.

    .venv/bin/python docs/analysis/ensemble_scores.py
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from evaluation import metrics
from training.data import grocery_dir, list_skus
from training.fold_metrics import EMBEDDING_FIELDS, evaluate_fold
from training.fold_summary import summarise
from training.folds import load_vectors

FOLDS = Path("runs/folds")
PAIRS = [
    ("gem_dim512_seed0", "v2_gem_dim512_seed0", "ens_v3_v2_dim512"),
    ("gem_dim512_seed1", "v2_gem_dim512_seed0", "ens_v3s1_v2_dim512"),
    ("gem_dim512_seed0", "v2_gem_dim512_seed1", "ens_v3s0_v2s1_dim512"),
    ("gem_dim512_seed1", "v2_gem_dim512_seed1", "ens_v3s1_v2s1_dim512"),
]
KEYS = [
    "top1_clean_all",
    "auroc_clean",
    "auroc_shifted",
    "at_p95_clean_lookalike_known_acceptance",
    "at_p95_shifted_lookalike_known_acceptance",
]


def weights_study(skus: tuple[str, ...]) -> None:
    for w in (0.3, 0.4, 0.5, 0.6, 0.7):
        per_pair = []
        for a, b, _ in PAIRS:
            rows = []
            for f in range(4):
                va = load_vectors(FOLDS / a / f"fold{f}" / "vectors-keras.npz", skus)
                vb = load_vectors(FOLDS / b / f"fold{f}" / "vectors-keras.npz", skus)
                mapped = {
                    n: np.concatenate([np.sqrt(w) * getattr(va, n), np.sqrt(1 - w) * getattr(vb, n)], axis=1)
                    for n in EMBEDDING_FIELDS
                }
                fold_skus = json.loads((FOLDS / a / f"fold{f}" / "result.json").read_text())["fold_skus"]
                rows.append(
                    {"fold": f, "fold_skus": fold_skus, **evaluate_fold(replace(va, **mapped), tuple(fold_skus))}
                )
            figures = summarise(rows, 0.95)
            per_pair.append([figures[k]["mean"] for k in KEYS])
        means = np.array(per_pair).mean(axis=0)
        print(f"w_V3 {w}: " + " ".join(f"{k}={x:.3f}" for k, x in zip(KEYS, means, strict=True)))


def scores_study(skus: tuple[str, ...]) -> None:
    variants: dict[str, str | float | None] = {"mean (served)": None, "min of members": "min", "disagree 0.05": 0.05}
    variants["disagree 0.1"] = 0.1
    results: dict[str, list[list[float]]] = {v: [] for v in variants}
    for a, b, ensemble in PAIRS:
        rows: dict[str, list[dict]] = {v: [] for v in variants}
        for f in range(4):
            row = json.loads((FOLDS / ensemble / f"fold{f}" / "result.json").read_text())
            fold = {skus.index(s) for s in row["fold_skus"]}
            va = load_vectors(FOLDS / a / f"fold{f}" / "vectors-keras.npz", skus)
            vb = load_vectors(FOLDS / b / f"fold{f}" / "vectors-keras.npz", skus)
            enrolled = np.array([label not in fold for label in va.gallery_labels])
            labels = va.gallery_labels[enrolled]
            alternatives = {}
            for cond, qa, qb in (("clean", va.queries, vb.queries), ("shifted", va.shifted, vb.shifted)):
                sim_a, sim_b = qa @ va.gallery[enrolled].T, qb @ vb.gallery[enrolled].T
                sa = metrics.best_score_per_sku(sim_a, labels, len(skus))
                sb = metrics.best_score_per_sku(sim_b, labels, len(skus))
                mean = metrics.best_score_per_sku((sim_a + sim_b) / 2, labels, len(skus))
                pred, i = mean.argmax(1), np.arange(len(mean))
                assert np.allclose(row["open_set"][cond]["score"], mean.max(1), atol=1e-4), "not the served score"
                disagree = (sa.argmax(1) != pred) | (sb.argmax(1) != pred)
                alternatives[cond] = {
                    "min": np.minimum(sa[i, pred], sb[i, pred]),
                    0.05: mean.max(1) - 0.05 * disagree,
                    0.1: mean.max(1) - 0.1 * disagree,
                }
            for variant, kind in variants.items():
                changed = copy.deepcopy(row)
                if kind is not None:
                    for cond in ("clean", "shifted"):
                        s = alternatives[cond][kind]
                        known = np.asarray(changed["open_set"][cond]["known"], bool)
                        changed["open_set"][cond]["score"] = s.tolist()
                        changed["open_set"][cond]["auroc"] = metrics.auroc(s[known], s[~known])
                rows[variant].append(changed)
        for variant in variants:
            figures = summarise(rows[variant], 0.95)
            results[variant].append([figures[k]["mean"] for k in KEYS])
    for variant, per_pair in results.items():
        table = np.array(per_pair)
        print(
            f"{variant}: "
            + " ".join(f"{k}={x:.3f}" for k, x in zip(KEYS, table.mean(axis=0), strict=True))
            + f" | clean acceptance by pairing {table[:, 3].round(3).tolist()}"
        )


def accepted_mistakes(skus: tuple[str, ...], beta: float = 0.19) -> None:
    from collections import Counter

    from gallery.lookalike import adjusted_score
    from training.ensemble_folds import combined
    from training.fold_metrics import label_lookalikes

    a, b, _ = PAIRS[0]
    for cond in ("clean", "shifted"):
        answers = []  # (score, true SKU, predicted SKU, right)
        for f in range(4):
            v = combined([load_vectors(FOLDS / run / f"fold{f}" / "vectors-keras.npz", skus) for run in (a, b)])
            fold = {
                skus.index(s) for s in json.loads((FOLDS / a / f"fold{f}" / "result.json").read_text())["fold_skus"]
            }
            enrolled = np.array([label not in fold for label in v.gallery_labels])
            queries = v.queries if cond == "clean" else v.shifted
            scores = metrics.best_score_per_sku(queries @ v.gallery[enrolled].T, v.gallery_labels[enrolled], len(skus))
            look = label_lookalikes(v.gallery[enrolled], v.gallery_labels[enrolled], len(skus))
            pred = scores.argmax(1)
            adjusted = adjusted_score(scores.max(1), look[pred], beta)
            for q, label in enumerate(v.query_labels):
                answers.append((adjusted[q], skus[label], skus[pred[q]], pred[q] == label))
        answers.sort(key=lambda x: -x[0])
        precision = np.cumsum([x[3] for x in answers]) / np.arange(1, len(answers) + 1)
        last = int(np.flatnonzero(precision >= 0.95).max())
        wrong = Counter((x[1], x[2]) for x in answers[: last + 1] if not x[3])
        print(f"{cond}: threshold {answers[last][0]:.3f}, {last + 1} accepted; mistakes {wrong.most_common(10)}")


if __name__ == "__main__":
    train_skus = tuple(list_skus(grocery_dir() / "train"))
    weights_study(train_skus)
    scores_study(train_skus)
    accepted_mistakes(train_skus)
