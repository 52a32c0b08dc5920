"""The photo's long edges: where one item ends and the next begins (a seam between two items).

The segmenter finds them once per photo (``SplitConfig.seam_length``); inside a blob they are carved out
before its distance transform (``counter/watershed.py``) so that they make necks, and an edge across a
convex part may split it (``counter/seam_split.py``).
"""

from __future__ import annotations

import cv2
import numpy as np


def long_edges(photo: np.ndarray, length: int) -> np.ndarray:
    """uint8 mask (255) of the photo's edges that run at least ``length`` px (a seam between two items)."""
    edges = cv2.dilate(cv2.Canny(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), 60, 160), np.ones((2, 2), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(edges, connectivity=8)
    keep = np.zeros(count, np.uint8)
    keep[1:] = np.where(np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]) >= length, 255, 0)
    seams: np.ndarray = keep[labels]
    return seams
