"""Reading images out of requests: a multipart field, or a raw ``image/*`` body."""

from __future__ import annotations

import numpy as np
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from embedder.preprocess import ACCEPTED_MEDIA_TYPES
from service.enrolment import decode_all
from service.errors import ApiError
from service.settings import Settings

GENERIC_TYPES = ("application/octet-stream", "")


def _media_type(header: str | None) -> str:
    return (header or "").split(";")[0].strip().lower()


def _check_declared_type(media_type: str, what: str) -> None:
    if media_type in GENERIC_TYPES or media_type.startswith("image/"):
        return
    raise ApiError(
        415,
        "unsupported_media_type",
        f"{what} has content type {media_type!r}; accepted: {', '.join(ACCEPTED_MEDIA_TYPES)} "
        "(or application/octet-stream)",
    )


async def read_images(request: Request, settings: Settings, field: str, single: bool) -> list[tuple[bytes, str]]:
    """``(bytes, declared media type)`` of each image, from multipart ``field`` or a raw image body."""
    content_type = _media_type(request.headers.get("content-type"))
    if content_type == "multipart/form-data":
        form = await request.form(
            max_files=settings.max_images_per_request, max_fields=16, max_part_size=settings.max_upload_bytes
        )
        parts = form.getlist(field)
        files = [p for p in parts if isinstance(p, UploadFile)]
        if not files:
            raise ApiError(
                422,
                "missing_image",
                f"multipart field {field!r} with an image file is required; received fields {sorted(form.keys())}",
            )
        if single and len(files) > 1:
            raise ApiError(
                422,
                "too_many_images",
                f"expected one image in field {field!r}, received {len(files)}; use /v1/recognize/batch for several",
            )
        images = []
        for upload in files:
            declared = _media_type(upload.content_type)
            _check_declared_type(declared, f"part {upload.filename or field!r}")
            images.append((await upload.read(), declared))
        return images
    if single and (content_type.startswith("image/") or content_type == "application/octet-stream"):
        _check_declared_type(content_type, "the request body")
        return [(await request.body(), content_type)]
    accepted = f"multipart/form-data with field {field!r}" + (", or a raw image/* body" if single else "")
    raise ApiError(
        415, "unsupported_media_type", f"request content type {content_type or 'none'!r}; accepted: {accepted}"
    )


async def decode_images(images: list[tuple[bytes, str]], size: int, max_pixels: int) -> np.ndarray:
    """Decode queries off the event loop; all or nothing (one bad image fails the request)."""
    decoded = await run_in_threadpool(decode_all, [data for data, _ in images], size, max_pixels)
    return np.stack([d.pixels for d in decoded])
