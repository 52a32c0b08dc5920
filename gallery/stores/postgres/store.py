"""The catalogue in PostgreSQL, shared by replicas: ``gallery.stores.base``'s interface with the SQLite
store's semantics (``gallery.stores.sqlite``).

Every write transaction first takes the writers' advisory lock (``pg_advisory_xact_lock(WRITE_LOCK)``;
reads go on, and so does (auto)VACUUM, which a table lock in EXCLUSIVE mode would conflict with):
writers take turns, as SQLite's ``BEGIN IMMEDIATE`` makes them, so change-log rows commit in the
order of their seq and a follower that has applied change ``n`` never sees a change below ``n``
appear later (with concurrent writers an identity column's values would commit out of order).
A transaction that appended changes ends with ``NOTIFY skulens_changes, '<newest seq>'``, which
PostgreSQL delivers to listeners at commit (``gallery.stores.postgres.follower``).

The class is built by concept: ``plumbing`` (connections, write transactions, meta), ``skus``,
``images`` (and vectors), and here the lanes and the change log.
"""

from __future__ import annotations

from collections.abc import Callable

from gallery.stores.base import (
    COMPACTED_KEY,
    Change,
    LaneRow,
    LaneSettingsRow,
)
from gallery.stores.postgres.follower import Follower
from gallery.stores.postgres.images import PostgresImages
from gallery.stores.postgres.link import Connection, Link
from gallery.stores.postgres.plumbing import PHOTO_TABLES, SKU_COLUMNS, WRITE_LOCK, PostgresBase
from gallery.stores.postgres.skus import PostgresSkus

__all__ = ["PHOTO_TABLES", "SKU_COLUMNS", "WRITE_LOCK", "PostgresBase", "PostgresCatalog"]


class PostgresCatalog(PostgresSkus, PostgresImages):
    # --- lanes ----------------------------------------------------------------------
    def put_lane(self, row: LaneRow) -> tuple[bool, str | None]:
        with self.transaction() as conn:
            old = conn.execute("SELECT sha256 FROM lanes WHERE lane = %s", (row[0],)).fetchone()
            conn.execute(
                "INSERT INTO lanes(lane, sha256, media_type, width, height, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (lane) DO UPDATE SET sha256 = excluded.sha256, "
                "media_type = excluded.media_type, width = excluded.width, height = excluded.height, "
                "updated_at = excluded.updated_at",
                row,
            )
            return old is None, self._unused_lane_photo(conn, old[0]) if old and old[0] != row[1] else None

    def get_lane(self, lane: str) -> LaneRow | None:
        rows = self._query(
            "SELECT lane, sha256, media_type, width, height, updated_at FROM lanes WHERE lane = %s", (lane,)
        )
        if not rows:
            return None
        name, sha, media, width, height, updated = rows[0]
        return name, sha, media, int(width), int(height), float(updated)

    def delete_lane(self, lane: str) -> tuple[bool, str | None]:
        with self.transaction() as conn:
            row = conn.execute("SELECT sha256 FROM lanes WHERE lane = %s", (lane,)).fetchone()
            if row is None:
                return False, None
            conn.execute("DELETE FROM lanes WHERE lane = %s", (lane,))
            return True, self._unused_lane_photo(conn, row[0])

    def lane_digests(self) -> set[str]:
        return {r[0] for r in self._query("SELECT DISTINCT sha256 FROM lanes")}

    @staticmethod
    def _unused_lane_photo(conn: Connection, digest: str) -> str | None:
        used = conn.execute("SELECT 1 FROM lanes WHERE sha256 = %s LIMIT 1", (digest,)).fetchone()
        return None if used else digest

    def put_lane_settings(self, row: LaneSettingsRow) -> bool:
        with self.transaction() as conn:
            old = conn.execute("SELECT 1 FROM lane_settings WHERE lane = %s", (row[0],)).fetchone()
            conn.execute(
                "INSERT INTO lane_settings(lane, item_area, updated_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (lane) DO UPDATE SET item_area = excluded.item_area, updated_at = excluded.updated_at",
                row,
            )
            return old is None

    def get_lane_settings(self, lane: str) -> LaneSettingsRow | None:
        rows = self._query("SELECT lane, item_area, updated_at FROM lane_settings WHERE lane = %s", (lane,))
        if not rows:
            return None
        name, item_area, updated = rows[0]
        return name, None if item_area is None else float(item_area), float(updated)

    # --- change log -------------------------------------------------------------------
    def follow(self, on_change: Callable[[], None]) -> None:
        if self._follower is None:
            self._follower = Follower(Link(self.url, self.shown, "follower"), self, on_change, self.poll_s)
            self._follower.start()

    @property
    def reachable(self) -> bool:
        return self._follower.connected if self._follower is not None else True

    def compacted_through(self) -> int:
        value = self.get_meta(COMPACTED_KEY)
        return int(value) if value is not None else 0

    def compact_changes(self, keep: int) -> int:
        if keep < 1:
            raise ValueError(f"keep must be at least 1 (the newest change is always kept), got {keep!r}")
        with self.transaction() as conn:
            last = self._max_seq(conn)
            row = conn.execute("SELECT value FROM meta WHERE key = %s", (COMPACTED_KEY,)).fetchone()
            done = int(row[0]) if row else 0
            cut = last - keep
            if cut <= done:
                return 0
            deleted = conn.execute("DELETE FROM changes WHERE seq <= %s", (cut,)).rowcount
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (COMPACTED_KEY, str(cut)),
            )
            return deleted

    def changes_since(self, seq: int) -> list[Change]:
        return [
            Change(int(s), op, int(i), sku, mv)
            for s, op, i, sku, mv in self._query(
                "SELECT seq, op, image_id, sku, model_version FROM changes WHERE seq > %s ORDER BY seq", (seq,)
            )
        ]
