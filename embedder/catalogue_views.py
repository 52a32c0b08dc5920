"""Synthetic store-like views of a catalogue (studio) photo: the product cut out of its white
background and placed on varied surfaces, light and perspective.

A new product often arrives with nothing but its packshot. A packshot on white is
far from what a checkout camera sees, so enrolment can store a few synthetic views
of it beside the photo itself (``gallery`` keeps them as views of that one reference
image), and training uses the same views to pair the studio domain with store photos.

Pure PIL + NumPy (serve-only install). Deterministic: the views of one photo depend
only on its pixels and the seed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from embedder.preprocess import letterbox

WHITE_LEVEL = 235  # a channel above this counts as studio white
INK_LEVEL = 24  # a pixel this far below white in some channel is product


@dataclass(frozen=True)
class ViewConfig:
    scale: tuple[float, float] = (0.55, 0.95)  # product's longer side / canvas side
    max_rotation: float = 25.0  # degrees
    max_tilt: float = 0.12  # perspective: corner shift as a fraction of the side
    pile_p: float = 0.3  # chance of 2-4 copies side by side (produce in a crate)
    shadow_p: float = 0.6
    light: tuple[float, float] = (0.6, 1.25)  # overall brightness gain
    max_temperature_shift: float = 0.12


def is_studio_photo(pixels: np.ndarray, min_white_border: float = 0.85) -> bool:
    """True when ``min_white_border`` of the border pixels are white (a packshot on white)."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or min(pixels.shape[:2]) < 4:
        return False
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return bool((border.min(axis=1) > WHITE_LEVEL).mean() >= min_white_border)


def product_mask(pixels: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 alpha in [0, 1]: everything but the white connected to the border, softened.

    White *inside* the product (a milk carton's label) stays product: the background is
    found by flooding from the border, not by colour alone.
    """
    ink = (255 - np.asarray(pixels, dtype=np.int16)).max(axis=2) > INK_LEVEL
    padded = Image.fromarray(np.pad(ink * 255, 1).astype(np.uint8), "L")
    padded = padded.filter(ImageFilter.MaxFilter(7))  # seal small gaps in the outline
    ImageDraw.floodfill(padded, (0, 0), 128)
    background = np.asarray(padded)[1:-1, 1:-1] == 128
    mask = Image.fromarray(np.where(background, 0, 255).astype(np.uint8), "L")
    mask = mask.filter(ImageFilter.MinFilter(7))  # undo the sealing's growth at the edge
    mask = mask.filter(ImageFilter.GaussianBlur(1.0))
    return np.asarray(mask, dtype=np.float32) / 255.0


def surface(rng: np.random.Generator, size: int) -> np.ndarray:
    """A procedural counter, shelf or crate surface: base colour, gradient, grain and noise."""
    base = rng.uniform(20, 235, size=3)
    if rng.random() < 0.5:  # most counters are grey-ish
        base = np.full(3, rng.uniform(25, 220)) + rng.uniform(-15, 15, size=3)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, math.pi)
    gradient = (np.cos(angle) * x + np.sin(angle) * y - 0.5) * rng.uniform(-60, 60)
    grain = np.sin((x * np.cos(angle) + y * np.sin(angle)) * rng.uniform(20, 120) + rng.uniform(0, 6.3))
    grain = grain * rng.uniform(0, 18) * (rng.random() < 0.5)
    noise = rng.normal(0, rng.uniform(2, 12), size=(size, size))
    out = base[None, None, :] + (gradient + grain + noise)[..., None]
    pixels: np.ndarray = np.clip(out, 0, 255).astype(np.uint8)
    return pixels


def _place(
    product: Image.Image, alpha: Image.Image, rng: np.random.Generator, size: int, config: ViewConfig, scale: float
) -> tuple[Image.Image, Image.Image]:
    """The product (and its alpha) rotated, tilted and scaled onto a transparent ``size`` canvas."""
    width, height = product.size
    factor = scale * size / max(width, height)
    new = (max(1, round(width * factor)), max(1, round(height * factor)))
    product, alpha = product.resize(new, Image.Resampling.BILINEAR), alpha.resize(new, Image.Resampling.BILINEAR)
    w, h = new
    t = config.max_tilt
    quad = [
        c + rng.uniform(-t, t) * s for c, s in ((0, w), (0, h), (0, w), (h, h), (w, w), (h, h), (w, w), (0, h))
    ]  # corners: UL, LL, LR, UR
    product = product.transform(new, Image.Transform.QUAD, quad, Image.Resampling.BILINEAR)
    alpha = alpha.transform(new, Image.Transform.QUAD, quad, Image.Resampling.BILINEAR)
    angle = rng.uniform(-config.max_rotation, config.max_rotation)
    return (
        product.rotate(angle, Image.Resampling.BILINEAR, expand=True),
        alpha.rotate(angle, Image.Resampling.BILINEAR, expand=True),
    )


def synthetic_view(
    pixels: np.ndarray, rng: np.random.Generator, size: int, config: ViewConfig = ViewConfig()
) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 store-like view of the studio photo ``pixels`` (H, W, 3 uint8)."""
    pixels = np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8))
    mask = product_mask(pixels)
    if mask.max() == 0:  # nothing but white: no product to cut out
        return letterbox(Image.fromarray(pixels, "RGB"), size)
    rows, cols = np.flatnonzero(mask.max(axis=1) > 0.5), np.flatnonzero(mask.max(axis=0) > 0.5)
    if len(rows) == 0 or len(cols) == 0:
        return letterbox(Image.fromarray(pixels, "RGB"), size)
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    product = Image.fromarray(pixels, "RGB").crop(box)
    alpha = Image.fromarray((mask * 255).astype(np.uint8), "L").crop(box)
    canvas = Image.fromarray(surface(rng, size), "RGB")
    copies = int(rng.integers(2, 5)) if rng.random() < config.pile_p else 1
    for _ in range(copies):
        scale = rng.uniform(*config.scale) / (1.0 if copies == 1 else math.sqrt(copies) * 0.8)
        item, item_alpha = _place(product, alpha, rng, size, config, scale)
        left = int(rng.integers(min(0, size - item.width), max(1, size - item.width + 1)))
        top = int(rng.integers(min(0, size - item.height), max(1, size - item.height + 1)))
        if rng.random() < config.shadow_p:
            shadow = item_alpha.filter(ImageFilter.GaussianBlur(rng.uniform(3, 8))).point(lambda v: int(v * 0.5))
            offset = (left + int(rng.integers(2, 9)), top + int(rng.integers(2, 9)))
            canvas.paste(Image.new("RGB", item.size, (0, 0, 0)), offset, shadow)
        canvas.paste(item, (left, top), item_alpha)
    out = np.asarray(canvas, dtype=np.float32)
    shift = rng.uniform(-config.max_temperature_shift, config.max_temperature_shift)
    out = out * rng.uniform(*config.light) * np.array([1 + shift, 1.0, 1 - shift], dtype=np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def catalogue_views(
    pixels: np.ndarray, count: int, size: int, seed: int = 0, config: ViewConfig = ViewConfig()
) -> list[np.ndarray]:
    """``count`` synthetic views of one studio photo, seeded by its pixels (same photo, same views)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    digest = hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).digest()
    rng = np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])
    return [synthetic_view(pixels, rng, size, config) for _ in range(count)]
