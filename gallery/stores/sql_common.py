"""What the SQLite and PostgreSQL catalogues do with the same SQL: meta, lanes, lane settings, the
change log's compaction and replay (``SqlCatalog``).

Statements are written once with ``?`` placeholders; a store whose driver takes another style (psycopg's
``%s``) sets ``PARAM``. Values are converted to Python types here (PostgreSQL's numeric columns
answer ``Decimal``), so both stores give the same rows. What differs between the dialects (id
generation, ``IN`` against ``= ANY``, full-text search, how write transactions take turns) stays in
each store's own modules.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from gallery.stores.base import COMPACTED_KEY, META_CHANGE, CatalogBase, Change, LaneRow, LaneSettingsRow


class SqlCatalog(CatalogBase):
    PARAM = "?"  # the driver's placeholder

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """A write transaction: a connection whose ``execute(sql, params)`` answers a cursor."""

    @abc.abstractmethod
    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read outside any write transaction."""

    def _sql(self, statement: str) -> str:
        return statement if self.PARAM == "?" else statement.replace("?", self.PARAM)

    def _read(self, statement: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._query(self._sql(statement), params)

    # --- meta ---------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else default

    def meta_starting_with(self, prefix: str) -> dict[str, str]:
        # the meta table holds a handful of keys: filtered here rather than with LIKE and its escapes
        return {str(k): str(v) for k, v in self._read("SELECT key, value FROM meta", ()) if str(k).startswith(prefix)}

    def set_meta(self, key: str, value: str, announce: bool = False) -> None:
        """Store ``key``; ``announce``: also log a change, so that other processes reload it."""
        with self.transaction() as conn:
            self._put_meta(conn, key, value)
            if announce:
                conn.execute(self._sql("INSERT INTO changes(op, image_id, sku) VALUES (?, 0, ?)"), (META_CHANGE, key))

    def _put_meta(self, conn: Any, key: str, value: str) -> None:
        conn.execute(
            self._sql(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            (key, value),
        )

    # --- lanes --------------------------------------------------------------
    def put_lane(self, row: LaneRow) -> tuple[bool, str | None]:
        with self.transaction() as conn:
            old = conn.execute(self._sql("SELECT sha256 FROM lanes WHERE lane = ?"), (row[0],)).fetchone()
            conn.execute(
                self._sql(
                    "INSERT INTO lanes(lane, sha256, media_type, width, height, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (lane) DO UPDATE SET sha256 = excluded.sha256, "
                    "media_type = excluded.media_type, width = excluded.width, height = excluded.height, "
                    "updated_at = excluded.updated_at"
                ),
                row,
            )
            return old is None, self._unused_lane_photo(conn, old[0]) if old and old[0] != row[1] else None

    def get_lane(self, lane: str) -> LaneRow | None:
        rows = self._read(
            "SELECT lane, sha256, media_type, width, height, updated_at FROM lanes WHERE lane = ?", (lane,)
        )
        if not rows:
            return None
        name, sha, media, width, height, updated = rows[0]
        return name, sha, media, int(width), int(height), float(updated)

    def delete_lane(self, lane: str) -> tuple[bool, str | None]:
        with self.transaction() as conn:
            row = conn.execute(self._sql("SELECT sha256 FROM lanes WHERE lane = ?"), (lane,)).fetchone()
            if row is None:
                return False, None
            conn.execute(self._sql("DELETE FROM lanes WHERE lane = ?"), (lane,))
            return True, self._unused_lane_photo(conn, row[0])

    def lane_digests(self) -> set[str]:
        return {r[0] for r in self._read("SELECT DISTINCT sha256 FROM lanes")}

    def _unused_lane_photo(self, conn: Any, digest: str) -> str | None:
        """``digest`` when no lane refers to it any more (two lanes may hold the same photo)."""
        used = conn.execute(self._sql("SELECT 1 FROM lanes WHERE sha256 = ? LIMIT 1"), (digest,)).fetchone()
        return None if used else digest

    def put_lane_settings(self, row: LaneSettingsRow) -> bool:
        with self.transaction() as conn:
            old = conn.execute(self._sql("SELECT 1 FROM lane_settings WHERE lane = ?"), (row[0],)).fetchone()
            conn.execute(
                self._sql(
                    "INSERT INTO lane_settings(lane, item_area, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (lane) DO UPDATE SET item_area = excluded.item_area, updated_at = excluded.updated_at"
                ),
                row,
            )
            return old is None

    def get_lane_settings(self, lane: str) -> LaneSettingsRow | None:
        rows = self._read("SELECT lane, item_area, updated_at FROM lane_settings WHERE lane = ?", (lane,))
        if not rows:
            return None
        name, item_area, updated = rows[0]
        return name, None if item_area is None else float(item_area), float(updated)

    # --- change log ---------------------------------------------------------
    def last_seq(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM changes")[0][0])

    def compacted_through(self) -> int:
        value = self.get_meta(COMPACTED_KEY)
        return int(value) if value is not None else 0

    def compact_changes(self, keep: int) -> int:
        """Delete all but the newest ``keep`` (at least 1) change-log rows; returns how many went.

        Only the log is cut, never the tables it describes: a reader whose last applied change is below
        the cut sees ``compacted_through`` and rebuilds its index from the tables instead of replaying.
        """
        if keep < 1:
            raise ValueError(f"keep must be at least 1 (the newest change is always kept), got {keep!r}")
        with self.transaction() as conn:
            last = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0])
            row = conn.execute(self._sql("SELECT value FROM meta WHERE key = ?"), (COMPACTED_KEY,)).fetchone()
            cut = last - keep
            if cut <= (int(row[0]) if row else 0):
                return 0
            deleted = int(conn.execute(self._sql("DELETE FROM changes WHERE seq <= ?"), (cut,)).rowcount)
            self._put_meta(conn, COMPACTED_KEY, str(cut))
            return deleted

    def changes_since(self, seq: int) -> list[Change]:
        rows = self._read(
            "SELECT seq, op, image_id, sku, model_version FROM changes WHERE seq > ? ORDER BY seq", (seq,)
        )
        return [Change(int(s), op, int(i), sku, mv) for s, op, i, sku, mv in rows]
