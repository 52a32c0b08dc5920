"""The gallery: SQLite catalogue + content-addressed image files + an in-memory vector index.

One ``Gallery`` serves one model version. Its index holds only that model's
vectors (never a mix); if some reference images have no vector from that model
(they were enrolled through another one), queries and enrolments raise
``ModelMismatch`` until ``skulens reindex`` has embedded them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gallery.decision import aggregate_by_sku, decide, resolve_threshold
from gallery.lanes import LaneBackgrounds
from gallery.money import Currency
from gallery.rwlock import ReadWriteLock
from gallery.search import make_index
from gallery.search.base import VectorIndex, limit_search_threads, write_atomically
from gallery.sku_directory import SkuDirectory
from gallery.stores.base import (
    ADD,
    META_CHANGE,
    REMOVE,
    SKU_CHANGE,
    AddedImages,
    CatalogBase,
    CatalogUnreachable,
    NewImage,
)
from gallery.stores.open import DB_FILE, describe, open_catalog
from gallery.types import ImageHit, ImageNotFound, Match, ModelMismatch, Page, Recognition, Sku, validate_sku

logger = logging.getLogger(__name__)

__all__ = ["DB_FILE", "Gallery", "ImageUpload"]
CHANGE_LOG_KEEP = 100_000  # change-log rows kept when a snapshot is saved; a worker further behind rebuilds
#: after a catch-up found a shared catalogue unreachable, requests skip catching up this long (the follower
#: thread keeps trying): a replica behind during an outage answers from memory without waiting on the network
UNREACHABLE_BACKOFF_S = 3.0
#: longest a request waits for a catch-up in progress in another thread (the follower's takes milliseconds
#: when the catalogue answers) before answering from the index as it is
REQUEST_WAIT_S = 1.0


@dataclass(frozen=True)
class ImageUpload:
    """A decoded-and-checked upload: the original bytes are what gets stored."""

    data: bytes
    media_type: str
    width: int
    height: int


MAX_INITIAL_FETCH = 1024


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


def initial_fetch(k: int, images: int, skus: int) -> int:
    """Neighbours to fetch first: 4k (at least 16) SKUs' worth of images, at most ``MAX_INITIAL_FETCH``."""
    per_sku = math.ceil(images / skus) if skus else 1
    return max(1, min(MAX_INITIAL_FETCH, max(4 * k, 16) * per_sku))


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
    ):
        """``search_threads``: OpenMP threads per FAISS search, set in each searching thread (None: FAISS default).
        ``currency``: the setting (ISO 4217), checked against the catalogue's; None takes the catalogue's.
        ``catalog``: the setting (``gallery.stores.open``): None, the embedded SQLite in ``data_dir``; a
        ``postgresql://`` URL, a catalogue shared with other replicas, followed in the background."""
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
        self._lock = ReadWriteLock()  # searches read side by side; index changes write alone
        # one catch-up at a time: it reads the catalogue holding only this, then applies under the write lock
        self._catching_up = threading.RLock()
        self._unreachable_until = 0.0  # monotonic; see UNREACHABLE_BACKOFF_S
        self._index: VectorIndex = make_index(index_kind, embedding_dim)
        self._sku_of: dict[int, str] = {}  # image id in the index → its SKU
        self._images_per_sku: Counter[str] = Counter()
        self._missing: set[int] = set()
        self._applied_seq = 0
        self._counts: tuple[int, int] = (0, 0)  # (SKUs, reference images), refreshed with the change log
        self._stored_threshold: float | None = None  # this model's stored threshold, refreshed likewise
        self._skus = SkuDirectory()  # names and prices, refreshed likewise
        self._open_index()
        self.store.follow(self._follow)  # a shared catalogue: other replicas' changes applied as they come

    # --- index life cycle ---------------------------------------------------
    @property
    def _snapshot_path(self) -> Path:
        return self.index_dir / f"{self.model_version}.{self.index_kind}"

    def _open_index(self) -> None:
        with self._catching_up, self._lock.write():  # nothing searches yet
            loaded = self._load_snapshot()
            self._set_sku_of(self.store.image_skus())
            self._missing = {image_id for image_id, _ in self.store.images_missing_vectors(self.model_version)}
            for image_id in self._missing:
                self._forget(image_id)
            if loaded:
                self._sync()
            expected = self.store.vector_rows(self.model_version, self.embedding_dim) if loaded else 0
            if not loaded or len(self._index) != expected:
                if loaded:
                    logger.warning(
                        "index snapshot disagrees with the catalogue (%d vectors, %d stored): rebuilding",
                        len(self._index),
                        expected,
                    )
                self._rebuild()
            if self.store.get_meta("model_version") is None and not self._missing:
                self.store.set_meta("model_version", self.model_version)
            self._reload_memory(threshold=True)

    @property
    def _threshold_key(self) -> str:
        return f"threshold:{self.model_version}"

    def _reload_memory(self, threshold: bool, skus: Collection[str] | None = None) -> None:
        """Counts, SKU names and prices (every SKU; with ``skus``, only those) and the stored threshold
        kept in memory: requests never read the catalogue for them."""
        self._read_memory(threshold, skus)()

    def _read_memory(self, threshold: bool, skus: Collection[str] | None = None) -> Callable[[], None]:
        """Read what ``_reload_memory`` keeps from the catalogue; returns what puts it in memory (called
        under the write lock with the index's changes, so a search never sees one without the other)."""
        sku_count, images = self.store.counts()
        every = self.store.all_sku_details() if skus is None else {}
        fresh = self.store.sku_details(list(skus)) if skus else {}
        value = self.store.get_meta(self._threshold_key) if threshold else None

        def put() -> None:
            self._counts = (int(sku_count), int(images))
            if skus is None:
                self._skus.replace(every)
            else:
                self._skus.update(skus, fresh)
            if threshold:
                self._stored_threshold = float(value) if value is not None else None

        return put

    def _load_snapshot(self) -> bool:
        sidecar = self._snapshot_path.with_suffix(self._snapshot_path.suffix + ".json")
        if not (self._snapshot_path.exists() and sidecar.exists()):
            return False
        try:
            info = json.loads(sidecar.read_text())
            made_for = info.get("catalog_id", None if self.store.shared else self.store.catalog_id)  # older: SQLite's
            if made_for != self.store.catalog_id:
                logger.warning("index snapshot %s was made beside another catalogue: rebuilding", self._snapshot_path)
                return False
            self._index = type(self._index).load(self._snapshot_path, self.embedding_dim)
            self._applied_seq = int(info["applied_seq"])
            return True
        except Exception as exc:  # noqa: BLE001  # a torn or foreign file: SQLite still has everything
            logger.warning("could not load index snapshot %s (%s): rebuilding", self._snapshot_path, exc)
            self._index = make_index(self.index_kind, self.embedding_dim)
            return False

    def _rebuild(self, with_memory: bool = False) -> None:
        """Build the index from the catalogue into a new one, swapped in only when complete: a catalogue
        lost mid-stream (``CatalogUnreachable``) leaves the index, its SKUs and its seq as they were.
        ``with_memory``: the images without this model's vectors, counts, names and prices, and the
        threshold too, read after the seq and swapped in with the index."""
        index = make_index(self.index_kind, self.embedding_dim)
        seq = self.store.last_seq()  # read first: replaying a change twice is harmless
        missing = (
            {image_id for image_id, _ in self.store.images_missing_vectors(self.model_version)}
            if with_memory
            else self._missing
        )
        memory = self._read_memory(threshold=True) if with_memory else None
        ids, skus, vectors = self.store.vectors_for(self.model_version, dim=self.embedding_dim)
        if len(ids):
            index.add(ids, vectors)
        with self._lock.write():  # searches go on while the catalogue is read; they wait only for the swap
            self._index, self._missing = index, missing
            self._set_sku_of(dict(zip(ids.tolist(), skus)))
            if memory is not None:
                memory()
            self._applied_seq = seq
        logger.info(
            "built %s index of %d vectors (%d reference images) for model %s",
            self.index_kind,
            len(ids),
            len(self._sku_of),
            self.model_version,
        )

    def _sync(self) -> None:
        """Replay the change log since the last applied change (cheap when nothing changed). The caller
        holds ``_catching_up`` (the only writer of the index's state); the catalogue is read without the
        index's write lock, which is taken only to apply what was read: searches never wait on the network."""
        changes = self.store.changes_since(self._applied_seq)
        if not changes:
            return
        if self._applied_seq < self.store.compacted_through():  # read after the changes, so no cut is missed
            logger.info(
                "change log compacted past change %d: rebuilding the index from the catalogue", self._applied_seq
            )
            self._rebuild(with_memory=True)
            return
        adds: set[int] = set()  # added by this model and not removed later in these changes
        for change in changes:
            if change.op == REMOVE:
                adds.discard(change.image_id)
            elif change.op == ADD and change.model_version == self.model_version:
                adds.add(change.image_id)
        ids, skus, vectors = (
            self.store.vectors_for(self.model_version, sorted(adds), dim=self.embedding_dim)
            if adds
            else (np.zeros(0, np.int64), [], np.zeros((0, self.embedding_dim), np.float32))
        )
        memory = self._read_memory(
            threshold=any(c.op == META_CHANGE and c.sku == self._threshold_key for c in changes),
            skus={c.sku for c in changes if c.op == SKU_CHANGE},
        )
        with self._lock.write():  # the index, the names and the seq change together
            pending: set[int] = set()
            for change in changes:
                if change.op == REMOVE:
                    pending.discard(change.image_id)
                    self._missing.discard(change.image_id)
                    if self._forget(change.image_id):
                        self._index.remove(np.array([change.image_id], np.int64))
                elif change.op == ADD and change.model_version == self.model_version:
                    pending.add(change.image_id)
                elif change.op == ADD and change.image_id not in self._sku_of and change.image_id not in pending:
                    self._missing.add(change.image_id)
            if len(ids):
                self._index.add(ids, vectors)
                for image_id, sku in zip(ids.tolist(), skus):
                    self._track(image_id, sku)
                self._missing.difference_update(ids.tolist())
            memory()
            self._applied_seq = changes[-1].seq  # last: a request that sees it sees the rest

    def _set_sku_of(self, sku_of: dict[int, str]) -> None:
        self._sku_of = sku_of
        self._images_per_sku = Counter(sku_of.values())

    def _track(self, image_id: int, sku: str) -> None:
        if self._sku_of.get(image_id) != sku:
            self._forget(image_id)
            self._sku_of[image_id] = sku
            self._images_per_sku[sku] += 1

    def _forget(self, image_id: int) -> bool:
        sku = self._sku_of.pop(image_id, None)
        if sku is None:
            return False
        self._images_per_sku[sku] -= 1
        if self._images_per_sku[sku] <= 0:
            del self._images_per_sku[sku]
        return True

    def _follow(self) -> None:
        """Called by a shared catalogue's follower thread when another replica wrote: catch up now, so
        that the next request finds the index current instead of replaying the log itself."""
        self._catch_up()

    def catch_up(self) -> None:
        """Apply changes made by other processes (one indexed SQLite query when there are none)."""
        self._catch_up()

    def _catch_up(self) -> None:
        """Apply other writers' changes, if there are any. The newest change is the store's ``known_seq``:
        a local query for SQLite, memory for a shared catalogue."""
        if self.store.known_seq() > self._applied_seq:
            self._sync_now()

    def _sync_now(self) -> None:
        """``_sync`` now (waiting for a catch-up in progress); a catalogue found unreachable starts the
        requests' back-off (``UNREACHABLE_BACKOFF_S``)."""
        with self._catching_up:
            try:
                self._sync()
            except CatalogUnreachable:
                self._unreachable_until = time.monotonic() + UNREACHABLE_BACKOFF_S
                raise
            self._unreachable_until = 0.0

    def _catch_up_for_request(self) -> None:
        """A request's catch-up. With a shared catalogue: skipped while the catalogue was just found
        unreachable (``UNREACHABLE_BACKOFF_S``; the follower keeps trying) or when a catch-up in another
        thread takes over ``REQUEST_WAIT_S``, and an unreachable catalogue is logged, not raised: the request
        answers from the index in memory. With SQLite (local, fast), as ``_catch_up``."""
        shared = self.store.shared
        if self.store.known_seq() <= self._applied_seq or (shared and time.monotonic() < self._unreachable_until):
            return
        if not self._catching_up.acquire(timeout=REQUEST_WAIT_S if shared else -1):
            return
        try:
            if self.store.known_seq() > self._applied_seq and not (
                shared and time.monotonic() < self._unreachable_until
            ):
                self._sync_now()
        except CatalogUnreachable as exc:
            logger.warning("answering from the index as last caught up (change %d): %s", self._applied_seq, exc)
        finally:
            self._catching_up.release()

    def save_snapshot(self) -> Path:
        """Write the index and its sidecar atomically (temporary file, fsync, rename)."""
        with self._catching_up:  # nothing changes the index meanwhile; searches go on
            self._sync_now()
            self._index.save(self._snapshot_path)
            sidecar = self._snapshot_path.with_suffix(self._snapshot_path.suffix + ".json")
            info = {
                "model_version": self.model_version,
                "kind": self.index_kind,
                "dim": self.embedding_dim,
                "applied_seq": self._applied_seq,
                "vectors": len(self._index),
                "catalog_id": self.store.catalog_id,
            }
            write_atomically(sidecar, json.dumps(info).encode())
        self.store.compact_changes(keep=CHANGE_LOG_KEEP)
        return self._snapshot_path

    def close(self, snapshot: bool = True) -> None:
        if snapshot:
            self.save_snapshot()
        self.blobs.close()
        self.lanes.blobs.close()
        self.store.close()

    # --- state --------------------------------------------------------------
    def check_model(self) -> None:
        """``ModelMismatch`` when the index lacks some images' vectors (after catching up, as requests do)."""
        self._catch_up_for_request()
        with self._lock.read():
            self._raise_if_missing()

    def _raise_if_missing(self) -> None:
        if self._missing:
            others = {v: n for v, n in self.store.model_versions().items() if v != self.model_version}
            raise ModelMismatch(
                f"{len(self._missing)} reference image(s) in this gallery have no vector from model "
                f"{self.model_version} (their vectors come from model(s) {sorted(others) or 'unknown'}); "
                "an operator must run `skulens reindex` with this model on the server's data directory"
            )

    @property
    def size(self) -> int:
        """Vectors in the index, after catching up with writes made by other processes."""
        self._catch_up_for_request()
        with self._lock.read():
            return len(self._index)

    def index_size(self) -> tuple[int, int]:
        """(vectors, reference images) in the index, after catching up with other processes."""
        self._catch_up_for_request()
        with self._lock.read():
            return len(self._index), len(self._sku_of)

    @property
    def index_rows(self) -> int:
        """Vectors in the index as this process last caught up (memory only; never waits on SQLite)."""
        return len(self._index)

    @property
    def missing_vectors(self) -> int:
        """Reference images without a vector of this model, as last caught up (memory only)."""
        return len(self._missing)

    def counts(self) -> tuple[int, int]:
        """(number of SKUs, number of reference images), as last caught up: memory only, never waits."""
        return self._counts

    @property
    def stored_threshold(self) -> float | None:
        """The threshold stored for this model (``PUT /v1/admin/threshold``, calibration), from memory."""
        return self._stored_threshold

    def sku_details(self, skus: Sequence[str]) -> dict[str, tuple[str, int | None]]:
        """Name and price (minor units, or None) of each of ``skus`` in the catalogue, as last caught up:
        memory only (``gallery.sku_directory``), like ``CatalogStore.sku_details`` without the SQLite read."""
        return self._skus.details(skus)

    def threshold(self, default: float) -> float:
        """The stored threshold, else ``default`` (memory only)."""
        return self._stored_threshold if self._stored_threshold is not None else default

    def set_threshold(self, value: float) -> None:
        self.store.set_meta(self._threshold_key, repr(float(value)), announce=True)
        self._catch_up()

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
        self._catch_up()
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
        self._catch_up()
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
        self._sync_now()

    def delete_image(self, sku: str, image_id: int) -> None:
        with self.blobs.guard():
            for digest in self.store.delete_image(validate_sku(sku), image_id):
                self.blobs.remove(digest)
        self._sync_now()

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
        self._sync_now()
        return ids

    # --- search -------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int = 5) -> list[list[Match]]:
        """Top ``k`` SKUs per query (best reference image per SKU), with names.

        All the queries go to the index in one call (a micro-batch's queries: one
        FAISS search), and each query's answer is the one it would get alone.
        Searches run side by side under the read lock. For an exhaustive (flat)
        index the first fetch is sized from the mean number of images per SKU, so
        that it nearly always covers ``k`` SKUs in one scan (a scan costs the same
        whatever the fetch); HNSW, whose cost grows with the fetch, starts small.
        Only the queries whose results still fall short of ``k`` SKUs are searched
        again, with a wider fetch. Names come from memory (``gallery.sku_directory``).
        """
        self._catch_up_for_request()  # a shared catalogue gone: answered from the index in memory
        if self.search_threads:
            limit_search_threads(self.search_threads)
        with self._lock.read():
            self._raise_if_missing()
            total = len(self._index)
            fetch = min(
                total,
                initial_fetch(k, len(self._sku_of), len(self._images_per_sku))
                if self._index.exhaustive
                else max(4 * k, 16),
            )
            results: list[list[Match]] = [[] for _ in range(len(queries))]
            pending = list(range(len(queries)))
            while pending:
                scores, ids = self._index.search(queries if len(pending) == len(queries) else queries[pending], fetch)
                short = []
                for row, row_scores, row_ids in zip(pending, scores.tolist(), ids.tolist()):
                    # a generator: aggregate_by_sku stops at the k-th SKU, so the hundreds of neighbours a
                    # flat fetch returns past it are never turned into objects (0.5 ms a query, bench round 5)
                    hits = (ImageHit(i, self._sku_of[i], s) for s, i in zip(row_scores, row_ids) if i in self._sku_of)
                    results[row] = aggregate_by_sku(hits, k)
                    if len(results[row]) < k:
                        short.append(row)
                if fetch >= total:
                    break
                pending, fetch = short, min(total, fetch * 4)
            return [[Match(m.sku, m.score, self._skus.name(m.sku)) for m in r] for r in results]

    def recognize(
        self, queries: np.ndarray, threshold: float | None = None, k: int = 5, model_threshold: float | None = None
    ) -> list[Recognition]:
        """Search, then decide at ``resolve_threshold(threshold, stored, model_threshold)``; the stored
        threshold is read from memory after the search has caught up with other processes."""
        results = self.search(queries, k)
        chosen = resolve_threshold(threshold, self._stored_threshold, model_threshold)
        return [decide(matches, chosen) for matches in results]
