"""Recognise, enrol and delete at once through two replicas (``skulens serve``, each its own data
directory) on one PostgreSQL catalogue: no failed recognition of an untouched SKU, every write through
one replica recognised by the other soon after, and in the end both indexes agree with the catalogue."""

import random
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.server import Server
from tests.e2e.test_concurrency import STABLE, files

pytestmark = pytest.mark.e2e
SECONDS = 8.0
# a write through one replica reaches the other in milliseconds (NOTIFY), or by the 2 s poll if a notification
# is lost; never is the failure this catches: generous for a loaded 2-core CI machine
PROPAGATION_LIMIT_S = 20.0


def recording(failures: list[str], body: Callable[..., None]) -> Callable[..., None]:
    """``body`` for a thread, its exception recorded as a failure (pytest only warns about a thread's)."""

    def run(*args: Any) -> None:
        try:
            body(*args)
        except BaseException:  # noqa: BLE001
            failures.append(f"{body.__name__} raised: {traceback.format_exc(limit=3)}")

    return run


def test_two_replicas_under_mixed_load(tmp_path, tiny_model_dir, pg_catalog_url):
    args = ["--catalog", pg_catalog_url]
    with Server(tmp_path / "a", tiny_model_dir, args) as a, Server(tmp_path / "b", tiny_model_dir, args) as b:
        with a.client() as http:
            for sku, seed in STABLE.items():
                assert http.post(f"/v1/skus/{sku}/images", files=files(seed)).status_code == 201
        deadline = time.monotonic() + SECONDS
        failures: list[str] = []
        counts = {"recognise": 0, "enrol": 0, "delete": 0}
        acked_enrol: dict[int, str] = {}
        acked_delete: set[int] = set()
        propagation: list[float] = []
        lock = threading.Lock()

        def recogniser(server: Server, seed: int) -> None:
            rng = random.Random(seed)
            with server.client() as http:
                while time.monotonic() < deadline:
                    sku, photo = rng.choice(list(STABLE.items()))
                    r = http.post("/v1/recognize", files=files(photo, "image"))
                    body = r.json()
                    if (
                        r.status_code != 200
                        or not body.get("matches")
                        or body["matches"][0]["sku"] != sku
                        or body["matches"][0]["score"] < 0.999
                    ):
                        failures.append(f"recognise {sku} on {server.url}: {r.status_code} {str(body)[:200]}")
                    with lock:
                        counts["recognise"] += 1

        def writer(through: Server, other: Server, seed: int) -> None:
            rng = random.Random(seed)
            mine: list[int] = []
            with through.client() as http, other.client() as elsewhere:
                while time.monotonic() < deadline:
                    if mine and rng.random() < 0.4:
                        image_id = mine.pop(rng.randrange(len(mine)))
                        r = http.delete(f"/v1/skus/w{seed}/images/{image_id}")
                        if r.status_code != 204:
                            failures.append(f"delete {image_id}: {r.status_code} {r.text[:200]}")
                        with lock:
                            acked_delete.add(image_id)
                            counts["delete"] += 1
                        continue
                    photo = 10**6 * (seed + 1) + rng.randrange(10**6)
                    r = http.post(f"/v1/skus/w{seed}/images", files=files(photo))
                    acked = time.monotonic()
                    if r.status_code != 201:
                        failures.append(f"enrol: {r.status_code} {r.text[:200]}")
                        continue
                    image_id = r.json()["image_ids"][0]
                    mine.append(image_id)
                    with lock:
                        acked_enrol[image_id] = f"w{seed}"
                        counts["enrol"] += 1
                    while True:  # the other replica recognises it
                        seen = elsewhere.post("/v1/recognize", files=files(photo, "image"))
                        if seen.status_code != 200:
                            failures.append(f"recognise on {other.url}: {seen.status_code} {seen.text[:200]}")
                            break
                        answer = seen.json()
                        if answer["matches"] and answer["matches"][0]["score"] > 0.999:
                            propagation.append(time.monotonic() - acked)
                            break
                        if time.monotonic() - acked > PROPAGATION_LIMIT_S:
                            failures.append(f"image {image_id} through {through.url} never reached {other.url}")
                            break

        recognise, write = recording(failures, recogniser), recording(failures, writer)
        threads = [threading.Thread(target=recognise, args=(s, i)) for i, s in enumerate((a, a, b, b))]
        threads += [threading.Thread(target=write, args=(a, b, 0)), threading.Thread(target=write, args=(b, a, 1))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + PROPAGATION_LIMIT_S + 60)
        assert not any(t.is_alive() for t in threads), "a client thread never finished"
        assert not failures, failures[:5]
        assert counts["recognise"] >= 20 and counts["enrol"] >= 4 and counts["delete"] >= 1, counts
        expected = set(acked_enrol) - acked_delete
        for server in (a, b):
            with server.client() as http:
                present = set()
                for sku in {*acked_enrol.values()}:
                    present.update(http.get(f"/v1/skus/{sku}").json()["image_ids"])
                assert present == expected
                for _ in range(100):  # the last deletions reach the other replica's index
                    info = http.get("/v1/admin/info").json()
                    if info["index_images"] == len(expected) + len(STABLE):
                        break
                    time.sleep(0.05)
                assert info["index_images"] == info["reference_images"] == len(expected) + len(STABLE), info
        print(
            f"two replicas ({SECONDS:.0f} s): {counts}; a write through one recognised by the other after "
            f"median {sorted(propagation)[len(propagation) // 2] * 1000:.0f} ms, max {max(propagation) * 1000:.0f} ms "
            f"(each try one recognise request)"
        )
