"""What the web console needs from the API: thumbnails (bounded size, cached), the caller's role, the
console's own files and the API docs served from the package (no CDN)."""

import hashlib
import io
import logging
import socket
import threading
import time

import pytest
import uvicorn
from PIL import Image

from service.app import create_app
from service.settings import Settings
from tests.conftest import make_jpeg


def enrol(client, sku="milk", seed=1, size=(640, 480)):
    r = client.post(f"/v1/skus/{sku}/images", files=[("images", ("m.jpg", make_jpeg(seed, size=size), "image/jpeg"))])
    assert r.status_code == 201, r.text
    return r.json()["image_ids"][0]


def test_a_thumbnail_is_a_small_jpeg_cached_by_etag(client):
    image_id = enrol(client)
    url = f"/v1/skus/milk/images/{image_id}"
    r = client.get(url, params={"size": 128})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (128, 96)  # longest side 128, aspect kept
    assert "max-age" in r.headers["cache-control"] and r.headers["etag"].endswith('-128"')
    again = client.get(url, params={"size": 128}, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == r.headers["etag"]
    original = client.get(url)
    assert original.status_code == 200 and original.content == make_jpeg(1, size=(640, 480))
    assert original.headers["etag"] != r.headers["etag"]
    assert client.get(url, headers={"If-None-Match": original.headers["etag"]}).status_code == 304


def test_images_vary_with_the_key(make_client, tmp_path):
    """Cached ``private, immutable``: the key (X-API-Key or bearer) is part of what the answer depends on."""
    keys = tmp_path / "keys"
    keys.write_text("checkout lane-secret-000000000001\nmerchandiser merch-secret-00000000002\n")
    client = make_client(api_keys_file=keys)
    merch = {"X-API-Key": "merch-secret-00000000002"}
    r = client.post(
        "/v1/skus/milk/images",
        headers=merch,
        files=[("images", ("m.jpg", make_jpeg(1, size=(640, 480)), "image/jpeg"))],
    )
    url = f"/v1/skus/milk/images/{r.json()['image_ids'][0]}"
    for params in ({}, {"size": 64}):
        answer = client.get(url, params=params, headers={"Authorization": "Bearer lane-secret-000000000001"})
        assert answer.status_code == 200
        vary = {v.strip().lower() for v in answer.headers["vary"].split(",")}
        assert {"x-api-key", "authorization"} <= vary
        again = client.get(url, params=params, headers={**merch, "If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304 and "x-api-key" in again.headers["vary"].lower()


def test_a_thumbnail_never_enlarges(client):
    image_id = enrol(client, size=(80, 60))
    r = client.get(f"/v1/skus/milk/images/{image_id}", params={"size": 1024})
    assert Image.open(io.BytesIO(r.content)).size == (80, 60)


@pytest.mark.parametrize("size", ["5000", "0", "15", "big"])
def test_a_thumbnail_size_out_of_range_is_refused_quoting_it(client, size):
    image_id = enrol(client)
    r = client.get(f"/v1/skus/milk/images/{image_id}", params={"size": size})
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert "size" in message and f"received '{size}'" in message


def test_a_stored_photo_too_large_for_the_limit_now_is_served_as_stored(make_client, caplog):
    """SKULENS_MAX_PIXELS lowered after enrolment: a thumbnail GET answers the stored file, not 413."""
    image_id = enrol(make_client())  # 640x480 = 307,200 pixels
    client = make_client(max_pixels=100_000)  # the same data folder, restarted with a lower limit
    url = f"/v1/skus/milk/images/{image_id}"
    with caplog.at_level(logging.WARNING, logger="service.thumbnails"):
        r = client.get(url, params={"size": 128})
    assert r.status_code == 200, r.text
    assert r.content == make_jpeg(1, size=(640, 480)) and r.headers["content-type"] == "image/jpeg"
    assert r.headers["etag"] == client.get(url).headers["etag"]  # the stored file's own validator
    assert any("no thumbnail" in m and "milk" in m for m in caplog.messages), caplog.messages
    again = client.get(url, params={"size": 128}, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_a_damaged_stored_photo_is_served_as_stored(client, tmp_path, caplog):
    png = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(png, format="PNG")
    r = client.post("/v1/skus/milk/images", files=[("images", ("m.png", png.getvalue(), "image/png"))])
    image_id = r.json()["image_ids"][0]
    stored = next((tmp_path / "data").rglob(hashlib.sha256(png.getvalue()).hexdigest()))
    damaged = png.getvalue()[:40] + b"\0" * 60  # its PNG signature survives, the rest does not
    stored.write_bytes(damaged)
    with caplog.at_level(logging.WARNING, logger="service.thumbnails"):
        r = client.get(f"/v1/skus/milk/images/{image_id}", params={"size": 32})
    assert r.status_code == 200, r.text
    assert r.content == damaged and r.headers["content-type"] == "image/png"
    assert any("no thumbnail" in m for m in caplog.messages), caplog.messages


def test_thumbnails_of_missing_images_are_404(client):
    enrol(client)
    assert client.get("/v1/skus/milk/images/999", params={"size": 64}).json()["error"]["code"] == "image_not_found"


def test_whoami_on_an_open_server(client):
    assert client.get("/v1/whoami").json() == {
        "role": "admin",
        "keys_required": False,
        "roles": ["checkout", "merchandiser", "admin"],
    }


def test_whoami_with_keys(make_client, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("checkout lane-secret-000000000001\nmerchandiser merch-secret-00000000002\n")
    client = make_client(api_keys_file=keys)
    assert client.get("/v1/whoami").status_code == 401
    assert client.get("/v1/whoami", headers={"X-API-Key": "wrong-key-0000000000000"}).status_code == 401
    me = client.get("/v1/whoami", headers={"X-API-Key": "lane-secret-000000000001"}).json()
    assert me["role"] == "checkout" and me["keys_required"] is True
    assert client.get("/v1/whoami", headers={"X-API-Key": "merch-secret-00000000002"}).json()["role"] == "merchandiser"
    assert client.get("/").status_code == 200  # the console page itself needs no key; its API calls do


def test_console_and_docs_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script type="module" src="/static/js/main.js">' in page.text
    script = client.get("/static/js/main.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert script.headers["cache-control"] == "no-cache" and script.headers["etag"]
    docs = client.get("/docs").text
    assert (
        "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs and "/static/vendor/swagger-ui/swagger-ui.css" in docs
    )
    assert "cdn" not in docs.lower() and "https://" not in docs
    assert '"validatorUrl": null' in docs  # Swagger UI would otherwise ask an online validator for a badge
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"):
        assert client.get(f"/static/vendor/swagger-ui/{asset}").status_code == 200
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN: not served
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert "/v1/whoami" in paths and "/" not in paths and "/docs" not in paths
    # the key schemes are declared, so that /docs offers "Authorize" and sends the key
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key: roles checkout, merchandiser, admin (a server without keys needs none)",
    }
    assert paths["/v1/skus/{sku}"]["delete"]["security"] == [{"ApiKey": []}, {"Bearer": []}]
    assert "security" not in paths["/healthz"]["get"]


class RecordingApp:
    """The app behind a recorder of the raw paths it was asked for (to prove a test's path reached it)."""

    def __init__(self, app):
        self.app, self.raw_paths = app, []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.raw_paths.append(scope["raw_path"])
        await self.app(scope, receive, send)


def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """GET ``target`` byte for byte (no client library to normalise ``..`` away): status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize(
    "target",
    [
        "/static/../service/app.py",
        "/static/%2e%2e/service/app.py",
        "/static/..%2fservice/app.py",
        "/static/js/../../app.py",
        "/static/../../pyproject.toml",
    ],
)
def test_a_dot_dot_path_serves_no_source_file(tmp_path, tiny_model_dir, target):
    """Sent raw over a socket to a real uvicorn server (httpx would send ``/service/app.py``): the
    server receives the ``..`` and answers no file outside service/static."""
    app = RecordingApp(create_app(Settings(data_dir=tmp_path / "data", model=tiny_model_dir)))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        status, body = raw_get(port, target)
    finally:
        server.should_exit = True
        thread.join(30)
        listener.close()
    assert app.raw_paths == [target.encode()]  # the server got the path as sent, ``..`` and all
    assert status == 404, (status, body[:200])
    assert b"create_app" not in body and b"[project]" not in body


def test_put_with_if_none_match_star_only_creates(client):
    """The console's new-SKU form: an id that exists is refused (412, naming it), not replaced."""
    body = {"name": "Milk", "price": "1.35", "attributes": {"litres": 1, "organic": True, "note": None}}
    assert client.put("/v1/skus/milk", json=body).status_code == 201
    r = client.put("/v1/skus/milk", json={"name": "Other"}, headers={"If-None-Match": "*"})
    assert r.status_code == 412, r.text
    error = r.json()["error"]
    assert error["code"] == "sku_exists" and "'milk' already exists" in error["message"]
    kept = client.get("/v1/skus/milk").json()
    assert (kept["name"], kept["price"], kept["attributes"]) == ("Milk", "1.35", body["attributes"])
    created = client.put("/v1/skus/tea", json={"name": "Tea"}, headers={"If-None-Match": "*"})
    assert created.status_code == 201 and created.json()["name"] == "Tea"
    assert client.put("/v1/skus/milk", json={"name": "Replaced"}).status_code == 200  # without it: replaces
    operation = client.get("/openapi.json").json()["paths"]["/v1/skus/{sku}"]["put"]
    assert "412" in operation["responses"]
    assert any(p["in"] == "header" and p["name"] == "if-none-match" for p in operation["parameters"])
