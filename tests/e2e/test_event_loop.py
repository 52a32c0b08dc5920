"""The event loop never waits on SQLite or a lock: while a write waits for the catalogue, the
workers still answer health checks and recognitions at once."""

import sqlite3
import threading
import time

import httpx
import pytest

from tests.conftest import make_jpeg
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e
HOLD_S = 4.0
LIMIT_S = 0.100


def files(seed, field="images"):
    return [(field, (f"{seed}.jpg", make_jpeg(seed), "image/jpeg"))]


def test_workers_answer_within_100ms_while_a_write_waits_for_the_catalogue(tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    with Server(data, tiny_model_dir, ["--workers", "2"]) as server, server.client() as http:
        for seed in range(4):
            assert http.post(f"/v1/skus/s{seed}/images", files=files(seed)).status_code == 201
        for _ in range(6):  # both workers have caught up and warmed up
            assert http.post("/v1/recognize", files=files(1, "image")).status_code == 200
        # Another process (standing in for a writer in another worker, or a bulk enrol) holds the
        # catalogue's write lock; enrolments sent now wait for it inside both workers.
        holder = sqlite3.connect(data / "catalog.sqlite3", isolation_level=None, timeout=30)
        holder.execute("BEGIN IMMEDIATE")
        statuses: list[int] = []

        def enrol(seed: int) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as writer:
                statuses.append(writer.post(f"/v1/skus/w{seed}/images", files=files(100 + seed)).status_code)

        writers = [threading.Thread(target=enrol, args=(i,)) for i in range(4)]
        try:
            for thread in writers:
                thread.start()
            time.sleep(1.0)  # the enrolments are inside the workers, waiting for the write lock
            assert not statuses, "an enrolment finished while the catalogue was locked"
            slow = []
            deadline = time.monotonic() + HOLD_S - 1.5
            rounds = 0
            while time.monotonic() < deadline:
                for path in ("/healthz", "/v1/recognize"):
                    started = time.perf_counter()
                    r = http.get(path) if path == "/healthz" else http.post(path, files=files(2, "image"))
                    took = time.perf_counter() - started
                    assert r.status_code == 200, r.text[:200]
                    if took > LIMIT_S:
                        slow.append(f"{path} {took * 1000:.0f} ms")
                rounds += 1
            assert rounds >= 4 and not slow, f"answers slower than {LIMIT_S * 1000:.0f} ms while a write waited: {slow}"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
            for thread in writers:
                thread.join(60)
        assert statuses == [201] * 4  # the waiting enrolments went through once the lock was free
        info = http.get("/v1/admin/info").json()
        assert info["reference_images"] == info["index_images"] == 8
