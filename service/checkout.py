"""``POST /v1/checkout``: from crops, or one counter photo, to a priced basket.

A counter photo is decoded in full, cut into item boxes by the segmenter (``counter``: OpenCV, the
optional ``counter`` extra), each box cropped and letterboxed; the crops (or the posted crops) go
through the micro-batcher as one submission, are recognised like ``/v1/recognize`` and priced
(``gallery.basket``) from the gallery's in-memory catalogue. Decoding and segmentation run in worker
threads, the search through the service's search batcher (``AppState.recognize_batched``), inference
on the batcher's thread: never on the event loop.

A photo with a ``lane`` whose empty counter is stored (``PUT /v1/lanes/{lane}/background``,
``service.lanes``) is segmented against that background (``segmentation: "lane_background"``);
otherwise with the plain-counter fallback (the counter's colour estimated from the photo's border,
``"plain_counter"``), and ``note`` says why. Either way with the lane's expected item size when it set
one (``PUT /v1/lanes/{lane}/settings``: ``segmenter_for``), else the segmenter's default.
"""

from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from starlette.concurrency import run_in_threadpool

from embedder.preprocess import letterbox
from embedder.tta import flip_average, with_mirrored
from gallery.basket import NOTHING_FOUND, Attention, Basket, BasketItem, price_basket
from gallery.lanes import LaneSettings
from gallery.money import Currency
from gallery.types import Recognition
from service.enrolment import decode_all
from service.lanes import LaneBackground, background_for
from service.photos import decode_photo

if TYPE_CHECKING:
    from counter.boxes import Box
    from counter.segment import Segmenter
    from service.deps import AppState

logger = logging.getLogger(__name__)

PLAIN_COUNTER = "plain_counter"  # segmentation against the colour of the photo's border
LANE_BACKGROUND = "lane_background"  # segmentation against the lane's stored empty-counter photo


class CounterUnavailable(RuntimeError):
    """The photo form needs OpenCV (the ``counter`` extra), which is not installed."""


@dataclass(frozen=True)
class CheckedItem:
    box: tuple[int, int, int, int] | None  # in the photo's pixels (EXIF orientation applied); None for a crop
    recognition: Recognition
    item: BasketItem


@dataclass(frozen=True)
class CheckoutResult:
    items: list[CheckedItem]
    basket: Basket
    currency: Currency
    segmentation: str | None  # None for crops
    note: str | None = None


@functools.lru_cache(maxsize=2)
def segmenter_outcome(kind: str = "classical") -> Segmenter | str:
    """The counter segmenter of ``kind`` (``classical``, or ``learned``: the item-centre model,
    ``counter/centres.py``), or why there is none: found once per process (a missing OpenCV is not looked for
    again on every request). Importing OpenCV takes a while: ``require_segmenter`` runs the first look in a
    worker thread."""
    try:
        importlib.import_module("cv2")
        from counter.segment import BackgroundSegmenter
    except ImportError as exc:
        return (
            f"a counter photo needs OpenCV, which is not installed here ({exc}): install the counter extra, "
            "pip install 'skulens[counter]'; crops (multipart field 'images') work without it"
        )
    if kind == "learned":
        from counter.centres import CentreDetector, LearnedSegmenter

        return LearnedSegmenter(CentreDetector())
    return BackgroundSegmenter()


def load_segmenter(kind: str = "classical") -> Segmenter:
    """The counter segmenter of ``kind`` (one per process), or ``CounterUnavailable`` naming the extra to install."""
    outcome = segmenter_outcome(kind)
    if isinstance(outcome, str):
        raise CounterUnavailable(outcome)
    return outcome


async def require_segmenter(kind: str = "classical") -> Segmenter:
    """``load_segmenter`` for the event loop, in a worker thread: its first call for a kind imports OpenCV and
    loads the model there; later ones are a cached look-up."""
    return await run_in_threadpool(load_segmenter, kind)


def segmenter_for(segmenter: Segmenter, settings: LaneSettings | None) -> Segmenter:
    """The segmenter for a photo from a lane with ``settings``: with the lane's expected item size when it
    set one, else ``segmenter`` as it is (the global default)."""
    if settings is None or settings.item_area is None:
        return segmenter
    return segmenter.with_item_area(settings.item_area)


def crops_of(photo: np.ndarray, boxes: list[Box], size: int) -> np.ndarray:
    """Each box of ``photo`` letterboxed to ``size`` like any crop: ``(n, size, size, 3)``."""
    image = Image.fromarray(photo, "RGB")
    return (
        np.stack([letterbox(image.crop((b.x0, b.y0, b.x1, b.y1)), size) for b in boxes])
        if boxes
        else np.zeros((0, size, size, 3), np.uint8)
    )


