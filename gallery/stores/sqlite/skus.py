"""The SQLite catalogue's SKUs: created, merged, listed, searched, deleted (``CatalogStore``)."""

from __future__ import annotations

import json
from typing import Any

from gallery.stores.base import REMOVE, SKU_CHANGE
from gallery.stores.sqlite import schema
from gallery.stores.sqlite.plumbing import SqliteBase, in_chunks
from gallery.types import Page, Sku, SkuNotFound


class SqliteSkus(SqliteBase):
    # --- SKUs ---------------------------------------------------------------
    def get_sku(self, sku: str) -> Sku:
        rows = self._query(
            "SELECT sku, name, price_minor, attributes, created_at, updated_at FROM skus WHERE sku = ?", (sku,)
        )
        if not rows:
            raise SkuNotFound(f"SKU {sku!r} is not in the catalogue")
        image_ids = tuple(r[0] for r in self._query("SELECT id FROM images WHERE sku = ? ORDER BY id", (sku,)))
        return self._sku(rows[0], image_ids)

    @staticmethod
    def _sku(row: tuple[Any, ...], image_ids: tuple[int, ...] = ()) -> Sku:
        sku, name, price, attributes, created, updated = row
        return Sku(sku, name, price, json.loads(attributes), image_ids, created, updated)

    def list_skus(self, offset: int, limit: int) -> Page:
        total = self._query("SELECT COUNT(*) FROM skus")[0][0]
        rows = self._query(
            "SELECT sku, name, price_minor, attributes, created_at, updated_at FROM skus ORDER BY sku LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return self._page(rows, total, offset, limit)

    def _page(self, rows: list[tuple[Any, ...]], total: int, offset: int, limit: int) -> Page:
        """A page of SKUs, each with its number of reference images."""
        skus = [row[0] for row in rows]
        counts: dict[str, int] = {}
        for chunk in in_chunks(skus):
            marks = ",".join("?" * len(chunk))
            counts.update(
                self._query(f"SELECT sku, COUNT(*) FROM images WHERE sku IN ({marks}) GROUP BY sku", tuple(chunk))
            )
        items = [self._sku(r, ()) for r in rows]
        return Page(items=[(s, counts.get(s.sku, 0)) for s in items], total=total, offset=offset, limit=limit)

    def sku_names(self, skus: list[str]) -> dict[str, str]:
        names: dict[str, str] = {}
        for chunk in in_chunks(list(skus)):
            marks = ",".join("?" * len(chunk))
            names.update(self._query(f"SELECT sku, name FROM skus WHERE sku IN ({marks})", tuple(chunk)))
        return names

    def search_skus(self, text: str, offset: int, limit: int) -> Page:
        """SKUs whose id or name contains ``text`` (case-insensitive), by id, a page at a time.

        Three characters or more: the FTS5 trigram index (``gallery.stores.sqlite.schema``); shorter (a trigram
        index cannot look up fewer than three characters), or without the index, a LIKE scan.
        """
        params: tuple[str, ...]
        if len(text) >= 3 and self._search_index:
            phrase = '"' + text.replace('"', '""') + '"'
            where, params = (
                f"sku IN (SELECT sku FROM {schema.SEARCH_INDEX} WHERE {schema.SEARCH_INDEX} MATCH ?)",
                (phrase,),
            )
        else:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where, params = "(sku LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\')", (pattern, pattern)
        total = self._query(f"SELECT COUNT(*) FROM skus WHERE {where}", params)[0][0]
        rows = self._query(
            f"SELECT sku, name, price_minor, attributes, created_at, updated_at FROM skus WHERE {where} "
            "ORDER BY sku LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return self._page(rows, total, offset, limit)

    def all_sku_details(self) -> dict[str, tuple[str, int | None]]:
        """Name and price (minor units, or None) of every SKU: what ``gallery.sku_directory`` keeps in memory."""
        with self._read_lock:
            return {
                sku: (name, price)
                for sku, name, price in self._reader.execute("SELECT sku, name, price_minor FROM skus")
            }

    def sku_details(self, skus: list[str]) -> dict[str, tuple[str, int | None]]:
        """Name and price (minor units, or None) of each of ``skus`` that is in the catalogue."""
        details: dict[str, tuple[str, int | None]] = {}
        for chunk in in_chunks(sorted(set(skus))):
            marks = ",".join("?" * len(chunk))
            for sku, name, price in self._query(
                f"SELECT sku, name, price_minor FROM skus WHERE sku IN ({marks})", tuple(chunk)
            ):
                details[sku] = (name, price)
        return details

    def delete_sku(self, sku: str) -> list[str]:
        """Delete a SKU and its images; returns the digests no longer referenced."""
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM skus WHERE sku = ?", (sku,)).fetchone() is None:
                raise SkuNotFound(f"SKU {sku!r} is not in the catalogue")
            rows = conn.execute("SELECT id, sha256 FROM images WHERE sku = ?", (sku,)).fetchall()
            conn.executemany(
                "INSERT INTO changes(op, image_id, sku) VALUES (?, ?, ?)",
                [(REMOVE, image_id, sku) for image_id, _ in rows],
            )
            conn.execute("DELETE FROM skus WHERE sku = ?", (sku,))
            conn.execute("INSERT INTO changes(op, image_id, sku) VALUES (?, 0, ?)", (SKU_CHANGE, sku))
            return self._unreferenced(conn, {sha for _, sha in rows})
