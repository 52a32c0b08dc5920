"""The embedded catalogue: SQLite in the data directory, the default ``catalog``.

The class is built by concept, as the PostgreSQL store is: ``plumbing`` (connections, write
transactions, meta), ``skus``, ``images`` (and vectors), and here the lanes and the change log.
"""

from __future__ import annotations

import sqlite3

from gallery.stores.base import COMPACTED_KEY, Change, LaneRow, LaneSettingsRow
from gallery.stores.sqlite.images import SqliteImages
from gallery.stores.sqlite.skus import SqliteSkus


class CatalogStore(SqliteSkus, SqliteImages):
    """See ``gallery.stores.sqlite.plumbing.SqliteBase``: two connections, writes through one (a
    transaction at a time), reads through the other (WAL: they never wait for writers)."""

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

    def put_lane_settings(self, row: LaneSettingsRow) -> bool:
        with self.transaction() as conn:
            old = conn.execute("SELECT 1 FROM lane_settings WHERE lane = ?", (row[0],)).fetchone()
            conn.execute(
                "INSERT INTO lane_settings(lane, item_area, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(lane) DO UPDATE SET item_area = excluded.item_area, updated_at = excluded.updated_at",
                row,
            )
            return old is None

    def get_lane_settings(self, lane: str) -> LaneSettingsRow | None:
        rows = self._query("SELECT lane, item_area, updated_at FROM lane_settings WHERE lane = ?", (lane,))
        return rows[0] if rows else None

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
