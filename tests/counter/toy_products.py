"""Flat-coloured products on white, as catalogue photos, for the counter tests' generated scenes."""

from __future__ import annotations

import numpy as np

from counter.scenes import Product


def studio(colour: tuple[int, int, int], shape: str, size: int = 120, texture_seed: int | None = None) -> np.ndarray:
    """A ``shape`` ("disc" or "box") of ``colour`` on white; with ``texture_seed``, half of it a seeded
    blocky texture (products a recogniser can tell apart, not only a segmenter)."""
    image = np.full((size, size, 3), 255, np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    if shape == "disc":
        inside = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size * 0.4) ** 2
    else:
        inside = (abs(yy - size / 2) < size * 0.42) & (abs(xx - size / 2) < size * 0.25)
    if texture_seed is None:
        image[inside] = colour
        return image
    blocks = np.random.default_rng(texture_seed).integers(0, 256, (8, 8, 3))
    texture = np.kron(blocks, np.ones((-(-size // 8), -(-size // 8), 1)))[:size, :size].astype(np.uint8)
    image[inside] = (0.5 * np.array(colour) + 0.5 * texture[inside]).astype(np.uint8)
    return image


PRODUCTS = [
    Product("red-apple", studio((200, 30, 30), "disc")),
    Product("green-pear", studio((60, 160, 40), "disc")),
    Product("blue-carton", studio((30, 60, 190), "box")),
    Product("yellow-carton", studio((230, 200, 20), "box")),
]
