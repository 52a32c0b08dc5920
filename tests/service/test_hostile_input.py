"""Hostile uploads and ids: each gets a 4xx with a clear message, the server stays up, nothing stored changes."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_jpeg


def png(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **kwargs)
    return buffer.getvalue()


def bomb_png(side: int = 20000) -> bytes:
    """A small file that declares side×side pixels (a decompression bomb)."""
    return png(Image.new("1", (side, side)))


def cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (64, 48), (10, 200, 30, 0)).save(buffer, format="JPEG")
    return buffer.getvalue()


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (40, 40), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buffer.getvalue()


def jpeg_with_bad_exif() -> bytes:
    data = make_jpeg(9)
    # splice an APP1 Exif segment whose TIFF header is garbage right after SOI
    bad = b"Exif\x00\x00" + b"MM\x00\x2a" + b"\xff" * 40
    return data[:2] + b"\xff\xe1" + (len(bad) + 2).to_bytes(2, "big") + bad + data[2:]


BAD_UPLOADS = {
    "zero bytes": (b"", "image/jpeg", 400),
    "text posing as jpeg": (b"GET / HTTP/1.1\r\n" * 20, "image/jpeg", 400),
    "html posing as png": (b"<html><script>alert(1)</script></html>", "image/png", 400),
    "truncated jpeg": (make_jpeg(3, size=(400, 300))[:1500], "image/jpeg", 400),
    "truncated png": (png(Image.new("RGB", (300, 300), (1, 2, 3)))[:60], "image/png", 400),
    "corrupt jpeg body": (make_jpeg(4)[:200] + bytes(range(256)) * 8, "image/jpeg", 400),
    "decompression bomb": (bomb_png(), "image/png", 413),
    "pdf": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", "application/pdf", 415),
    "ico": (None, "image/x-icon", 415),  # filled in below
}
_ico = io.BytesIO()
Image.new("RGB", (16, 16)).save(_ico, format="ICO")
BAD_UPLOADS["ico"] = (_ico.getvalue(), "image/x-icon", 415)

GOOD_ODDITIES = {
    "one pixel": png(Image.new("RGB", (1, 1), (9, 9, 9))),
    "extreme aspect": png(Image.new("RGB", (5000, 2), (9, 9, 9))),
    "16-bit png": png(Image.fromarray(np.full((30, 30), 40000, np.uint16))),
    "cmyk jpeg": cmyk_jpeg(),
    "animated gif": animated("GIF"),
    "animated webp": animated("WEBP"),
    "malformed exif": jpeg_with_bad_exif(),
    "grayscale": png(Image.new("L", (30, 30), 100)),
    "palette with transparency": png(Image.new("P", (30, 30)), transparency=0),
}


@pytest.fixture
def seeded(client):
    client.post("/v1/skus/milk/images", files=[("images", ("m.jpg", make_jpeg(1), "image/jpeg"))])
    return client


def stored(client):
    ready = client.get("/readyz").json()
    return ready["skus"], ready["reference_images"], client.get("/v1/skus").json()


@pytest.mark.parametrize("name", sorted(BAD_UPLOADS))
def test_bad_uploads_get_a_clear_4xx_and_change_nothing(seeded, name):
    data, media_type, status = BAD_UPLOADS[name]
    before = stored(seeded)
    for r in (
        seeded.post("/v1/recognize", content=data, headers={"Content-Type": media_type}),
        seeded.post("/v1/recognize", files={"image": ("x", data, media_type)}),
        seeded.post("/v1/skus/milk/images", files=[("images", ("x", data, media_type))]),
        seeded.post("/v1/skus/newsku/images", files=[("images", ("x", data, media_type))]),
    ):
        error = r.json()["error"]
        assert r.status_code == status, (name, r.status_code, error)
        assert len(error["message"]) > 20
    assert stored(seeded) == before
    assert seeded.post("/v1/recognize", files={"image": ("m.jpg", make_jpeg(1), "image/jpeg")}).json()["sku"] == "milk"


def test_error_messages_quote_what_was_received(seeded):
    r = seeded.post("/v1/recognize", content=b"%PDF-1.4", headers={"Content-Type": "application/pdf"})
    assert "application/pdf" in r.json()["error"]["message"]
    r = seeded.post("/v1/recognize", content=bomb_png(), headers={"Content-Type": "image/png"})
    message = r.json()["error"]["message"]
    assert "400000000 pixels" in message and "at most 40000000" in message


@pytest.mark.parametrize("name", sorted(GOOD_ODDITIES))
def test_odd_but_valid_images_are_accepted(seeded, name):
    r = seeded.post("/v1/recognize", files={"image": ("x", GOOD_ODDITIES[name], "image/png")})
    assert r.status_code == 200, r.json()
    r = seeded.post(
        f"/v1/skus/odd-{name.replace(' ', '-')}/images", files=[("images", ("x", GOOD_ODDITIES[name], "image/png"))]
    )
    assert r.status_code == 201, r.json()


def test_body_over_the_limit_is_413_declared_or_streamed(make_client):
    client = make_client(max_upload_bytes=50_000)
    big = make_jpeg(5, size=(2000, 2000), quality=100)
    assert len(big) > 50_000
    r = client.post("/v1/recognize", content=big, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 413 and "50000" in r.json()["error"]["message"]

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    r = client.post("/v1/recognize", content=chunks(), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 413
    assert client.get("/healthz").status_code == 200


def test_too_many_files_in_one_request(make_client):
    client = make_client(max_images_per_request=3)
    r = client.post(
        "/v1/recognize/batch", files=[("images", (f"{i}.jpg", make_jpeg(i), "image/jpeg")) for i in range(5)]
    )
    assert 400 <= r.status_code < 500


BAD_IDS = [
    "../../etc/passwd",
    "a/b",
    "a\\b",
    "..",
    ".hidden",
    "sp ace",
    "tab\tid",
    "nul\x00id",
    "x" * 65,
    "ümlaut",
    "semi;colon",
    "%2e%2e",
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_sku_ids_are_refused_and_nothing_is_written(seeded, bad, tmp_path):
    from urllib.parse import quote

    before = stored(seeded)
    path = quote(bad, safe="")
    for r in (
        seeded.put(f"/v1/skus/{path}", json={"name": "x"}),
        seeded.post(f"/v1/skus/{path}/images", files=[("images", ("m.jpg", make_jpeg(2), "image/jpeg"))]),
    ):
        assert r.status_code in (404, 422), (bad, r.status_code)
        assert "error" in r.json()
    assert stored(seeded) == before
    assert not list((tmp_path / "data").rglob("passwd"))


def test_json_hostility(seeded):
    nested = {"name": "x", "attributes": {"a": json.loads("[" * 50 + "]" * 50)}}
    assert seeded.put("/v1/skus/n1", json=nested).status_code == 422
    assert seeded.put("/v1/skus/n1", json={"name": "x", "unknown": 1}).status_code == 422
    assert seeded.put("/v1/skus/n1", json={"name": "x" * 201}).status_code == 422
    assert seeded.put("/v1/skus/n1", json={"name": "x", "price": -1}).status_code == 422
    many = {"name": "x", "attributes": {f"k{i}": i for i in range(65)}}
    assert seeded.put("/v1/skus/n1", json=many).status_code == 422
    r = seeded.put(
        "/v1/skus/n1", content=b'{"name": "x"' + b" " * 20_000_000 + b"}", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    r = seeded.put("/v1/skus/n1", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert seeded.get("/v1/skus/n1").status_code == 404
    assert seeded.get("/v1/skus", params={"limit": 10_000}).status_code == 422
    assert seeded.get("/v1/skus", params={"offset": -1}).status_code == 422
