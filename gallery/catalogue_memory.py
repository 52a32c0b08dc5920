"""What requests read from memory instead of the catalogue: counts, SKU names and prices, the stored threshold.

``gallery.index_follower`` reads these from the catalogue as it follows the change log and puts them in
memory under the index's write lock, together with the index's own changes: a search never sees one
without the other, and never waits on the catalogue for them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from gallery.sku_directory import SkuDirectory
from gallery.stores.base import CatalogBase

logger = logging.getLogger(__name__)


def threshold_key(model_version: str, score: str = "") -> str:
    """The meta key of a threshold stored for ``model_version`` on decision score ``score`` ("" for the
    plain similarity; ``gallery.open_set_score.OpenSetScore.name`` otherwise): a threshold belongs to one score."""
    return f"threshold:{model_version}" + (f":{score}" if score else "")


class CatalogueMemory:
    """One model's view: (SKUs, reference images), every SKU's name and price, this model's threshold."""

    def __init__(self, store: CatalogBase, model_version: str, score: str = "") -> None:
        self.store = store
        self.model_version = model_version
        #: the meta key of this model's stored threshold on this score (a ``META_CHANGE`` on it is re-read)
        self.threshold_key = threshold_key(model_version, score)
        self.counts: tuple[int, int] = (0, 0)  # (SKUs, reference images)
        self.stored_threshold: float | None = None
        self.skus = SkuDirectory()  # names and prices

    def warn_about_other_scores(self) -> None:
        """A threshold stored for this model on another decision score (the plain similarity, or the score of
        an earlier calibration of the same file) is not used for this one: say so."""
        plain = threshold_key(self.model_version)
        if self.stored_threshold is not None or self.threshold_key == plain:
            return  # a plain-score gallery (reindex, tests, an uncalibrated model) is not told about scored ones
        this = self.threshold_key.removeprefix(plain + ":")
        for key, value in sorted(self.store.meta_starting_with(plain).items()):
            if key == self.threshold_key or not (key == plain or key.startswith(plain + ":")):
                continue
            other = key.removeprefix(plain + ":") if key != plain else "the plain similarity"
            logger.warning(
                "the threshold %s stored for model %s was calibrated on another decision score (%s); this model "
                "decides on %s, so it is not used: the model's own threshold applies until `skulens calibrate` "
                "or PUT /v1/admin/threshold stores one for this score",
                value,
                self.model_version,
                other,
                this,
            )

    def reload(self, threshold: bool, skus: Collection[str] | None = None) -> None:
        """Counts, SKU names and prices (every SKU; with ``skus``, only those) and, with ``threshold``,
        the stored threshold, read and put in memory at once."""
        self.read(threshold, skus)()

    def read(self, threshold: bool, skus: Collection[str] | None = None) -> Callable[[], None]:
        """Read what ``reload`` keeps from the catalogue; returns what puts it in memory (called under the
        index's write lock with the index's changes)."""
        sku_count, images = self.store.counts()
        every = self.store.all_sku_details() if skus is None else {}
        fresh = self.store.sku_details(list(skus)) if skus else {}
        value = self.store.get_meta(self.threshold_key) if threshold else None

        def put() -> None:
            self.counts = (int(sku_count), int(images))
            if skus is None:
                self.skus.replace(every)
            else:
                self.skus.update(skus, fresh)
            if threshold:
                self.stored_threshold = float(value) if value is not None else None

        return put
