"""Thin items (a leek): what the segmenter's clean-up would erase, kept when it is long.

The opening that breaks thin bridges between items (``SegmenterConfig.open_size``) also erases an item
narrower than its kernel, and what is left of it falls under the size filter (``min_area``). A part of the
foreground that the opening and the size filter erased **entirely** (of which the opening left less than
the smallest item: not a rim, stem or bridge of a kept item) is a thin item when it is **long** (its rotated box's longer side at least
``length`` px), **thin** (its mean width, area over length, at most ``width`` px) and not a speck (at
least ``min_area`` px). A thin item that touches another item stays part of that one's blob: it is not
found (the opening erases it there too).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ThinConfig:
    length: float = 40.0  # px (working size): a thin item at least this long; 0: thin items off
    width: float = 14.0  # px: ... at most this wide on average (area / length)
    min_area: float = 150.0  # px: ... and at least this big


def thin_items(
    before: np.ndarray, after: np.ndarray, min_item: float, config: ThinConfig = ThinConfig()
) -> list[np.ndarray]:
    """Masks (uint8 0/1, the photo's size) of the thin items of ``before`` (the foreground mask before the
    opening, 255 = item): its components of which the opening left less than an item (``after``, 255: under
    ``min_item`` px, which the size filter drops) that are long, thin and not specks."""
    if config.length <= 0:
        return []
    count, labels, stats, _ = cv2.connectedComponentsWithStats(before, connectivity=8)
    left = np.bincount(labels[after > 0], minlength=count)
    found = []
    for label in range(1, count):
        area = int(stats[label, cv2.CC_STAT_AREA])
        if left[label] >= min_item or area < config.min_area:
            continue
        x, y, w, h = (int(v) for v in stats[label, :4])
        piece = (labels[y : y + h, x : x + w] == label).astype(np.uint8)
        length = max(cv2.minAreaRect(cv2.findNonZero(piece))[1])
        if length >= config.length and area <= config.width * length:
            mask = np.zeros(before.shape, np.uint8)
            mask[y : y + h, x : x + w] = piece
            found.append(mask)
    return found
