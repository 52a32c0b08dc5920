"""One model's vector index, kept in step with the catalogue by following its change log.

The catalogue is the source of truth; the index is built from it (or loaded from a snapshot and caught
up), then every change — this process's writes, other processes' and other replicas' — reaches it the
same way: a catch-up replays the change log since the last applied change. One catch-up runs at a time
(``catching_up``); it reads the catalogue without the index's write lock, which it takes only to apply
what it read, so searches (under the read lock) never wait on the network.

The index holds only this model's vectors; reference images without one are counted in ``missing``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from gallery.catalogue_memory import CatalogueMemory
from gallery.index_snapshot import IndexSnapshot
from gallery.lookalike import CentroidBook, refreshed, sku_sums
from gallery.rwlock import ReadWriteLock
from gallery.search import make_index
from gallery.search.base import VectorIndex
from gallery.stores.base import ADD, META_CHANGE, REMOVE, SKU_CHANGE, CatalogBase, CatalogUnreachable

logger = logging.getLogger(__name__)

CHANGE_LOG_KEEP = 100_000  # change-log rows kept when a snapshot is saved; a worker further behind rebuilds
#: after a catch-up found a shared catalogue unreachable, requests skip catching up this long (the follower
#: thread keeps trying): a replica behind during an outage answers from memory without waiting on the network
UNREACHABLE_BACKOFF_S = 3.0
#: longest a request waits for a catch-up in progress in another thread (the follower's takes milliseconds
#: when the catalogue answers) before answering from the index as it is
REQUEST_WAIT_S = 1.0
#: a catch-up that changed more SKUs than this recomputes their lookalikes outside the write lock
#: (bench/lookalike.py: ~1-4 ms for one SKU, 0.5-0.8 s for 1,000 at 100k vectors)
LOOKALIKE_INLINE_SKUS = 64


class IndexFollower:
    """The index, the SKU of each image in it, and ``memory`` (``gallery.catalogue_memory``), as of change
    ``applied_seq``. Read them under ``lock.read()``; only a catch-up (under ``catching_up``) changes them.

    Opening loads the snapshot at ``snapshot_path`` (else builds from the catalogue), catches up, and asks
    a shared catalogue to call back when other replicas write."""

    def __init__(
        self,
        store: CatalogBase,
        snapshot_path: Path,
        model_version: str,
        embedding_dim: int,
        index_kind: str,
        score: str = "",
        lookalikes: bool = True,
    ) -> None:
        """``score``: which decision score the stored threshold is on (``CatalogueMemory``). ``lookalikes``:
        keep each SKU's centroid and nearest other SKU (``self.lookalikes``); False where the decision does
        not use them (a lookalike beta of 0): the book stays empty and no change computes it."""
        self.store = store
        self.model_version = model_version
        self.embedding_dim = embedding_dim
        self.index_kind = index_kind
        self.keeps_lookalikes = lookalikes
        self.snapshot = IndexSnapshot(snapshot_path)
        self.lock = ReadWriteLock()  # searches read side by side; index changes write alone
        # one catch-up at a time: it reads the catalogue holding only this, then applies under the write lock
        self.catching_up = threading.RLock()
        self._unreachable_until = 0.0  # monotonic; see UNREACHABLE_BACKOFF_S
        self.index: VectorIndex = make_index(index_kind, embedding_dim)
        self.sku_of: dict[int, str] = {}  # image id in the index → its SKU
        self.images_per_sku: Counter[str] = Counter()
        self.missing: set[int] = set()  # reference images without this model's vector
        #: each SKU's reference centroid and nearest other SKU (``gallery.lookalike``), kept with the index
        self.lookalikes = CentroidBook(embedding_dim)
        self._ids_of: dict[str, set[int]] = {}
        self._dirty: set[str] = set()  # SKUs whose vectors changed since their centroid was computed
        self.applied_seq = 0
        self.memory = CatalogueMemory(store, model_version, score)  # refreshed with the change log
        self._open()
        self.store.follow(self._follow)  # a shared catalogue: other replicas' changes applied as they come

    # --- opening and rebuilding ---------------------------------------------
    def _open(self) -> None:
        with self.catching_up, self.lock.write():  # nothing searches yet
            loaded = self._load_snapshot()
            self._set_sku_of(self.store.image_skus())
            self.missing = {image_id for image_id, _ in self.store.images_missing_vectors(self.model_version)}
            for image_id in self.missing:
                self._forget(image_id)
            if loaded:
                self._sync(refresh=False)  # the centroids are computed once, below
            expected = self.store.vector_rows(self.model_version, self.embedding_dim) if loaded else 0
            if not loaded or len(self.index) != expected:
                if loaded:
                    logger.warning(
                        "index snapshot disagrees with the catalogue (%d vectors, %d stored): rebuilding",
                        len(self.index),
                        expected,
                    )
                self._rebuild()  # its centroids with it
            else:
                self._refresh_lookalikes(None)
            if self.store.get_meta("model_version") is None and not self.missing:
                self.store.set_meta("model_version", self.model_version)
            self.memory.reload(threshold=True)
            self.memory.warn_about_other_scores()

    def _load_snapshot(self) -> bool:
        loaded = self.snapshot.load(type(self.index), self.embedding_dim, self.store.catalog_id, self.store.shared)
        if loaded is None:
            return False
        self.index, self.applied_seq = loaded
        return True

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
            else self.missing
        )
        memory = self.memory.read(threshold=True) if with_memory else None
        ids, skus, vectors = self.store.vectors_for(self.model_version, dim=self.embedding_dim)
        if len(ids):
            index.add(ids, vectors)
        sku_of = dict(zip(ids.tolist(), skus))
        book = CentroidBook(self.embedding_dim)
        if self.keeps_lookalikes:
            book.load(*sku_sums(ids, vectors, sku_of, set(skus)))
        with self.lock.write():  # searches go on while the catalogue is read; they wait only for the swap
            self.index, self.missing, self.lookalikes = index, missing, book
            self._set_sku_of(sku_of)
            self._dirty = set()
            if memory is not None:
                memory()
            self.applied_seq = seq
        logger.info(
            "built %s index of %d vectors (%d reference images) for model %s",
            self.index_kind,
            len(ids),
            len(self.sku_of),
            self.model_version,
        )

    # --- following the change log -------------------------------------------
    def _sync(self, refresh: bool = True) -> None:
        """Replay the change log since the last applied change (cheap when nothing changed). The caller
        holds ``catching_up`` (the only writer of the index's state); the catalogue is read without the
        index's write lock, which is taken only to apply what was read: searches never wait on the network."""
        changes = self.store.changes_since(self.applied_seq)
        if not changes:
            return
        if self.applied_seq < self.store.compacted_through():  # read after the changes, so no cut is missed
            logger.info(
                "change log compacted past change %d: rebuilding the index from the catalogue", self.applied_seq
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
        memory = self.memory.read(
            threshold=any(c.op == META_CHANGE and c.sku == self.memory.threshold_key for c in changes),
            skus={c.sku for c in changes if c.op == SKU_CHANGE},
        )
        with self.lock.write():  # the index, the names and the seq change together
            pending: set[int] = set()
            for change in changes:
                if change.op == REMOVE:
                    pending.discard(change.image_id)
                    self.missing.discard(change.image_id)
                    if self._forget(change.image_id):
                        self.index.remove(np.array([change.image_id], np.int64))
                elif change.op == ADD and change.model_version == self.model_version:
                    pending.add(change.image_id)
                elif change.op == ADD and change.image_id not in self.sku_of and change.image_id not in pending:
                    self.missing.add(change.image_id)
            if len(ids):
                self.index.add(ids, vectors)
                for image_id, sku in zip(ids.tolist(), skus):
                    self._track(image_id, sku)
                self._dirty.update(skus)  # a re-added image may bring a new vector under the same SKU
                self.missing.difference_update(ids.tolist())
            inline = not self.keeps_lookalikes or len(self._dirty) <= LOOKALIKE_INLINE_SKUS
            if refresh and inline:
                self._refresh_lookalikes(self._dirty)
            memory()
            self.applied_seq = changes[-1].seq  # last: a request that sees it sees the rest
        if refresh and not inline:
            # Many SKUs changed (a bulk enrolment seen by a replica): their centroids are recomputed on a
            # copy while searches go on, then swapped in. This thread alone changes the index, and it
            # holds ``catching_up``, so reading the index without the lock is safe; until the swap,
            # requests decide with the changed SKUs' previous lookalikes (or none for new SKUs).
            book = refreshed(self.lookalikes.copy(), self.index, self.sku_of, self._ids_of, self._dirty)
            with self.lock.write():
                self.lookalikes, self._dirty = book, set()

    def _set_sku_of(self, sku_of: dict[int, str]) -> None:
        self.sku_of = sku_of
        self.images_per_sku = Counter(sku_of.values())
        self._ids_of = {}
        for image_id, sku in sku_of.items():
            self._ids_of.setdefault(sku, set()).add(image_id)

    def _track(self, image_id: int, sku: str) -> None:
        if self.sku_of.get(image_id) != sku:
            self._forget(image_id)
            self.sku_of[image_id] = sku
            self.images_per_sku[sku] += 1
            self._ids_of.setdefault(sku, set()).add(image_id)

    def _forget(self, image_id: int) -> bool:
        sku = self.sku_of.pop(image_id, None)
        if sku is None:
            return False
        self.images_per_sku[sku] -= 1
        if self.images_per_sku[sku] <= 0:
            del self.images_per_sku[sku]
        ids = self._ids_of.get(sku)
        if ids is not None:
            ids.discard(image_id)
            if not ids:
                del self._ids_of[sku]
        self._dirty.add(sku)
        return True

    def _refresh_lookalikes(self, skus: set[str] | None) -> None:
        """Recompute the centroids of ``skus`` (None: all, in a new book) from the index's vectors.
        Called with the index as it now is, under the write lock (or before anything searches). Without
        ``keeps_lookalikes``, only forgets which SKUs changed."""
        if self.keeps_lookalikes:
            self.lookalikes = refreshed(self.lookalikes, self.index, self.sku_of, self._ids_of, skus)
        self._dirty = set()

    def _follow(self) -> None:
        """Called by a shared catalogue's follower thread when another replica wrote: catch up now, so
        that the next request finds the index current instead of replaying the log itself."""
        self.catch_up()

    def catch_up(self) -> None:
        """Apply other writers' changes, if there are any. The newest change is the store's ``known_seq``:
        a local query for SQLite, memory for a shared catalogue."""
        if self.store.known_seq() > self.applied_seq:
            self.sync_now()

    def sync_now(self) -> None:
        """Replay the change log now (waiting for a catch-up in progress); a catalogue found unreachable
        starts the requests' back-off (``UNREACHABLE_BACKOFF_S``)."""
        with self.catching_up:
            try:
                self._sync()
            except CatalogUnreachable:
                self._unreachable_until = time.monotonic() + UNREACHABLE_BACKOFF_S
                raise
            self._unreachable_until = 0.0

    def catch_up_for_request(self) -> None:
        """A request's catch-up. With a shared catalogue: skipped while the catalogue was just found
        unreachable (``UNREACHABLE_BACKOFF_S``; the follower keeps trying) or when a catch-up in another
        thread takes over ``REQUEST_WAIT_S``, and an unreachable catalogue is logged, not raised: the request
        answers from the index in memory. With SQLite (local, fast), as ``catch_up``."""
        shared = self.store.shared
        if self.store.known_seq() <= self.applied_seq or (shared and time.monotonic() < self._unreachable_until):
            return
        if not self.catching_up.acquire(timeout=REQUEST_WAIT_S if shared else -1):
            return
        try:
            if self.store.known_seq() > self.applied_seq and not (
                shared and time.monotonic() < self._unreachable_until
            ):
                self.sync_now()
        except CatalogUnreachable as exc:
            logger.warning("answering from the index as last caught up (change %d): %s", self.applied_seq, exc)
        finally:
            self.catching_up.release()

    # --- snapshot -----------------------------------------------------------
    def save_snapshot(self) -> Path:
        """Catch up, write the index and its sidecar atomically, then compact the change log (keeping
        ``CHANGE_LOG_KEEP`` rows: a process further behind rebuilds instead of replaying)."""
        with self.catching_up:  # nothing changes the index meanwhile; searches go on
            self.sync_now()
            info = {
                "model_version": self.model_version,
                "kind": self.index_kind,
                "dim": self.embedding_dim,
                "applied_seq": self.applied_seq,
                "vectors": len(self.index),
                "catalog_id": self.store.catalog_id,
            }
            self.snapshot.save(self.index, info)
        self.store.compact_changes(keep=CHANGE_LOG_KEEP)
        return self.snapshot.path
