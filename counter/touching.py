"""Items that touch: one foreground blob cut into one mask per item.

Classical cues (OpenCV), none needing to know the products:

* **concavities**: where two convex items meet, the blob's outline folds inwards on both sides of the
  seam; a blob is cut along the straight line between two deep convexity defects when that line runs
  inside it and is short against their depth, or somewhat longer when the two sides differ clearly in
  colour (two products), recursively (``cut``);
* **distance peaks**: each piece's distance transform, with the photo's long edges inside the blob
  (``long_edges``: the seam where one item ends and the next begins) carved out, has one peak per item;
  peaks that stand out by their *dynamic* (how far the distance drops on the way to a higher peak, found
  by sweeping a component tree from the top: ``peaks``) seed a watershed (``split``). Only a blob less
  convex than ``min_solidity``, or one several typical items big, is split this way; a region smaller
  than an item gives its seed up;
* **the expected item size** (``item_area``, the lane's: its camera is fixed): a blob whose area holds
  several items gets at least that many seeds (the next most prominent peaks) and not many more;
* **an edge across a convex part** (``split_at_seams``, ``counter/seam_split.py``): two products pressed
  into a part as convex as one item are split along a long photo edge that divides it into two item-shaped
  sides of clearly different colours;
* **merge-back** (``merge_back``): two neighbouring parts of alike colours whose union is convex, or of
  nearly the same mean colour whose union is as convex as one item, were one item split in two.

A product made of several parts (a bunch of bananas, three onions) looks like touching items to all of
them; ``min_solidity``, ``dynamic`` and the merge-back trade splitting those against merging items
that touch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from counter.seam_split import SeamSplitConfig, seam_sides


@dataclass(frozen=True)
class SplitConfig:
    seam_length: int = 35  # px (working size): edges inside a blob this long count as seams; 0: off
    min_solidity: float = 0.9  # a blob at least this convex (area / hull area) is not split at its peaks
    dynamic: float = 0.3  # a distance peak is an item of its own when it stands this share of its height
    weak_dynamic: float = 0.05  # ... or this share, while the blob's area asks for more items than that
    convex_items: float = 2.5  # a convex blob this many typical items big is split all the same
    area_trust: float = 1.0  # a blob is split into at least this share of the items its area suggests ...
    area_slack: float = 1.5  # ... and into at most this share of them, rounded up
    merge_similarity: float = 0.75  # neighbouring parts this alike in colour (0-1; above 1: never) ...
    merge_solidity: float = 0.85  # ... whose union is this convex are one item
    merge_contrast: float = 13.0  # neighbouring parts whose mean colours (CIELAB) are this close ...
    merge_convex: float = 0.93  # ... and whose union is this convex are one item too
    min_peak: float = 8.0  # px (working size): a thinner bulge is not an item of its own
    level_step: float = 1.0  # px between the distance levels swept for peaks, at least
    levels: int = 40  # levels swept at most
    defect_depth: float = 0.07  # a concavity this deep (share of the blob's sqrt(area)) may end a seam
    seam_ratio: float = 1.0  # a cut at most this many times the two concavities' depths together
    contrast_seam_ratio: float = 3.0  # ... this many when the two sides differ in colour (two products)
    min_contrast: float = 55.0  # CIELAB distance between the mean colours of a cut's two sides
    min_cut_share: float = 0.08  # each side of a cut at least this share of the blob
    max_items: int = 16  # most pieces one blob is cut into
    seam: SeamSplitConfig = field(default_factory=SeamSplitConfig)  # two products in one convex part


class TouchingSplitter:
    def __init__(self, config: SplitConfig = SplitConfig()):
        self.config = config

    def parts(
        self,
        component: np.ndarray,
        seams: np.ndarray | None,
        min_area: float,
        colours: np.ndarray | None = None,
        item_area: float = 0.0,
    ) -> list[np.ndarray]:
        """One uint8 (0/1) mask per item of ``component`` (a 0/1 blob), cut at concavities, then split at
        distance peaks; ``seams``: long photo edges over the same pixels, or None; ``colours``: the photo in
        CIELAB (float32) over the same pixels (a cut between two sides of different colours is taken more
        readily), or None."""
        found = [
            part for piece in self.cut(component, colours) for part in self.split(piece, seams, min_area, item_area)
        ]
        if colours is not None:
            found = [side for part in found for side in self.split_at_seams(part, seams, colours, item_area)]
        if colours is None or len(found) < 2 or self.config.merge_similarity > 1:
            return found
        return self.merge_back(found, colours, item_area)

    def split_at_seams(
        self, part: np.ndarray, seams: np.ndarray | None, colours: np.ndarray, item_area: float
    ) -> list[np.ndarray]:
        """``part`` as one mask, or as two when a long edge runs across it between two products of different
        colours (``counter/seam_split.py``); every pixel of the part to the side it reaches first."""
        sides = seam_sides(part, seams, colours, item_area, self.config.seam)
        if sides is None:
            return [part]
        markers = np.zeros(part.shape, np.int32)
        markers[sides[0] > 0], markers[sides[1] > 0] = 1, 2
        regions = fill_unassigned(markers, part, 2)
        return [(regions == 1).astype(np.uint8), (regions == 2).astype(np.uint8)]

    def merge_back(self, parts: list[np.ndarray], colours: np.ndarray, item_area: float = 0.0) -> list[np.ndarray]:
        """Over-splits undone: two neighbouring parts, together not bigger than ``convex_items`` typical items,
        are one item when their colours are alike (histogram intersection of their a*b* colours at least
        ``merge_similarity``) and their union is convex (solidity at least ``merge_solidity``), or when their
        mean colours are as close as one product's two halves (CIELAB distance at most ``merge_contrast``)
        and their union is as convex as one item (``merge_convex``); the most alike pair first, repeated."""
        parts = list(parts)
        kernel = np.ones((3, 3), np.uint8)
        while len(parts) >= 2:
            best, best_similarity = None, -1.0
            hists = [chroma_histogram(colours, part) for part in parts]
            means = [colours[part > 0].mean(axis=0) for part in parts]
            grown = [cv2.dilate(part, kernel) for part in parts]
            for i in range(len(parts)):
                for j in range(i + 1, len(parts)):
                    if not (grown[i] & parts[j]).any():
                        continue
                    similarity = float(np.minimum(hists[i], hists[j]).sum())
                    alike = similarity >= self.config.merge_similarity
                    close = float(np.linalg.norm(means[i] - means[j])) <= self.config.merge_contrast
                    if similarity < best_similarity or not (alike or close):
                        continue
                    union = parts[i] | parts[j]
                    if item_area > 0 and union.sum() > self.config.convex_items * item_area:
                        continue
                    contours, _ = cv2.findContours(union, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
                    convex = solidity(union, contours)
                    by_histogram = alike and convex >= self.config.merge_solidity
                    by_mean = close and convex >= self.config.merge_convex
                    if by_histogram or by_mean:
                        best, best_similarity = (i, j), similarity
            if best is None:
                return parts
            i, j = best
            parts[i] = parts[i] | parts[j]
            del parts[j]
        return parts

    def seeds(self, distance: np.ndarray, wanted: int = 0, allowed: int = 0) -> list[tuple[int, int]]:
        """Watershed seeds ``(y, x)``: the distance transform's peaks of at least ``min_peak`` px whose
        dynamic is at least ``dynamic`` of their height, the most prominent first; at least ``wanted`` (the
        items the blob's area suggests; the next most prominent peaks, down to ``weak_dynamic``) and at most
        ``allowed`` of them (0: no limit)."""
        ranked = sorted(
            (
                (drop / height, y, x)
                for y, x, height, drop in peaks(distance, self.config.level_step, self.config.levels)
                if height >= self.config.min_peak and drop >= self.config.weak_dynamic * height
            ),
            reverse=True,
        )
        count = max(sum(r >= self.config.dynamic for r, _, _ in ranked), wanted)
        if allowed:
            count = min(count, allowed)
        return [(y, x) for _, y, x in ranked[:count]]

    def cut(self, component: np.ndarray, colours: np.ndarray | None = None) -> list[np.ndarray]:
        """``component`` cut along straight lines between pairs of deep concavities (where two convex
        items meet, their outline folds inwards on both sides of the seam), recursively."""
        pieces, out = [component], list[np.ndarray]()
        while pieces:
            piece = pieces.pop()
            line = self.best_cut(piece, colours) if len(out) + len(pieces) < self.config.max_items else None
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

    def best_cut(
        self, piece: np.ndarray, colours: np.ndarray | None = None
    ) -> tuple[tuple[int, int], tuple[int, int]] | None:
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
                if length < 2 or length > self.config.contrast_seam_ratio * (dp + dq):
                    continue
                samples = np.linspace(0.1, 0.9, 9)
                xs = np.round(p[0] + samples * (q[0] - p[0])).astype(int)
                ys = np.round(p[1] + samples * (q[1] - p[1])).astype(int)
                if piece[ys, xs].mean() < 0.8:
                    continue  # the seam would run over the counter
                long_cut = length > self.config.seam_ratio * (dp + dq)
                if long_cut and (colours is None or side_contrast(piece, colours, p, q) < self.config.min_contrast):
                    continue  # a long cut: only between two sides of clearly different colours
                score = length / (dp + dq)
                if score < best_score:
                    best, best_score = (p, q), score
        return best

    def split(
        self, component: np.ndarray, seams: np.ndarray | None = None, min_area: float = 0.0, item_area: float = 0.0
    ) -> list[np.ndarray]:
        """One mask per item in ``component``: watershed on the distance transform from its peaks
        (``seams``, long edges inside the blob, carved out of it first so that they make necks); a region
        under ``min_area`` px gives up its seed to its neighbours. ``item_area``: a typical item's area in px
        (0: unknown); a blob of several times that is split into about as many items as it holds."""
        contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        expected = float(component.sum()) / item_area if item_area > 0 else 0.0
        if solidity(component, contours) >= self.config.min_solidity and expected < self.config.convex_items:
            return [component]  # convex and not big: one item (items that touch make a concave blob)
        wanted = int(expected * self.config.area_trust)
        allowed = max(1, math.ceil(expected * self.config.area_slack)) if item_area > 0 else 0
        carved = component if seams is None else np.where(seams > 0, 0, component).astype(np.uint8)
        padded = cv2.copyMakeBorder(carved, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)
        peaks = self.seeds(distance, wanted, allowed)
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
            regions = fill_unassigned(markers[1:-1, 1:-1], component, len(peaks))
            areas = np.bincount(regions[component > 0], minlength=len(peaks) + 1)[1:]
            if areas.min() >= min_area:  # every region an item: done; else drop the smallest's seed and flood again
                return [(regions == i).astype(np.uint8) for i in range(1, len(peaks) + 1)]
            peaks.pop(int(np.argmin(areas)))
        return [component]


def chroma_histogram(colours: np.ndarray, mask: np.ndarray, bins: int = 8) -> np.ndarray:
    """Normalised 2-D histogram of the a*, b* colours (OpenCV 8-bit CIELAB) of ``mask``'s pixels."""
    pixels = colours[mask > 0]
    hist, _, _ = np.histogram2d(pixels[:, 1], pixels[:, 2], bins=bins, range=[[64, 192], [64, 192]])
    total = hist.sum()
    out: np.ndarray = hist / total if total else hist
    return out


def fill_unassigned(markers: np.ndarray, component: np.ndarray, count: int) -> np.ndarray:
    """``markers`` (watershed labels 1..count; -1 on its lines, count + 1 for the counter) over ``component``:
    every pixel of the component that the watershed left unlabelled (its lines, or where the counter's basin
    flooded in along a carved seam) given the label of a labelled neighbour, growing inwards; int32, 0 outside."""
    regions = np.where((markers >= 1) & (markers <= count) & (component > 0), markers, 0).astype(np.int32)
    kernel = np.ones((3, 3), np.uint8)
    for _ in range(max(component.shape)):
        missing = (component > 0) & (regions == 0)
        if not missing.any():
            break
        grown = cv2.dilate(regions.astype(np.float32), kernel).astype(np.int32)
        regions = np.where(missing, grown, regions)
    return regions


def peaks(distance: np.ndarray, step: float = 1.0, levels: int = 40) -> list[tuple[int, int, float, float]]:
    """The peaks ``(y, x, height, dynamic)`` of a distance transform: a component tree swept from the top
    (``levels`` at most, at least ``step`` apart); a peak's dynamic is how far the distance drops on the way
    to a higher peak (the highest's: its height)."""
    found: list[list[float]] = []  # y, x, height, dynamic (-1 while not yet met by a higher peak)
    top = float(distance.max())
    step = max(step, top / levels)
    level = top - step
    while level > 0:
        count, labels = cv2.connectedComponents((distance > level).astype(np.uint8), connectivity=8)
        groups: dict[int, list[int]] = {}
        for index, (y, x, _, drop) in enumerate(found):
            if drop < 0:
                groups.setdefault(int(labels[int(y), int(x)]), []).append(index)
        for members in groups.values():
            members.sort(key=lambda i: -found[i][2])
            for i in members[1:]:
                found[i][3] = found[i][2] - level  # met a higher peak: its dynamic
        for label in set(range(1, count)) - set(groups) - {int(labels[int(f[0]), int(f[1])]) for f in found}:
            inside = np.where(labels == label, distance, 0)
            row, col = (int(v) for v in np.unravel_index(int(np.argmax(inside)), inside.shape))
            found.append([row, col, float(distance[row, col]), -1.0])
        level -= step
    return [(int(y), int(x), h, h if d < 0 else d) for y, x, h, d in found]


def side_contrast(piece: np.ndarray, colours: np.ndarray, p: tuple[int, int], q: tuple[int, int]) -> float:
    """CIELAB distance between the mean colours of ``piece``'s pixels on either side of the line ``p``-``q``."""
    ys, xs = np.nonzero(piece)
    side = (q[0] - p[0]) * (ys - p[1]) - (q[1] - p[1]) * (xs - p[0])
    left, right = colours[ys[side > 0], xs[side > 0]], colours[ys[side < 0], xs[side < 0]]
    if len(left) == 0 or len(right) == 0:
        return 0.0
    return float(np.linalg.norm(left.mean(axis=0) - right.mean(axis=0)))


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
