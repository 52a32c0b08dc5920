"""SKU names live in each worker's memory: a rename through one worker is in the next answer of every worker."""

import httpx
import pytest

from tests.conftest import make_jpeg
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e
REQUESTS = 16


def names_seen(url: str, body: bytes) -> set[str]:
    seen = set()
    for _ in range(REQUESTS):  # a new connection each time: both workers answer some
        with httpx.Client(base_url=url, timeout=60) as once:
            r = once.post("/v1/recognize", content=body, headers={"Content-Type": "image/jpeg"})
            assert r.status_code == 200, r.text
            seen.add(r.json()["matches"][0]["name"])
    return seen


def test_a_rename_reaches_both_workers_at_once(tmp_path, tiny_model_dir):
    photo = make_jpeg(5)
    with Server(tmp_path / "data", tiny_model_dir, ["--workers", "2"]) as server:
        with server.client() as http:
            assert (
                http.post(
                    "/v1/skus/milk/images", data={"name": "Milk"}, files=[("images", ("m.jpg", photo, "image/jpeg"))]
                ).status_code
                == 201
            )
        assert names_seen(server.url, photo) == {"Milk"}  # both workers hold the name in memory now
        for name in ("Arla Milk 1L", "Arla Milk 1 litre"):
            with httpx.Client(base_url=server.url, timeout=60) as once:
                assert once.put("/v1/skus/milk", json={"name": name, "price": "1.35"}).status_code in (200, 201)
            assert names_seen(server.url, photo) == {name}  # no stale name from the other worker
