"""SQLite: the source of truth for the catalogue, image records and vectors (``gallery.stores.base``'s
interface; the default store, in the data directory).

Every change to what an index must contain is also appended to ``changes``, a
log that each process replays to keep its in-memory index current (a write in
one worker is seen by the others on their next request) and that lets a
persisted index snapshot catch up instead of being rebuilt.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from gallery import schema
from gallery.blobs import BlobStore
from gallery.filelock import file_lock
from gallery.money import Currency
from gallery.stores.base import (
    ADD,
    CATALOG_ID_KEY,
    COMPACTED_KEY,
    META_CHANGE,
    REMOVE,
    SKU_CHANGE,
    AddedImages,
    CatalogBase,
    Change,
    LaneRow,
    NewImage,
    PhotoStore,
)
from gallery.types import ImageNotFound, Page, ReferenceImage, Sku, SkuNotFound

T = TypeVar("T")

IN_CHUNK = 900  # ids per "IN (...)": under every SQLite's variable limit (999 before 3.32)
__all__ = [
    "ADD",
    "COMPACTED_KEY",
    "META_CHANGE",
    "REMOVE",
    "SKU_CHANGE",
    "AddedImages",
    "CatalogStore",
    "Change",
    "NewImage",
]


class CatalogStore(CatalogBase):
    """The embedded catalogue (SQLite in the data directory, the default ``catalog``).

    Two connections: writes go through one (a transaction at a time), reads through another.

    A writer waiting for SQLite's write lock (another process is committing) holds only the write
    connection: reads (WAL: they never wait for writers) go on meanwhile.
    """

    def __init__(self, path: str | Path, currency: str | None = None):
        """``currency``: the setting (ISO 4217); None takes the catalogue's own (EUR for a new one).
        Creates or migrates the schema (``gallery.schema``); ``CurrencyMismatch``, ``SchemaTooNew``."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        # Worker processes starting together on a new catalogue race to switch it to WAL; that
        # switch upgrades a shared lock, which SQLite refuses at once ("database is locked")
        # instead of waiting out the timeout, so the set-up is serialised across processes.
        with file_lock(self.path.with_name(self.path.name + ".setup-lock")):
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")  # an acknowledged commit survives power loss
            self._conn.execute("PRAGMA foreign_keys=ON")
            self.currency: Currency = schema.prepare(self._conn, currency)
            self._conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
                (CATALOG_ID_KEY, uuid.uuid4().hex),
            )
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (CATALOG_ID_KEY,)).fetchone()
            self.catalog_id = str(row[0])
            self._search_index = schema.has_table(self._conn, schema.SEARCH_INDEX)
        self._lock = threading.RLock()  # the write connection
        self._reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        self._read_lock = threading.Lock()

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._conn.close()
            self._reader.close()

    def photos(self, kind: str, data_dir: Path) -> PhotoStore:
        """Files in the data directory, ``DATA_DIR/<kind>`` (``gallery.blobs``)."""
        return BlobStore(Path(data_dir) / kind)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """A read-only query on the read connection (for the catalogue's other tables: ``gallery.lanes``)."""
        return self._query(sql, params)

    # --- meta ---------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, key: str, value: str, announce: bool = False) -> None:
        """Store ``key``; ``announce``: also log a change, so that other processes reload it."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
            if announce:
                conn.execute("INSERT INTO changes(op, image_id, sku) VALUES (?, 0, ?)", (META_CHANGE, key))

    # --- SKUs ---------------------------------------------------------------
    @staticmethod
    def _upsert_sku(
        conn: sqlite3.Connection,
        sku: str,
        name: str | None,
        price: int | None,
        attributes: dict[str, Any] | None,
        only_if_missing: bool = False,
    ) -> bool:
        """True when the SKU was created (and a change logged, so that every process recounts)."""
        now = time.time()
        exists = conn.execute("SELECT 1 FROM skus WHERE sku = ?", (sku,)).fetchone()
        if exists and only_if_missing:
            return False
        if exists:
            conn.execute(
                "UPDATE skus SET name = ?, price_minor = ?, attributes = ?, updated_at = ? WHERE sku = ?",
                (name or sku, price, json.dumps(attributes or {}), now, sku),
            )
            # logged too: every process keeps names and prices in memory (``gallery.sku_directory``)
            conn.execute("INSERT INTO changes(op, image_id, sku) VALUES (?, 0, ?)", (SKU_CHANGE, sku))
            return False
        conn.execute(
            "INSERT INTO skus(sku, name, price_minor, attributes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (sku, name or sku, price, json.dumps(attributes or {}), now, now),
        )
        conn.execute("INSERT INTO changes(op, image_id, sku) VALUES (?, 0, ?)", (SKU_CHANGE, sku))
        return True

    def put_sku(self, sku: str, name: str | None, price: int | None, attributes: dict[str, Any] | None) -> bool:
        """Create or replace a SKU's metadata (``price``: minor units); True when it was created."""
        with self.transaction() as conn:
            return self._upsert_sku(conn, sku, name, price, attributes)

    def merge_sku(
        self, sku: str, name: str | None = None, price: int | None = None, attributes: dict[str, Any] | None = None
    ) -> bool:
        """Create the SKU, or change only the fields given (None keeps what is stored); True when created."""
        with self.transaction() as conn:
            row = conn.execute("SELECT name, price_minor, attributes FROM skus WHERE sku = ?", (sku,)).fetchone()
            if row is None:
                return self._upsert_sku(conn, sku, name, price, attributes)
            merged_attributes = {**json.loads(row[2]), **(attributes or {})}
            self._upsert_sku(
                conn,
                sku,
                name if name is not None else row[0],
                price if price is not None else row[1],
                merged_attributes,
            )
            return False

    def get_sku(self, sku: str) -> Sku:
        rows = self._query(
            "SELECT sku, name, price_minor, attributes, created_at, updated_at FROM skus WHERE sku = ?", (sku,)
        )
        if not rows:
            raise SkuNotFound(f"SKU {sku!r} is not in the catalogue")
        image_ids = tuple(r[0] for r in self._query("SELECT id FROM images WHERE sku = ? ORDER BY id", (sku,)))
        return self._sku(rows[0], image_ids)

    @staticmethod
    def _sku(row: tuple[Any, ...], image_ids: tuple[int, ...] = ()) -> Sku:
        sku, name, price, attributes, created, updated = row
        return Sku(sku, name, price, json.loads(attributes), image_ids, created, updated)

    def list_skus(self, offset: int, limit: int) -> Page:
        total = self._query("SELECT COUNT(*) FROM skus")[0][0]
        rows = self._query(
            "SELECT sku, name, price_minor, attributes, created_at, updated_at FROM skus ORDER BY sku LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return self._page(rows, total, offset, limit)

    def _page(self, rows: list[tuple[Any, ...]], total: int, offset: int, limit: int) -> Page:
        """A page of SKUs, each with its number of reference images."""
        skus = [row[0] for row in rows]
        counts: dict[str, int] = {}
        for chunk in _chunks(skus, IN_CHUNK):
            marks = ",".join("?" * len(chunk))
            counts.update(
                self._query(f"SELECT sku, COUNT(*) FROM images WHERE sku IN ({marks}) GROUP BY sku", tuple(chunk))
            )
        items = [self._sku(r, ()) for r in rows]
        return Page(items=[(s, counts.get(s.sku, 0)) for s in items], total=total, offset=offset, limit=limit)

    def sku_names(self, skus: list[str]) -> dict[str, str]:
        names: dict[str, str] = {}
        for chunk in _chunks(list(skus), IN_CHUNK):
            marks = ",".join("?" * len(chunk))
            names.update(self._query(f"SELECT sku, name FROM skus WHERE sku IN ({marks})", tuple(chunk)))
        return names

    def search_skus(self, text: str, offset: int, limit: int) -> Page:
        """SKUs whose id or name contains ``text`` (case-insensitive), by id, a page at a time.

        Three characters or more: the FTS5 trigram index (``gallery.schema``); shorter (a trigram
        index cannot look up fewer than three characters), or without the index, a LIKE scan.
        """
        params: tuple[str, ...]
        if len(text) >= 3 and self._search_index:
            phrase = '"' + text.replace('"', '""') + '"'
            where, params = (
                f"sku IN (SELECT sku FROM {schema.SEARCH_INDEX} WHERE {schema.SEARCH_INDEX} MATCH ?)",
                (phrase,),
            )
        else:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where, params = "(sku LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\')", (pattern, pattern)
        total = self._query(f"SELECT COUNT(*) FROM skus WHERE {where}", params)[0][0]
        rows = self._query(
            f"SELECT sku, name, price_minor, attributes, created_at, updated_at FROM skus WHERE {where} "
            "ORDER BY sku LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return self._page(rows, total, offset, limit)

    def all_sku_details(self) -> dict[str, tuple[str, int | None]]:
        """Name and price (minor units, or None) of every SKU: what ``gallery.sku_directory`` keeps in memory."""
        with self._read_lock:
            return {
                sku: (name, price)
                for sku, name, price in self._reader.execute("SELECT sku, name, price_minor FROM skus")
            }

    def sku_details(self, skus: list[str]) -> dict[str, tuple[str, int | None]]:
        """Name and price (minor units, or None) of each of ``skus`` that is in the catalogue."""
        details: dict[str, tuple[str, int | None]] = {}
        for chunk in _chunks(sorted(set(skus)), IN_CHUNK):
            marks = ",".join("?" * len(chunk))
            for sku, name, price in self._query(
                f"SELECT sku, name, price_minor FROM skus WHERE sku IN ({marks})", tuple(chunk)
            ):
                details[sku] = (name, price)
        return details

    def delete_sku(self, sku: str) -> list[str]:
        """Delete a SKU and its images; returns the digests no longer referenced."""
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM skus WHERE sku = ?", (sku,)).fetchone() is None:
                raise SkuNotFound(f"SKU {sku!r} is not in the catalogue")
            rows = conn.execute("SELECT id, sha256 FROM images WHERE sku = ?", (sku,)).fetchall()
            conn.executemany(
                "INSERT INTO changes(op, image_id, sku) VALUES (?, ?, ?)",
                [(REMOVE, image_id, sku) for image_id, _ in rows],
            )
            conn.execute("DELETE FROM skus WHERE sku = ?", (sku,))
            conn.execute("INSERT INTO changes(op, image_id, sku) VALUES (?, 0, ?)", (SKU_CHANGE, sku))
            return self._unreferenced(conn, {sha for _, sha in rows})

    # --- images and vectors -------------------------------------------------
    def add_images(
        self,
        sku: str,
        images: list[NewImage],
        vectors: np.ndarray | Sequence[np.ndarray],
        model_version: str,
        name: str | None = None,
    ) -> AddedImages:
        """One transaction: the SKU (created if new), image records, vectors, change log.

        Idempotent per content: an image whose bytes (SHA-256) are already a reference image of
        ``sku`` is not stored again; its existing id is returned in its place, and left out of the
        answer's ``created`` (the ids this call stored)."""
        now = time.time()
        ids: list[int] = []
        created: list[int] = []
        with self.transaction() as conn:
            self._upsert_sku(conn, sku, name, None, None, only_if_missing=True)
            for image, vector in zip(images, vectors, strict=True):
                row = conn.execute(
                    "SELECT id FROM images WHERE sku = ? AND sha256 = ? ORDER BY id LIMIT 1", (sku, image.sha256)
                ).fetchone()
                if row is not None:  # this content is already a reference image of this SKU: never twice
                    ids.append(row[0])
                    continue
                cursor = conn.execute(
                    "INSERT INTO images(sku, sha256, media_type, width, height, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (sku, image.sha256, image.media_type, image.width, image.height, now),
                )
                image_id = cursor.lastrowid
                assert image_id is not None  # sqlite3 sets it after every successful INSERT
                conn.execute(
                    "INSERT INTO vectors(image_id, model_version, vector) VALUES (?, ?, ?)",
                    (image_id, model_version, np.asarray(vector, np.float32).tobytes()),
                )
                conn.execute(
                    "INSERT INTO changes(op, image_id, sku, model_version) VALUES (?, ?, ?, ?)",
                    (ADD, image_id, sku, model_version),
                )
                ids.append(image_id)
                created.append(image_id)
        return AddedImages(ids, created)

    def existing_images(self, sku: str, digests: list[str]) -> dict[str, int]:
        """Of ``digests``, those already a reference image of ``sku``: digest → image id."""
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(set(digests)), IN_CHUNK):
            marks = ",".join("?" * len(chunk))
            found.update(
                self._query(
                    f"SELECT sha256, MIN(id) FROM images WHERE sku = ? AND sha256 IN ({marks}) GROUP BY sha256",
                    (sku, *chunk),
                )
            )
        return found

    def add_vectors(self, image_ids: list[int], vectors: np.ndarray | Sequence[np.ndarray], model_version: str) -> int:
        """Vectors of another model for existing images (re-index); images deleted meanwhile are skipped."""
        added = 0
        with self.transaction() as conn:
            for image_id, vector in zip(image_ids, vectors, strict=True):
                row = conn.execute("SELECT sku FROM images WHERE id = ?", (image_id,)).fetchone()
                if row is None:
                    continue
                conn.execute(
                    "INSERT OR REPLACE INTO vectors(image_id, model_version, vector) VALUES (?, ?, ?)",
                    (image_id, model_version, np.asarray(vector, np.float32).tobytes()),
                )
                conn.execute(
                    "INSERT INTO changes(op, image_id, sku, model_version) VALUES (?, ?, ?, ?)",
                    (ADD, image_id, row[0], model_version),
                )
                added += 1
        return added

    def get_image(self, sku: str, image_id: int) -> ReferenceImage:
        rows = self._query(
            "SELECT id, sku, sha256, media_type, width, height FROM images WHERE id = ? AND sku = ?", (image_id, sku)
        )
        if not rows:
            raise ImageNotFound(f"image {image_id} of SKU {sku!r} does not exist")
        return ReferenceImage(*rows[0])

    def delete_image(self, sku: str, image_id: int) -> list[str]:
        with self.transaction() as conn:
            row = conn.execute("SELECT sha256 FROM images WHERE id = ? AND sku = ?", (image_id, sku)).fetchone()
            if row is None:
                raise ImageNotFound(f"image {image_id} of SKU {sku!r} does not exist")
            conn.execute("INSERT INTO changes(op, image_id, sku) VALUES (?, ?, ?)", (REMOVE, image_id, sku))
            conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
            return self._unreferenced(conn, {row[0]})

    @staticmethod
    def _unreferenced(conn: sqlite3.Connection, digests: set[str]) -> list[str]:
        return [
            d for d in digests if conn.execute("SELECT 1 FROM images WHERE sha256 = ? LIMIT 1", (d,)).fetchone() is None
        ]

    def image_digests(self) -> set[str]:
        return {row[0] for row in self._query("SELECT DISTINCT sha256 FROM images")}

    def images_missing_vectors(self, model_version: str, limit: int = 1_000_000) -> list[tuple[int, str]]:
        return self._query(
            "SELECT i.id, i.sha256 FROM images i LEFT JOIN vectors v ON v.image_id = i.id AND v.model_version = ? "
            "WHERE v.image_id IS NULL ORDER BY i.id LIMIT ?",
            (model_version, limit),
        )

    def vectors_for(
        self, model_version: str, image_ids: list[int] | None = None, dim: int | None = None
    ) -> tuple[np.ndarray, list[str], np.ndarray]:
        """``(ids, skus, vectors)``, one row per vector, of every (or the given) image that has vectors of
        ``model_version``, by image id.

        An image's BLOB holds one or more rows of ``dim`` float32 (its photo, then its catalogue
        views), so its id and SKU repeat once per row; with ``dim`` None each BLOB is one row.
        The given ids are looked up ``IN_CHUNK`` at a time (any number of them).
        """
        sql = "SELECT i.id, i.sku, v.vector FROM images i JOIN vectors v ON v.image_id = i.id WHERE v.model_version = ?"
        queries: list[tuple[str, tuple[object, ...]]]
        if image_ids is None:
            queries = [(sql + " ORDER BY i.id", (model_version,))]
        else:
            queries = [
                (sql + f" AND i.id IN ({','.join('?' * len(chunk))}) ORDER BY i.id", (model_version, *chunk))
                for chunk in _chunks(sorted(set(image_ids)), IN_CHUNK)
            ]
        ids: list[int] = []
        skus: list[str] = []
        chunks: list[np.ndarray] = []
        for query, params in queries:
            with self._read_lock:  # read in chunks: no list of every row's blob at start-up with a large gallery
                cursor = self._reader.execute(query, params)
                while rows := cursor.fetchmany(4096):
                    for image_id, sku, blob in rows:
                        count = len(blob) // (4 * dim) if dim else 1
                        ids.extend([image_id] * count)
                        skus.extend([sku] * count)
                    flat = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)
                    chunks.append(flat.reshape(-1, dim) if dim else flat.reshape(len(rows), -1))
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, dim or 0), np.float32)
        return np.array(ids, dtype=np.int64), skus, vectors

    def vector_rows(self, model_version: str, dim: int) -> int:
        """Rows of ``dim`` float32 stored for ``model_version`` (LENGTH reads no BLOB content)."""
        total = self._query(
            "SELECT COALESCE(SUM(LENGTH(v.vector)), 0) FROM vectors v JOIN images i ON i.id = v.image_id "
            "WHERE v.model_version = ?",
            (model_version,),
        )[0][0]
        return int(total) // (4 * dim)

    def image_skus(self) -> dict[int, str]:
        return dict(self._query("SELECT id, sku FROM images"))

    def counts(self) -> tuple[int, int]:
        return self._query("SELECT (SELECT COUNT(*) FROM skus), (SELECT COUNT(*) FROM images)")[0]

    def model_versions(self) -> dict[str, int]:
        return dict(self._query("SELECT model_version, COUNT(*) FROM vectors GROUP BY model_version"))

    def prune_vectors(self, keep_version: str) -> int:
        with self.transaction() as conn:
            return conn.execute("DELETE FROM vectors WHERE model_version != ?", (keep_version,)).rowcount

    # --- lanes ----------------------------------------------------------------
    def put_lane(self, row: LaneRow) -> tuple[bool, str | None]:
        with self.transaction() as conn:
            old = conn.execute("SELECT sha256 FROM lanes WHERE lane = ?", (row[0],)).fetchone()
            conn.execute(
                "INSERT INTO lanes(lane, sha256, media_type, width, height, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(lane) DO UPDATE SET sha256 = excluded.sha256, "
                "media_type = excluded.media_type, width = excluded.width, height = excluded.height, "
                "updated_at = excluded.updated_at",
                row,
            )
            return old is None, self._unused_lane_photo(conn, old[0]) if old and old[0] != row[1] else None

    def get_lane(self, lane: str) -> LaneRow | None:
        rows = self._query(
            "SELECT lane, sha256, media_type, width, height, updated_at FROM lanes WHERE lane = ?", (lane,)
        )
        return rows[0] if rows else None

    def delete_lane(self, lane: str) -> tuple[bool, str | None]:
        with self.transaction() as conn:
            row = conn.execute("SELECT sha256 FROM lanes WHERE lane = ?", (lane,)).fetchone()
            if row is None:
                return False, None
            conn.execute("DELETE FROM lanes WHERE lane = ?", (lane,))
            return True, self._unused_lane_photo(conn, row[0])

    def lane_digests(self) -> set[str]:
        return {r[0] for r in self._query("SELECT DISTINCT sha256 FROM lanes")}

    @staticmethod
    def _unused_lane_photo(conn: sqlite3.Connection, digest: str) -> str | None:
        """``digest`` when no lane refers to it any more (two lanes may hold the same photo)."""
        used = conn.execute("SELECT 1 FROM lanes WHERE sha256 = ? LIMIT 1", (digest,)).fetchone()
        return None if used else digest

    # --- change log ---------------------------------------------------------
    def last_seq(self) -> int:
        return int(self._query("SELECT COALESCE(MAX(seq), 0) FROM changes")[0][0])

    def compacted_through(self) -> int:
        value = self.get_meta(COMPACTED_KEY)
        return int(value) if value is not None else 0

    def compact_changes(self, keep: int) -> int:
        """Delete all but the newest ``keep`` (at least 1) change-log rows; returns how many went.

        Only the log is cut, never the tables it describes: a reader whose last
        applied change is below the cut sees ``compacted_through`` and rebuilds
        its index from the tables instead of replaying.
        """
        if keep < 1:
            raise ValueError(f"keep must be at least 1 (the newest change is always kept), got {keep!r}")
        with self.transaction() as conn:
            last = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
            done = int((conn.execute("SELECT value FROM meta WHERE key = ?", (COMPACTED_KEY,)).fetchone() or ["0"])[0])
            cut = last - keep
            if cut <= done:
                return 0
            deleted = conn.execute("DELETE FROM changes WHERE seq <= ?", (cut,)).rowcount
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (COMPACTED_KEY, str(cut)),
            )
            return deleted

    def changes_since(self, seq: int) -> list[Change]:
        rows = self._query(
            "SELECT seq, op, image_id, sku, model_version FROM changes WHERE seq > ? ORDER BY seq", (seq,)
        )
        return [Change(*r) for r in rows]


def _chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
