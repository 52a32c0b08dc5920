"""Metrics across worker processes: any scrape adds up every worker's counters."""

import re

import httpx
import pytest

from tests.conftest import make_jpeg
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e
REQUESTS = 24


def total(text: str, pattern: str) -> float:
    return sum(float(v) for v in re.findall(pattern + r"\s+([0-9.e+]+)", text))


def test_two_workers_one_set_of_counters(tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    with Server(data, tiny_model_dir, ["--workers", "2"]) as server:
        with server.client() as http:
            assert (
                http.post("/v1/skus/a/images", files=[("images", ("a.jpg", make_jpeg(1), "image/jpeg"))]).status_code
                == 201
            )
        for _ in range(REQUESTS):  # a new connection each time: both workers answer some
            with httpx.Client(base_url=server.url, timeout=30) as once:
                r = once.post("/v1/recognize", files={"image": ("q.jpg", make_jpeg(1), "image/jpeg")})
                assert r.status_code == 200
        for _ in range(6):  # whichever worker answers the scrape
            with httpx.Client(base_url=server.url, timeout=30) as once:
                text = once.get("/metrics").text
            assert "# TYPE skulens_inference_batches_total counter" in text
            assert (
                total(text, r'skulens_requests_total\{method="POST",route="/v1/recognize",status="200"\}') == REQUESTS
            )
            assert total(text, r"skulens_inference_images_total") == REQUESTS + 1
            assert total(text, r'skulens_request_seconds_count\{method="POST",route="/v1/recognize"\}') == REQUESTS
            assert total(text, r"skulens_gallery_reference_images") == 1
    assert (data / ".metrics").is_dir()
