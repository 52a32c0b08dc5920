"""A blob of touching items cut along the straight line between two deep concavities of its outline.

Where two convex items meet, the blob's outline folds inwards on both sides of the seam. A blob is cut
along the straight line between two deep convexity defects when that line runs inside it and is short
against their depth, or somewhat longer when the two sides differ clearly in colour (two products),
recursively (``cut_at_concavities``).
"""

from __future__ import annotations

import cv2
import numpy as np

from counter.split_config import SplitConfig


def cut_at_concavities(component: np.ndarray, colours: np.ndarray | None, config: SplitConfig) -> list[np.ndarray]:
    """``component`` cut along straight lines between pairs of deep concavities (where two convex
    items meet, their outline folds inwards on both sides of the seam), recursively."""
    pieces, out = [component], list[np.ndarray]()
    while pieces:
        piece = pieces.pop()
        line = best_cut(piece, colours, config) if len(out) + len(pieces) < config.max_items else None
        if line is None:
            out.append(piece)
            continue
        cut = piece.copy()
        cv2.line(cut, line[0], line[1], 0, 2)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(cut, connectivity=4)
        parts = [
            (labels == i).astype(np.uint8)
            for i in range(1, count)
            if stats[i, cv2.CC_STAT_AREA] >= config.min_cut_share * piece.sum()
        ]
        if len(parts) < 2:
            out.append(piece)
        else:
            pieces.extend(parts)
    return out


def best_cut(
    piece: np.ndarray, colours: np.ndarray | None, config: SplitConfig
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
        if d / 256.0 >= config.defect_depth * scale
    ]
    best, best_score = None, float("inf")
    for i in range(len(deep)):
        for j in range(i + 1, len(deep)):
            (p, dp), (q, dq) = deep[i], deep[j]
            length = float(np.hypot(p[0] - q[0], p[1] - q[1]))
            if length < 2 or length > config.contrast_seam_ratio * (dp + dq):
                continue
            samples = np.linspace(0.1, 0.9, 9)
            xs = np.round(p[0] + samples * (q[0] - p[0])).astype(int)
            ys = np.round(p[1] + samples * (q[1] - p[1])).astype(int)
            if piece[ys, xs].mean() < 0.8:
                continue  # the seam would run over the counter
            long_cut = length > config.seam_ratio * (dp + dq)
            if long_cut and (colours is None or side_contrast(piece, colours, p, q) < config.min_contrast):
                continue  # a long cut: only between two sides of clearly different colours
            score = length / (dp + dq)
            if score < best_score:
                best, best_score = (p, q), score
    return best


def side_contrast(piece: np.ndarray, colours: np.ndarray, p: tuple[int, int], q: tuple[int, int]) -> float:
    """CIELAB distance between the mean colours of ``piece``'s pixels on either side of the line ``p``-``q``."""
    ys, xs = np.nonzero(piece)
    side = (q[0] - p[0]) * (ys - p[1]) - (q[1] - p[1]) * (xs - p[0])
    left, right = colours[ys[side > 0], xs[side > 0]], colours[ys[side < 0], xs[side < 0]]
    if len(left) == 0 or len(right) == 0:
        return 0.0
    return float(np.linalg.norm(left.mean(axis=0) - right.mean(axis=0)))
