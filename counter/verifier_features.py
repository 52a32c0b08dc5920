"""What the learned verifier (``counter/verifier.py``) knows about one proposed change: pure NumPy features.

A change replaces some crops by others (``counter/hypotheses.py``); its **coarse** side is one crop (the part
to split, or the merged part) and its **fine** side two or more. Two kinds of features, both from what the
checkout has anyway:

* **recognition**, from the crops' similarities to each product (a row per crop): how much better the fine
  parts are recognised than the coarse crop (mean best similarity), how much less they look like the coarse
  crop's product than like their own (round 4's two cues), whether the fine parts agree on a product, the
  margins between each crop's best and runner-up product, the coarse crop's best and the weakest fine part's;
* **geometry**, from the masks at the working size: the coarse part's area in typical items, its solidity and
  elongation, how equal the fine parts are, and the cut itself: its length against the coarse part's size and
  against its width across the long axis (a cut through a waist is two items, one across the full width one
  item halved), and the fine parts' own solidity.

Tested with tiny arrays (tests/counter/test_verifier.py).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

import cv2
import numpy as np

from counter.hypotheses import Change


@dataclass(frozen=True)
class Shapes:
    """A change's masks (0/1 over the blob's pixels): the parts it replaces and the parts it puts instead."""

    replaces: list[np.ndarray]
    into: list[np.ndarray]

    @property
    def split(self) -> bool:
        return len(self.into) > len(self.replaces)

    @property
    def coarse(self) -> np.ndarray:
        return self.replaces[0] if self.split else self.into[0]

    @property
    def fine(self) -> list[np.ndarray]:
        return self.into if self.split else self.replaces


@dataclass(frozen=True)
class Features:
    better: float  # mean best similarity of the fine parts less the coarse crop's
    alike: float  # mean of (fine part's similarity to the coarse crop's product - its best), <= 0
    agree: float  # 1: every fine part's best product is the same
    fine_margin: float  # mean (best - runner-up) over the fine parts
    coarse_margin: float  # the coarse crop's best - runner-up
    coarse_best: float  # the coarse crop's best similarity
    fine_worst: float  # the weakest fine part's best similarity
    items: float  # the coarse part's area in typical items
    solidity: float  # the coarse part's area over its convex hull's
    elongation: float  # sqrt of the ratio of its pixels' principal variances (1: round)
    balance: float  # the smallest fine part's area over the largest's
    cut: float  # pixels where fine parts touch, per cut, over sqrt(coarse area)
    neck: float  # the same length over the coarse part's width across its long axis
    fine_solidity: float  # mean solidity of the fine parts

    def vector(self) -> np.ndarray:
        return np.array(astuple(self), np.float64)


NAMES = tuple(f.name for f in fields(Features))


def features(change: Change, shapes: Shapes, sims: np.ndarray, item_area: float) -> Features:
    """The change's features; ``sims`` holds a row of per-product similarities for each crop index."""
    split = len(change.into) > len(change.replaces)
    fine, coarse = (change.into, change.replaces) if split else (change.replaces, change.into)
    best = sims.max(axis=1)
    second = np.sort(sims, axis=1)[:, -2] if sims.shape[1] > 1 else best
    c = coarse[0]
    product = int(np.argmax(sims[c]))
    f = list(fine)
    whole = shapes.coarse
    area = float(np.count_nonzero(whole))
    width = 4.0 * np.sqrt(max(principal_variances(whole)[0], 1e-9))
    length = contact(shapes.fine) / max(1, len(shapes.fine) - 1)
    sizes = [int(np.count_nonzero(m)) for m in shapes.fine]
    return Features(
        better=float(best[f].mean() - best[c]),
        alike=float(np.mean(sims[f, product] - best[f])),
        agree=float(len({int(np.argmax(sims[i])) for i in f}) == 1),
        fine_margin=float(np.mean(best[f] - second[f])),
        coarse_margin=float(best[c] - second[c]),
        coarse_best=float(best[c]),
        fine_worst=float(best[f].min()),
        items=area / item_area if item_area > 0 else 0.0,
        solidity=solidity(whole),
        elongation=elongation(whole),
        balance=min(sizes) / max([*sizes, 1]),
        cut=length / np.sqrt(max(area, 1.0)),
        neck=length / width,
        fine_solidity=float(np.mean([solidity(m) for m in shapes.fine])),
    )


def principal_variances(mask: np.ndarray) -> np.ndarray:
    """The variances of the mask's pixel coordinates along its principal axes, ascending (from its moments)."""
    m = cv2.moments(mask.astype(np.uint8), binaryImage=True)
    if m["m00"] < 2:
        return np.zeros(2)
    cov = np.array([[m["mu20"], m["mu11"]], [m["mu11"], m["mu02"]]]) / m["m00"]
    return np.linalg.eigvalsh(cov)


def elongation(mask: np.ndarray) -> float:
    low, high = principal_variances(mask)
    return float(np.sqrt(high / low)) if low > 0 else 1.0


def solidity(mask: np.ndarray) -> float:
    """The mask's pixels over its convex hull's, both counted in pixels (1.0 for a filled rectangle)."""
    binary = mask.astype(np.uint8)
    area = int(np.count_nonzero(binary))
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if area < 3 or not contours:
        return 1.0
    filled = np.zeros(binary.shape, np.uint8)
    cv2.fillConvexPoly(filled, cv2.convexHull(np.concatenate(contours)), 1)
    return area / max(int(np.count_nonzero(filled)), area)


def contact(masks: list[np.ndarray]) -> float:
    """Pixels of one mask that touch (4-neighbourhood) a pixel of another: the length of the cuts between them."""
    labels = np.zeros(masks[0].shape, np.int32)
    for k, m in enumerate(masks, start=1):
        labels[m > 0] = k
    touching = np.zeros(labels.shape, bool)
    touching[1:] |= (labels[1:] > 0) & (labels[:-1] > 0) & (labels[1:] != labels[:-1])
    touching[:, 1:] |= (labels[:, 1:] > 0) & (labels[:, :-1] > 0) & (labels[:, 1:] != labels[:, :-1])
    return float(np.count_nonzero(touching))
