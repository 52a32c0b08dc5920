"""The PostgreSQL catalogue's SKUs: created, merged, listed, searched, deleted (``PostgresCatalog``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gallery.stores.base import (
    REMOVE,
    SKU_CHANGE,
)
from gallery.stores.postgres.plumbing import PostgresBase
from gallery.stores.sql_records import SKU_COLUMNS
from gallery.types import Page, Sku, SkuNotFound


class PostgresSkus(PostgresBase):
    # --- SKUs -------------------------------------------------------------------
    @staticmethod
    def _sku(row: Sequence[Any], image_ids: tuple[int, ...] = ()) -> Sku:
        sku, name, price, attributes, created, updated = row
        return Sku(
            sku, name, None if price is None else int(price), json.loads(attributes), image_ids, created, updated
        )

    def get_sku(self, sku: str) -> Sku:
        rows = self._query(f"SELECT {SKU_COLUMNS} FROM skus WHERE sku = %s", (sku,))
        if not rows:
            raise SkuNotFound(f"SKU {sku!r} is not in the catalogue")
        image_ids = tuple(int(r[0]) for r in self._query("SELECT id FROM images WHERE sku = %s ORDER BY id", (sku,)))
        return self._sku(rows[0], image_ids)

    def _page(self, where: str, params: Sequence[object], offset: int, limit: int) -> Page:
        total = int(self._one(f"SELECT COUNT(*) FROM skus WHERE {where}", params))
        rows = self._query(
            f'SELECT {SKU_COLUMNS} FROM skus WHERE {where} ORDER BY sku COLLATE "C" LIMIT %s OFFSET %s',
            (*params, limit, offset),
        )
        skus = [row[0] for row in rows]
        counts = dict(self._query("SELECT sku, COUNT(*) FROM images WHERE sku = ANY(%s) GROUP BY sku", (skus,)))
        return Page(
            items=[(self._sku(r), int(counts.get(r[0], 0))) for r in rows], total=total, offset=offset, limit=limit
        )

    def list_skus(self, offset: int, limit: int) -> Page:
        return self._page("TRUE", (), offset, limit)

    def search_skus(self, text: str, offset: int, limit: int) -> Page:
        """ILIKE on id and name (``pg_trgm`` GIN indexes speed it up where present): SQLite's answers."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self._page("(sku ILIKE %s OR name ILIKE %s)", (pattern, pattern), offset, limit)

    def sku_names(self, skus: list[str]) -> dict[str, str]:
        return dict(self._query("SELECT sku, name FROM skus WHERE sku = ANY(%s)", (list(skus),)))

    def all_sku_details(self) -> dict[str, tuple[str, int | None]]:
        return {
            sku: (name, None if price is None else int(price))
            for sku, name, price in self._query("SELECT sku, name, price_minor FROM skus")
        }

    def sku_details(self, skus: list[str]) -> dict[str, tuple[str, int | None]]:
        return {
            sku: (name, None if price is None else int(price))
            for sku, name, price in self._query(
                "SELECT sku, name, price_minor FROM skus WHERE sku = ANY(%s)", (sorted(set(skus)),)
            )
        }

    def delete_sku(self, sku: str) -> list[str]:
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM skus WHERE sku = %s", (sku,)).fetchone() is None:
                raise SkuNotFound(f"SKU {sku!r} is not in the catalogue")
            rows = conn.execute("SELECT id, sha256 FROM images WHERE sku = %s ORDER BY id", (sku,)).fetchall()
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO changes(op, image_id, sku) VALUES (%s, %s, %s)",
                    [(REMOVE, image_id, sku) for image_id, _ in rows],
                )
            conn.execute("DELETE FROM skus WHERE sku = %s", (sku,))
            conn.execute("INSERT INTO changes(op, image_id, sku) VALUES (%s, 0, %s)", (SKU_CHANGE, sku))
            return self._unreferenced(conn, {sha for _, sha in rows})
