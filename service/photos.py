"""Whole photos (a counter photo, a lane's empty counter) decoded in full, upright.

Crops are letterboxed to the model's input (``embedder.preprocess``); a counter photo is kept at its
own size, with its EXIF orientation applied, so that boxes found in it are in its pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from embedder.preprocess import MEDIA_TYPES, ImageError, open_image


def decode_photo_typed(data: bytes, max_pixels: int) -> tuple[np.ndarray, str]:
    """``((H, W, 3) uint8 RGB upright, media type)``; ``ImageError`` (and its subclasses) if bad."""
    image = open_image(data, max_pixels=max_pixels)  # format and pixel count checked before decoding
    media_type = MEDIA_TYPES[image.format or ""]
    try:
        image.seek(0)
        image.load()
        image = ImageOps.exif_transpose(image) or image
        if image.mode in ("RGBA", "LA", "PA", "P"):
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image.convert("RGBA"))
        return np.asarray(image.convert("RGB"), dtype=np.uint8), media_type
    except Exception as exc:
        raise ImageError(
            f"could not decode the photo ({image.format}, {image.width}x{image.height}, {len(data)} bytes): {exc}"
        ) from exc


def decode_photo(data: bytes, max_pixels: int) -> np.ndarray:
    """The whole photo, ``(H, W, 3)`` uint8 RGB, upright (EXIF orientation applied); ``ImageError`` if bad."""
    return decode_photo_typed(data, max_pixels)[0]
