"""Seeded synthetic counter scenes: products cut out of catalogue photos, placed on a counter.

Used by tests and by ``bench/counter.py`` to measure segmentation and whole baskets. A scene is
a procedurally made counter surface (wood, laminate or a dark conveyor belt), photographed
empty (the lane's background) and then with 1 to 8 products on it: each a catalogue photo's
product (cut out of its white background), rotated, scaled, with a soft shadow, some of them
touching; the loaded photo is taken under a slightly different light. The true boxes and SKUs
come with it. Pure NumPy + PIL; the same seed gives the same scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from counter.boxes import Box, iou
from embedder.catalogue_views import product_mask

SURFACES = ("wood", "laminate", "belt")


@dataclass(frozen=True)
class Product:
    sku: str
    pixels: np.ndarray  # (h, w, 3) uint8 studio photo on white


@dataclass(frozen=True)
class Item:
    sku: str
    box: Box


@dataclass(frozen=True)
class Scene:
    photo: np.ndarray  # (H, W, 3) uint8, the counter with products
    background: np.ndarray  # the same counter, empty, as the lane stored it earlier
    items: tuple[Item, ...]  # in placement order
    surface: str
    touching: bool  # some items touch or overlap


def catalogue_products(root: Path) -> list[Product]:
    """Every catalogue photo of the grocery set (``root/iconic/*.jpg``) as a product, in name order."""
    return [Product(p.stem, np.asarray(Image.open(p).convert("RGB"))) for p in sorted((root / "iconic").glob("*.jpg"))]


# Disjoint shares of the catalogue (in name order, by position modulo 4), so that a model trained on scenes of one
# share is measured on products it never saw: the centre model trains on ``even`` and is measured on ``odd``;
# ``even_odd_a`` (three quarters) against ``even``, both measured on ``odd_b``, asks whether more products help.
PRODUCT_SETS: dict[str, tuple[int, ...]] = {
    "all": (0, 1, 2, 3),
    "even": (0, 2),
    "odd": (1, 3),
    "odd_a": (1,),
    "odd_b": (3,),
    "even_odd_a": (0, 1, 2),
}


def product_set(products: list[Product], which: str) -> list[Product]:
    """The products of the share ``which`` (a key of ``PRODUCT_SETS``) of ``products`` in name order."""
    if which not in PRODUCT_SETS:
        raise ValueError(f"products must be one of {', '.join(PRODUCT_SETS)}, got {which!r}")
    return [p for i, p in enumerate(products) if i % 4 in PRODUCT_SETS[which]]


def surface(kind: str, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A counter surface of ``kind`` (wood, laminate or belt), ``(height, width, 3)`` uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "wood":
        base = rng.uniform([140, 95, 55], [190, 140, 95])
        grain = np.sin(y / rng.uniform(6, 14) + 2.5 * np.sin(x / rng.uniform(60, 140))) * rng.uniform(10, 20)
        out = base[None, None, :] + grain[..., None] * np.array([1.0, 0.8, 0.6])
    elif kind == "laminate":
        base = rng.uniform(170, 225) + rng.uniform(-8, 8, size=3)
        speckle = rng.normal(0, 4, size=(height, width))
        out = base[None, None, :] + speckle[..., None]
    elif kind == "belt":
        base = rng.uniform(25, 55) + rng.uniform(-4, 4, size=3)
        ridges = (np.sin(x / rng.uniform(3, 6)) > 0.8) * rng.uniform(6, 14)
        out = base[None, None, :] + (ridges + rng.normal(0, 3, size=(height, width)))[..., None]
    else:
        raise ValueError(f"unknown surface {kind!r}; choose one of {SURFACES}")
    pixels: np.ndarray = np.clip(out, 0, 255).astype(np.uint8)
    return pixels


def cut_out(product: Product, rng: np.random.Generator, side: float) -> tuple[Image.Image, Image.Image]:
    """The product (RGB) and its alpha, cropped to the product, scaled to ``side`` px on its longer side
    and rotated by a random angle."""
    mask = product_mask(product.pixels)
    rows, cols = np.flatnonzero(mask.max(axis=1) > 0.5), np.flatnonzero(mask.max(axis=0) > 0.5)
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    image = Image.fromarray(product.pixels, "RGB").crop(box)
    alpha = Image.fromarray((mask * 255).astype(np.uint8), "L").crop(box)
    scale = side / max(image.size)
    size = (max(2, round(image.width * scale)), max(2, round(image.height * scale)))
    image, alpha = image.resize(size, Image.Resampling.BILINEAR), alpha.resize(size, Image.Resampling.BILINEAR)
    angle = rng.uniform(0, 360)
    image = image.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    alpha = alpha.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    bbox = alpha.point(lambda v: 255 if v > 127 else 0).getbbox() or (0, 0, alpha.width, alpha.height)
    return image.crop(bbox), alpha.crop(bbox)


def _position(
    rng: np.random.Generator,
    size: tuple[int, int],
    canvas: tuple[int, int],
    placed: list[Box],
    touch: bool,
    margin: int,
) -> tuple[int, int] | None:
    """Top-left corner for an item: next to a placed one when ``touch``, else clear of every one."""
    w, h = size
    width, height = canvas
    for _ in range(200):
        if touch and placed:
            other = placed[int(rng.integers(len(placed)))]
            side = int(rng.integers(4))
            overlap = int(rng.integers(2, 10))  # a few pixels into the neighbour: touching
            if side == 0:
                left, top = other.x1 - overlap, int(rng.integers(other.y0 - h // 2, other.y1 - h // 2 + 1))
            elif side == 1:
                left, top = other.x0 - w + overlap, int(rng.integers(other.y0 - h // 2, other.y1 - h // 2 + 1))
            elif side == 2:
                left, top = int(rng.integers(other.x0 - w // 2, other.x1 - w // 2 + 1)), other.y1 - overlap
            else:
                left, top = int(rng.integers(other.x0 - w // 2, other.x1 - w // 2 + 1)), other.y0 - h + overlap
        else:
            left, top = (
                int(rng.integers(margin, width - w - margin + 1)),
                int(rng.integers(margin, height - h - margin + 1)),
            )
        if not (margin <= left and margin <= top and left + w <= width - margin and top + h <= height - margin):
            continue
        box = Box(left, top, left + w, top + h)
        ious = [iou(box, p) for p in placed]
        if touch and placed:
            if max(ious) < 0.25 and sum(v > 0 for v in ious) >= 1:
                return left, top
        elif all(box.gap(p) >= margin for p in placed):
            return left, top
    return None


def make_scene(
    products: list[Product],
    seed: int,
    n_items: int | None = None,
    touching: bool | None = None,
    size: tuple[int, int] = (960, 720),
    surface_kind: str | None = None,
) -> Scene:
    """One seeded scene of ``n_items`` (1-8 by default) products drawn from ``products``."""
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(1, 9)) if n_items is None else n_items
    touching = bool(rng.random() < 0.4) if touching is None else touching
    kind = surface_kind or SURFACES[int(rng.integers(len(SURFACES)))]
    width, height = size
    background = surface(kind, rng, width, height)
    canvas = Image.fromarray(background.copy(), "RGB")
    shadow_layer = Image.new("L", size, 0)
    items: list[Item] = []
    boxes: list[Box] = []
    margin = 12
    for i in range(n_items):
        product = products[int(rng.integers(len(products)))]
        image, alpha = cut_out(product, rng, rng.uniform(0.16, 0.3) * min(width, height))
        spot = _position(rng, image.size, size, boxes, touching and i > 0, margin)
        if spot is None:
            continue
        left, top = spot
        shadow = alpha.filter(ImageFilter.GaussianBlur(rng.uniform(4, 9))).point(lambda v: int(v * 0.55))
        shadow_layer.paste(shadow, (left + int(rng.integers(3, 10)), top + int(rng.integers(3, 10))), shadow)
        boxes.append(Box(left, top, left + image.width, top + image.height))
        items.append(Item(product.sku, boxes[-1]))
        canvas.paste(image, (left, top), alpha)
    photo = np.asarray(canvas, dtype=np.float32)
    shade = np.asarray(shadow_layer, dtype=np.float32)[..., None] / 255.0
    photo = photo * (1 - 0.6 * shade)
    # another light than when the empty counter was photographed: gain, a gradient, a colour cast
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    gradient = 1 + rng.uniform(0, 0.15) * ((np.cos(angle) * x / width + np.sin(angle) * y / height) - 0.5)
    cast = 1 + rng.uniform(-0.05, 0.05, size=3)
    photo = photo * rng.uniform(0.85, 1.15) * gradient[..., None] * cast[None, None, :]
    photo = photo + rng.normal(0, 2.0, size=photo.shape)
    return Scene(np.clip(photo, 0, 255).astype(np.uint8), background, tuple(items), kind, touching and len(items) > 1)
