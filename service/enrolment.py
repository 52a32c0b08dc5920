"""The one enrolment pipeline, for ``POST /v1/skus/{sku}/images`` and ``skulens enrol`` alike:
decode each photo (the original bytes are what is stored), build what to embed (the photo and,
for a studio packshot, its catalogue views: ``gallery.references``), embed, commit.

Embedding is the caller's: the HTTP route hands the pixels to the micro-batcher, the command
line calls the embedder itself. Everything here blocks (call it from a worker thread).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedder.preprocess import decode_image
from gallery.gallery import Gallery, ImageUpload
from gallery.references import ReferenceBatch, reference_batch


@dataclass(frozen=True)
class DecodedUpload:
    pixels: np.ndarray  # (s, s, 3) uint8, letterboxed
    upload: ImageUpload  # the original bytes, their media type and size


@dataclass(frozen=True)
class Prepared:
    """Photos of one enrolment, ready to embed."""

    uploads: list[ImageUpload]
    batch: ReferenceBatch

    @property
    def pixels(self) -> np.ndarray:
        return self.batch.pixels


def decode_upload(data: bytes, size: int, max_pixels: int) -> DecodedUpload:
    """Decode one photo; raises ``ImageError`` (or a subclass) saying what was received."""
    decoded = decode_image(data, size=size, max_pixels=max_pixels)
    return DecodedUpload(decoded.pixels, ImageUpload(data, decoded.media_type, decoded.width, decoded.height))


def decode_all(images: list[bytes], size: int, max_pixels: int) -> list[DecodedUpload]:
    """All or nothing: the first bad photo fails the whole request, saying which one it was."""
    decoded = []
    for position, data in enumerate(images):
        try:
            decoded.append(decode_upload(data, size, max_pixels))
        except Exception as exc:
            if len(images) > 1:
                exc.args = (f"image {position + 1} of {len(images)}: {exc}",)
            raise
    return decoded


def prepare(decoded: list[DecodedUpload], views: int) -> Prepared:
    """What to embed: each photo, then its catalogue views when it is a studio photo and ``views`` > 0."""
    return Prepared([d.upload for d in decoded], reference_batch([d.pixels for d in decoded], views))


def commit(gallery: Gallery, sku: str, prepared: Prepared, vectors: np.ndarray, name: str | None = None) -> list[int]:
    """Store the photos with their vectors (one reference image each, its views as extra rows)."""
    return gallery.enrol(sku, prepared.uploads, prepared.batch.split(np.asarray(vectors, np.float32)), name=name)
