"""The interface every catalogue store implements, and the records it speaks in.

A catalogue store is the source of truth: SKUs (prices in integer minor units, ``gallery.money``),
reference-image records, vectors per model version, lanes (backgrounds, settings), settings (meta)
and the change log that every process replays to keep its in-memory index current. The photo bytes live
in a ``PhotoStore`` the catalogue names (``photos``): files in the data directory beside SQLite,
rows of the database beside PostgreSQL.

Semantics every store keeps (``tests/gallery/test_store_contract.py`` runs the same tests on each):
writes are transactions that append their change-log rows in commit order (a reader that has
applied change ``n`` never later sees a change below ``n`` appear); enrolment is idempotent per
content; the change log can be cut (``compact_changes``) and says where (``compacted_through``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gallery.money import Currency
from gallery.types import GalleryError, Page, ReferenceImage, Sku

ADD, REMOVE = "add", "remove"  # change ops: an image's vector for model_version added; an image removed
SKU_CHANGE, META_CHANGE = (
    "sku",
    "meta",
)  # a SKU created, changed or deleted; a setting (the threshold) changed. image_id 0
COMPACTED_KEY = "changes_compacted_through"  # meta: the change log has no rows at or below this seq
CATALOG_ID_KEY = "catalog_id"  # meta: the catalogue's random id (``CatalogBase.catalog_id``)
DEFAULT_CURRENCY = "EUR"
CURRENCY_KEY = "currency"  # meta: the ISO 4217 code the stored minor units are of

#: A lane background's record: (lane, sha256, media_type, width, height, updated_at).
LaneRow = tuple[str, str, str, int, int, float]
#: A lane's settings: (lane, item_area (None: the global default), updated_at).
LaneSettingsRow = tuple[str, float | None, float]


class CatalogUnreachable(GalleryError, ConnectionError):
    """A shared catalogue cannot be reached now (the service answers writes 503 with Retry-After)."""


@dataclass(frozen=True)
class Change:
    seq: int
    op: str
    image_id: int
    sku: str
    model_version: str | None


@dataclass(frozen=True)
class NewImage:
    sha256: str
    media_type: str
    width: int
    height: int


class AddedImages(list[int]):
    """``add_images``' answer: one image id per image given, in order (a list, as before), and
    ``created``, the ids this call stored. An id not in ``created`` was a reference image of the
    SKU already, e.g. stored by another worker between a caller's look-up and this transaction."""

    def __init__(self, ids: Iterable[int] = (), created: Iterable[int] = ()):
        super().__init__(ids)
        self.created: frozenset[int] = frozenset(created)


class PhotoStore(abc.ABC):
    """Content-addressed photo bytes (named by their SHA-256). Writers hold ``guard()`` from writing
    bytes until their record is committed, and from committing a delete until the bytes are removed,
    so that a delete never removes bytes an enrolment elsewhere has just found present."""

    @abc.abstractmethod
    def guard(self) -> AbstractContextManager[None]:
        """Exclusive across threads, processes and (for a shared store) machines."""

    @abc.abstractmethod
    def put(self, data: bytes) -> str:
        """Store (once) durably; the digest. Safe to call for existing content."""

    @abc.abstractmethod
    def get(self, digest: str) -> bytes:
        """The bytes; ``FileNotFoundError`` when there are none."""

    @abc.abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def remove(self, digest: str) -> None:
        """Forget ``digest`` (nothing if absent). Call under ``guard()``."""

    @abc.abstractmethod
    def sweep(self, referenced: Iterable[str]) -> int:
        """Remove what no record refers to; how many went. Call under ``guard()``, ``referenced`` read under it."""

    def close(self) -> None:  # noqa: B027  # most photo stores hold nothing to release
        """Release connections (if any)."""


