"""The gallery: SQLite catalogue + content-addressed image files + an in-memory vector index.

One ``Gallery`` serves one model version. Its index holds only that model's
vectors (never a mix); if some reference images have no vector from that model
(they were enrolled through another one), queries and enrolments raise
``ModelMismatch`` until ``skulens reindex`` has embedded them.

This module is the facade the service calls. The index, and how it follows the
catalogue's change log, is ``gallery.index_follower``; the search over it,
``gallery.index_search``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gallery.decision import decide, resolve_threshold
from gallery.index_follower import IndexFollower
from gallery.index_search import MAX_INITIAL_FETCH as MAX_INITIAL_FETCH
from gallery.index_search import initial_fetch as initial_fetch
from gallery.index_search import nearest_skus
from gallery.lanes import LaneBackgrounds
from gallery.money import Currency
from gallery.open_set_score import OpenSetScore
from gallery.search.base import VectorIndex, limit_search_threads
from gallery.stores.base import AddedImages, CatalogBase, NewImage
from gallery.stores.open import DB_FILE, describe, open_catalog
from gallery.types import ImageNotFound, Match, ModelMismatch, Page, Recognition, Sku, validate_sku

logger = logging.getLogger(__name__)

__all__ = ["DB_FILE", "Gallery", "ImageUpload"]


@dataclass(frozen=True)
class ImageUpload:
    """A decoded-and-checked upload: the original bytes are what gets stored."""

    data: bytes
    media_type: str
    width: int
    height: int


def as_image_rows(vectors: np.ndarray | Sequence[np.ndarray], images: int, dim: int) -> list[np.ndarray]:
    """Per image, its ``(k >= 1, dim)`` float32 rows; a plain ``(n, dim)`` array is one row per image."""
    if isinstance(vectors, np.ndarray) and vectors.ndim == 2:
        if vectors.shape != (images, dim):
            raise ValueError(f"expected {images} vectors of {dim}, got shape {vectors.shape}")
        return [np.asarray(v, np.float32)[None] for v in vectors]
    rows = [np.atleast_2d(np.asarray(v, np.float32)) for v in vectors]
    if len(rows) != images or any(r.ndim != 2 or r.shape[1] != dim or len(r) < 1 for r in rows):
        raise ValueError(f"expected {images} arrays of shape (k >= 1, {dim}), got shapes {[r.shape for r in rows]}")
    return rows


class Gallery:
    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        model_version: str,
        embedding_dim: int,
        index_kind: str = "flat",
        search_threads: int | None = None,
        currency: str | None = None,
        catalog: str | None = None,
        lookalike_beta: float = 0.0,
        runner_up_gamma: float = 0.0,
    ):
        """``search_threads``: OpenMP threads per FAISS search, set in each searching thread (None: FAISS default).
        ``currency``: the setting (ISO 4217), checked against the catalogue's; None takes the catalogue's.
        ``catalog``: the setting (``gallery.stores.open``): None, the embedded SQLite in ``data_dir``; a
        ``postgresql://`` URL, a catalogue shared with other replicas, followed in the background.
        ``lookalike_beta``, ``runner_up_gamma``: the model's (``ModelArtifact``'s properties): ``recognize``
        decides on the best similarity less beta × the SKU's lookalike (``gallery.lookalike``) and gamma × the
        second SKU's similarity (``gallery.open_set_score``); both 0, on the similarity."""
        self.open_set_score = OpenSetScore(lookalike_beta, runner_up_gamma)
        self.data_dir = Path(data_dir)
        self.search_threads = search_threads
        self.model_version = model_version
        self.embedding_dim = embedding_dim
        self.index_kind = index_kind
        self.catalog = describe(catalog, self.data_dir)
        self.store: CatalogBase = open_catalog(self.data_dir, catalog, currency)
        self.blobs = self.store.photos("images", self.data_dir)
        self.lanes = LaneBackgrounds(
            self.store, self.store.photos("lanes", self.data_dir)
        )  # empty-counter photos, apart
        self.index_dir = self.data_dir / "index"
        self.index_dir.mkdir(parents=True, exist_ok=True)
        #: the index, the SKUs, names, prices and threshold in memory, following the catalogue's change log
        self.follower = IndexFollower(
            self.store,
            self.index_dir / f"{model_version}.{index_kind}",
            model_version,
            embedding_dim,
            index_kind,
            self.open_set_score.name,
            lookalikes=self.open_set_score.uses_lookalike,  # the book is unused at beta 0 (``decide``)
        )

    @property
    def _index(self) -> VectorIndex:
        """The follower's index as it is now (``bench.gallery_search`` and tests wrap its ``search``)."""
        return self.follower.index

    # --- index life cycle ---------------------------------------------------
    def catch_up(self) -> None:
        """Apply changes made by other processes (one indexed SQLite query when there are none)."""
        self.follower.catch_up()

    def save_snapshot(self) -> Path:
        """Write the index and its sidecar atomically (temporary file, fsync, rename)."""
        return self.follower.save_snapshot()

    def close(self, snapshot: bool = True) -> None:
        if snapshot:
            self.save_snapshot()
        self.blobs.close()
        self.lanes.blobs.close()
        self.store.close()

    # --- state --------------------------------------------------------------
    def check_model(self) -> None:
        """``ModelMismatch`` when the index lacks some images' vectors (after catching up, as requests do)."""
        self.follower.catch_up_for_request()
        with self.follower.lock.read():
            self._raise_if_missing()

    def _raise_if_missing(self) -> None:
        """Call under the follower's read lock."""
        missing = self.follower.missing
        if missing:
            others = {v: n for v, n in self.store.model_versions().items() if v != self.model_version}
            raise ModelMismatch(
                f"{len(missing)} reference image(s) in this gallery have no vector from model "
                f"{self.model_version} (their vectors come from model(s) {sorted(others) or 'unknown'}); "
                "an operator must run `skulens reindex` with this model on the server's data directory"
            )

    @property
    def size(self) -> int:
        """Vectors in the index, after catching up with writes made by other processes."""
        self.follower.catch_up_for_request()
        with self.follower.lock.read():
            return len(self.follower.index)

    def index_size(self) -> tuple[int, int]:
        """(vectors, reference images) in the index, after catching up with other processes."""
        self.follower.catch_up_for_request()
        with self.follower.lock.read():
            return len(self.follower.index), len(self.follower.sku_of)

    @property
    def index_rows(self) -> int:
        """Vectors in the index as this process last caught up (memory only; never waits on SQLite)."""
        return len(self.follower.index)

    @property
    def missing_vectors(self) -> int:
        """Reference images without a vector of this model, as last caught up (memory only)."""
        return len(self.follower.missing)

    def counts(self) -> tuple[int, int]:
        """(number of SKUs, number of reference images), as last caught up: memory only, never waits."""
        return self.follower.memory.counts

    @property
    def stored_threshold(self) -> float | None:
        """The threshold stored for this model (``PUT /v1/admin/threshold``, calibration), from memory."""
        return self.follower.memory.stored_threshold

    def sku_details(self, skus: Sequence[str]) -> dict[str, tuple[str, int | None]]:
        """Name and price (minor units, or None) of each of ``skus`` in the catalogue, as last caught up:
        memory only (``gallery.sku_directory``), like ``CatalogStore.sku_details`` without the SQLite read."""
        return self.follower.memory.skus.details(skus)

    def threshold(self, default: float) -> float:
        """The stored threshold, else ``default`` (memory only)."""
        stored = self.follower.memory.stored_threshold
        return stored if stored is not None else default

    def set_threshold(self, value: float) -> None:
        self.store.set_meta(self.follower.memory.threshold_key, repr(float(value)), announce=True)
        self.follower.catch_up()

    # --- catalogue ----------------------------------------------------------
    @property
    def currency(self) -> Currency:
        """The currency of the catalogue's prices (minor units, ``gallery.money``)."""
        return self.store.currency

    def put_sku(
        self, sku: str, name: str | None = None, price: int | None = None, attributes: dict[str, Any] | None = None
    ) -> bool:
        """``price``: minor units of ``currency`` (``gallery.money.to_minor``), None for no price."""
        created = self.store.put_sku(validate_sku(sku), name, price, attributes)
        self.follower.catch_up()
        return created

    def get_sku(self, sku: str) -> Sku:
        return self.store.get_sku(validate_sku(sku))

    def read_image(self, sku: str, image_id: int) -> tuple[bytes, str]:
        """A reference image's stored bytes and media type; ``ImageNotFound`` also when a delete
        removed the file after the record was read."""
        record = self.store.get_image(validate_sku(sku), image_id)
        try:
            return self.blobs.get(record.sha256), record.media_type
        except FileNotFoundError:
            raise ImageNotFound(f"image {image_id} of SKU {sku!r} does not exist (it was just deleted)") from None

    def merge_sku(
        self, sku: str, name: str | None = None, price: int | None = None, attributes: dict[str, Any] | None = None
    ) -> bool:
        """Create the SKU, or change only the fields given; True when created."""
        created = self.store.merge_sku(validate_sku(sku), name, price, attributes)
        self.follower.catch_up()
        return created

    def list_skus(self, offset: int = 0, limit: int = 50, search: str | None = None) -> Page:
        """SKUs by id, a page at a time; ``search``: only those whose id or name contains it (any case)."""
        if search:
            return self.store.search_skus(search, offset, limit)
        return self.store.list_skus(offset, limit)

    # Writers commit to SQLite without the index lock (waiting for SQLite's write lock must not stop
    # searches), then apply the change log to the index under it, like any other process's change.
    def delete_sku(self, sku: str) -> None:
        with self.blobs.guard():
            for digest in self.store.delete_sku(validate_sku(sku)):
                self.blobs.remove(digest)
        self.follower.sync_now()

    def delete_image(self, sku: str, image_id: int) -> None:
        with self.blobs.guard():
            for digest in self.store.delete_image(validate_sku(sku), image_id):
                self.blobs.remove(digest)
        self.follower.sync_now()

    def sweep_files(self) -> int:
        """Remove image files that no record refers to (a crash between file and commit leaves one)."""
        with self.blobs.guard():
            removed = self.blobs.sweep(self.store.image_digests())
        removed += self.lanes.sweep()
        if removed:
            logger.info("removed %d unreferenced photo(s) from %r and %r", removed, self.blobs, self.lanes.blobs)
        return removed

    def enrol(
        self, sku: str, uploads: list[ImageUpload], vectors: np.ndarray | Sequence[np.ndarray], name: str | None = None
    ) -> AddedImages:
        """Store image files (fsynced), then commit records and vectors; searchable on return.

        ``vectors``: ``(n, dim)``, one per upload, or one ``(k, dim)`` array per upload: the photo's
        own vector first, then those of its catalogue views (``gallery.references``).
        """
        validate_sku(sku)
        rows = as_image_rows(vectors, len(uploads), self.embedding_dim)
        self.check_model()
        with self.blobs.guard():
            records = [NewImage(self.blobs.put(u.data), u.media_type, u.width, u.height) for u in uploads]
            ids = self.store.add_images(sku, records, rows, self.model_version, name=name)
        self.follower.sync_now()
        return ids

    # --- search -------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int = 5) -> list[list[Match]]:
        """Top ``k`` SKUs per query (best reference image per SKU), with names.

        All the queries go to the index in one call (a micro-batch's queries: one FAISS search),
        and each query's answer is the one it would get alone (``gallery.index_search``). Searches
        run side by side under the read lock. Names come from memory (``gallery.sku_directory``).
        """
        return [matches for matches, _ in self._search(queries, k)]

    def _search(self, queries: np.ndarray, k: int) -> list[tuple[list[Match], float]]:
        """``search``'s matches, each with its best SKU's lookalike read under the same lock."""
        follower = self.follower
        follower.catch_up_for_request()  # a shared catalogue gone: answered from the index in memory
        if self.search_threads:
            limit_search_threads(self.search_threads)
        with follower.lock.read():
            self._raise_if_missing()
            results = nearest_skus(follower.index, follower.sku_of, len(follower.images_per_sku), queries, k)
            names, book = follower.memory.skus, follower.lookalikes
            return [
                ([Match(m.sku, m.score, names.name(m.sku)) for m in r], book.lookalike(r[0].sku) if r else 0.0)
                for r in results
            ]

    def lookalike(self, sku: str) -> float:
        """The cosine between ``sku``'s reference centroid and the nearest other SKU's (``gallery.lookalike``),
        as the decision uses it: 0.0 in a gallery of lookalike beta 0, which does not keep the centroids."""
        with self.follower.lock.read():
            return self.follower.lookalikes.lookalike(sku)

    def recognize(
        self, queries: np.ndarray, threshold: float | None = None, k: int = 5, model_threshold: float | None = None
    ) -> list[Recognition]:
        """Search, then decide at ``resolve_threshold(threshold, stored, model_threshold)`` on the model's
        decision score (``gallery.open_set_score``); the stored threshold is read from memory after the
        search has caught up with other processes. A score with a runner-up weight searches for at least
        two SKUs; the answer still lists at most ``k``."""
        results = self._search(queries, max(k, 2) if self.open_set_score.gamma else k)
        chosen = resolve_threshold(threshold, self.follower.memory.stored_threshold, model_threshold)
        answers = [decide(matches, chosen, lookalike, self.open_set_score) for matches, lookalike in results]
        return [replace(a, matches=a.matches[:k]) if len(a.matches) > k else a for a in answers]
