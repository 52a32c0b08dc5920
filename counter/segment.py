"""Counter photo → one box per item: a difference against the lane's empty-counter photo.

``Segmenter`` is the small interface (photo → boxes) that a learned class-agnostic detector can
replace later without touching the service. ``BackgroundSegmenter`` is the classical one, in OpenCV:

1. both photos scaled to a working size; the light of the loaded photo matched to the background's
   (a robust per-channel plane fit of the log ratio, started from the median ratio: a gain, a colour
   cast and a gradient);
2. difference in CIELAB over a threshold, except where the photo is only a **shadow** of the counter:
   darker by the same share in every channel (``shadow_like``: a shadow lowers the light, it keeps the
   chromaticity), plus the photo's edges that the empty counter does not have (a white carton on a pale
   counter), the counter's own faint edges (a belt's ridges) excluded;
3. morphological opening/closing, holes filled; a long thin item that the opening erased entirely (a leek)
   kept as an item of its own (``counter/thin.py``);
4. connected components, small ones dropped; a component holding several items (they touch) cut at
   its outline's concavities, split by a watershed from its distance peaks (the photo's long edges inside
   it carved out first; as many seeds as its area holds typical items, ``item_area``) and over-splits of
   one colour merged back (``counter/touching.py``);
5. each box padded a little, in the photo's own pixels.

Without a background photo (a lane that never stored one) the counter is assumed plain: its colour
is the median of the photo's border, and the difference is taken to that colour (documented as a
fallback: a patterned counter or an item at the border defeats it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from counter import DEFAULT_ITEM_AREA
from counter.blobs import Blob, Working, box_of
from counter.boxes import Box
from counter.thin import ThinConfig, thin_items
from counter.touching import SplitConfig, TouchingSplitter, long_edges
from counter.watershed import Centres, split_at_centres


class Segmenter(ABC):
    @abstractmethod
    def segment(self, photo: np.ndarray, background: np.ndarray | None = None) -> list[Box]:
        """Boxes of the items in ``photo`` ((H, W, 3) uint8 RGB), in reading order."""

    def with_item_area(self, item_area: float) -> Segmenter:
        """This segmenter for a lane whose typical item covers ``item_area`` of the photo (0: unknown), the
        height of its camera; one that needs no expected size (a learned detector) is itself."""
        return self


@dataclass(frozen=True)
class SegmenterConfig:
    work_side: int = 480  # longer side of the working copy, px
    threshold: float = 16.0  # colour difference (CIELAB units) that counts as an item
    plain_threshold: float = 26.0  # ... against a plain counter's colour (no background: its grain differs too)
    shadow_min: float = 0.4  # a darkening to no less than this share of the counter's light may be a shadow
    shadow_chroma: float = 0.08  # ... when every channel darkens by the same share, within this
    min_area: float = 0.004  # smallest item, as a fraction of the photo
    item_area: float = DEFAULT_ITEM_AREA  # a typical item, share of the photo (lane's camera height); 0: unknown
    close_size: int = 7  # px (working size): gaps closed inside an item
    open_size: int = 11  # px: specks and thin bridges removed
    split: SplitConfig = field(default_factory=SplitConfig)  # touching items (counter/touching.py)
    thin: ThinConfig = field(default_factory=ThinConfig)  # thin items the opening erases (counter/thin.py)
    pad: float = 0.04  # box padding, fraction of its size
    border: int = 8  # px of border used to estimate a plain counter's colour (no background)


def lane_config(config: SegmenterConfig, item_area: float | None) -> SegmenterConfig:
    """``config`` for a lane's photos: its expected item size when the lane set one (None: ``config``'s own)."""
    return config if item_area is None or item_area == config.item_area else replace(config, item_area=item_area)


class BackgroundSegmenter(Segmenter):
    def __init__(self, config: SegmenterConfig = SegmenterConfig()):
        self.config = config
        self.splitter = TouchingSplitter(config.split)

    def with_item_area(self, item_area: float) -> BackgroundSegmenter:
        config = lane_config(self.config, item_area)
        return self if config is self.config else BackgroundSegmenter(config)  # cheap: a config and a splitter

    def segment(self, photo: np.ndarray, background: np.ndarray | None = None) -> list[Box]:
        work = self.working(photo, background)
        return work.to_photo([box for blob in work.blobs for box in blob.boxes] + work.thin)

    def working(self, photo: np.ndarray, background: np.ndarray | None = None) -> Working:
        """The photo segmented at the working size: each blob with the parts it was split into, the thin items."""
        photo = _check(photo, "photo")
        height, width = photo.shape[:2]
        scale = self.config.work_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        if background is not None:
            background = _check(background, "background")
            if background.shape != photo.shape:
                raise ValueError(
                    f"background is {background.shape[1]}x{background.shape[0]}, the photo "
                    f"{width}x{height}: the lane's background must be taken by the same camera"
                )
            reference = cv2.resize(background, size, interpolation=cv2.INTER_AREA)
            small = match_light(small, reference)
        else:
            reference = plain_counter(small, self.config.border)
        before, mask = self.cleaned(small, reference, plain=background is None)
        thin = thin_items(before, mask, self.config.min_area * mask.size, self.config.thin)
        seams = long_edges(small, self.config.split.seam_length) if self.config.split.seam_length else None
        colours = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
        return Working(
            photo,
            scale,
            self.config.pad,
            self.blobs(mask, seams, colours, self.centres(photo, small)),
            [box_of(t) for t in thin],
            self.config.min_area * mask.size,
            self.config.item_area * mask.size,
        )

    def centres(self, photo: np.ndarray, small: np.ndarray) -> Centres | None:
        """The items' centres in the working copy ``small`` of ``photo`` when a learned detector knows them
        (``counter/centres.py``); None here: the classical cues decide how many items a blob holds."""
        return None

    def foreground(self, photo: np.ndarray, reference: np.ndarray, plain: bool = False) -> np.ndarray:
        """uint8 mask (255 = item) after thresholding and clean-up; ``plain``: the reference is a plain
        counter's colour (no background photo), compared with ``plain_threshold``."""
        return self.cleaned(photo, reference, plain)[1]

    def cleaned(self, photo: np.ndarray, reference: np.ndarray, plain: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The foreground mask before the last opening (thin items are still in it) and after it."""
        c = self.config
        threshold = c.plain_threshold if plain else c.threshold
        pf, rf = cv2.GaussianBlur(photo, (5, 5), 0), cv2.GaussianBlur(reference, (5, 5), 0)
        lab: np.ndarray = cv2.cvtColor(pf, cv2.COLOR_RGB2LAB).astype(np.float32)
        ref: np.ndarray = cv2.cvtColor(rf, cv2.COLOR_RGB2LAB).astype(np.float32)
        delta = lab - ref
        candidate = np.sqrt((delta**2).sum(axis=2)) > threshold
        # of the pixels that differ, those only shaded (tested on them alone: a few % of the photo)
        candidate[candidate] = ~shadow_like(pf[candidate][None], rf[candidate][None], c.shadow_min, c.shadow_chroma)[0]
        mask: np.ndarray = candidate.astype(np.uint8) * 255
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        mask = cv2.bitwise_or(
            mask, new_edges(photo, reference)
        )  # a white carton on a pale counter: its outline, not its colour
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, disc(self.config.close_size))
        mask = fill_holes(mask)
        return mask, cv2.morphologyEx(mask, cv2.MORPH_OPEN, disc(self.config.open_size))

    def components(
        self, mask: np.ndarray, seams: np.ndarray | None = None, colours: np.ndarray | None = None
    ) -> list[Box]:
        """Boxes of the mask's items: components, touching items split by watershed, small ones dropped."""
        return [box for blob in self.blobs(mask, seams, colours) for box in blob.boxes]

    def blobs(
        self,
        mask: np.ndarray,
        seams: np.ndarray | None = None,
        colours: np.ndarray | None = None,
        centres: Centres | None = None,
    ) -> list[Blob]:
        """The mask's components (small ones dropped), each with the parts the splitter found in it, or, given
        a learned detector's ``centres`` (over the mask's pixels), cut at the centres inside it."""
        min_area = self.config.min_area * mask.size
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        found = []
        for label in range(1, count):
            if stats[label, cv2.CC_STAT_AREA] < min_area:
                continue
            x, y, w, h = (int(v) for v in stats[label, :4])
            component = np.ascontiguousarray((labels[y : y + h, x : x + w] == label).astype(np.uint8))
            crease = None if seams is None else np.ascontiguousarray(seams[y : y + h, x : x + w])
            seen = None if colours is None else colours[y : y + h, x : x + w]
            if centres is None:
                parts = self.splitter.parts(component, crease, min_area, seen, self.config.item_area * mask.size)
            else:
                inside = [(cy - y, cx - x) for cy, cx in centres.points if 0 <= cy - y < h and 0 <= cx - x < w]
                inside = [(py, px) for py, px in inside if component[py, px]]
                parts = split_at_centres(component, inside, centres.heat[y : y + h, x : x + w], min_area)
            found.append(Blob(x, y, component, [p for p in parts if np.count_nonzero(p) >= min_area], crease, seen))
        return found


def disc(size: int) -> np.ndarray:
    kernel: np.ndarray = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return kernel


def _check(image: np.ndarray, what: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{what} must be (H, W, 3) uint8 RGB, got shape {image.shape} dtype {image.dtype}")
    return np.ascontiguousarray(image)


def match_light(photo: np.ndarray, reference: np.ndarray, sample: int = 4000, rounds: int = 3) -> np.ndarray:
    """``photo`` relit to ``reference``'s light: per channel, a plane fitted to log(photo / reference)
    over the pixels that agree (mostly the empty counter), iteratively dropping outliers (the items).
    Fitted on a fixed sample of pixels; applied as a separable gain (a plane in log space)."""
    height, width = photo.shape[:2]
    rng = np.random.default_rng(0)
    pick = rng.choice(height * width, size=min(sample, height * width), replace=False)
    ys, xs = np.divmod(pick, width)
    design = np.stack([np.ones(len(pick)), xs / width - 0.5, ys / height - 0.5], axis=1)
    ratio = np.log1p(photo.reshape(-1, 3)[pick].astype(np.float64)) - np.log1p(
        reference.reshape(-1, 3)[pick].astype(np.float64)
    )
    across = np.arange(width) / width - 0.5
    down = np.arange(height) / height - 0.5
    out = photo.astype(np.float32)
    for c in range(3):
        # start from the median ratio (robust to items covering much of the counter), not from a least-squares
        # fit over every pixel, which items of one colour can pull far enough that the counter itself is dropped
        coef = np.array([np.median(ratio[:, c]), 0.0, 0.0])
        for _ in range(rounds):
            residual = ratio[:, c] - design @ coef
            mad = np.median(np.abs(residual - np.median(residual))) + 1e-3
            keep = np.abs(residual - np.median(residual)) < 2.5 * mad
            coef, *_ = np.linalg.lstsq(design[keep], ratio[keep, c], rcond=None)
        gain = np.exp(coef[0]) * np.exp(coef[2] * down)[:, None] * np.exp(coef[1] * across)[None, :]
        out[..., c] /= gain.astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def shadow_like(photo: np.ndarray, reference: np.ndarray, darkest: float, chroma: float) -> np.ndarray:
    """bool mask: pixels darker than the reference by the same share in every channel (a shadow lowers
    the light, it does not change the colour), to no less than ``darkest`` of it."""
    ratio = (photo.astype(np.float32) + 4.0) / (reference.astype(np.float32) + 4.0)
    mean = ratio.mean(axis=2)
    spread = np.abs(ratio / mean[..., None] - 1.0).max(axis=2)
    out: np.ndarray = (mean < 1.0) & (mean >= darkest) & (spread < chroma)
    return out


def plain_counter(photo: np.ndarray, border: int) -> np.ndarray:
    """A photo-sized image of the counter's colour, estimated as the median of the photo's border."""
    edge = np.concatenate(
        [
            photo[:border].reshape(-1, 3),
            photo[-border:].reshape(-1, 3),
            photo[:, :border].reshape(-1, 3),
            photo[:, -border:].reshape(-1, 3),
        ]
    )
    return np.broadcast_to(np.median(edge, axis=0).astype(np.uint8), photo.shape).copy()


def new_edges(photo: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Edges of ``photo`` that the reference (the empty counter, or its plain colour) does not have."""
    edges = cv2.Canny(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), 40, 120)
    known = cv2.dilate(cv2.Canny(cv2.cvtColor(reference, cv2.COLOR_RGB2GRAY), 15, 45), np.ones((5, 5), np.uint8))
    return cv2.dilate(cv2.bitwise_and(edges, cv2.bitwise_not(known)), np.ones((3, 3), np.uint8))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every hole (background not connected to the border) filled."""
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8), (0, 0), 255)
    filled: np.ndarray = cv2.bitwise_or(padded, cv2.bitwise_not(flood))[1:-1, 1:-1]
    return filled