class CatalogBase(abc.ABC):
    """The catalogue: what ``Gallery``, ``LaneBackgrounds``, re-indexing and the service use."""

    currency: Currency
    #: A random id made when the catalogue was created: an index snapshot records it and is loaded only
    #: beside the same catalogue (a data directory pointed at another catalogue rebuilds its index).
    catalog_id: str
    #: True for a catalogue other machines share (its snapshot must name it: ``catalog_id``).
    shared: bool = False

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def photos(self, kind: str, data_dir: Path) -> PhotoStore:
        """Where ``kind``'s photos live (``"images"``: reference images, ``"lanes"``: lane backgrounds)."""

    # --- meta
    @abc.abstractmethod
    def get_meta(self, key: str, default: str | None = None) -> str | None: ...

    @abc.abstractmethod
    def meta_starting_with(self, prefix: str) -> dict[str, str]:
        """Every stored key that starts with ``prefix``, with its value."""

    @abc.abstractmethod
    def set_meta(self, key: str, value: str, announce: bool = False) -> None:
        """Store ``key``; ``announce``: also log a change, so that other processes reload it."""

    # --- SKUs
    @abc.abstractmethod
    def put_sku(self, sku: str, name: str | None, price: int | None, attributes: dict[str, Any] | None) -> bool:
        """Create or replace a SKU's metadata (``price``: minor units); True when it was created."""

    @abc.abstractmethod
    def merge_sku(
        self, sku: str, name: str | None = None, price: int | None = None, attributes: dict[str, Any] | None = None
    ) -> bool:
        """Create the SKU, or change only the fields given (None keeps what is stored); True when created."""

    @abc.abstractmethod
    def get_sku(self, sku: str) -> Sku:
        """``SkuNotFound`` when absent."""

    @abc.abstractmethod
    def list_skus(self, offset: int, limit: int) -> Page: ...

    @abc.abstractmethod
    def search_skus(self, text: str, offset: int, limit: int) -> Page:
        """SKUs whose id or name contains ``text`` (case-insensitive), by id, a page at a time."""

    @abc.abstractmethod
    def sku_names(self, skus: list[str]) -> dict[str, str]: ...

    @abc.abstractmethod
    def all_sku_details(self) -> dict[str, tuple[str, int | None]]: ...

    @abc.abstractmethod
    def sku_details(self, skus: list[str]) -> dict[str, tuple[str, int | None]]: ...

    @abc.abstractmethod
    def delete_sku(self, sku: str) -> list[str]:
        """Delete a SKU and its images; the digests no longer referenced."""

    # --- images and vectors
    @abc.abstractmethod
    def add_images(
        self,
        sku: str,
        images: list[NewImage],
        vectors: np.ndarray | Sequence[np.ndarray],
        model_version: str,
        name: str | None = None,
    ) -> AddedImages:
        """One transaction: the SKU (created if new), image records, vectors, change log; idempotent per content."""

    @abc.abstractmethod
    def existing_images(self, sku: str, digests: list[str]) -> dict[str, int]: ...

    @abc.abstractmethod
    def add_vectors(
        self, image_ids: list[int], vectors: np.ndarray | Sequence[np.ndarray], model_version: str
    ) -> int: ...

    @abc.abstractmethod
    def get_image(self, sku: str, image_id: int) -> ReferenceImage: ...

    @abc.abstractmethod
    def delete_image(self, sku: str, image_id: int) -> list[str]: ...

    @abc.abstractmethod
    def image_digests(self) -> set[str]: ...

    @abc.abstractmethod
    def images_missing_vectors(self, model_version: str, limit: int = 1_000_000) -> list[tuple[int, str]]: ...

    @abc.abstractmethod
    def vectors_for(
        self, model_version: str, image_ids: list[int] | None = None, dim: int | None = None
    ) -> tuple[np.ndarray, list[str], np.ndarray]: ...

    @abc.abstractmethod
    def vector_rows(self, model_version: str, dim: int) -> int: ...

    @abc.abstractmethod
    def image_skus(self) -> dict[int, str]: ...

    @abc.abstractmethod
    def counts(self) -> tuple[int, int]: ...

    @abc.abstractmethod
    def model_versions(self) -> dict[str, int]: ...

    @abc.abstractmethod
    def prune_vectors(self, keep_version: str) -> int: ...

    # --- lanes (records; their photos are in ``photos("lanes", ...)``)
    @abc.abstractmethod
    def put_lane(self, row: LaneRow) -> tuple[bool, str | None]:
        """Store or replace a lane's background record: (True when the lane had none, the replaced
        photo's digest when no lane uses it now)."""

    @abc.abstractmethod
    def get_lane(self, lane: str) -> LaneRow | None: ...

    @abc.abstractmethod
    def delete_lane(self, lane: str) -> tuple[bool, str | None]:
        """(whether the lane had a record, its photo's digest when no lane uses it now)."""

    @abc.abstractmethod
    def lane_digests(self) -> set[str]: ...

    @abc.abstractmethod
    def put_lane_settings(self, row: LaneSettingsRow) -> bool:
        """Store or replace a lane's settings (apart from its background: either may exist without the
        other); True when the lane had none."""

    @abc.abstractmethod
    def get_lane_settings(self, lane: str) -> LaneSettingsRow | None: ...

    # --- change log
    @abc.abstractmethod
    def last_seq(self) -> int:
        """The newest change's seq, read from the catalogue."""

    def known_seq(self) -> int:
        """The newest change this process knows of, without waiting on a remote server: what a request
        compares with its applied change before catching up. An embedded catalogue reads it (one
        indexed query); a shared one answers what its follower last heard (``follow``)."""
        return self.last_seq()

    def follow(self, on_change: Callable[[], None]) -> None:  # noqa: B027  # an embedded catalogue has no one to follow
        """Call ``on_change`` (from another thread) whenever another process may have changed the catalogue."""

    @property
    def reachable(self) -> bool:
        """False while a shared catalogue cannot be reached (writes fail; the index in memory still answers)."""
        return True

    @abc.abstractmethod
    def compacted_through(self) -> int: ...

    @abc.abstractmethod
    def compact_changes(self, keep: int) -> int:
        """Delete all but the newest ``keep`` (at least 1) change-log rows; how many went."""

    @abc.abstractmethod
    def changes_since(self, seq: int) -> list[Change]: ...
