"""Items that touch: one foreground blob cut into one mask per item.

Two cues, both classical (OpenCV), neither needing to know the products:

* **concavities**: where two convex items meet, the blob's outline folds inwards on both sides of the
  seam; a blob is cut along the straight line between two deep convexity defects when that line runs
  inside it and is short against their depth (``cut``), recursively;
* **distance peaks**: each piece's distance transform, with the photo's long edges inside the blob
  (``long_edges``: the seam where one pasted item ends and the next begins) carved out, has one peak
  per item; peaks that stand out by their *dynamic* (how far the distance drops on the way to a higher
  peak, found by sweeping a component tree from the top) seed a watershed (``split``). Only a blob less
  convex than ``min_solidity`` is split this way; a region smaller than an item gives its seed up.

A product made of several parts (a bunch of bananas, three onions) looks like touching items to
both; ``min_solidity`` and ``dynamic`` trade splitting those against merging items that touch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SplitConfig:
    seam_length: int = 35  # px (working size): edges inside a blob this long count as seams; 0: off
    min_solidity: float = 0.9  # a blob at least this convex (area / hull area) is not split at its peaks
    dynamic: float = 0.2  # a distance peak is an item of its own when it stands this share of its height
    min_peak: float = 8.0  # px (working size): a thinner bulge is not an item of its own
    level_step: float = 1.0  # px between the distance levels swept for peaks, at least
    levels: int = 40  # levels swept at most
    defect_depth: float = 0.07  # a concavity this deep (share of the blob's sqrt(area)) may end a seam
    seam_ratio: float = 1.0  # a cut at most this many times the two concavities' depths together
    min_cut_share: float = 0.08  # each side of a cut at least this share of the blob
    max_items: int = 16  # most pieces one blob is cut into


class TouchingSplitter:
    def __init__(self, config: SplitConfig = SplitConfig()):
        self.config = config

    def parts(self, component: np.ndarray, seams: np.ndarray | None, min_area: float) -> list[np.ndarray]:
        """One uint8 (0/1) mask per item of ``component`` (a 0/1 blob), cut at concavities, then split at
        distance peaks; ``seams``: long photo edges over the same pixels, or None."""
        return [part for piece in self.cut(component) for part in self.split(piece, seams, min_area)]

    def seeds(self, distance: np.ndarray) -> list[tuple[int, int]]:
        """Watershed seeds ``(y, x)``: the distance transform's peaks of at least ``min_peak`` px whose
        dynamic (how far the distance drops on the way to a higher peak) is at least ``dynamic`` of their
        height; a component tree swept from the top, ``levels`` at most."""
        found: list[tuple[int, int, float, bool]] = []  # y, x, height, alive
        top = float(distance.max())
        step = max(self.config.level_step, top / self.config.levels)
        level = top - step
        while level > 0:
            count, labels = cv2.connectedComponents((distance > level).astype(np.uint8), connectivity=8)
            groups: dict[int, list[int]] = {}
            for index, (y, x, _, alive) in enumerate(found):
                if alive:
                    groups.setdefault(int(labels[y, x]), []).append(index)
            for members in groups.values():
                members.sort(key=lambda i: -found[i][2])
                for i in members[1:]:
                    y, x, height, _ = found[i]
                    if height - level < self.config.dynamic * height:
                        found[i] = (y, x, height, False)  # not prominent enough: part of the higher peak
            for label in set(range(1, count)) - set(groups):
                inside = np.where(labels == label, distance, 0)
                row, col = (int(v) for v in np.unravel_index(int(np.argmax(inside)), inside.shape))
                height = float(distance[row, col])
                found.append((row, col, height, height >= self.config.min_peak))
            level -= step
        return [(y, x) for y, x, _, alive in found if alive]

    def cut(self, component: np.ndarray) -> list[np.ndarray]:
        """``component`` cut along straight lines between pairs of deep concavities (where two convex
        items meet, their outline folds inwards on both sides of the seam), recursively."""
        pieces, out = [component], list[np.ndarray]()
        while pieces:
            piece = pieces.pop()
            line = self.best_cut(piece) if len(out) + len(pieces) < self.config.max_items else None
            if line is None:
                out.append(piece)
                continue
            cut = piece.copy()
            cv2.line(cut, line[0], line[1], 0, 2)
            count, labels, stats, _ = cv2.connectedComponentsWithStats(cut, connectivity=4)
            parts = [
                (labels == i).astype(np.uint8)
                for i in range(1, count)
                if stats[i, cv2.CC_STAT_AREA] >= self.config.min_cut_share * piece.sum()
            ]
            if len(parts) < 2:
                out.append(piece)
            else:
                pieces.extend(parts)
        return out

    def best_cut(self, piece: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """The shortest seam between two deep concavities of ``piece``'s outline that runs inside it and is
        short against their depth; None when there is none."""
        contours, _ = cv2.findContours(piece, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        contour = max(contours, key=cv2.contourArea)
        if len(contour) < 8:
            return None
        hull = cv2.convexHull(contour, returnPoints=False)
        try:
            defects = cv2.convexityDefects(contour, hull)
        except cv2.error:  # a self-touching outline
            return None
        if defects is None:
            return None
        scale = float(np.sqrt(piece.sum()))
        deep = [
            ((int(contour[f][0][0]), int(contour[f][0][1])), d / 256.0)
            for _, _, f, d in defects.reshape(-1, 4)
            if d / 256.0 >= self.config.defect_depth * scale
        ]
        best, best_score = None, float("inf")
        for i in range(len(deep)):
            for j in range(i + 1, len(deep)):
                (p, dp), (q, dq) = deep[i], deep[j]
                length = float(np.hypot(p[0] - q[0], p[1] - q[1]))
                if length < 2 or length > self.config.seam_ratio * (dp + dq):
                    continue
                samples = np.linspace(0.1, 0.9, 9)
                xs = np.round(p[0] + samples * (q[0] - p[0])).astype(int)
                ys = np.round(p[1] + samples * (q[1] - p[1])).astype(int)
                if piece[ys, xs].mean() < 0.8:
                    continue  # the seam would run over the counter
                score = length / (dp + dq)
                if score < best_score:
                    best, best_score = (p, q), score
        return best

    def split(self, component: np.ndarray, seams: np.ndarray | None = None, min_area: float = 0.0) -> list[np.ndarray]:
        """One mask per item in ``component``: watershed on the distance transform from its peaks
        (``seams``, long edges inside the blob, carved out of it first so that they make necks); a region
        under ``min_area`` px gives up its seed to its neighbours."""
        contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if solidity(component, contours) >= self.config.min_solidity:
            return [component]  # convex: one item (items that touch make a concave blob)
        carved = component if seams is None else np.where(seams > 0, 0, component).astype(np.uint8)
        padded = cv2.copyMakeBorder(carved, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)
        peaks = self.seeds(distance)
        outside = cv2.copyMakeBorder(component, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0) == 0
        relief = cv2.cvtColor(
            (255 - cv2.normalize(distance, np.empty_like(distance), 0, 255, cv2.NORM_MINMAX)).astype(np.uint8),
            cv2.COLOR_GRAY2BGR,
        )
        while len(peaks) >= 2:
            markers = np.zeros(distance.shape, np.int32)
            for number, (y, x) in enumerate(peaks, start=1):
                cv2.circle(markers, (x, y), max(1, int(distance[y, x] * 0.3)), number, -1)
            markers[outside] = len(peaks) + 1  # the counter is a basin of its own
            cv2.watershed(relief, markers)
            areas = np.bincount(markers[~outside].clip(0), minlength=len(peaks) + 1)[1 : len(peaks) + 1]
            if areas.min() >= min_area:  # every region an item: done; else drop the smallest's seed and flood again
                markers = markers[1:-1, 1:-1]
                return [((markers == i) & (component > 0)).astype(np.uint8) for i in range(1, len(peaks) + 1)]
            peaks.pop(int(np.argmin(areas)))
        return [component]


def long_edges(photo: np.ndarray, length: int) -> np.ndarray:
    """uint8 mask (255) of the photo's edges that run at least ``length`` px (a seam between two items)."""
    edges = cv2.dilate(cv2.Canny(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), 60, 160), np.ones((2, 2), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(edges, connectivity=8)
    keep = np.zeros(count, np.uint8)
    keep[1:] = np.where(np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]) >= length, 255, 0)
    seams: np.ndarray = keep[labels]
    return seams


def solidity(mask: np.ndarray, contours: Sequence[np.ndarray]) -> float:
    """The mask's area over its convex hull's (1.0 for a convex shape, or an empty one)."""
    hull = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
    return float(mask.sum() / hull) if hull > 0 else 1.0
