"""Checkout-domain augmentation on uint8 images (PIL/NumPy), deterministic given a seed.

A checkout camera sends crops that are off-centre, tilted, dim or over-exposed,
motion-blurred, heavily JPEG-compressed and sometimes tiny. Each transform here
imitates one of those. Input and output: ``(size, size, 3)`` uint8, the
letterboxed pixels of ``embedder.preprocess`` — crops are letterboxed again with
the same function, so an augmented view still looks like something serving sends.
PIL is used rather than tf.image because it is what the serving path decodes
with, and because these run in tf.data worker threads (PIL releases the GIL).
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from embedder.preprocess import PAD_VALUE, letterbox


@dataclass(frozen=True)
class AugmentConfig:
    crop_p: float = 0.8
    crop_scale: tuple[float, float] = (0.45, 1.0)  # fraction of the image area kept
    crop_ratio: tuple[float, float] = (0.75, 1.333)
    hflip_p: float = 0.5
    vflip_p: float = 0.0
    rotate_p: float = 0.5
    max_rotation: float = 15.0  # degrees
    color_p: float = 0.8
    brightness: float = 0.35  # factor drawn from [1 - b, 1 + b]
    contrast: float = 0.3
    saturation: float = 0.3
    blur_p: float = 0.2
    max_blur_radius: float = 2.0
    lowres_p: float = 0.2
    lowres_side: tuple[int, int] = (40, 112)  # longest side before scaling back up
    jpeg_p: float = 0.4
    jpeg_quality: tuple[int, int] = (25, 90)
    # Light of another day: colour temperature (per-channel gains, blue<->amber) and exposure (gamma).
    # Off (0) by default so earlier configs train as they did.
    temperature_p: float = 0.0
    max_temperature_shift: float = 0.15  # red gain 1 + s, blue gain 1 - s, s drawn from [-m, m]
    gamma_p: float = 0.0
    gamma_range: tuple[float, float] = (0.7, 1.4)
    # Random erasing (Zhong et al. 2020): a rectangle of random noise, imitating a hand or another product.
    erase_p: float = 0.0
    erase_area: tuple[float, float] = (0.02, 0.25)
    # Farther away: the photo shrunk to a fraction of its side on a padded canvas. The crop above only
    # ever zooms in, so without this a product small in the frame is never seen. Off (0) by default.
    zoom_out_p: float = 0.0
    zoom_out_scale: tuple[float, float] = (0.5, 1.0)  # the shrunk photo's side / the frame's side

    def __post_init__(self) -> None:
        low, high = self.zoom_out_scale
        if not 0 < low <= high <= 1:
            raise ValueError(
                f"zoom_out_scale must be (low, high) with 0 < low <= high <= 1, got {self.zoom_out_scale!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AugmentConfig:
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown augmentation settings {sorted(unknown)}")
        settings: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**settings)


def random_resized_crop(
    image: Image.Image, rng: np.random.Generator, scale: tuple[float, float], ratio: tuple[float, float]
) -> Image.Image:
    """A crop of random area and aspect ratio (Inception-style); the whole image after 10 failed draws."""
    width, height = image.size
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return image.crop((left, top, left + w, top + h))
    return image


def jpeg_recompress(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def low_resolution(image: Image.Image, side: int) -> Image.Image:
    """Down to ``side`` px on the longer side and back up: the detail of a small, far-away crop."""
    width, height = image.size
    scale = side / max(width, height)
    if scale >= 1:
        return image
    small = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR)
    return small.resize((width, height), Image.Resampling.BILINEAR)


def zoom_out(image: Image.Image, scale: float, rng: np.random.Generator) -> Image.Image:
    """``image`` shrunk by ``scale`` (0 < scale <= 1) at a random place on a padded canvas of its own size."""
    if not 0 < scale <= 1:
        raise ValueError(f"zoom-out scale must be in (0, 1], got {scale!r}")
    width, height = image.size
    inner = (max(1, round(width * scale)), max(1, round(height * scale)))
    canvas = Image.new("RGB", (width, height), (PAD_VALUE,) * 3)
    left = int(rng.integers(0, width - inner[0] + 1))
    top = int(rng.integers(0, height - inner[1] + 1))
    canvas.paste(image.resize(inner, Image.Resampling.BILINEAR), (left, top))
    return canvas


def color_temperature(image: Image.Image, shift: float) -> Image.Image:
    """Warmer (``shift`` > 0: more red, less blue) or cooler light."""
    gains = np.array([1.0 + shift, 1.0, 1.0 - shift], dtype=np.float32)
    out = np.asarray(image, dtype=np.float32) * gains
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")


def gamma(image: Image.Image, value: float) -> Image.Image:
    """Exposure change through a gamma curve (< 1 brighter, > 1 darker)."""
    table = [round(255 * (i / 255) ** value) for i in range(256)] * 3
    return image.point(table)


def random_erase(pixels: np.ndarray, rng: np.random.Generator, area: tuple[float, float]) -> np.ndarray:
    """A copy of ``pixels`` with one rectangle (``area`` fraction of the image) set to uniform noise."""
    height, width = pixels.shape[:2]
    for _ in range(10):
        target = height * width * rng.uniform(*area)
        aspect = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
        h, w = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < h < height and 0 < w < width:
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            out = pixels.copy()
            out[top : top + h, left : left + w] = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            return out
    return pixels


def augment(pixels: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """One random checkout-like view of ``pixels`` ((size, size, 3) uint8), same shape and dtype."""
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 pixels, got shape {pixels.shape} dtype {pixels.dtype}")
    size = pixels.shape[0]
    image = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    if rng.random() < config.crop_p:
        image = random_resized_crop(image, rng, config.crop_scale, config.crop_ratio)
    if rng.random() < config.hflip_p:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < config.vflip_p:
        image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if rng.random() < config.rotate_p:
        angle = rng.uniform(-config.max_rotation, config.max_rotation)
        image = image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(PAD_VALUE,) * 3)
    if config.zoom_out_p and rng.random() < config.zoom_out_p:  # no draw when off: earlier runs unchanged
        image = zoom_out(image, rng.uniform(*config.zoom_out_scale), rng)
    if rng.random() < config.color_p:
        for enhancer, amount in (
            (ImageEnhance.Brightness, config.brightness),
            (ImageEnhance.Contrast, config.contrast),
            (ImageEnhance.Color, config.saturation),
        ):
            image = enhancer(image).enhance(rng.uniform(1 - amount, 1 + amount))
    if rng.random() < config.temperature_p:
        image = color_temperature(image, rng.uniform(-config.max_temperature_shift, config.max_temperature_shift))
    if rng.random() < config.gamma_p:
        image = gamma(image, rng.uniform(*config.gamma_range))
    if rng.random() < config.blur_p:
        image = image.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.3, config.max_blur_radius)))
    if rng.random() < config.lowres_p:
        image = low_resolution(image, int(rng.integers(config.lowres_side[0], config.lowres_side[1] + 1)))
    if rng.random() < config.jpeg_p:
        image = jpeg_recompress(image, int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)))
    out = letterbox(image, size)
    if rng.random() < config.erase_p:
        out = random_erase(out, rng, config.erase_area)
    return out


def view_rng(seed: int, *keys: int) -> np.random.Generator:
    """The generator of one view, from the run seed and e.g. (epoch, position): independent of thread order."""
    return np.random.default_rng([seed, *keys])
