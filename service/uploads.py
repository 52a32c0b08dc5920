"""Reading images out of requests: a multipart field, or a raw ``image/*`` body."""

from __future__ import annotations

import asyncio
import os
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from fastapi import Request
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


_DISPOSITION = re.compile(r'form-data(?:; ?(name|filename)="([^"\\\r\n]*)")+', re.IGNORECASE)
_DISPOSITION_PARAM = re.compile(r'; ?(name|filename)="([^"\\\r\n]*)"', re.IGNORECASE)
_BOUNDARY = re.compile(
    r'multipart/form-data; ?boundary=(?:"([0-9A-Za-z\'()+_,./:=?-]{1,70})"|([0-9A-Za-z\'()+_,./:=?-]{1,70}))',
    re.IGNORECASE,
)


def single_file_part(body: bytes, content_type: str, field: str) -> tuple[bytes, str, str] | None:
    """The file of a multipart body that holds exactly one part, a file in ``field``, in the plain form
    every client sends (quoted ``name`` and ``filename``, at most a ``Content-Type`` beside it): its
    bytes, declared media type and file name. ``None`` for anything else, which python-multipart then parses
    (the same answer for these bodies at a tenth of the CPU: bench/README round 5).
    """
    m = _BOUNDARY.fullmatch(content_type.strip())
    if m is None:
        return None
    delimiter = b"--" + (m.group(1) or m.group(2)).encode()
    if not body.startswith(delimiter + b"\r\n"):
        return None
    head_end = body.find(b"\r\n\r\n", len(delimiter) + 2)
    if head_end < 0:
        return None
    params: dict[str, str] = {}
    declared = ""
    try:
        lines = body[len(delimiter) + 2 : head_end].decode("ascii").split("\r\n")
    except UnicodeDecodeError:
        return None
    for line in lines:
        name, colon, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if not colon or name in params:
            return None
        if name == "content-disposition" and _DISPOSITION.fullmatch(value) and not params:
            found = _DISPOSITION_PARAM.findall(value[len("form-data") :])
            params = {key.lower(): text for key, text in found}
            if len(params) != len(found):  # a parameter given twice
                return None
        elif name == "content-type" and not declared:
            declared = value
        else:
            return None
    if params.get("name") != field or not params.get("filename"):
        return None
    start = head_end + 4
    end = body.find(b"\r\n" + delimiter, start)
    if end < 0 or body[end + 2 + len(delimiter) :] not in (b"--", b"--\r\n"):
        return None  # another part follows, or something after the closing delimiter
    return body[start:end], _media_type(declared), params["filename"]


async def read_images(request: Request, settings: Settings, field: str, single: bool) -> list[tuple[bytes, str]]:
    """``(bytes, declared media type)`` of each image, from multipart ``field`` or a raw image body."""
    content_type = _media_type(request.headers.get("content-type"))
    if content_type == "multipart/form-data":
        if single:  # one file part: read without building a form (python-multipart parses the rest)
            try:
                body = await request.body()
            except RuntimeError:  # the route parsed the form already (checkout): the stream is read, the form kept
                body = b""
            part = single_file_part(body, request.headers["content-type"], field) if body else None
            if part is not None:
                data, declared, filename = part
                _check_declared_type(declared, f"part {filename!r}")
                return [(data, declared)]
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


#: Decoding threads of the recognise routes: a plain executor is a lighter hand-off than AnyIO's thread
#: pool (about 12 us less CPU per request, bench/README round 5); as many as there are cores.
_DECODERS = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="decode")


def _decode_stacked(images: list[bytes], size: int, max_pixels: int) -> np.ndarray:
    """``(n, size, size, 3)``: one image as a view of its own pixels (no copy), several stacked."""
    decoded = decode_all(images, size, max_pixels)
    if len(decoded) == 1:
        return decoded[0].pixels[np.newaxis]
    return np.stack([d.pixels for d in decoded])


async def decode_images(images: list[tuple[bytes, str]], size: int, max_pixels: int) -> np.ndarray:
    """Decode queries off the event loop; all or nothing (one bad image fails the request)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_DECODERS, _decode_stacked, [data for data, _ in images], size, max_pixels)
