"""The real server searches the queries of concurrent requests together, and answers as it does one at a time."""

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import make_jpeg
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e
QUERIES = 12
ROUNDS = 4


def counter(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}\s+([0-9.e+]+)$", text, re.MULTILINE))


def test_concurrent_answers_equal_sequential_answers_with_fewer_searches(tmp_path, tiny_model_dir):
    with Server(tmp_path / "data", tiny_model_dir, ["--threshold", "0.5"]) as server, server.client() as http:
        for s in range(6):
            files = [("images", (f"{s}-{j}.jpg", make_jpeg(100 * s + j), "image/jpeg")) for j in range(3)]
            assert http.post(f"/v1/skus/sku-{s}/images", data={"name": f"Product {s}"}, files=files).status_code == 201
        bodies = [make_jpeg(1000 + i) for i in range(QUERIES)]

        def ask(i: int) -> dict:
            with httpx.Client(base_url=server.url, timeout=60) as one:
                r = one.post("/v1/recognize", content=bodies[i % QUERIES], headers={"Content-Type": "image/jpeg"})
                assert r.status_code == 200, r.text
                return r.json()

        alone = [ask(i) for i in range(QUERIES)]
        before = http.get("/metrics").text
        with ThreadPoolExecutor(QUERIES) as pool:
            together = list(pool.map(ask, range(QUERIES * ROUNDS)))
        after = http.get("/metrics").text
    assert together == alone * ROUNDS  # sku, name, score, decision, matches: identical
    assert all(m["name"].startswith("Product ") for a in alone for m in a["matches"])
    queries = counter(after, "skulens_search_queries_total") - counter(before, "skulens_search_queries_total")
    searches = counter(after, "skulens_search_batches_total") - counter(before, "skulens_search_batches_total")
    assert queries == QUERIES * ROUNDS
    assert searches < queries  # concurrent requests shared searches
