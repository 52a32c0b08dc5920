"""Lanes: each checkout lane's photo of its empty counter, taken by the lane's fixed camera, and its settings.

A counter photo from a lane is segmented against that lane's background (``counter.segment``). The
record is a row of the catalogue's ``lanes`` table (schema version 3); the photo's original bytes
are in the lanes' own content-addressed photo store (``CatalogBase.photos("lanes")``: with SQLite
files in ``DATA_DIR/lanes``, fsynced, written to a temporary file and renamed: ``gallery.blobs``),
kept apart from the reference images so that neither's clean-up can remove the other's files.

Writes hold the store's file lock (across worker processes) from writing the file until the record
is committed, and from committing a replacement or a delete until the old file is removed, like
reference images. A reader takes the record, then the file; a replacement committed between the two
makes the old file vanish, and the reader simply reads the record again.

A lane's settings (``LaneSettings``, ``LaneBackgrounds.settings``) are a row of ``lane_settings``
(schema version 4), apart from the background: a lane may have either without the other. Today one:
``item_area``, the share of the photo a typical item covers, which the height of the lane's camera
fixes; the touching-items splitter uses it (``counter.touching``). Not set: the segmenter's default.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

from gallery.blobs import BlobStore
from gallery.stores.base import CatalogBase, CatalogUnreachable, PhotoStore
from gallery.types import SKU_PATTERN, GalleryError

logger = logging.getLogger(__name__)

#: Lane ids follow the SKU id rules: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit.
LANE_PATTERN = SKU_PATTERN
_LANE_RE = re.compile(LANE_PATTERN)


class InvalidLane(GalleryError, ValueError):
    pass


class BackgroundNotFound(GalleryError, KeyError):
    def __str__(self) -> str:  # KeyError quotes its argument
        return str(self.args[0]) if self.args else "no background is stored for this lane"


class InvalidLaneSetting(GalleryError, ValueError):
    pass


class LaneNotFound(GalleryError, KeyError):
    def __str__(self) -> str:  # KeyError quotes its argument
        return str(self.args[0]) if self.args else "nothing is stored for this lane"


#: ``item_area`` a lane may set, besides 0 (no expected size: touching items are split by their shape
#: alone): a share of the photo from the segmenter's smallest item (``SegmenterConfig.min_area``; a
#: typical item any smaller would be dropped as a speck) to half the photo (a counter holding one item).
ITEM_AREA_MIN, ITEM_AREA_MAX = 0.004, 0.5


def validate_lane(lane: str) -> str:
    if not isinstance(lane, str) or not _LANE_RE.fullmatch(lane):  # '$' alone lets "lane1\n" through
        raise InvalidLane(
            f"invalid lane id {str(lane)[:80]!r}: expected 1-64 characters, letters, digits, '.', "
            "'_' or '-', starting with a letter or digit"
        )
    return lane


def validate_item_area(value: float | None) -> float | None:
    """``value`` as a float when it is a lane's expected item size: None (not set: the default), 0 (no
    expected size) or a share of the photo from ``ITEM_AREA_MIN`` to ``ITEM_AREA_MAX``; else ``InvalidLaneSetting``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidLaneSetting(f"item_area must be a number, received {str(value)[:80]!r}")
    if value != 0 and not ITEM_AREA_MIN <= value <= ITEM_AREA_MAX:
        raise InvalidLaneSetting(
            f"item_area {value!r} is out of range: expected 0 (no expected item size) or the share of the photo "
            f"a typical item covers, from {ITEM_AREA_MIN} to {ITEM_AREA_MAX} (e.g. 0.02 for an item of 2 %), "
            "or null for the default"
        )
    return float(value)


@dataclass(frozen=True)
class LaneSettings:
    """A lane's stored settings."""

    lane: str
    item_area: float | None  # a typical item's share of the photo (0: no expected size); None: the default
    updated_at: float


