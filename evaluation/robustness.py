"""Query degradations for the robustness table, as in the fine-grained grocery literature.

Each condition maps letterboxed uint8 pixels ``(n, size, size, 3)`` to the same
shape and dtype, so it slots in between decoding and embedding. The numbers
are fixed (not random) so every model is measured on the very same queries:

* ``dark``: brightness x0.35 (a dim shelf or an underexposed camera);
* ``blurry``: Gaussian blur of radius 3 px at 224 px (scaled with the input size): motion or focus;
* ``low_res``: down to a longest side of 80 px, then back up (a far-away or cheap camera);
* ``partial``: a side crop keeping 60 % of the width (a hand or a neighbour hiding the product),
  the left or the right part by the image's ``variant`` (even: left), then letterboxed again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageFilter

from embedder.preprocess import letterbox

CLEAN = "clean"
DARK_FACTOR = 0.35
BLUR_RADIUS_AT_224 = 3.0
LOW_RES_SIDE = 80
PARTIAL_KEEP = 0.6


def _check(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.shape[-1] != 3 or pixels.shape[1] != pixels.shape[2]:
        raise ValueError(f"expected pixels of shape (n, size, size, 3), got {pixels.shape}")
    if pixels.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {pixels.dtype}")
    return pixels


def _per_image(
    pixels: np.ndarray, one: Callable[[Image.Image, int, int], Image.Image], variants: Sequence[int] | None
) -> np.ndarray:
    size = pixels.shape[1]
    variants = [0] * len(pixels) if variants is None else list(variants)
    if len(variants) != len(pixels):
        raise ValueError(f"{len(variants)} variants for {len(pixels)} images")
    out = np.empty_like(pixels)
    for i, (image, variant) in enumerate(zip(pixels, variants)):
        result = one(Image.fromarray(image, "RGB"), size, int(variant))
        out[i] = letterbox(result, size)
    return out


def dark(pixels: np.ndarray, variants: Sequence[int] | None = None) -> np.ndarray:
    pixels = _check(pixels)
    darker: np.ndarray = np.clip(np.rint(pixels.astype(np.float32) * DARK_FACTOR), 0, 255).astype(np.uint8)
    return darker


def blurry(pixels: np.ndarray, variants: Sequence[int] | None = None) -> np.ndarray:
    pixels = _check(pixels)
    radius = BLUR_RADIUS_AT_224 * pixels.shape[1] / 224.0
    return _per_image(pixels, lambda im, size, v: im.filter(ImageFilter.GaussianBlur(radius)), variants)


def low_res(pixels: np.ndarray, variants: Sequence[int] | None = None) -> np.ndarray:
    pixels = _check(pixels)

    def one(image: Image.Image, size: int, variant: int) -> Image.Image:
        small = min(LOW_RES_SIDE, size)
        return image.resize((small, small), Image.Resampling.BILINEAR, reducing_gap=2.0).resize(
            (size, size), Image.Resampling.BILINEAR
        )

    return _per_image(pixels, one, variants)


def partial(pixels: np.ndarray, variants: Sequence[int] | None = None) -> np.ndarray:
    pixels = _check(pixels)

    def one(image: Image.Image, size: int, variant: int) -> Image.Image:
        keep = max(1, round(size * PARTIAL_KEEP))
        left = 0 if variant % 2 == 0 else size - keep
        return image.crop((left, 0, left + keep, size))

    return _per_image(pixels, one, variants)


CONDITIONS: dict[str, Callable[..., np.ndarray]] = {
    "dark": dark,
    "blurry": blurry,
    "low_res": low_res,
    "partial": partial,
}


def apply_condition(name: str, pixels: np.ndarray, variants: Sequence[int] | None = None) -> np.ndarray:
    """Apply one named condition (``clean`` returns the pixels unchanged)."""
    if name == CLEAN:
        return _check(pixels)
    try:
        transform = CONDITIONS[name]
    except KeyError:
        raise ValueError(f"unknown robustness condition {name!r}; choose from {[CLEAN, *CONDITIONS]}") from None
    return transform(pixels, variants)
