"""The "other day" condition: a fixed, seeded shift of each query photo, for the fold protocol.

The held-back benchmark's photos were taken on other days than the gallery's: other light
(colour temperature, exposure), other cameras (blur, JPEG quality), other framing (scale,
rotation) and other clutter (a hand or a neighbour covering part of the product). Each
query gets one draw of every shift, seeded by (seed, query index), so every model is
measured on exactly the same shifted photos. Pure PIL/NumPy on letterboxed uint8 pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from embedder.preprocess import PAD_VALUE, letterbox
from training.augment import color_temperature, gamma, jpeg_recompress


@dataclass(frozen=True)
class ShiftConfig:
    temperature: float = 0.15  # red/blue gain shift drawn from [-t, t]
    gamma: tuple[float, float] = (0.6, 1.6)  # exposure, drawn log-uniformly
    blur_p: float = 0.5
    blur_radius: tuple[float, float] = (0.5, 2.0)  # at 224 px
    jpeg_quality: tuple[int, int] = (30, 85)
    scale: tuple[float, float] = (0.6, 1.0)  # the product's share of the frame's side
    max_rotation: float = 20.0
    occlusion_p: float = 0.5
    occlusion_area: tuple[float, float] = (0.05, 0.2)


def shift_one(pixels: np.ndarray, rng: np.random.Generator, config: ShiftConfig = ShiftConfig()) -> np.ndarray:
    """One shifted copy of a ``(size, size, 3)`` uint8 query."""
    size = pixels.shape[0]
    image = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    image = color_temperature(image, rng.uniform(-config.temperature, config.temperature))
    image = gamma(image, float(np.exp(rng.uniform(np.log(config.gamma[0]), np.log(config.gamma[1])))))
    angle = rng.uniform(-config.max_rotation, config.max_rotation)
    image = image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(PAD_VALUE,) * 3)
    scale = rng.uniform(*config.scale)
    if scale < 1.0:  # farther away: the product smaller in a frame of the same size
        inner = max(1, round(size * scale))
        canvas = Image.new("RGB", (size, size), (PAD_VALUE,) * 3)
        canvas.paste(
            image.resize((inner, inner), Image.Resampling.BILINEAR),
            (int(rng.integers(0, size - inner + 1)), int(rng.integers(0, size - inner + 1))),
        )
        image = canvas
    if rng.random() < config.blur_p:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(*config.blur_radius) * size / 224))
    out = np.asarray(image, dtype=np.uint8).copy()
    if rng.random() < config.occlusion_p:  # a flat-coloured object over part of the product
        area = rng.uniform(*config.occlusion_area) * size * size
        h = int(np.clip(np.sqrt(area * rng.uniform(0.5, 2.0)), 1, size - 1))
        w = int(np.clip(area / h, 1, size - 1))
        top, left = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
        out[top : top + h, left : left + w] = rng.integers(0, 256, size=3, dtype=np.uint8)
    quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    return letterbox(jpeg_recompress(Image.fromarray(out, "RGB"), quality), size)


def drawn_scales(count: int, seed: int = 0, config: ShiftConfig = ShiftConfig()) -> np.ndarray:
    """The scale ``other_day`` drew for each of ``count`` queries: ``shift_one``'s fourth draw (after
    temperature, exposure and rotation), from the same per-query generator. For breaking a figure down
    by how small the product was in the shifted frame (``training.scale_study``)."""
    scales = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        rng.uniform(-config.temperature, config.temperature)
        rng.uniform(np.log(config.gamma[0]), np.log(config.gamma[1]))
        rng.uniform(-config.max_rotation, config.max_rotation)
        scales.append(rng.uniform(*config.scale))
    return np.asarray(scales, np.float64)


def other_day(pixels: np.ndarray, seed: int = 0, config: ShiftConfig = ShiftConfig()) -> np.ndarray:
    """The shifted copy of every query in ``pixels`` ((n, size, size, 3) uint8); same shape."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"expected (n, size, size, 3) uint8 pixels, got shape {pixels.shape} dtype {pixels.dtype}")
    return (
        np.stack([shift_one(p, np.random.default_rng([seed, i]), config) for i, p in enumerate(pixels)])
        if len(pixels)
        else pixels.copy()
    )
