"""Counter photo → one box per item: a difference against the lane's empty-counter photo.

``Segmenter`` is the small interface (photo → boxes) that a learned class-agnostic detector can
replace later without touching the service. ``BackgroundSegmenter`` is the classical one, in OpenCV:

1. both photos scaled to a working size; the light of the loaded photo matched to the background's
   (a robust per-channel plane fit of the log ratio: a gain, a colour cast and a gradient);
2. difference in CIELAB, with darkening weighted down (a shadow darkens, it does not change colour);
3. threshold, morphological opening/closing, holes filled;
4. connected components; a component holding several items (they touch) is split by a distance
   transform + watershed; size filters;
5. each box padded a little, in the photo's own pixels.

Without a background photo (a lane that never stored one) the counter is assumed plain: its colour
is the median of the photo's border, and the difference is taken to that colour (documented as a
fallback: a patterned counter or an item at the border defeats it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import cv2
import numpy as np

from counter.boxes import Box, reading_order


class Segmenter(ABC):
    @abstractmethod
    def segment(self, photo: np.ndarray, background: np.ndarray | None = None) -> list[Box]:
        """Boxes of the items in ``photo`` ((H, W, 3) uint8 RGB), in reading order."""


@dataclass(frozen=True)
class SegmenterConfig:
    work_side: int = 480  # longer side of the working copy, px
    threshold: float = 26.0  # colour difference (CIELAB units) that counts as an item
    shadow_weight: float = 0.35  # weight of a darkening in the difference
    min_area: float = 0.004  # smallest item, as a fraction of the photo
    min_solidity: float = 0.93  # a component at least this convex (area / hull area) is one item
    split_levels: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)  # distance cuts tried for seeds (share of max)
    min_core: float = 0.15  # a seed smaller than this share of the largest is noise
    pad: float = 0.04  # box padding, fraction of its size
    border: int = 8  # px of border used to estimate a plain counter's colour (no background)


class BackgroundSegmenter(Segmenter):
    def __init__(self, config: SegmenterConfig = SegmenterConfig()):
        self.config = config

    def segment(self, photo: np.ndarray, background: np.ndarray | None = None) -> list[Box]:
        photo = _check(photo, "photo")
        height, width = photo.shape[:2]
        scale = self.config.work_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        if background is not None:
            background = _check(background, "background")
            if background.shape != photo.shape:
                raise ValueError(f"background is {background.shape[1]}x{background.shape[0]}, the photo "
                                 f"{width}x{height}: the lane's background must be taken by the same camera")
            reference = cv2.resize(background, size, interpolation=cv2.INTER_AREA)
            small = match_light(small, reference)
        else:
            reference = plain_counter(small, self.config.border)
        mask = self.foreground(small, reference)
        boxes = [Box(round(b.x0 / scale), round(b.y0 / scale), round(b.x1 / scale), round(b.y1 / scale))
                 for b in self.components(mask)]
        boxes = [b.padded(self.config.pad, width, height) for b in boxes]
        return [boxes[i] for i in reading_order(boxes)]

    def foreground(self, photo: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """uint8 mask (255 = item) after thresholding and clean-up."""
        lab: np.ndarray = cv2.cvtColor(photo, cv2.COLOR_RGB2LAB).astype(np.float32)
        ref: np.ndarray = cv2.cvtColor(reference, cv2.COLOR_RGB2LAB).astype(np.float32)
        lab, ref = cv2.GaussianBlur(lab, (5, 5), 0), cv2.GaussianBlur(ref, (5, 5), 0)
        delta = lab - ref
        d_light = np.where(delta[..., 0] < 0, delta[..., 0] * self.config.shadow_weight, delta[..., 0])
        difference = np.sqrt(d_light ** 2 + delta[..., 1] ** 2 + delta[..., 2] ** 2)
        mask: np.ndarray = (difference > self.config.threshold).astype(np.uint8) * 255
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        mask = cv2.bitwise_or(mask, new_edges(photo, reference))  # a white carton on a pale counter: its outline, not its colour
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
        mask = fill_holes(mask)
        return cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))

    def components(self, mask: np.ndarray) -> list[Box]:
        """Boxes of the mask's items: components, touching items split by watershed, small ones dropped."""
        min_area = self.config.min_area * mask.size
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        boxes = []
        for label in range(1, count):
            if stats[label, cv2.CC_STAT_AREA] < min_area:
                continue
            component = (labels == label).astype(np.uint8)
            for part in self.split(component):
                ys, xs = np.nonzero(part)
                if len(xs) >= min_area:
                    boxes.append(Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
        return boxes

    def seeds(self, distance: np.ndarray) -> tuple[int, np.ndarray]:
        """Watershed seeds: the distance transform cut at the level (a share of its maximum) that
        leaves the most separate cores, each at least ``min_core`` of the largest core."""
        best = (1, np.zeros(distance.shape, np.int32))
        for level in self.config.split_levels:
            cores = (distance > level * distance.max()).astype(np.uint8)
            _, labels, stats, _ = cv2.connectedComponentsWithStats(cores, connectivity=8)
            areas = stats[1:, cv2.CC_STAT_AREA]
            keep = np.flatnonzero(areas >= self.config.min_core * areas.max()) + 1
            if len(keep) + 1 > best[0]:
                markers = np.zeros(distance.shape, np.int32)
                for new, old in enumerate(keep, start=1):
                    markers[labels == old] = new
                best = (len(keep) + 1, markers)
        return best

    def split(self, component: np.ndarray) -> list[np.ndarray]:
        """One mask per item in ``component``: watershed from the distance transform's cores."""
        contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
        if hull <= 0 or component.sum() / hull >= self.config.min_solidity:
            return [component]  # convex: one item (items that touch make a concave blob)
        distance = cv2.distanceTransform(component, cv2.DIST_L2, 5)
        count, markers = self.seeds(distance)
        if count - 1 < 2:
            return [component]
        markers = markers.astype(np.int32)
        markers[component == 0] = count  # the counter is a basin of its own
        relief = cv2.cvtColor((255 - cv2.normalize(distance, np.empty_like(distance), 0, 255, cv2.NORM_MINMAX)).astype(np.uint8),
                              cv2.COLOR_GRAY2BGR)
        cv2.watershed(relief, markers)
        return [((markers == i) & (component > 0)).astype(np.uint8) for i in range(1, count)]


def _check(image: np.ndarray, what: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{what} must be (H, W, 3) uint8 RGB, got shape {image.shape} dtype {image.dtype}")
    return np.ascontiguousarray(image)


def match_light(photo: np.ndarray, reference: np.ndarray, sample: int = 4000, rounds: int = 3) -> np.ndarray:
    """``photo`` relit to ``reference``'s light: per channel, a plane fitted to log(photo / reference)
    over the pixels that agree (mostly the empty counter), iteratively dropping outliers (the items)."""
    height, width = photo.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    design = np.stack([np.ones(height * width), x.ravel() / width - 0.5, y.ravel() / height - 0.5], axis=1)
    rng = np.random.default_rng(0)
    pick = rng.choice(height * width, size=min(sample, height * width), replace=False)
    ratio = np.log1p(photo.reshape(-1, 3).astype(np.float64)) - np.log1p(reference.reshape(-1, 3).astype(np.float64))
    out = photo.astype(np.float64)
    for c in range(3):
        rows = pick
        coef = np.zeros(3)
        for _ in range(rounds):
            coef, *_ = np.linalg.lstsq(design[rows], ratio[rows, c], rcond=None)
            residual = ratio[pick, c] - design[pick] @ coef
            mad = np.median(np.abs(residual - np.median(residual))) + 1e-6
            rows = pick[np.abs(residual) < 2.5 * mad]
        out[..., c] = out[..., c] / np.exp((design @ coef).reshape(height, width))
    return np.clip(out, 0, 255).astype(np.uint8)


def plain_counter(photo: np.ndarray, border: int) -> np.ndarray:
    """A photo-sized image of the counter's colour, estimated as the median of the photo's border."""
    edge = np.concatenate([photo[:border].reshape(-1, 3), photo[-border:].reshape(-1, 3),
                           photo[:, :border].reshape(-1, 3), photo[:, -border:].reshape(-1, 3)])
    return np.broadcast_to(np.median(edge, axis=0).astype(np.uint8), photo.shape).copy()


def new_edges(photo: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Edges of ``photo`` that the reference (the empty counter, or its plain colour) does not have."""
    edges = cv2.Canny(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), 40, 120)
    known = cv2.dilate(cv2.Canny(cv2.cvtColor(reference, cv2.COLOR_RGB2GRAY), 40, 120), np.ones((5, 5), np.uint8))
    return cv2.dilate(cv2.bitwise_and(edges, cv2.bitwise_not(known)), np.ones((3, 3), np.uint8))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every hole (background not connected to the border) filled."""
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8), (0, 0), 255)
    filled: np.ndarray = cv2.bitwise_or(padded, cv2.bitwise_not(flood))[1:-1, 1:-1]
    return filled
