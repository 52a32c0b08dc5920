"""Scenes planned and recognised once, for fitting and replaying the counter's decision offline (round 5).

For each seeded scene (``counter/scenes.py``, the products a list given: every catalogue product, or half of
them for the check across products): the classical segmentation and its proposed changes
(``counter.recognised.plan``, with each change's masks), every crop (items and proposed parts) embedded once
with the shipped model, and from those vectors each crop's best similarity to each SKU's **store** photos
(the grocery train photos, never the catalogue photos the scenes are cut from) and its nearest SKU among
train + catalogue photos (``bench.counter``'s basket recogniser). Any decision (the classical items, round 4's
rule, the learned verifier; every SKU enrolled, or the scene's own left out) is then replayed without the
model: ``bench/counter_verifier.py``.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from counter.boxes import Box
from counter.hypotheses import Change
from counter.recognised import DEFAULT_PROPOSAL, plan
from counter.scenes import Item, Product, make_scene
from counter.segment import BackgroundSegmenter
from counter.verifier_features import Shapes
from embedder.preprocess import letterbox

if TYPE_CHECKING:
    from bench.counter_scorer import StoreGallery

log = logging.getLogger("bench.counter_verifier_data")


@dataclass(frozen=True)
class Planned:
    """One scene, planned and recognised: what a decision needs, without the photo."""

    seed: int
    items: tuple[Item, ...]  # the truth
    touching: bool
    surface: str
    boxes: list[Box]  # every crop's box in the photo (the plan's, padded)
    baseline: list[int]
    changes: list[Change]
    shapes: list[Shapes]
    item_area: float
    sims: np.ndarray  # (crops, SKUs) float32: best similarity to each SKU's store photos
    nearest: list[str]  # each crop's nearest SKU among train + catalogue photos (the baskets)


@dataclass(frozen=True)
class Recogniser:
    gallery: StoreGallery
    catalogue: np.ndarray  # (products, d) the catalogue photos' embeddings
    catalogue_skus: list[str]

    def recognise(self, crops: list[np.ndarray]) -> tuple[np.ndarray, list[str]]:
        if not crops:
            return np.zeros((0, len(self.gallery.skus)), np.float32), []
        size = self.gallery.embedder.input_size
        pixels = np.stack([letterbox(Image.fromarray(np.ascontiguousarray(c)), size) for c in crops])
        vectors = self.gallery.embedder.embed(pixels)
        store = vectors @ self.gallery.vectors.T
        sims = np.maximum.reduceat(store, self.gallery.starts, axis=1).astype(np.float32)
        owner = np.searchsorted(self.gallery.starts, np.arange(store.shape[1]), side="right") - 1
        labels = [self.gallery.skus[k] for k in owner] + self.catalogue_skus
        nearest = np.argmax(np.c_[store, vectors @ self.catalogue.T], axis=1)
        return sims, [labels[i] for i in nearest]


def planned_scene(
    segmenter: BackgroundSegmenter, products: list[Product], seed: int, recogniser: Recogniser
) -> Planned:
    scene = make_scene(products, seed)
    found = plan(segmenter, scene.photo, scene.background, DEFAULT_PROPOSAL)
    every = list(range(len(found.boxes)))
    sims, nearest = recogniser.recognise(found.crops(every))
    packed = [Shapes([m.astype(bool) for m in s.replaces], [m.astype(bool) for m in s.into]) for s in found.shapes]
    return Planned(
        seed,
        scene.items,
        scene.touching,
        scene.surface,
        found.photo_boxes(every),
        found.baseline,
        found.changes,
        packed,
        found.work.item_area,
        sims,
        nearest,
    )


def collect(
    path: Path, segmenter: BackgroundSegmenter, products: list[Product], seeds: range, recogniser: Recogniser
) -> list[Planned]:
    """The scenes of ``seeds``, from ``path`` when it holds them already."""
    if path.exists():
        with path.open("rb") as f:
            cached: list[Planned] = pickle.load(f)
        return cached
    out = []
    for k, seed in enumerate(seeds):
        out.append(planned_scene(segmenter, products, seed, recogniser))
        if k % 50 == 49:
            log.info("%s: %d of %d scenes", path.stem, k + 1, len(seeds))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(out, f)
    return out
