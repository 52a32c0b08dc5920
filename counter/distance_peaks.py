"""The peaks of a distance transform and their dynamics: one peak per item of a blob.

A blob's distance transform (each pixel's distance to the outline) has one peak per convex item in it.
A peak's **dynamic** is how far the distance drops on the way to a higher peak: a bulge on an item's side
drops little, a second item a lot. The dynamics come from a component tree swept from the top: at each
level the pixels above it form components; a component with no known peak holds a new one, and when two
known peaks first share a component, the lower has met a higher one.
"""

from __future__ import annotations

import cv2
import numpy as np


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
