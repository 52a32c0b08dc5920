"""The SQLite catalogue's reference images and their vectors per model version (``CatalogStore``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import numpy as np

from gallery.stores.base import ADD, NewImage
from gallery.stores.sqlite.plumbing import SqliteBase, in_chunks


class SqliteImages(SqliteBase):
    # --- images and vectors -------------------------------------------------
    def _insert_image(self, conn: sqlite3.Connection, sku: str, image: NewImage, now: float) -> int:
        cursor = conn.execute(
            "INSERT INTO images(sku, sha256, media_type, width, height, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (sku, image.sha256, image.media_type, image.width, image.height, now),
        )
        assert cursor.lastrowid is not None  # sqlite3 sets it after every successful INSERT
        return cursor.lastrowid

    def existing_images(self, sku: str, digests: list[str]) -> dict[str, int]:
        """Of ``digests``, those already a reference image of ``sku``: digest → image id."""
        found: dict[str, int] = {}
        for chunk in in_chunks(sorted(set(digests))):
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
                for chunk in in_chunks(sorted(set(image_ids)))
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
