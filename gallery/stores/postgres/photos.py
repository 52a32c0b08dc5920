"""Photo bytes in PostgreSQL (``bytea``), content-addressed like the files beside SQLite
(``gallery.blobs``): every replica reads what any replica stored, with no shared file system.

``guard()`` is a transaction-level advisory lock (``pg_advisory_xact_lock``) in a transaction of its own
connection, so it excludes writers on every replica (as the file lock does for the workers of one
machine): a delete never removes bytes that an enrolment elsewhere has just found present. It is
released when the block ends (the transaction ends), or by the server if the replica dies holding it,
or freezes: the guard's transaction is idle while the block works on other connections, and the server
ends it after ``GUARD_IDLE_TIMEOUT`` (far longer than any block: its writes wait at most ``lock_timeout``,
30 s). A guard lost so is not silent: the block's end answers ``CatalogUnreachable``.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from gallery.blobs import sha256_of
from gallery.stores.base import PhotoStore
from gallery.stores.postgres.link import Link

TABLES = ("photos", "lane_photos")  # reference images' bytes; lane backgrounds' bytes
GUARD_IDLE_TIMEOUT = "5min"  # the guard's transaction's idle_in_transaction_session_timeout (SET LOCAL)


class PostgresPhotos(PhotoStore):
    def __init__(self, url: str, shown: str, table: str):
        if table not in TABLES:
            raise ValueError(f"unknown photo table {table!r}")
        self.table, self.shown = table, shown
        self._data = Link(url, shown, f"{table}")
        self._guard_link = Link(url, shown, f"{table}-guard")
        self._guard_key = zlib.crc32(f"skulens:{table}".encode())  # one advisory lock per photo table
        self._guard_lock = threading.Lock()  # the threads of this process take turns on the one guard connection

    def __repr__(self) -> str:
        return f"PostgresPhotos({self.shown}, {self.table})"

    @contextmanager
    def guard(self) -> Iterator[None]:
        with self._guard_lock, self._guard_link.use() as conn, conn.transaction():
            conn.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, true)", (GUARD_IDLE_TIMEOUT,))
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._guard_key,))
            yield  # released at commit (or rollback, when the block raises)

    def put(self, data: bytes) -> str:
        """Committed (and, with the server's default ``synchronous_commit``, flushed) on return."""
        digest = sha256_of(data)
        with self._data.use() as conn:
            conn.execute(
                f"INSERT INTO {self.table}(sha256, data) VALUES (%s, %s) ON CONFLICT (sha256) DO NOTHING",
                (digest, data),
            )
        return digest

    def get(self, digest: str) -> bytes:
        with self._data.use() as conn:
            row = conn.execute(f"SELECT data FROM {self.table} WHERE sha256 = %s", (digest,)).fetchone()
        if row is None:
            raise FileNotFoundError(f"no photo {digest[:12]} in {self.table}")
        return bytes(row[0])

    def exists(self, digest: str) -> bool:
        with self._data.use() as conn:
            return conn.execute(f"SELECT 1 FROM {self.table} WHERE sha256 = %s", (digest,)).fetchone() is not None

    def remove(self, digest: str) -> None:
        with self._data.use() as conn:
            conn.execute(f"DELETE FROM {self.table} WHERE sha256 = %s", (digest,))

    def sweep(self, referenced: Iterable[str]) -> int:
        keep = sorted(set(referenced))
        with self._data.use() as conn:
            cursor = conn.execute(f"DELETE FROM {self.table} WHERE NOT (sha256 = ANY(%s))", (keep,))
            return cursor.rowcount

    def close(self) -> None:
        self._data.close()
        self._guard_link.close()
