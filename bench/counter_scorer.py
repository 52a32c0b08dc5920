"""The recogniser as ``counter.recognised``'s scorer for the counter benchmarks: store photos only.

The scenes' items are cut out of the catalogue photos (``iconic/``), so a gallery holding those photos would
make the parts' recognition artificially easy. The scorer's gallery is the grocery **train** photos (store
photos, several per SKU), never the catalogue photos. ``scorer(excluding=...)`` leaves some SKUs out of it
(the scene's own: every item unknown), to see that the decision does not break on products not enrolled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from embedder.preprocess import letterbox

if TYPE_CHECKING:
    from counter.recognised import Scorer
    from embedder.runtime import LiteRTEmbedder


def store_skus(root: Path) -> list[str]:
    """The SKUs with train photos in ``StoreGallery``'s column order, without embedding anything (for replays)."""
    from training.data import list_image_folder

    train = list_image_folder(root / "train")
    return [train.class_names[i] for i in np.unique(np.asarray(train.labels))]


@dataclass(frozen=True)
class StoreGallery:
    embedder: LiteRTEmbedder
    vectors: np.ndarray  # (n, d) train photos' embeddings, sorted by SKU
    starts: np.ndarray  # index of each SKU's first photo in ``vectors``
    skus: list[str]

    @classmethod
    def load(cls, embedder: LiteRTEmbedder, root: Path, cache: str = "runs/cache") -> StoreGallery:
        from training.data import cached_pixels, list_image_folder

        train = list_image_folder(root / "train")
        order = np.argsort(np.asarray(train.labels), kind="stable")
        vectors = embedder.embed(np.asarray(cached_pixels(train, embedder.input_size, cache)))[order]
        labels = np.asarray(train.labels)[order]
        present = np.unique(labels)
        starts = np.searchsorted(labels, present)
        return cls(embedder, vectors, starts, [train.class_names[i] for i in present])

    def similarities(self, crops: list[np.ndarray]) -> np.ndarray:
        """``(len(crops), SKUs)``: each crop's best cosine similarity to each SKU's store photos."""
        if not crops:
            return np.zeros((0, len(self.skus)))
        size = self.embedder.input_size
        pixels = np.stack([letterbox(Image.fromarray(np.ascontiguousarray(c)), size) for c in crops])
        sims: np.ndarray = np.maximum.reduceat(self.embedder.embed(pixels) @ self.vectors.T, self.starts, axis=1)
        return sims

    def scorer(self, excluding: frozenset[str] = frozenset()) -> Scorer:
        """crops -> similarities to the SKUs not in ``excluding``."""
        keep = [i for i, sku in enumerate(self.skus) if sku not in excluding]

        def score(crops: list[np.ndarray]) -> np.ndarray:
            return self.similarities(crops)[:, keep]

        return score
