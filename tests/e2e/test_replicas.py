"""Two ``skulens serve`` processes (each its own data directory, as on two machines) on one PostgreSQL
catalogue: an enrolment through one is recognised by the other; a deletion disappears from both; with
the server down, recognition still answers, writes answer 503 with Retry-After and /readyz says
degraded; with it back, writes go through again and reach the other replica."""

import itertools
import time

import pytest

from tests.conftest import make_jpeg
from tests.e2e.server import Server
from tests.pg_server import start_server

pytestmark = pytest.mark.e2e


def recognised_as(server: Server, photo: bytes, sku: str | None, timeout: float = 15.0) -> tuple[float, int]:
    """Seconds until ``server`` recognised ``photo`` as ``sku`` (None: as no known SKU), and requests made."""
    started = time.monotonic()
    with server.client() as http:
        for attempt in itertools.count(1):
            r = http.post(
                "/v1/recognize", content=photo, headers={"Content-Type": "image/jpeg"}, params={"threshold": 0.999}
            )
            assert r.status_code == 200, r.text
            if r.json()["sku"] == sku:
                return time.monotonic() - started, attempt
            assert time.monotonic() - started < timeout, f"{server.url} never answered {sku!r}: {r.json()}"
            time.sleep(0.01)


def test_two_serve_processes_share_one_catalogue(tmp_path, tiny_model_dir):
    pg = start_server()  # a server of its own: this test stops and restarts it
    try:
        url = pg.new_database()
        milk, juice = make_jpeg(11), make_jpeg(12)
        with (
            Server(tmp_path / "a", tiny_model_dir, ["--catalog", url, "--threshold", "0.999"]) as a,
            Server(tmp_path / "b", tiny_model_dir, ["--catalog", url, "--threshold", "0.999"]) as b,
        ):
            with a.client() as http:
                r = http.post(
                    "/v1/skus/milk/images", data={"name": "Milk"}, files=[("images", ("m.jpg", milk, "image/jpeg"))]
                )
                assert r.status_code == 201, r.text
            took, requests = recognised_as(b, milk, "milk")
            with b.client() as http:
                assert http.get("/v1/skus/milk").json()["name"] == "Milk"
                image_id = http.get("/v1/skus/milk").json()["image_ids"][0]
                assert http.get(f"/v1/skus/milk/images/{image_id}").content == milk  # photo bytes from PostgreSQL
            print(f"\nenrolled through a; b answered milk {took * 1000:.0f} ms after a's 201, at request {requests}")

            pg.stop("fast")
            with b.client() as http:
                ready = http.get("/readyz")
                for _ in range(100):
                    if ready.json()["status"] == "degraded":
                        break
                    time.sleep(0.05)
                    ready = http.get("/readyz")
                assert ready.status_code == 200 and ready.json()["status"] == "degraded", ready.text
            recognised_as(b, milk, "milk", timeout=1.0)  # from memory
            with a.client() as http:
                r = http.post("/v1/skus/juice/images", files=[("images", ("j.jpg", juice, "image/jpeg"))])
                assert r.status_code == 503 and r.headers["Retry-After"] == "5", r.text
                assert r.json()["error"]["code"] == "catalog_unreachable" and "postgresql" not in r.text
                assert "may or may not have been applied" in r.text and "retrying it is safe" in r.text

            pg.start()
            with a.client() as http:
                for _ in range(100):
                    r = http.post("/v1/skus/juice/images", files=[("images", ("j.jpg", juice, "image/jpeg"))])
                    if r.status_code != 503:
                        break
                    time.sleep(0.1)
                assert r.status_code == 201, r.text
                assert http.delete("/v1/skus/milk").status_code == 204
            recognised_as(b, juice, "juice")
            recognised_as(b, milk, None)  # the deletion reached b too
            with b.client() as http:
                assert http.get("/readyz").json()["status"] == "ready"
    finally:
        pg.close()
