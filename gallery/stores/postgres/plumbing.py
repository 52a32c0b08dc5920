"""The PostgreSQL catalogue's plumbing (``PostgresCatalog``'s base): its connections, write transactions,
plain reads, meta and the newest change heard.

Every write transaction first takes the writers' advisory lock (``pg_advisory_xact_lock(WRITE_LOCK)``;
reads go on, and so does (auto)VACUUM, which a table lock in EXCLUSIVE mode would conflict with):
writers take turns, as SQLite's ``BEGIN IMMEDIATE`` makes them, so change-log rows commit in the
order of their seq and a follower that has applied change ``n`` never sees a change below ``n``
appear later (with concurrent writers an identity column's values would commit out of order).
A transaction that appended changes ends with ``NOTIFY skulens_changes, '<newest seq>'``, which
PostgreSQL delivers to listeners at commit (``gallery.stores.postgres.follower``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gallery.stores.base import (
    CATALOG_ID_KEY,
    PhotoStore,
)
from gallery.stores.open import describe
from gallery.stores.postgres import schema
from gallery.stores.postgres.follower import Follower
from gallery.stores.postgres.link import Connection, Link
from gallery.stores.postgres.photos import PostgresPhotos
from gallery.stores.sql_records import SqlRecords

logger = logging.getLogger(__name__)

PHOTO_TABLES = {"images": "photos", "lanes": "lane_photos"}
WRITE_LOCK = 0x5C0_C4A9  # advisory lock key every write transaction holds: writers take turns


class PostgresBase(SqlRecords):
    shared = True
    PARAM = "%s"

    def __init__(self, url: str, currency: str | None = None, poll_s: float = 2.0):
        """``poll_s``: how often the follower asks for the newest change when no notification came."""
        self.url, self.shown, self.poll_s = url, describe(url, "."), poll_s
        self._writer = Link(url, self.shown, "catalog-write")
        self._reader = Link(url, self.shown, "catalog-read")
        with self._writer.use() as conn:
            self.currency = schema.prepare(conn, currency)
        self._writer.close()  # reopened by the first write: a replica that only recognises holds no write connection
        self.catalog_id = str(self.get_meta(CATALOG_ID_KEY))
        self._known = self.last_seq()
        self._known_lock = threading.Lock()
        self._follower: Follower | None = None

    def close(self) -> None:
        if self._follower is not None:
            self._follower.stop()
        self._writer.close()
        self._reader.close()

    def photos(self, kind: str, data_dir: Path) -> PhotoStore:
        """Rows of the database (``photos``, ``lane_photos``): every replica reaches them."""
        return PostgresPhotos(self.url, self.shown, PHOTO_TABLES[kind])

    # --- plumbing -------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction (writers take turns on ``WRITE_LOCK``); NOTIFY if it logged changes."""
        with self._writer.use() as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                before = self._max_seq(conn)
                yield conn
                after = self._max_seq(conn)
                if after > before:
                    conn.execute("SELECT pg_notify(%s, %s)", (schema.CHANNEL, str(after)))
            self.heard(after)

    @staticmethod
    def _max_seq(conn: Connection) -> int:
        row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()
        return int(row[0]) if row else 0

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._reader.use() as conn:
            return conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[object] = ()) -> Any:
        rows = self._query(sql, params)
        return rows[0][0] if rows else None

    def _unreferenced(self, conn: Connection, digests: set[str]) -> list[str]:
        used = {
            r[0] for r in conn.execute("SELECT DISTINCT sha256 FROM images WHERE sha256 = ANY(%s)", (sorted(digests),))
        }
        return sorted(digests - used)

    # --- change log -------------------------------------------------------------------
    def known_seq(self) -> int:
        """The newest seq heard (this process's writes, NOTIFY, the follower's poll): memory only."""
        return self._known

    def heard(self, seq: int) -> None:
        """A change up to ``seq`` exists (committed by this process, or announced by another)."""
        with self._known_lock:
            self._known = max(self._known, seq)
