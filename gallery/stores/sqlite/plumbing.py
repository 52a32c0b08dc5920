"""The SQLite catalogue's plumbing (``CatalogStore``'s base): its two connections, write transactions,
plain reads and meta, and what the SKU and image halves share.

SQLite is the source of truth for the catalogue, image records and vectors (``gallery.stores.base``'s
interface; the default store, in the data directory). Every change to what an index must contain is
also appended to ``changes``, a log that each process replays to keep its in-memory index current (a
write in one worker is seen by the others on their next request) and that lets a persisted index
snapshot catch up instead of being rebuilt.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from gallery.blobs import BlobStore
from gallery.filelock import file_lock
from gallery.money import Currency
from gallery.stores.base import CATALOG_ID_KEY, PhotoStore
from gallery.stores.sql_records import SqlRecords
from gallery.stores.sqlite import schema

T = TypeVar("T")

IN_CHUNK = 900  # ids per "IN (...)": under every SQLite's variable limit (999 before 3.32)


def in_chunks(items: list[T], size: int = IN_CHUNK) -> list[list[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class SqliteBase(SqlRecords):
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

    def _unreferenced(self, conn: sqlite3.Connection, digests: set[str]) -> list[str]:
        return [
            d for d in digests if conn.execute("SELECT 1 FROM images WHERE sha256 = ? LIMIT 1", (d,)).fetchone() is None
        ]
