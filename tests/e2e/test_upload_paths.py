"""The ways a crop reaches /v1/recognize, through the real server: a raw image body, the plain
single-part multipart body (read without python-multipart) and every other multipart body
(python-multipart) answer the same; what is refused is refused with the same clear 4xx."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.schemas import BatchRecognitionOut, RecognitionOut
from tests.conftest import make_jpeg
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

BOUNDARY = "skulens-test-boundary"


def multipart(parts: list[tuple[str, str]], payloads: list[bytes], boundary: str = BOUNDARY) -> bytes:
    """A multipart body written by hand: ``parts`` are (header lines, ...) per payload."""
    out = b""
    for headers, payload in zip(parts, payloads, strict=True):
        out += f"--{boundary}\r\n{headers[0]}\r\n".encode() + (f"{headers[1]}\r\n".encode() if headers[1] else b"")
        out += b"\r\n" + payload + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    data = tmp_path_factory.mktemp("uploads") / "data"
    with Server(data, tiny_model_dir) as running, running.client() as http:
        enrolled = http.post(
            "/v1/skus/milk/images", files=[("images", ("1.jpg", make_jpeg(1), "image/jpeg"))], data={"name": "Mjölk"}
        )
        assert enrolled.status_code == 201
        http.post("/v1/skus/juice/images", files=[("images", ("2.jpg", make_jpeg(2), "image/jpeg"))])
        yield running


def post(server: Server, body: bytes, content_type: str, path: str = "/v1/recognize") -> httpx.Response:
    with server.client() as http:
        return http.post(path, content=body, headers={"Content-Type": content_type})


def test_every_way_of_sending_a_crop_gets_the_same_answer(server: Server) -> None:
    crop = make_jpeg(1)
    plain = f"multipart/form-data; boundary={BOUNDARY}"
    disposition = 'Content-Disposition: form-data; name="image"; filename="crop.jpg"'
    bodies = {
        "raw image/jpeg": (crop, "image/jpeg"),
        "raw octet-stream": (crop, "application/octet-stream"),
        "multipart, one file part (fast path)": (multipart([(disposition, "Content-Type: image/jpeg")], [crop]), plain),
        "multipart, quoted boundary": (
            multipart([(disposition, "Content-Type: image/jpeg")], [crop]),
            f'multipart/form-data; boundary="{BOUNDARY}"',
        ),
        "multipart, no part content type": (multipart([(disposition, "")], [crop]), plain),
        "multipart, a text field beside it (python-multipart)": (
            multipart(
                [('Content-Disposition: form-data; name="note"', ""), (disposition, "Content-Type: image/jpeg")],
                [b"lane 3", crop],
            ),
            plain,
        ),
        "multipart, another part header (python-multipart)": (
            multipart([(disposition, "Content-Type: image/jpeg\r\nContent-Transfer-Encoding: binary")], [crop]),
            plain,
        ),
    }
    answers = {}
    for what, (body, content_type) in bodies.items():
        r = post(server, body, content_type)
        assert r.status_code == 200, (what, r.text)
        assert r.headers["content-type"] == "application/json"
        RecognitionOut.model_validate_json(r.content)  # the documented shape, exactly
        answers[what] = r.json()
    with server.client() as http:  # and as httpx (and curl -F) send it
        answers["httpx files="] = http.post("/v1/recognize", files=[("image", ("c.jpg", crop, "image/jpeg"))]).json()
    first = answers["raw image/jpeg"]
    assert first["matches"][0]["sku"] == "milk" and first["matches"][0]["name"] == "Mjölk"
    assert all(answer == first for answer in answers.values()), answers


@pytest.mark.parametrize("fast", [True, False])
def test_a_part_declared_as_text_is_refused_415_naming_it_on_both_paths(server: Server, fast: bool) -> None:
    parts = [('Content-Disposition: form-data; name="image"; filename="notes.txt"', "Content-Type: text/plain")]
    payloads = [make_jpeg(1)]
    if not fast:  # a second field sends it through python-multipart
        parts.insert(0, ('Content-Disposition: form-data; name="lane"', ""))
        payloads.insert(0, b"3")
    r = post(server, multipart(parts, payloads), f"multipart/form-data; boundary={BOUNDARY}")
    assert r.status_code == 415
    error = r.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert error["message"].startswith("part 'notes.txt' has content type 'text/plain'")


def test_refusals_are_clear_4xx(server: Server) -> None:
    plain = f"multipart/form-data; boundary={BOUNDARY}"
    disposition = 'Content-Disposition: form-data; name="{}"; filename="crop.jpg"'
    cases = [
        (post(server, make_jpeg(1), "text/plain"), 415, "unsupported_media_type", "request content type 'text/plain'"),
        (post(server, b"", "image/jpeg"), 400, "unreadable_image", "received 0 bytes"),
        (post(server, b"not a jpeg", "image/jpeg"), 400, "unreadable_image", "could not read an image"),
        (
            post(server, multipart([(disposition.format("photo"), "")], [make_jpeg(1)]), plain),
            422,
            "missing_image",
            "received fields ['photo']",
        ),
        (
            post(
                server,
                multipart([(disposition.format("image"), ""), (disposition.format("image"), "")], [b"a", b"b"]),
                plain,
            ),
            422,
            "too_many_images",
            "received 2",
        ),
        (post(server, make_jpeg(1), "image/jpeg", "/v1/recognize/batch"), 415, "unsupported_media_type", "images"),
    ]
    for r, status, code, text in cases:
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert error["code"] == code and text in error["message"], error


def test_the_batch_answer_keeps_its_documented_shape(server: Server) -> None:
    with server.client() as http:
        r = http.post(
            "/v1/recognize/batch",
            files=[("images", (f"{s}.jpg", make_jpeg(s), "image/jpeg")) for s in (2, 1)],
        )
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    batch = BatchRecognitionOut.model_validate_json(r.content)
    assert [result.matches[0].sku for result in batch.results] == ["juice", "milk"]
