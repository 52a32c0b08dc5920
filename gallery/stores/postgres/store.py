"""The catalogue in PostgreSQL, shared by replicas: ``gallery.stores.base``'s interface with the SQLite
store's semantics (``gallery.store``).

Every write transaction first takes the writers' advisory lock (``pg_advisory_xact_lock(WRITE_LOCK)``;
reads go on, and so does (auto)VACUUM, which a table lock in EXCLUSIVE mode would conflict with):
writers take turns, as SQLite's ``BEGIN IMMEDIATE`` makes them, so change-log rows commit in the
order of their seq and a follower that has applied change ``n`` never sees a change below ``n``
appear later (with concurrent writers an identity column's values would commit out of order).
A transaction that appended changes ends with ``NOTIFY skulens_changes, '<newest seq>'``, which
PostgreSQL delivers to listeners at commit (``gallery.stores.postgres.follower``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

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
from gallery.stores.open import describe
from gallery.stores.postgres import schema
from gallery.stores.postgres.follower import Follower
from gallery.stores.postgres.link import Connection, Link
from gallery.stores.postgres.photos import PostgresPhotos
from gallery.types import ImageNotFound, Page, ReferenceImage, Sku, SkuNotFound

logger = logging.getLogger(__name__)

SKU_COLUMNS = "sku, name, price_minor, attributes, created_at, updated_at"
PHOTO_TABLES = {"images": "photos", "lanes": "lane_photos"}
WRITE_LOCK = 0x5C0_C4A9  # advisory lock key every write transaction holds: writers take turns


class PostgresCatalog(CatalogBase):
    shared = True
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

    # --- meta -------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        value = self._one("SELECT value FROM meta WHERE key = %s", (key,))
        return str(value) if value is not None else default

    def set_meta(self, key: str, value: str, announce: bool = False) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO meta(key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = "
                         "excluded.value", (key, value))
            if announce:
                conn.execute("INSERT INTO changes(op, image_id, sku) VALUES (%s, 0, %s)", (META_CHANGE, key))

    # --- SKUs -------------------------------------------------------------------
    @staticmethod
    def _upsert_sku(conn: Connection, sku: str, name: str | None, price: int | None,
                    attributes: dict[str, Any] | None, only_if_missing: bool = False) -> bool:
        now = time.time()
        exists = conn.execute("SELECT 1 FROM skus WHERE sku = %s", (sku,)).fetchone()
        if exists and only_if_missing:
            return False
        if exists:
            conn.execute("UPDATE skus SET name = %s, price_minor = %s, attributes = %s, updated_at = %s WHERE sku = %s",
                         (name or sku, price, json.dumps(attributes or {}), now, sku))
        else:
            conn.execute(f"INSERT INTO skus({SKU_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
                         (sku, name or sku, price, json.dumps(attributes or {}), now, now))
        conn.execute("INSERT INTO changes(op, image_id, sku) VALUES (%s, 0, %s)", (SKU_CHANGE, sku))
        return not exists

    def put_sku(self, sku: str, name: str | None, price: int | None, attributes: dict[str, Any] | None) -> bool:
        with self.transaction() as conn:
            return self._upsert_sku(conn, sku, name, price, attributes)

    def merge_sku(self, sku: str, name: str | None = None, price: int | None = None,
                  attributes: dict[str, Any] | None = None) -> bool:
        with self.transaction() as conn:
            row = conn.execute("SELECT name, price_minor, attributes FROM skus WHERE sku = %s", (sku,)).fetchone()
            if row is None:
                return self._upsert_sku(conn, sku, name, price, attributes)
            self._upsert_sku(conn, sku, name if name is not None else row[0], price if price is not None else row[1],
                             {**json.loads(row[2]), **(attributes or {})})
            return False

    @staticmethod
    def _sku(row: Sequence[Any], image_ids: tuple[int, ...] = ()) -> Sku:
        sku, name, price, attributes, created, updated = row
        return Sku(sku, name, None if price is None else int(price), json.loads(attributes), image_ids, created, updated)

    def get_sku(self, sku: str) -> Sku:
        rows = self._query(f"SELECT {SKU_COLUMNS} FROM skus WHERE sku = %s", (sku,))
        if not rows:
            raise SkuNotFound(f"SKU {sku!r} is not in the catalogue")
        image_ids = tuple(int(r[0]) for r in self._query("SELECT id FROM images WHERE sku = %s ORDER BY id", (sku,)))
        return self._sku(rows[0], image_ids)

    def _page(self, where: str, params: Sequence[object], offset: int, limit: int) -> Page:
        total = int(self._one(f"SELECT COUNT(*) FROM skus WHERE {where}", params))
        rows = self._query(f"SELECT {SKU_COLUMNS} FROM skus WHERE {where} ORDER BY sku COLLATE \"C\" "
                           "LIMIT %s OFFSET %s", (*params, limit, offset))
        skus = [row[0] for row in rows]
        counts = dict(self._query("SELECT sku, COUNT(*) FROM images WHERE sku = ANY(%s) GROUP BY sku", (skus,)))
        return Page(items=[(self._sku(r), int(counts.get(r[0], 0))) for r in rows], total=total, offset=offset,
                    limit=limit)

    def list_skus(self, offset: int, limit: int) -> Page:
        return self._page("TRUE", (), offset, limit)

    def search_skus(self, text: str, offset: int, limit: int) -> Page:
        """ILIKE on id and name (``pg_trgm`` GIN indexes speed it up where present): SQLite's answers."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self._page("(sku ILIKE %s OR name ILIKE %s)", (pattern, pattern), offset, limit)

    def sku_names(self, skus: list[str]) -> dict[str, str]:
        return dict(self._query("SELECT sku, name FROM skus WHERE sku = ANY(%s)", (list(skus),)))

    def all_sku_details(self) -> dict[str, tuple[str, int | None]]:
        return {sku: (name, None if price is None else int(price))
                for sku, name, price in self._query("SELECT sku, name, price_minor FROM skus")}

    def sku_details(self, skus: list[str]) -> dict[str, tuple[str, int | None]]:
        return {sku: (name, None if price is None else int(price)) for sku, name, price in
                self._query("SELECT sku, name, price_minor FROM skus WHERE sku = ANY(%s)", (sorted(set(skus)),))}

    def delete_sku(self, sku: str) -> list[str]:
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM skus WHERE sku = %s", (sku,)).fetchone() is None:
                raise SkuNotFound(f"SKU {sku!r} is not in the catalogue")
            rows = conn.execute("SELECT id, sha256 FROM images WHERE sku = %s ORDER BY id", (sku,)).fetchall()
            with conn.cursor() as cursor:
                cursor.executemany("INSERT INTO changes(op, image_id, sku) VALUES (%s, %s, %s)",
                                   [(REMOVE, image_id, sku) for image_id, _ in rows])
            conn.execute("DELETE FROM skus WHERE sku = %s", (sku,))
            conn.execute("INSERT INTO changes(op, image_id, sku) VALUES (%s, 0, %s)", (SKU_CHANGE, sku))
            return self._unreferenced(conn, {sha for _, sha in rows})

    @staticmethod
    def _unreferenced(conn: Connection, digests: set[str]) -> list[str]:
        used = {r[0] for r in conn.execute("SELECT DISTINCT sha256 FROM images WHERE sha256 = ANY(%s)",
                                           (sorted(digests),))}
        return sorted(digests - used)

    # --- images and vectors -------------------------------------------------------
    def add_images(self, sku: str, images: list[NewImage], vectors: np.ndarray | Sequence[np.ndarray],
                   model_version: str, name: str | None = None) -> AddedImages:
        now = time.time()
        ids: list[int] = []
        created: list[int] = []
        with self.transaction() as conn:
            self._upsert_sku(conn, sku, name, None, None, only_if_missing=True)
            for image, vector in zip(images, vectors, strict=True):
                row = conn.execute("SELECT MIN(id) FROM images WHERE sku = %s AND sha256 = %s",
                                   (sku, image.sha256)).fetchone()
                if row is not None and row[0] is not None:  # already a reference image of this SKU: never twice
                    ids.append(int(row[0]))
                    continue
                inserted = conn.execute(
                    "INSERT INTO images(sku, sha256, media_type, width, height, created_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    (sku, image.sha256, image.media_type, image.width, image.height, now)).fetchone()
                assert inserted is not None  # RETURNING answers one row per row inserted
                image_id = int(inserted[0])
                conn.execute("INSERT INTO vectors(image_id, model_version, vector) VALUES (%s, %s, %s)",
                             (image_id, model_version, np.asarray(vector, np.float32).tobytes()))
                conn.execute("INSERT INTO changes(op, image_id, sku, model_version) VALUES (%s, %s, %s, %s)",
                             (ADD, image_id, sku, model_version))
                ids.append(image_id)
                created.append(image_id)
        return AddedImages(ids, created)

    def existing_images(self, sku: str, digests: list[str]) -> dict[str, int]:
        return {sha: int(i) for sha, i in self._query(
            "SELECT sha256, MIN(id) FROM images WHERE sku = %s AND sha256 = ANY(%s) GROUP BY sha256",
            (sku, sorted(set(digests))))}

    def add_vectors(self, image_ids: list[int], vectors: np.ndarray | Sequence[np.ndarray], model_version: str) -> int:
        added = 0
        with self.transaction() as conn:
            for image_id, vector in zip(image_ids, vectors, strict=True):
                row = conn.execute("SELECT sku FROM images WHERE id = %s", (image_id,)).fetchone()
                if row is None:  # deleted meanwhile
                    continue
                conn.execute("INSERT INTO vectors(image_id, model_version, vector) VALUES (%s, %s, %s) "
                             "ON CONFLICT (image_id, model_version) DO UPDATE SET vector = excluded.vector",
                             (image_id, model_version, np.asarray(vector, np.float32).tobytes()))
                conn.execute("INSERT INTO changes(op, image_id, sku, model_version) VALUES (%s, %s, %s, %s)",
                             (ADD, image_id, row[0], model_version))
                added += 1
        return added

    def get_image(self, sku: str, image_id: int) -> ReferenceImage:
        rows = self._query("SELECT id, sku, sha256, media_type, width, height FROM images WHERE id = %s AND sku = %s",
                           (image_id, sku))
        if not rows:
            raise ImageNotFound(f"image {image_id} of SKU {sku!r} does not exist")
        i, s, sha, media, width, height = rows[0]
        return ReferenceImage(int(i), s, sha, media, int(width), int(height))

    def delete_image(self, sku: str, image_id: int) -> list[str]:
        with self.transaction() as conn:
            row = conn.execute("SELECT sha256 FROM images WHERE id = %s AND sku = %s", (image_id, sku)).fetchone()
            if row is None:
                raise ImageNotFound(f"image {image_id} of SKU {sku!r} does not exist")
            conn.execute("INSERT INTO changes(op, image_id, sku) VALUES (%s, %s, %s)", (REMOVE, image_id, sku))
            conn.execute("DELETE FROM images WHERE id = %s", (image_id,))
            return self._unreferenced(conn, {row[0]})

    def image_digests(self) -> set[str]:
        return {r[0] for r in self._query("SELECT DISTINCT sha256 FROM images")}

    def images_missing_vectors(self, model_version: str, limit: int = 1_000_000) -> list[tuple[int, str]]:
        return [(int(i), sha) for i, sha in self._query(
            "SELECT i.id, i.sha256 FROM images i LEFT JOIN vectors v ON v.image_id = i.id AND v.model_version = %s "
            "WHERE v.image_id IS NULL ORDER BY i.id LIMIT %s", (model_version, limit))]

    def vectors_for(self, model_version: str, image_ids: list[int] | None = None,
                    dim: int | None = None) -> tuple[np.ndarray, list[str], np.ndarray]:
        sql = "SELECT i.id, i.sku, v.vector FROM images i JOIN vectors v ON v.image_id = i.id WHERE v.model_version = %s"
        params: tuple[object, ...] = (model_version,)
        if image_ids is not None:
            sql, params = sql + " AND i.id = ANY(%s)", (model_version, sorted(set(image_ids)))
        ids: list[int] = []
        skus: list[str] = []
        chunks: list[np.ndarray] = []
        # a server-side cursor (named; inside a transaction): rows arrive 4096 at a time, never all at once
        with self._reader.use() as conn, conn.transaction(), conn.cursor(name="skulens_vectors") as cursor:
            cursor.execute(sql + " ORDER BY i.id", params)
            while rows := cursor.fetchmany(4096):
                for image_id, sku, blob in rows:
                    count = len(blob) // (4 * dim) if dim else 1
                    ids.extend([int(image_id)] * count)
                    skus.extend([sku] * count)
                flat = np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype=np.float32)
                chunks.append(flat.reshape(-1, dim) if dim else flat.reshape(len(rows), -1))
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, dim or 0), np.float32)
        return np.array(ids, dtype=np.int64), skus, vectors

    def vector_rows(self, model_version: str, dim: int) -> int:
        total = self._one("SELECT COALESCE(SUM(octet_length(v.vector)), 0) FROM vectors v JOIN images i "
                          "ON i.id = v.image_id WHERE v.model_version = %s", (model_version,))
        return int(total) // (4 * dim)

    def image_skus(self) -> dict[int, str]:
        return {int(i): sku for i, sku in self._query("SELECT id, sku FROM images")}

    def counts(self) -> tuple[int, int]:
        skus, images = self._query("SELECT (SELECT COUNT(*) FROM skus), (SELECT COUNT(*) FROM images)")[0]
        return int(skus), int(images)

    def model_versions(self) -> dict[str, int]:
        return {v: int(n) for v, n in self._query("SELECT model_version, COUNT(*) FROM vectors GROUP BY model_version")}

    def prune_vectors(self, keep_version: str) -> int:
        with self.transaction() as conn:
            return conn.execute("DELETE FROM vectors WHERE model_version <> %s", (keep_version,)).rowcount

    # --- lanes ----------------------------------------------------------------------
    def put_lane(self, row: LaneRow) -> tuple[bool, str | None]:
        with self.transaction() as conn:
            old = conn.execute("SELECT sha256 FROM lanes WHERE lane = %s", (row[0],)).fetchone()
            conn.execute("INSERT INTO lanes(lane, sha256, media_type, width, height, updated_at) "
                         "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (lane) DO UPDATE SET sha256 = excluded.sha256, "
                         "media_type = excluded.media_type, width = excluded.width, height = excluded.height, "
                         "updated_at = excluded.updated_at", row)
            return old is None, self._unused_lane_photo(conn, old[0]) if old and old[0] != row[1] else None

    def get_lane(self, lane: str) -> LaneRow | None:
        rows = self._query("SELECT lane, sha256, media_type, width, height, updated_at FROM lanes WHERE lane = %s",
                           (lane,))
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

    # --- change log -------------------------------------------------------------------
    def last_seq(self) -> int:
        return int(self._one("SELECT COALESCE(MAX(seq), 0) FROM changes"))

    def known_seq(self) -> int:
        """The newest seq heard (this process's writes, NOTIFY, the follower's poll): memory only."""
        return self._known

    def heard(self, seq: int) -> None:
        """A change up to ``seq`` exists (committed by this process, or announced by another)."""
        with self._known_lock:
            self._known = max(self._known, seq)

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
            conn.execute("INSERT INTO meta(key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = "
                         "excluded.value", (COMPACTED_KEY, str(cut)))
            return deleted

    def changes_since(self, seq: int) -> list[Change]:
        return [Change(int(s), op, int(i), sku, mv) for s, op, i, sku, mv in self._query(
            "SELECT seq, op, image_id, sku, model_version FROM changes WHERE seq > %s ORDER BY seq", (seq,))]
