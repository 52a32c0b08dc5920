"""The SQLite catalogue's plumbing (``CatalogStore``'s base): its two connections, write transactions,
plain reads and meta, and what the SKU and image halves share.

SQLite is the source of truth for the catalogue, image records and vectors (``gallery.stores.base``'s
interface; the default store, in the data directory). Every change to what an index must contain is
also appended to ``changes``, a log that each process replays to keep its in-memory index current (a
write in one worker is seen by the others on their next request) and that lets a persisted index
snapshot catch up instead of being rebuilt.
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

from gallery.blobs import BlobStore
from gallery.filelock import file_lock
from gallery.money import Currency
from gallery.stores.base import CATALOG_ID_KEY, SKU_CHANGE, PhotoStore
from gallery.stores.sql_common import SqlCatalog
from gallery.stores.sqlite import schema

T = TypeVar("T")

IN_CHUNK = 900  # ids per "IN (...)": under every SQLite's variable limit (999 before 3.32)


def in_chunks(items: list[T], size: int = IN_CHUNK) -> list[list[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class SqliteBase(SqlCatalog):
    """The embedded catalogue (SQLite in the data directory, the default ``catalog``).

    Two connections: writes go through one (a transaction at a time), reads through another.

    A writer waiting for SQLite's write lock (another process is committing) holds only the write
    connection: reads (WAL: they never wait for writers) go on meanwhile.
    """

    def __init__(self, path: str | Path, currency: str | None = None):
        """``currency``: the setting (ISO 4217); None takes the catalogue's own (EUR for a new one).
        Creates or migrates the schema (``gallery.stores.sqlite.schema``); ``CurrencyMismatch``, ``SchemaTooNew``."""
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

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """A read-only query on the read connection (for the catalogue's other tables: ``gallery.lanes``)."""
        return self._query(sql, params)

    @staticmethod
    def _unreferenced(conn: sqlite3.Connection, digests: set[str]) -> list[str]:
        return [
            d for d in digests if conn.execute("SELECT 1 FROM images WHERE sha256 = ? LIMIT 1", (d,)).fetchone() is None
        ]

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
