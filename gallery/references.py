"""A reference image's vectors: the photo's own, then, for a studio packshot on white, those of its
synthetic catalogue views (``embedder.catalogue_views``), stored as views of that one image.

Enrolment (HTTP and ``skulens enrol``) and re-indexing both build what to embed here, so a
re-index reproduces exactly the views an enrolment stored (the views are deterministic per photo).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embedder.catalogue_views import catalogue_views, is_studio_photo

DEFAULT_VIEWS = 8  # the catalogue_views setting's default


def reference_pixels(pixels: np.ndarray, views: int) -> np.ndarray:
    """``(1 + v, s, s, 3)``: the decoded photo ``(s, s, 3)`` first, then ``views`` synthetic views of it
    when it is a studio photo (``v = views``), else none (``v = 0``)."""
    pixels = np.asarray(pixels, dtype=np.uint8)
    if views > 0 and is_studio_photo(pixels):
        return np.stack([pixels, *catalogue_views(pixels, views, pixels.shape[0])])
    return pixels[None]


@dataclass(frozen=True)
class ReferenceBatch:
    """What to embed for some reference images, in one array, and how many rows each one has."""

    pixels: np.ndarray  # (rows, s, s, 3)
    rows: tuple[int, ...]  # per image: 1 (the photo) + its views

    def split(self, vectors: np.ndarray) -> list[np.ndarray]:
        """The embedded rows, back per image: one ``(k, dim)`` array each, the photo's row first."""
        if len(vectors) != len(self.pixels):
            raise ValueError(f"expected {len(self.pixels)} vectors, got {len(vectors)}")
        bounds = np.cumsum((0, *self.rows))
        return [vectors[start:end] for start, end in itertools.pairwise(bounds)]


def reference_batch(images: Sequence[np.ndarray], views: int) -> ReferenceBatch:
    """The pixels to embed for decoded photos ``images`` (each ``(s, s, 3)``) with up to ``views`` views each."""
    if not images:
        raise ValueError("no images")
    parts = [reference_pixels(pixels, views) for pixels in images]
    return ReferenceBatch(np.concatenate(parts), tuple(len(p) for p in parts))
