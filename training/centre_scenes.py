"""The item-centre model's training scenes (``training/centres.py``): seeded counter scenes at its input size."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from counter.scenes import Product, make_scene

if TYPE_CHECKING:
    from training.centres import CentreConfig


def _scenes(products: list[Product], seeds: list[int], config: CentreConfig) -> tuple[np.ndarray, list[np.ndarray]]:
    import cv2

    size = (config.input_width, config.input_height)
    photos, boxes = [], []
    for seed in seeds:
        touching = bool(np.random.default_rng(seed + 7).random() < config.touching_p)
        scene = make_scene(products, seed, touching=touching)
        height, width = scene.photo.shape[:2]
        photos.append(cv2.resize(scene.photo, size, interpolation=cv2.INTER_AREA))
        sx, sy = config.input_width / width, config.input_height / height
        boxes.append(
            np.array([[i.box.x0 * sx, i.box.y0 * sy, i.box.x1 * sx, i.box.y1 * sy] for i in scene.items], np.float32)
        )
    return np.stack(photos), boxes


def scene_data(products: list[Product], config: CentreConfig, workers: int = 2) -> tuple[np.ndarray, list[np.ndarray]]:
    """The training scenes at the model's input size and their item boxes, made in ``workers`` processes."""
    seeds = list(range(config.first_seed, config.first_seed + config.scenes))
    shares = [seeds[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_scenes, [products] * workers, shares, [config] * workers))
    order = np.argsort(np.concatenate([np.asarray(s) for s in shares]))
    photos = np.concatenate([p for p, _ in parts])[order]
    boxes = [b for _, bs in parts for b in bs]
    return photos, [boxes[i] for i in order]
