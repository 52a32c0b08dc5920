"""One preprocessing function for training and serving alike.

Aspect ratio: the image is *letterboxed*. It is scaled so that its longer side
is ``size`` pixels and the shorter side is padded symmetrically with mid-grey
(128, 128, 128). Nothing of the product is cropped away and nothing is
stretched, so a tall milk carton and a round melon keep their shapes.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

logger = logging.getLogger(__name__)

#: Formats accepted from clients (Pillow format names) and the media type each is stored and served
#: as: the one map from format to media type. GIF and WebP: first frame.
MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
}
ACCEPTED_FORMATS = tuple(MEDIA_TYPES)
ACCEPTED_MEDIA_TYPES = tuple(dict.fromkeys(MEDIA_TYPES.values()))
#: File name suffixes taken for images (bulk enrolment, evaluation folders): the one list.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 40_000_000
PAD_VALUE = 128


def configure_pixel_limit(max_pixels: int) -> None:
    """Tie Pillow's process-wide decompression-bomb bound to the ``max_pixels`` setting (finite, always).

    ``open_image`` checks the declared size itself (with a message that gives it) before decoding;
    Pillow's own guard stays on behind it (a warning above ``max_pixels``, an error above twice
    that), for every image this process opens, and is reported as ``ImageTooLarge`` here.
    """
    if not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    Image.MAX_IMAGE_PIXELS = max_pixels


configure_pixel_limit(DEFAULT_MAX_PIXELS)


class ImageError(ValueError):
    """The bytes are not a usable image (corrupt, truncated, empty, ...)."""


class UnsupportedImage(ImageError):
    """The bytes are an image, but of a format skulens does not accept."""


class ImageTooLarge(ImageError):
    """The image declares more pixels than allowed (decompression-bomb guard)."""


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open and check the header only: format and pixel count, before decoding."""
    if not data:
        raise ImageError("received 0 bytes; expected an image file (JPEG, PNG, WebP, BMP, GIF or TIFF)")
    try:
        image = Image.open(io.BytesIO(data), formats=None)
    except Image.DecompressionBombError as exc:  # Pillow's guard fired first: it gives the pixel count
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{declared.group(1)} pixels" if declared else "more pixels than the decompression-bomb bound"
        raise ImageTooLarge(f"image declares {size}; at most {max_pixels} are accepted") from None
    except Exception as exc:  # Pillow raises many types for garbage input
        head = data[:8].hex()
        raise ImageError(
            f"could not read an image from {len(data)} bytes (starting {head}); "
            f"expected one of {', '.join(ACCEPTED_FORMATS)}"
        ) from exc
    if image.format not in ACCEPTED_FORMATS:
        raise UnsupportedImage(
            f"image format {image.format!r} is not accepted; accepted: {', '.join(ACCEPTED_FORMATS)}"
        )
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(f"image has an empty size {width}x{height}")
    if width * height > max_pixels:
        raise ImageTooLarge(f"image is {width}x{height} = {width * height} pixels; at most {max_pixels} are accepted")
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float32)
        top = 65535.0 if mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        array = np.clip(array * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(array, mode="L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX ...


def letterbox_size(width: int, height: int, size: int) -> tuple[int, int]:
    """The size of a ``width`` x ``height`` image inside the letterbox: its longer side ``size``."""
    scale = size / max(width, height)
    return max(1, min(size, round(width * scale))), max(1, min(size, round(height * scale)))


def letterbox(image: Image.Image, size: int, target: tuple[int, int] | None = None) -> np.ndarray:
    """Scale the longer side to ``size`` and pad the rest with mid-grey; uint8 HxWx3.

    ``target``: the scaled size when ``image`` is a reduced decode (JPEG draft) of a larger
    original, computed from the original's size (as it would be from the full decode).
    """
    width, height = image.size
    new_w, new_h = target or letterbox_size(width, height, size)
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if (new_w, new_h) == (size, size):
        return np.asarray(image, dtype=np.uint8)
    canvas = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = np.asarray(image, dtype=np.uint8)
    return canvas


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # (size, size, 3) uint8
    format: str  # Pillow's format name, e.g. "JPEG"
    width: int  # as stored in the file
    height: int

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


def load_image(data: bytes, size: int = 224, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes into a ``(size, size, 3)`` uint8 RGB array (see ``decode_image``)."""
    return decode_image(data, size, max_pixels).pixels


def decode_image(data: bytes, size: int = 224, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode image bytes into a ``(size, size, 3)`` uint8 RGB array, letterboxed.

    EXIF orientation is applied; grayscale, palette, RGBA, CMYK and 16-bit
    images are converted to 8-bit RGB; animated GIF/WebP use their first frame.
    A JPEG much larger than ``size`` is decoded at a reduced scale (draft mode).
    Raises ``ImageError`` (or a subclass) with a message that says what was received.
    """
    image = open_image(data, max_pixels=max_pixels)
    file_format, (width, height) = image.format, image.size
    assert file_format is not None  # open_image accepts only the formats of MEDIA_TYPES
    try:
        target = letterbox_size(width, height, size)
        if image.format in ("JPEG", "MPO"):
            # DCT scaling: decode at 1/2, 1/4 or 1/8 while both sides stay at least the letterboxed
            # size (asking for size x size would keep a long, narrow photo at full scale)
            image.draft("RGB", target)
        image.seek(0)
        image.load()
        loaded = image.size
        try:
            ImageOps.exif_transpose(image, in_place=True)  # no copy when there is nothing to turn
        except Exception:  # noqa: BLE001 - malformed EXIF (many types): keep the pixels, skip orientation
            logger.info("ignoring malformed EXIF orientation")
        if image.size != loaded:  # turned a quarter: the target turns with it
            target = (target[1], target[0])
        return DecodedImage(letterbox(_to_rgb(image), size, target), file_format, width, height)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(
            f"could not decode the {file_format} image ({width}x{height}, {len(data)} bytes): {exc}"
        ) from exc


def load_image_file(path: str, size: int = 224, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    with open(path, "rb") as handle:
        return load_image(handle.read(), size=size, max_pixels=max_pixels)
