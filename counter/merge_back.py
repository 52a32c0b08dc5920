"""Over-splits undone: two neighbouring parts that were one item split in two, merged back.

Two neighbouring parts are one item when their colours are alike and their union is convex, or when
their mean colours are nearly the same and their union is as convex as one item. A product made of
several parts (a bunch of bananas, three onions) looks like touching items to the splitter; the merge-back
trades splitting those against merging items that touch.
"""

from __future__ import annotations

import cv2
import numpy as np

from counter.solidity import solidity
from counter.split_config import SplitConfig


def merge_back(parts: list[np.ndarray], colours: np.ndarray, item_area: float, config: SplitConfig) -> list[np.ndarray]:
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
                alike = similarity >= config.merge_similarity
                close = float(np.linalg.norm(means[i] - means[j])) <= config.merge_contrast
                if similarity < best_similarity or not (alike or close):
                    continue
                union = parts[i] | parts[j]
                if item_area > 0 and union.sum() > config.convex_items * item_area:
                    continue
                contours, _ = cv2.findContours(union, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
                convex = solidity(union, contours)
                by_histogram = alike and convex >= config.merge_solidity
                by_mean = close and convex >= config.merge_convex
                if by_histogram or by_mean:
                    best, best_similarity = (i, j), similarity
        if best is None:
            return parts
        i, j = best
        parts[i] = parts[i] | parts[j]
        del parts[j]
    return parts


def chroma_histogram(colours: np.ndarray, mask: np.ndarray, bins: int = 8) -> np.ndarray:
    """Normalised 2-D histogram of the a*, b* colours (OpenCV 8-bit CIELAB) of ``mask``'s pixels."""
    pixels = colours[mask > 0]
    hist, _, _ = np.histogram2d(pixels[:, 1], pixels[:, 2], bins=bins, range=[[64, 192], [64, 192]])
    total = hist.sum()
    out: np.ndarray = hist / total if total else hist
    return out
