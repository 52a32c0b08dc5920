"""Every path that changes the index keeps the lookalikes exact: a seeded random walk over enrolment
(photos with catalogue views), image and SKU deletion, re-indexing an image with a new vector,
re-opening from a snapshot after another process wrote, and a process that fell behind a compacted
change log (its catch-up rebuilds). After each step both processes' lookalikes are compared with a
recomputation from the catalogue's vectors (``label_lookalikes`` on each image's photo row)."""

from __future__ import annotations

import random

import numpy as np
import pytest

import gallery.index_follower as follower_module
from gallery.gallery import Gallery, ImageUpload
from gallery.lookalike import label_lookalikes
from tests.conftest import make_jpeg

DIM = 8
MODEL = "m"
SKUS = [f"s{i}" for i in range(6)]
BETA = 0.5  # a gallery of beta 0 keeps no lookalikes (its decision does not use them)


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def from_scratch(g: Gallery) -> dict[str, float]:
    ids, skus, vectors = g.store.vectors_for(MODEL, dim=DIM)
    _, first = np.unique(ids, return_index=True)  # each image's photo; its views follow it
    names = sorted(set(skus))
    if not names:
        return {}
    label = {s: i for i, s in enumerate(names)}
    labels = np.array([label[skus[i]] for i in first])
    return dict(zip(names, label_lookalikes(vectors[first], labels, len(names)).tolist()))


class Walk:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.pick = random.Random(seed)
        self.uploads = 0

    def upload(self) -> ImageUpload:
        self.uploads += 1
        return ImageUpload(make_jpeg(self.uploads, size=(24, 16)), "image/jpeg", 24, 16)

    def rows(self, sku: str) -> np.ndarray:
        base = np.zeros(DIM)
        base[SKUS.index(sku) % DIM] = 1.0
        return unit(base + 0.7 * self.rng.normal(size=(self.pick.randint(1, 3), DIM)))  # photo (+ views)

    def enrol(self, g: Gallery) -> None:
        sku = self.pick.choice(SKUS)
        g.enrol(sku, [self.upload()], [self.rows(sku)])

    def delete_image(self, g: Gallery) -> None:
        images = sorted(g.store.image_skus().items())
        if images:
            image_id, sku = self.pick.choice(images)
            g.delete_image(sku, image_id)


@pytest.mark.parametrize("kind, seed, inline", [("flat", 0, 64), ("hnsw", 1, 64), ("flat", 2, 0)])
def test_lookalikes_stay_exact_on_every_path(tmp_path, monkeypatch, kind, seed, inline):
    """``inline`` 0: every catch-up recomputes the lookalikes on a copy outside the write lock."""
    monkeypatch.setattr(follower_module, "LOOKALIKE_INLINE_SKUS", inline)
    walk = Walk(seed)
    g = Gallery(tmp_path, MODEL, DIM, kind, lookalike_beta=BETA)
    other = Gallery(tmp_path, MODEL, DIM, kind, lookalike_beta=BETA)  # another process on the same catalogue
    paths_taken: set[str] = set()
    try:
        for step in range(70):
            writer = g if walk.pick.random() < 0.6 else other
            op = walk.pick.random()
            if op < 0.4 or not writer.store.image_skus():
                walk.enrol(writer)
                paths_taken.add("enrol")
            elif op < 0.55:
                walk.delete_image(writer)
                paths_taken.add("delete image")
            elif op < 0.62:
                writer.delete_sku(walk.pick.choice(sorted(set(writer.store.image_skus().values()))))
                paths_taken.add("delete SKU")
            elif op < 0.78:  # re-index one image: a new vector (and views) under the same id
                image_id, sku = walk.pick.choice(sorted(writer.store.image_skus().items()))
                writer.store.add_vectors([image_id], [walk.rows(sku)], MODEL)
                writer.follower.sync_now()
                paths_taken.add("re-index")
            elif op < 0.88:  # g re-opens from its snapshot after other wrote
                g.close()
                walk.enrol(other)
                walk.delete_image(other)
                g = Gallery(tmp_path, MODEL, DIM, kind, lookalike_beta=BETA)
                paths_taken.add("reopen")
            else:  # the log compacted past other: its catch-up rebuilds
                monkeypatch.setattr(follower_module, "CHANGE_LOG_KEEP", 1)
                walk.enrol(g)
                walk.delete_image(g)
                g.save_snapshot()
                monkeypatch.setattr(follower_module, "CHANGE_LOG_KEEP", 100_000)
                paths_taken.add("rebuild")
            g.catch_up()
            other.catch_up()
            truth = from_scratch(g)
            for name, process in (("g", g), ("other", other)):
                for sku in SKUS:
                    assert process.lookalike(sku) == pytest.approx(truth.get(sku, 0.0), abs=1e-5), (step, name, sku)
    finally:
        g.close(snapshot=False)
        other.close(snapshot=False)
    assert paths_taken == {"enrol", "delete image", "delete SKU", "re-index", "reopen", "rebuild"}
