"""A reference image as served: its stored bytes, or a JPEG thumbnail of it, with a validator.

A reference image's bytes never change (image ids are never reused), so answers carry a strong
ETag, the image's SHA-256 (with the thumbnail size), and may be cached for long. Decoding and
resizing are CPU work: ``read_image`` is blocking and is called from a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass

from PIL import Image, ImageOps

from embedder.preprocess import ImageError, open_image
from gallery.gallery import Gallery

log = logging.getLogger(__name__)

THUMB_MIN, THUMB_MAX = 16, 1024  # accepted ``size`` (longest side, pixels)
THUMB_QUALITY = 85
CACHE_CONTROL = "private, max-age=31536000, immutable"
#: The answer depends on the key sent (a key without the role is refused): a shared cache must not
#: give one caller's copy to another with a different key, or none.
VARY = "X-API-Key, Authorization"


@dataclass(frozen=True)
class ServedImage:
    etag: str  # quoted, as in the header
    data: bytes | None  # None: the client's copy is current (304)
    media_type: str


def etag_for(data: bytes, size: int | None) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f'"{digest}-{size}"' if size else f'"{digest}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak or strong form, or ``*``)."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags or "*" in tags


def thumbnail(data: bytes, size: int, max_pixels: int) -> bytes:
    """A JPEG whose longest side is at most ``size`` (never enlarged), upright, alpha on white."""
    image = open_image(data, max_pixels=max_pixels)
    try:
        image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when it can
        image = ImageOps.exif_transpose(image) or image
        if image.mode in ("RGBA", "LA", "PA", "P"):
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image.convert("RGBA"))
        image = image.convert("RGB")
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=THUMB_QUALITY, optimize=True)
    except (OSError, ValueError) as exc:
        raise ImageError(f"could not make a thumbnail of the stored image ({len(data)} bytes): {exc}") from exc
    return out.getvalue()


def read_image(
    gallery: Gallery, sku: str, image_id: int, size: int | None, if_none_match: str | None, max_pixels: int
) -> ServedImage:
    """Blocking: the stored image (``size`` None) or its thumbnail; no body when ``if_none_match`` is current.
    A stored image that cannot be thumbnailed (too many pixels for ``max_pixels`` now, or damaged) is
    served as the stored file, with a warning logged."""
    data, media_type = gallery.read_image(sku, image_id)  # ImageNotFound, SkuNotFound
    tag = etag_for(data, size)
    if matches(if_none_match, tag):
        return ServedImage(tag, None, "image/jpeg" if size else media_type)
    if size is None:
        return ServedImage(tag, data, media_type)
    try:
        return ServedImage(tag, thumbnail(data, size, max_pixels), "image/jpeg")
    except (ImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        # Stored when the limits were wider (max_pixels lowered since), or damaged on disk: a GET has
        # no body to blame, so no 4xx; the stored file itself, under its own validator.
        log.warning("image %s of SKU %r: no thumbnail (%s); serving the stored file", image_id, sku, exc)
        original = etag_for(data, None)
        return ServedImage(original, None if matches(if_none_match, original) else data, media_type)
