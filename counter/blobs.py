"""A counter photo segmented at the working size: its blobs, the parts each was split into, and their boxes.

``BackgroundSegmenter.working`` gives a ``Working``; ``Working.to_photo`` turns boxes of the working copy into
the photo's padded boxes in reading order (what ``Segmenter.segment`` answers). Kept apart so that a later
step (``counter/recognised.py``: the recogniser deciding one item or two) can look at a blob's parts and
propose other ones before the boxes are made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from counter.boxes import Box, reading_order


@dataclass(frozen=True)
class Blob:
    """One connected component of the foreground, at ``(x, y)`` of the working copy, and its parts."""

    x: int
    y: int
    component: np.ndarray  # uint8 0/1 over the component's bounding box
    parts: list[np.ndarray]  # one 0/1 mask per item over the same pixels, as the splitter found them
    seams: np.ndarray | None = None  # the photo's long edges over the same pixels
    colours: np.ndarray | None = None  # the photo in CIELAB (float32) over the same pixels

    def box(self, mask: np.ndarray) -> Box:
        """The working-copy box of one of this blob's masks."""
        local = box_of(mask)
        return Box(self.x + local.x0, self.y + local.y0, self.x + local.x1, self.y + local.y1)

    @property
    def boxes(self) -> list[Box]:
        return [self.box(part) for part in self.parts]


@dataclass(frozen=True)
class Working:
    """A photo segmented at the working size (``scale`` times the photo's)."""

    photo: np.ndarray  # the photo itself, (H, W, 3) uint8 RGB
    scale: float
    pad: float  # each box is padded by this share of its size
    blobs: list[Blob]
    thin: list[Box]  # working-copy boxes of thin items (``counter/thin.py``), each an item of its own
    min_area: float  # px of the working copy: the smallest item
    item_area: float  # px of the working copy: a typical item (0: unknown)

    def photo_box(self, box: Box) -> Box:
        """A working-copy box in the photo's pixels, padded."""
        height, width = self.photo.shape[:2]
        s = self.scale
        scaled = Box(round(box.x0 / s), round(box.y0 / s), round(box.x1 / s), round(box.y1 / s))
        return scaled.padded(self.pad, width, height)

    def to_photo(self, boxes: list[Box]) -> list[Box]:
        """Working-copy boxes as the photo's padded boxes, in reading order."""
        found = [self.photo_box(b) for b in boxes]
        return [found[i] for i in reading_order(found)]

    def crop(self, box: Box) -> np.ndarray:
        """The photo's pixels under a working-copy box, padded like the answered boxes."""
        b = self.photo_box(box)
        return self.photo[b.y0 : b.y1, b.x0 : b.x1]


def box_of(mask: np.ndarray) -> Box:
    """The box of a mask's nonzero pixels."""
    ys, xs = np.nonzero(mask)
    return Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
