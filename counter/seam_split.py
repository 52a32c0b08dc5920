"""Two products in one convex part, told apart by an edge that runs across it and their colours.

Items pressed together along a straight side, or one lying partly over another, can make a part as
convex as one item: no concavity to cut at, one peak in its distance transform. Where one product ends
and the other begins the photo has an edge that runs right across the part; a product's own print or
shading rarely does, and when it does, the two sides are still one product's colours. ``seam_sides``
carves the photo's long edges out of the part; when that leaves two large regions that are item-shaped
(convex), cover most of the part between them (a clean division, not a label's print cut into pieces) and
differ clearly in mean colour (CIELAB), the part is split there (``TouchingSplitter.split_at_seams``:
every other pixel of the part to the nearer side).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SeamSplitConfig:
    min_size: float = 1.0  # a part at least this many typical items big is tried; 0: off
    min_items: float = 0.2  # each side at least this share of a typical item
    min_solidity: float = 0.8  # ... and at least this convex
    cover: float = 0.6  # the two sides together at least this share of the part
    contrast: float = 25.0  # CIELAB distance between the two sides' mean colours, at least


def seam_sides(
    part: np.ndarray,
    seams: np.ndarray | None,
    colours: np.ndarray,
    item_area: float,
    config: SeamSplitConfig = SeamSplitConfig(),
) -> tuple[np.ndarray, np.ndarray] | None:
    """The two sides (uint8 0/1 masks) of a long edge (``seams``, 255, over the same pixels) that runs
    across ``part`` (uint8 0/1) between two products of clearly different colours (``colours``: CIELAB,
    float32); None when there is no such edge. The pixels on the edge itself belong to neither side."""
    if seams is None or config.min_size <= 0 or item_area <= 0 or part.sum() < config.min_size * item_area:
        return None
    carved = np.where(seams > 0, 0, part).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(carved, connectivity=4)
    big = sorted(
        (i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= config.min_items * item_area),
        key=lambda i: -int(stats[i, cv2.CC_STAT_AREA]),
    )
    if len(big) < 2:
        return None
    sides = (labels == big[0]).astype(np.uint8), (labels == big[1]).astype(np.uint8)
    if sum(int(side.sum()) for side in sides) < config.cover * part.sum():
        return None  # the edge cuts off pieces (a label's print), it does not divide the part
    for side in sides:
        hull = cv2.contourArea(cv2.convexHull(cv2.findNonZero(side)))
        if hull <= 0 or side.sum() / hull < config.min_solidity:
            return None  # not item-shaped
    means = [colours[side > 0].mean(axis=0) for side in sides]
    if float(np.linalg.norm(means[0] - means[1])) < config.contrast:
        return None  # one product's colours on both sides
    return sides
