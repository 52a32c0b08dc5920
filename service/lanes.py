"""Lanes for the service: storing a lane's empty-counter photo, and finding it, decoded, for a checkout
photo from that lane; a lane's settings and background together (``lane_view``).

Storage is ``gallery.lanes`` (a ``lanes`` row, the file in its own content-addressed store). A
decoded background is kept in memory per process, keyed by its content's digest: each checkout reads
the lane's record (one indexed query) and reads and decodes the photo only when its digest is new, so a
background replaced through another worker is used on the next photo. While a shared catalogue cannot
be reached, the lane's record as last read by this process is used (its decoded photo, if still in
memory), else the plain-counter fallback with a note: checkouts go on. Everything here blocks: call
it from a worker thread.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from embedder.preprocess import ImageError
from gallery.gallery import Gallery
from gallery.lanes import Background, BackgroundNotFound, LaneNotFound, LaneSettings
from gallery.stores.base import CatalogUnreachable
from service.photos import decode_photo_typed

logger = logging.getLogger(__name__)


class DecodedCache:
    """The last few decoded backgrounds, by digest (thread-safe)."""

    def __init__(self, size: int = 16):
        self.size = size
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> np.ndarray | None:
        with self._lock:
            pixels = self._items.get(digest)
            if pixels is not None:
                self._items.move_to_end(digest)
            return pixels

    def put(self, digest: str, pixels: np.ndarray) -> None:
        pixels.setflags(write=False)  # shared between requests: never modified
        with self._lock:
            self._items[digest] = pixels
            self._items.move_to_end(digest)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


DECODED = DecodedCache()


@dataclass(frozen=True)
class LaneBackground:
    """What a checkout photo is segmented against: the lane's empty counter, or why there is none."""

    pixels: np.ndarray | None
    record: Background | None
    note: str | None  # why the plain-counter fallback was used; None when pixels is set


@dataclass(frozen=True)
class LaneView:
    """What is stored for a lane: its background's record and its settings, either None when it has none."""

    lane: str
    background: Background | None
    settings: LaneSettings | None


def lane_view(gallery: Gallery, lane: str) -> LaneView:
    """``lane``'s background and settings; ``LaneNotFound`` when it has neither."""
    view = LaneView(lane, gallery.lanes.find(lane), gallery.lanes.settings.get(lane))
    if view.background is None and view.settings is None:
        raise LaneNotFound(
            f"nothing is stored for lane {lane!r}: no background (its counter photos are segmented with the "
            "plain-counter fallback) and no settings (the defaults apply); "
            f"PUT /v1/lanes/{lane}/background or /v1/lanes/{lane}/settings"
        )
    return view


def store_settings(gallery: Gallery, lane: str, item_area: float | None) -> tuple[LaneView, bool]:
    """Store ``lane``'s settings (validated: ``InvalidLaneSetting``); the lane as it is now, and True when it
    had no settings."""
    settings, created = gallery.lanes.settings.put(lane, item_area)
    return LaneView(lane, gallery.lanes.find(lane), settings), created


def store_background(gallery: Gallery, lane: str, data: bytes, max_pixels: int) -> tuple[Background, bool]:
    """Decode (all or nothing: a bad photo stores nothing) and store ``lane``'s background; True when new."""
    pixels, media_type = decode_photo_typed(data, max_pixels)
    record, created = gallery.lanes.put(lane, data, media_type, pixels.shape[1], pixels.shape[0])
    DECODED.put(record.sha256, pixels)
    return record, created


def background_for(gallery: Gallery, lane: str | None, photo_shape: tuple[int, ...], max_pixels: int) -> LaneBackground:
    """The decoded background of ``lane`` when it has one of the photo's size; else a note saying why not."""
    fallback = "segmented against the colour of the photo's border (the plain-counter fallback)"
    if lane is None:
        return LaneBackground(None, None, f"no lane given: {fallback}")
    try:
        record = gallery.lanes.get(lane)
    except BackgroundNotFound:
        return LaneBackground(
            None,
            None,
            f"no background is stored for lane {lane!r}: {fallback}; "
            f"PUT /v1/lanes/{lane}/background with a photo of its empty counter",
        )
    except CatalogUnreachable as exc:
        known = gallery.lanes.last_known(lane)
        logger.warning("lane %r: %s; %s", lane, exc, "using its background as last read" if known else "fallback")
        if known is None:
            return LaneBackground(
                None,
                None,
                f"the catalogue cannot be reached now and lane {lane!r}'s background "
                f"was not read here before: {fallback}",
            )
        record = known
    pixels = DECODED.get(record.sha256)
    if pixels is None:
        try:
            record, data = gallery.lanes.photo(record)
        except BackgroundNotFound:
            return LaneBackground(
                None,
                None,
                f"no background is stored for lane {lane!r}: {fallback}; "
                f"PUT /v1/lanes/{lane}/background with a photo of its empty counter",
            )
        except CatalogUnreachable as exc:
            logger.warning("lane %r: its background cannot be read now: %s", lane, exc)
            return LaneBackground(
                None,
                record,
                f"the catalogue cannot be reached now and lane {lane!r}'s background "
                f"is not in this process's memory: {fallback}",
            )
        pixels = DECODED.get(record.sha256)  # the record may have changed: its photo may be decoded already
        if pixels is None:
            try:
                pixels, _ = decode_photo_typed(data, max_pixels)
            except ImageError as exc:  # stored when the limits were wider, or damaged on disk: the till goes on
                logger.error("lane %r: its stored background cannot be decoded: %s", lane, exc)
                return LaneBackground(
                    None,
                    record,
                    f"lane {lane!r}'s stored background cannot be read ({exc}): {fallback}; store it again",
                )
            DECODED.put(record.sha256, pixels)
    if pixels.shape != photo_shape:
        logger.warning(
            "lane %r: photo %dx%d but background %dx%d; plain-counter fallback",
            lane,
            photo_shape[1],
            photo_shape[0],
            pixels.shape[1],
            pixels.shape[0],
        )
        return LaneBackground(
            None,
            record,
            f"lane {lane!r}'s background is {pixels.shape[1]}x{pixels.shape[0]} but "
            f"this photo is {photo_shape[1]}x{photo_shape[0]}: {fallback}; store a "
            "new background if the lane's camera changed",
        )
    return LaneBackground(pixels, record, None)
