"""The benchmarks' closed-loop load generator against the real server on a loopback port, both clients
(httpx and the raw HTTP/1.1 one): every request counted, judged and timed inside the window."""

from __future__ import annotations

import json

import pytest

from bench.loadgen import encode, run_level, run_level_raw
from tests.conftest import make_jpeg
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e


def test_both_clients_count_judge_and_bound_a_level(tmp_path, tiny_model_dir):
    photo = make_jpeg(1)
    with Server(tmp_path / "data", tiny_model_dir) as server, server.client() as http:
        assert http.post("/v1/skus/milk/images", files=[("images", ("1.jpg", photo, "image/jpeg"))]).status_code == 201
        request = {"url": "/v1/recognize", "content": photo, "headers": {"Content-Type": "image/jpeg"}}
        judged = lambda n, body: json.loads(body)["matches"][0]["sku"] == ("milk" if n % 2 else "juice")  # noqa: E731
        events: list[str] = []
        plain = run_level(
            server.url,
            2,
            lambda n: request,
            judged,
            seconds=1.0,
            warmup_s=0.3,
            on_start=lambda: events.append("start"),
            on_end=lambda: events.append("end"),
        )
        raw = run_level_raw(server.url, 2, [encode(server.url, request)], judged, seconds=1.0, max_requests=5)
    for result in (plain, raw):
        assert result.concurrency == 2 and result.ok == len(result.latencies_s) == result.judged > 0
        assert 0 < result.correct < result.judged  # half the requests are judged wrong on purpose
        assert not result.errors
    assert 0.9 < plain.seconds < 5  # the window's time bound
    assert raw.seconds < 1.0 and len(raw.latencies_s) <= 5 + 1  # max_requests closed it first (+ one in flight)
    assert events == ["start", "end"]
