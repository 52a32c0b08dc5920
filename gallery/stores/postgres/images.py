"""The PostgreSQL catalogue's reference images and their vectors (``PostgresCatalog``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gallery.stores.base import (
    ADD,
    NewImage,
)
from gallery.stores.postgres.link import Connection
from gallery.stores.postgres.plumbing import PostgresBase


class PostgresImages(PostgresBase):
    # --- images and vectors -------------------------------------------------------
    def _insert_image(self, conn: Connection, sku: str, image: NewImage, now: float) -> int:
        inserted = conn.execute(
            "INSERT INTO images(sku, sha256, media_type, width, height, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (sku, image.sha256, image.media_type, image.width, image.height, now),
        ).fetchone()
        assert inserted is not None  # RETURNING answers one row per row inserted
        return int(inserted[0])

    def existing_images(self, sku: str, digests: list[str]) -> dict[str, int]:
        return {
            sha: int(i)
            for sha, i in self._query(
                "SELECT sha256, MIN(id) FROM images WHERE sku = %s AND sha256 = ANY(%s) GROUP BY sha256",
                (sku, sorted(set(digests))),
            )
        }

    def add_vectors(self, image_ids: list[int], vectors: np.ndarray | Sequence[np.ndarray], model_version: str) -> int:
        """As SQLite's; one lookup and two batched statements (``executemany``: psycopg pipelines them), not
        three round trips an image: a re-index's driver wrote ~1,000 img/s row by row (docs/deployment.md)."""
        if len(image_ids) != len(vectors):
            raise ValueError(f"{len(image_ids)} image ids but {len(vectors)} vectors")
        with self.transaction() as conn:
            sku_of = dict(conn.execute("SELECT id, sku FROM images WHERE id = ANY(%s)", (list(image_ids),)).fetchall())
            kept = [(i, v) for i, v in zip(image_ids, vectors) if i in sku_of]  # others deleted meanwhile
            if not kept:
                return 0
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO vectors(image_id, model_version, vector) VALUES (%s, %s, %s) "
                    "ON CONFLICT (image_id, model_version) DO UPDATE SET vector = excluded.vector",
                    [(i, model_version, np.asarray(v, np.float32).tobytes()) for i, v in kept],
                )
                cursor.executemany(
                    "INSERT INTO changes(op, image_id, sku, model_version) VALUES (%s, %s, %s, %s)",
                    [(ADD, i, sku_of[i], model_version) for i, _ in kept],
                )
        return len(kept)

    def images_missing_vectors(self, model_version: str, limit: int = 1_000_000) -> list[tuple[int, str]]:
        return [
            (int(i), sha)
            for i, sha in self._query(
                "SELECT i.id, i.sha256 FROM images i LEFT JOIN vectors v ON v.image_id = i.id AND v.model_version = %s "
                "WHERE v.image_id IS NULL ORDER BY i.id LIMIT %s",
                (model_version, limit),
            )
        ]

    def vectors_for(
        self, model_version: str, image_ids: list[int] | None = None, dim: int | None = None
    ) -> tuple[np.ndarray, list[str], np.ndarray]:
        sql = (
            "SELECT i.id, i.sku, v.vector FROM images i JOIN vectors v ON v.image_id = i.id WHERE v.model_version = %s"
        )
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
        total = self._one(
            "SELECT COALESCE(SUM(octet_length(v.vector)), 0) FROM vectors v JOIN images i "
            "ON i.id = v.image_id WHERE v.model_version = %s",
            (model_version,),
        )
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
