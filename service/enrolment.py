"""The one enrolment pipeline, for ``POST /v1/skus/{sku}/images`` and ``skulens enrol`` alike:
decode each photo (the original bytes are what is stored), build what to embed (the photo and,
for a studio packshot, its catalogue views: ``gallery.references``), embed, commit.

Embedding is the caller's: the HTTP route hands the pixels to the micro-batcher, the command
line calls the embedder itself. Everything here blocks (call it from a worker thread), but
``enrol_through_batcher``, the HTTP route's sequence, which runs each step off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from starlette.concurrency import run_in_threadpool

from embedder.preprocess import decode_image
from gallery.blobs import sha256_of
from gallery.gallery import Gallery, ImageUpload
from gallery.references import ReferenceBatch, reference_batch
from gallery.stores.base import AddedImages

if TYPE_CHECKING:
    from service.deps import AppState


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


@dataclass(frozen=True)
class Dedup:
    """Photos of one enrolment sorted into those already stored for the SKU and those to store."""

    digests: list[str]  # per photo posted, its content's SHA-256
    known: dict[str, int]  # digest → id of the reference image of this SKU that already has it
    fresh: list[DecodedUpload]  # to store: each new content once, in posted order

    def result(self, added: AddedImages | None = None) -> EnrolResult:
        """``added``: what ``commit`` stored of ``fresh`` (None when nothing was fresh). A fresh photo
        that another worker stored first (between ``dedup`` and the commit) is already present too:
        ``add_images`` found it inside its transaction and did not create it."""
        added = added if added is not None else AddedImages()
        ids = {**self.known, **dict(zip([sha256_of(d.upload.data) for d in self.fresh], added, strict=True))}
        before = {self.known[d] for d in self.digests if d in self.known} | (set(added) - added.created)
        return EnrolResult([ids[d] for d in self.digests], sorted(before))


@dataclass(frozen=True)
class EnrolResult:
    image_ids: list[int]  # one per photo posted, in order
    already_present: list[int]  # of those, the reference images that were there before (stored once)


def dedup(gallery: Gallery, sku: str, decoded: list[DecodedUpload]) -> Dedup:
    """Every enrolment path is idempotent: content already a reference image of ``sku`` is reported,
    not embedded or stored again (``CatalogStore.add_images`` checks again inside its transaction)."""
    digests = [sha256_of(d.upload.data) for d in decoded]
    known = gallery.store.existing_images(sku, digests)
    fresh, seen = [], set(known)
    for digest, item in zip(digests, decoded, strict=True):
        if digest not in seen:
            seen.add(digest)
            fresh.append(item)
    return Dedup(digests, known, fresh)


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


def commit(gallery: Gallery, sku: str, prepared: Prepared, vectors: np.ndarray, name: str | None = None) -> AddedImages:
    """Store the photos with their vectors (one reference image each, its views as extra rows); the
    ids, and which of them this commit created (``CatalogStore.add_images``)."""
    ids = gallery.enrol(sku, prepared.uploads, prepared.batch.split(np.asarray(vectors, np.float32)), name=name)
    if not isinstance(ids, AddedImages):  # Gallery.enrol hands add_images' answer over as it is
        raise TypeError(
            f"Gallery.enrol answered a {type(ids).__name__}, not CatalogStore.add_images' AddedImages: "
            "which photos were new is unknown"
        )
    return ids


async def enrol_through_batcher(state: AppState, sku: str, images: list[bytes], name: str | None) -> EnrolResult:
    """The HTTP route's enrolment: blocking steps in worker threads, inference through the micro-batcher."""
    settings = state.settings
    decoded = await run_in_threadpool(decode_all, images, state.embedder.input_size, settings.max_pixels)
    await run_in_threadpool(state.gallery.check_model)  # fail fast, before inference
    sorted_out = await run_in_threadpool(dedup, state.gallery, sku, decoded)
    if not sorted_out.fresh:  # all already there: nothing to embed or store
        return sorted_out.result()
    prepared = await run_in_threadpool(prepare, sorted_out.fresh, settings.catalogue_views)
    step = settings.max_images_per_request  # a photo's views are rows too: never more than the queue holds
    vectors = [
        await state.batcher.submit(prepared.pixels[start : start + step])
        for start in range(0, len(prepared.pixels), step)
    ]
    ids = await run_in_threadpool(commit, state.gallery, sku, prepared, np.concatenate(vectors), name)
    return sorted_out.result(ids)
