"""How convex a mask is: the cue that tells one item (convex) from items that touch (a concave blob)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def solidity(mask: np.ndarray, contours: Sequence[np.ndarray]) -> float:
    """The mask's area over its convex hull's (1.0 for a convex shape, or an empty one)."""
    hull = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
    return float(mask.sum() / hull) if hull > 0 else 1.0