class LaneSettingsStore:
    """Each lane's settings, read and written through the catalogue (``lane_settings``)."""

    def __init__(self, store: CatalogBase):
        self.store = store
        self._last: dict[str, LaneSettings | None] = {}  # each lane's settings as last read here (an outage)

    def put(self, lane: str, item_area: float | None) -> tuple[LaneSettings, bool]:
        """Store ``lane``'s settings, replacing any (``item_area`` None: back to the default); True when
        the lane had none. ``InvalidLane``, ``InvalidLaneSetting``."""
        validate_lane(lane)
        record = LaneSettings(lane, validate_item_area(item_area), time.time())
        created = self.store.put_lane_settings((record.lane, record.item_area, record.updated_at))
        self._last[lane] = record
        logger.info("lane %r: item_area %s", lane, "default" if record.item_area is None else record.item_area)
        return record, created

    def get(self, lane: str) -> LaneSettings | None:
        """The lane's settings, or None when it never had any."""
        row = self.store.get_lane_settings(validate_lane(lane))
        record = None if row is None else LaneSettings(*row)
        self._last[lane] = record
        return record

    def current(self, lane: str) -> LaneSettings | None:
        """``get`` for a checkout: while the catalogue cannot be reached, the settings as this process last
        read them (memory only), or None (the defaults) when it never read them."""
        try:
            return self.get(lane)
        except CatalogUnreachable as exc:
            known = self._last.get(lane)
            logger.warning("lane %r: %s; %s", lane, exc, "its settings as last read" if known else "default settings")
            return known


@dataclass(frozen=True)
class Background:
    """A lane's stored empty-counter photo (its bytes are read separately: ``LaneBackgrounds.read``)."""

    lane: str
    sha256: str
    media_type: str
    width: int  # pixels, EXIF orientation applied
    height: int
    updated_at: float


class LaneBackgrounds:
    def __init__(self, store: CatalogBase, photos: str | Path | PhotoStore):
        """``photos``: the lanes' photo store, or a folder for files (``gallery.blobs``)."""
        self.store = store
        self.blobs = photos if isinstance(photos, PhotoStore) else BlobStore(photos)
        self._last: dict[str, Background] = {}  # each lane's record as last read here (a catalogue outage)
        self.settings = LaneSettingsStore(store)

    def put(self, lane: str, data: bytes, media_type: str, width: int, height: int) -> tuple[Background, bool]:
        """Store ``data`` (an already decoded and checked photo) as ``lane``'s background, replacing any;
        True when the lane had none."""
        validate_lane(lane)
        now = time.time()
        with self.blobs.guard():
            digest = self.blobs.put(data)
            created, stale = self.store.put_lane((lane, digest, media_type, width, height, now))
            if stale:
                self.blobs.remove(stale)
        logger.info("lane %r: background %dx%d stored (%s)", lane, width, height, digest[:12])
        return Background(lane, digest, media_type, width, height, now), created

    def get(self, lane: str) -> Background:
        """The record, or ``BackgroundNotFound``."""
        row = self.store.get_lane(validate_lane(lane))
        if row is None:
            self._last.pop(lane, None)
            raise BackgroundNotFound(
                f"no background is stored for lane {lane!r}: PUT /v1/lanes/{lane}/background "
                "with a photo of its empty counter"
            )
        record = Background(*row)
        self._last[lane] = record
        return record

    def last_known(self, lane: str) -> Background | None:
        """``lane``'s record as this process last read it (memory only), for when the catalogue cannot be
        reached; None when it was never read here, or was found deleted."""
        return self._last.get(lane)

    def photo(self, record: Background) -> tuple[Background, bytes]:
        """The bytes of ``record``'s photo; if it was replaced or deleted meanwhile, the lane's current
        record and photo (``read``)."""
        try:
            return record, self.blobs.get(record.sha256)
        except FileNotFoundError:
            return self.read(record.lane)

    def find(self, lane: str) -> Background | None:
        try:
            return self.get(lane)
        except BackgroundNotFound:
            return None

    def read(self, lane: str) -> tuple[Background, bytes]:
        """The record and the photo's bytes; ``BackgroundNotFound`` when there is none."""
        for _ in range(3):
            record = self.get(lane)
            try:
                return record, self.blobs.get(record.sha256)
            except FileNotFoundError:  # replaced or deleted between the record and the file: read again
                continue
        raise BackgroundNotFound(f"the background of lane {lane!r} keeps changing while being read")

    def delete(self, lane: str) -> None:
        validate_lane(lane)
        with self.blobs.guard():
            found, stale = self.store.delete_lane(lane)
            if not found:
                raise BackgroundNotFound(f"no background is stored for lane {lane!r}")
            if stale:
                self.blobs.remove(stale)
        logger.info("lane %r: background deleted", lane)

    def sweep(self) -> int:
        """Remove files no lane refers to (a crash between writing a file and its commit leaves one)."""
        with self.blobs.guard():
            return self.blobs.sweep(self.store.lane_digests())