async def embed(state: AppState, pixels: np.ndarray) -> np.ndarray:
    """Through the micro-batcher (flip TTA as the setting says), at most ``max_images_per_request`` rows a
    submission so that a crowded photo never overflows the queue; one submission for a usual basket."""
    step = max(1, state.settings.max_images_per_request // (2 if state.settings.tta_flip else 1))
    parts = []
    for start in range(0, len(pixels), step):
        chunk = pixels[start : start + step]
        if state.settings.tta_flip:
            parts.append(flip_average(await state.batcher.submit(with_mirrored(chunk))))
        else:
            parts.append(await state.batcher.submit(chunk))
    return np.concatenate(parts)


def price(
    state: AppState, recognitions: list[Recognition], boxes: list[tuple[int, int, int, int] | None]
) -> tuple[list[CheckedItem], Basket]:
    """Look the recognised SKUs up (names, prices: from the gallery's memory, never SQLite) and price the basket."""
    details = state.gallery.sku_details([r.sku for r in recognitions if r.known and r.sku])
    items: list[CheckedItem] = []
    for recognition, box in zip(recognitions, boxes, strict=True):
        sku = recognition.sku if recognition.known else None
        name: str | None
        unit: int | None
        name, unit = details.get(sku, (sku, None)) if sku is not None else (None, None)
        items.append(CheckedItem(box, recognition, BasketItem(sku, name, recognition.score, sku is not None, unit)))
    return items, price_basket([c.item for c in items])


async def _recognise_and_price(
    state: AppState, pixels: np.ndarray, boxes: list[tuple[int, int, int, int] | None]
) -> tuple[list[CheckedItem], Basket]:
    if len(pixels) == 0:
        return [], price_basket([])
    return price(state, await recognise(state, pixels), boxes)


async def recognise(state: AppState, pixels: np.ndarray) -> list[Recognition]:
    """The answers for crops ``(n, size, size, 3)``, n >= 1: one micro-batcher submission, one search."""
    await run_in_threadpool(state.gallery.check_model)  # 409 before inference when the gallery is not ready
    return await state.recognize_batched(await embed(state, pixels))


async def checkout_crops(state: AppState, images: list[bytes]) -> CheckoutResult:
    """One item per crop, in the order posted."""
    decoded = await run_in_threadpool(decode_all, images, state.embedder.input_size, state.settings.max_pixels)
    pixels = np.stack([d.pixels for d in decoded])
    items, basket = await _recognise_and_price(state, pixels, [None] * len(decoded))
    return CheckoutResult(items, basket, state.gallery.currency, None)


@dataclass(frozen=True)
class Segmented:
    boxes: list[Box]  # in reading order
    pixels: np.ndarray  # (n, size, size, 3): each box cropped and letterboxed
    segmentation: str
    note: str | None


@dataclass(frozen=True)
class CounterPhoto:
    """A decoded counter photo with what segments it: the lane's segmenter and background (or none)."""

    segmenter: Segmenter
    photo: np.ndarray
    background: LaneBackground

    def segmented(self, boxes: list[Box], input_size: int) -> Segmented:
        """``boxes`` of this photo cropped for the embedder, with how the photo was segmented."""
        how = LANE_BACKGROUND if self.background.pixels is not None else PLAIN_COUNTER
        return Segmented(boxes, crops_of(self.photo, boxes, input_size), how, self.background.note)


def counter_photo(state: AppState, photo_bytes: bytes, lane: str | None) -> CounterPhoto:
    segmenter = load_segmenter(state.settings.counter_segmenter)
    photo = decode_photo(photo_bytes, state.settings.max_pixels)
    background = background_for(state.gallery, lane, photo.shape, state.settings.max_pixels)
    if lane is not None:
        segmenter = segmenter_for(segmenter, state.gallery.lanes.settings.current(lane))
    return CounterPhoto(segmenter, photo, background)


def _segment(state: AppState, photo_bytes: bytes, lane: str | None) -> Segmented:
    counter = counter_photo(state, photo_bytes, lane)
    return counter.segmented(
        counter.segmenter.segment(counter.photo, counter.background.pixels), state.embedder.input_size
    )


async def checkout_photo(state: AppState, photo: bytes, lane: str | None) -> CheckoutResult:
    """Items found in one counter photo, in reading order (rows top to bottom, left to right)."""
    await require_segmenter(state.settings.counter_segmenter)  # 501 before reading anything when OpenCV is missing
    found: Segmented
    if state.settings.counter_recognised_split:  # the recogniser decides one item or two (service/checkout_split.py)
        from service.checkout_split import items_of_photo

        boxes, answers, found = await items_of_photo(state, photo, lane)
        items, basket = price(state, answers, [(b.x0, b.y0, b.x1, b.y1) for b in boxes])
    else:
        found = await run_in_threadpool(_segment, state, photo, lane)
        boxes = found.boxes
        items, basket = await _recognise_and_price(state, found.pixels, [(b.x0, b.y0, b.x1, b.y1) for b in boxes])
    if not boxes:
        basket = Basket(
            (),
            (
                Attention(
                    None,
                    NOTHING_FOUND,
                    "no item was found in the photo: is the counter empty, or the photo not of this lane's counter?",
                ),
            ),
            0,
        )
    return CheckoutResult(items, basket, state.gallery.currency, found.segmentation, found.note)
