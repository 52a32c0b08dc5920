"""What the SQLite and PostgreSQL catalogues do with the same SQL for SKU and image records
(``SqlRecords``): create, merge, add images (idempotent per content), read and delete one image.

As in ``gallery.stores.sql_common``, statements use ``?`` placeholders. What differs between the
dialects stays in each store: how a new image's id comes back (``_insert_image``), and which digests
are left unreferenced after a delete (``_unreferenced``: ``= ANY`` against a query per digest).
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from gallery.stores.base import ADD, REMOVE, SKU_CHANGE, AddedImages, NewImage
from gallery.stores.sql_common import SqlCatalog
from gallery.types import ImageNotFound, ReferenceImage

SKU_COLUMNS = "sku, name, price_minor, attributes, created_at, updated_at"


class SqlRecords(SqlCatalog):
    @abc.abstractmethod
    def _insert_image(self, conn: Any, sku: str, image: NewImage, now: float) -> int:
        """Insert ``image``'s record; its new id."""

    @abc.abstractmethod
    def _unreferenced(self, conn: Any, digests: set[str]) -> list[str]:
        """Of ``digests``, those no image refers to any more (their photos can go)."""

    # --- SKUs ---------------------------------------------------------------
    def put_sku(self, sku: str, name: str | None, price: int | None, attributes: dict[str, Any] | None) -> bool:
        """Create or replace a SKU's metadata (``price``: minor units); True when it was created."""
        with self.transaction() as conn:
            return self._upsert_sku(conn, sku, name, price, attributes)

    def merge_sku(
        self, sku: str, name: str | None = None, price: int | None = None, attributes: dict[str, Any] | None = None
    ) -> bool:
        """Create the SKU, or change only the fields given (None keeps what is stored); True when created."""
        with self.transaction() as conn:
            row = conn.execute(
                self._sql("SELECT name, price_minor, attributes FROM skus WHERE sku = ?"), (sku,)
            ).fetchone()
            if row is None:
                return self._upsert_sku(conn, sku, name, price, attributes)
            self._upsert_sku(
                conn,
                sku,
                name if name is not None else row[0],
                price if price is not None else row[1],
                {**json.loads(row[2]), **(attributes or {})},
            )
            return False

    def _upsert_sku(
        self,
        conn: Any,
        sku: str,
        name: str | None,
        price: int | None,
        attributes: dict[str, Any] | None,
        only_if_missing: bool = False,
    ) -> bool:
        """True when the SKU was created; a change is logged either way (every process keeps names and
        prices in memory: ``gallery.sku_directory``)."""
        now = time.time()
        exists = conn.execute(self._sql("SELECT 1 FROM skus WHERE sku = ?"), (sku,)).fetchone()
        if exists and only_if_missing:
            return False
        values = (name or sku, price, json.dumps(attributes or {}), now)
        if exists:
            statement = "UPDATE skus SET name = ?, price_minor = ?, attributes = ?, updated_at = ? WHERE sku = ?"
            conn.execute(self._sql(statement), (*values, sku))
        else:
            conn.execute(self._sql(f"INSERT INTO skus({SKU_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"), (sku, *values, now))
        conn.execute(self._sql("INSERT INTO changes(op, image_id, sku) VALUES (?, 0, ?)"), (SKU_CHANGE, sku))
        return not exists

    # --- images -------------------------------------------------------------
    def add_images(
        self,
        sku: str,
        images: list[NewImage],
        vectors: np.ndarray | Sequence[np.ndarray],
        model_version: str,
        name: str | None = None,
    ) -> AddedImages:
        """One transaction: the SKU (created if new), image records, vectors, change log.

        Idempotent per content: an image whose bytes (SHA-256) are already a reference image of
        ``sku`` is not stored again; its existing id is returned in its place, and left out of the
        answer's ``created`` (the ids this call stored)."""
        now = time.time()
        ids: list[int] = []
        created: list[int] = []
        with self.transaction() as conn:
            self._upsert_sku(conn, sku, name, None, None, only_if_missing=True)
            for image, vector in zip(images, vectors, strict=True):
                row = conn.execute(
                    self._sql("SELECT MIN(id) FROM images WHERE sku = ? AND sha256 = ?"), (sku, image.sha256)
                ).fetchone()
                if row is not None and row[0] is not None:  # already a reference image of this SKU: never twice
                    ids.append(int(row[0]))
                    continue
                image_id = self._insert_image(conn, sku, image, now)
                conn.execute(
                    self._sql("INSERT INTO vectors(image_id, model_version, vector) VALUES (?, ?, ?)"),
                    (image_id, model_version, np.asarray(vector, np.float32).tobytes()),
                )
                conn.execute(
                    self._sql("INSERT INTO changes(op, image_id, sku, model_version) VALUES (?, ?, ?, ?)"),
                    (ADD, image_id, sku, model_version),
                )
                ids.append(image_id)
                created.append(image_id)
        return AddedImages(ids, created)

    def get_image(self, sku: str, image_id: int) -> ReferenceImage:
        rows = self._read(
            "SELECT id, sku, sha256, media_type, width, height FROM images WHERE id = ? AND sku = ?", (image_id, sku)
        )
        if not rows:
            raise ImageNotFound(f"image {image_id} of SKU {sku!r} does not exist")
        i, s, sha, media, width, height = rows[0]
        return ReferenceImage(int(i), s, sha, media, int(width), int(height))

    def delete_image(self, sku: str, image_id: int) -> list[str]:
        with self.transaction() as conn:
            row = conn.execute(
                self._sql("SELECT sha256 FROM images WHERE id = ? AND sku = ?"), (image_id, sku)
            ).fetchone()
            if row is None:
                raise ImageNotFound(f"image {image_id} of SKU {sku!r} does not exist")
            conn.execute(self._sql("INSERT INTO changes(op, image_id, sku) VALUES (?, ?, ?)"), (REMOVE, image_id, sku))
            conn.execute(self._sql("DELETE FROM images WHERE id = ?"), (image_id,))
            return self._unreferenced(conn, {row[0]})

    def image_digests(self) -> set[str]:
        return {row[0] for row in self._read("SELECT DISTINCT sha256 FROM images")}
