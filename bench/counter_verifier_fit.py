"""Labels, fit and replay for ``bench/counter_verifier.py`` (round 5): pure over the collected scenes.

A proposed change is **right** (label 1) when taking it alone brings the scene's item count closer to the
truth without making its boxes less right: true positives less false positives at IoU 0.3 (greedy one-to-one
matching, ``counter.boxes.match``) do not go down. (IoU 0.3: the truth is each item's whole box, and a
touching item's visible part often covers less than half of it; labels at IoU 0.5 alone, taken as the
decision, would count fewer touching scenes right than round 4's rule: 0.662 against 0.692 on seeds 0-199.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from bench.counter_verifier_data import Planned
from bench.counter_verifier_replay import RULE, sims_of
from counter.boxes import match
from counter.hypotheses import Change, apply, evidence
from counter.verifier import Verifier, take
from counter.verifier_features import features
from evaluation.calibrate import ridge_logistic

log = logging.getLogger("bench.counter_verifier")


@dataclass(frozen=True)
class Examples:
    x: np.ndarray  # (changes, features)
    y: np.ndarray  # 1: the change makes the boxes more right
    split: np.ndarray  # bool per change
    rule: np.ndarray  # round 4's evidence for the finer cut, per change
    scene: np.ndarray  # index of the scene


def score(scene: Planned, items: list[int], threshold: float = 0.3) -> int:
    boxes = [scene.boxes[i] for i in items]
    hits = len(match(boxes, [i.box for i in scene.items], threshold))
    return hits - (len(boxes) - hits)


def right(scene: Planned, change: Change) -> bool:
    """Taking ``change`` alone brings the count closer to the truth and loses no box (IoU 0.3)."""
    after = apply(scene.baseline, [change])
    closer = abs(len(after) - len(scene.items)) < abs(len(scene.baseline) - len(scene.items))
    return closer and score(scene, after) >= score(scene, scene.baseline)


def examples(scenes: list[Planned], skus: list[str], unknown: bool = False) -> Examples:
    rows, labels, kinds, rules, owners = [], [], [], [], []
    for k, scene in enumerate(scenes):
        sims = sims_of(scene, skus, unknown)
        for change, shape in zip(scene.changes, scene.shapes, strict=True):
            rows.append(features(change, shape, sims, scene.item_area).vector())
            labels.append(right(scene, change))
            kinds.append(len(change.into) > len(change.replaces))
            rules.append(evidence(change, sims, RULE))
            owners.append(k)
    return Examples(np.array(rows), np.array(labels, float), np.array(kinds), np.array(rules), np.array(owners))


def auc(values: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = values[labels > 0], values[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    return float(greater)


KINDS = ("split", "merge")


def kind_mask(data: Examples, kind: str) -> np.ndarray:
    mask: np.ndarray = data.split if kind == "split" else ~data.split
    return mask


def fit(data: Examples, l2: dict[str, float], provenance: dict[str, object]) -> Verifier:
    """One ridge logistic regression per kind of change (``l2``: its penalty, per kind)."""
    weights = {
        kind: tuple(
            float(w) for w in ridge_logistic(data.x[kind_mask(data, kind)], data.y[kind_mask(data, kind)], l2[kind])
        )
        for kind in KINDS
    }
    return Verifier(weights["split"], weights["merge"], provenance=provenance)


def out_of_fold(data: Examples, l2: float, folds: int = 5) -> dict[str, float]:
    """AUC of each change scored by a verifier fitted on the other folds' scenes (scenes in ``folds`` groups),
    beside round 4's evidence (a merge is right when the evidence for the finer cut is low)."""
    logits = np.zeros(len(data.y))
    group = data.scene % folds
    for g in range(folds):
        train = group != g
        sub = Examples(data.x[train], data.y[train], data.split[train], data.rule[train], data.scene[train])
        verifier = fit(sub, dict.fromkeys(KINDS, l2), {})
        for i in np.flatnonzero(~train):
            logits[i] = verifier.score(data.x[i], bool(data.split[i]))
    out: dict[str, float] = {}
    for kind in KINDS:
        mask, sign = kind_mask(data, kind), 1.0 if kind == "split" else -1.0
        out[f"{kind}_learned_auc"] = auc(logits[mask], data.y[mask])
        out[f"{kind}_rule_auc"] = auc(sign * data.rule[mask], data.y[mask])
        out[f"{kind}_changes"], out[f"{kind}_right"] = int(mask.sum()), int(data.y[mask].sum())
    return out


def penalties(data: Examples, grid: tuple[float, ...]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Each kind's penalty with the best out-of-fold AUC, and every penalty's figures."""
    folds = {str(l2): out_of_fold(data, l2) for l2 in grid}
    best = {kind: max(grid, key=lambda v: folds[str(v)][f"{kind}_learned_auc"]) for kind in KINDS}
    return best, folds


def both_ways(scenes: list[Planned], skus: list[str]) -> Examples:
    """Each change twice: every SKU enrolled, and the scene's own SKUs left out (the items unknown)."""
    known, unknown = examples(scenes, skus), examples(scenes, skus, unknown=True)
    return Examples(*(np.concatenate([a, b]) for a, b in zip(astuple_(known), astuple_(unknown), strict=True)))


def astuple_(data: Examples) -> tuple[np.ndarray, ...]:
    return (data.x, data.y, data.split, data.rule, data.scene)


def logits(scenes: list[Planned], skus: list[str], verifier: Verifier, unknown: bool) -> list[list[float]]:
    """Each scene's changes' log-odds (thresholds 0)."""
    out = []
    for scene in scenes:
        sims = sims_of(scene, skus, unknown)
        out.append(
            [
                verifier.score(features(c, s, sims, scene.item_area).vector(), len(c.into) > len(c.replaces))
                for c, s in zip(scene.changes, scene.shapes, strict=True)
            ]
        )
    return out


def thresholds(verifier: Verifier, scenes: list[Planned], skus: list[str]) -> Verifier:
    """The split and merge thresholds (log-odds) that count the most scenes right, every SKU enrolled and the
    scene's own left out together."""
    raw = logits(scenes, skus, verifier, False) + logits(scenes, skus, verifier, True)
    grid = np.arange(-2.0, 3.01, 0.25)
    best = (-1, 0.0, 0.0)
    for s in grid:
        for m in grid:
            right = 0
            for scene, values in zip(scenes + scenes, raw, strict=True):
                shifted = [
                    v - (s if len(c.into) > len(c.replaces) else m) for c, v in zip(scene.changes, values, strict=True)
                ]
                right += int(len(apply(scene.baseline, take(scene.changes, shifted))) == len(scene.items))
            if right > best[0] or (right == best[0] and abs(s) + abs(m) < abs(best[1]) + abs(best[2])):
                best = (right, float(s), float(m))
    log.info(
        "thresholds: split %.2f merge %.2f (%d of %d scenes x 2 counted right)", best[1], best[2], best[0], len(scenes)
    )
    return replace(verifier, split_threshold=best[1], merge_threshold=best[2])
