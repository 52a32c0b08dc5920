"""SKU names and prices kept in memory, so that answering a request never reads SQLite for them.

The catalogue (SQLite) stays the source of truth. A ``Gallery`` loads every SKU's name and price
when it opens its index and refreshes the SKUs that the change log names (``SKU_CHANGE`` rows: a
SKU created, changed or deleted, by this process or another) whenever it catches up, under its
catch-up lock (one catch-up at a time). A worker therefore sees another worker's rename or new price on its next search.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

from gallery.stores.base import CatalogBase

logger = logging.getLogger(__name__)

Details = tuple[str, int | None]  # (name, price in minor units or None)


class SkuDirectory:
    """sku → (name, price); lookups are plain dict reads (safe beside a refresh in another thread)."""

    def __init__(self) -> None:
        self._details: dict[str, Details] = {}

    def __len__(self) -> int:
        return len(self._details)

    def load(self, store: CatalogBase) -> None:
        """Every SKU of the catalogue (at open, and after a compacted change log)."""
        self.replace(store.all_sku_details())

    def replace(self, every: dict[str, Details]) -> None:
        """Every SKU's details, as read from the catalogue (``all_sku_details``)."""
        self._details = dict(every)  # a new dict swapped in: readers never see half of it
        logger.debug("%d SKU names and prices loaded into memory", len(self._details))

    def refresh(self, store: CatalogBase, skus: Collection[str]) -> None:
        """Re-read ``skus`` (those the change log named); a SKU no longer in the catalogue is dropped."""
        if skus:
            self.update(skus, store.sku_details(list(skus)))

    def update(self, skus: Collection[str], fresh: dict[str, Details]) -> None:
        """``skus`` as read from the catalogue (``fresh``: ``sku_details(skus)``); those not in it dropped."""
        for sku in skus:
            if sku in fresh:
                self._details[sku] = fresh[sku]
            else:
                self._details.pop(sku, None)

    def name(self, sku: str) -> str:
        """The SKU's name, or its id when it is not (or no longer) in the catalogue."""
        found = self._details.get(sku)
        return found[0] if found is not None else sku

    def details(self, skus: Iterable[str]) -> dict[str, Details]:
        """Name and price of each of ``skus`` that is in the catalogue (as ``CatalogBase.sku_details``)."""
        out: dict[str, Details] = {}
        for sku in skus:
            found = self._details.get(sku)
            if found is not None:
                out[sku] = found
        return out
