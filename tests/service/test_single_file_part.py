"""service.uploads.single_file_part: the plain one-file multipart body is read directly; anything else
is left to python-multipart (``None``), never read differently."""

from __future__ import annotations

import httpx
import pytest

from service.uploads import single_file_part

JPEG = b"\xff\xd8\xff\xe0 pretend jpeg \r\n--not-the-boundary \r\n\r\n end"


def encoded(files: list[tuple[str, tuple[str, bytes, str]]], data: dict[str, str] | None = None) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x/", files=files, data=data)
    return request.read(), request.headers["content-type"]


def test_the_body_httpx_and_curl_send_is_read_exactly() -> None:
    body, content_type = encoded([("image", ("crop.jpg", JPEG, "image/jpeg"))])
    assert single_file_part(body, content_type, "image") == (JPEG, "image/jpeg", "crop.jpg")


@pytest.mark.parametrize(
    "change",
    [
        "other field name",
        "a text field too",
        "two files",
        "no filename",
        "a preamble",
        "epilogue",
        "unknown header",
        "filename*",
        "no closing delimiter",
        "non-ascii header",
        "not multipart",
    ],
)
def test_anything_else_is_left_to_python_multipart(change: str) -> None:
    body, content_type = encoded([("image", ("crop.jpg", JPEG, "image/jpeg"))])
    boundary = content_type.split("boundary=")[1]
    field = "image"
    if change == "other field name":
        field = "photo"
    elif change == "a text field too":
        body, content_type = encoded([("image", ("crop.jpg", JPEG, "image/jpeg"))], data={"lane": "3"})
    elif change == "two files":
        body, content_type = encoded(
            [("image", ("a.jpg", JPEG, "image/jpeg")), ("image", ("b.jpg", JPEG, "image/jpeg"))]
        )
    elif change == "no filename":
        body = body.replace(b'; filename="crop.jpg"', b"")
    elif change == "a preamble":
        body = b"preamble\r\n" + body
    elif change == "epilogue":
        body += b"epilogue"
    elif change == "unknown header":
        body = body.replace(b"Content-Type: image/jpeg", b"Content-Type: image/jpeg\r\nX-Other: 1")
    elif change == "filename*":
        body = body.replace(b'filename="crop.jpg"', b"filename*=UTF-8''cr%C3%B6p.jpg")
    elif change == "no closing delimiter":
        body = body[: body.rindex(f"--{boundary}--".encode())]
    elif change == "non-ascii header":
        body = body.replace(b"crop.jpg", "cröp.jpg".encode())
    elif change == "not multipart":
        content_type = "image/jpeg"
    assert single_file_part(body, content_type, field) is None
