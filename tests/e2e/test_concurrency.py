"""Recognise, enrol and delete at once against the real server, with one and with two worker processes."""

import random
import threading
import time

import pytest

from tests.conftest import make_jpeg
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e
SECONDS = 8.0
STABLE = {f"stable-{i}": 100 + i for i in range(4)}  # SKU → seed of its one photo; never touched under load


def files(seed, field="images"):
    return [(field, (f"{seed}.jpg", make_jpeg(seed), "image/jpeg"))]


@pytest.mark.parametrize("workers", [1, 2])
def test_mixed_load_no_lost_update_no_half_built_index(tmp_path, tiny_model_dir, workers):
    data = tmp_path / "data"
    with Server(data, tiny_model_dir, ["--workers", str(workers)]) as server:
        with server.client() as http:
            for sku, seed in STABLE.items():
                assert http.post(f"/v1/skus/{sku}/images", files=files(seed)).status_code == 201
        deadline = time.monotonic() + SECONDS
        failures: list[str] = []
        counts = {"recognise": 0, "enrol": 0, "delete": 0}
        acked_enrol: dict[int, str] = {}
        acked_delete: set[int] = set()
        lock = threading.Lock()

        def recogniser(seed: int) -> None:
            rng = random.Random(seed)
            with server.client() as http:
                while time.monotonic() < deadline:
                    sku, photo = rng.choice(list(STABLE.items()))
                    r = http.post("/v1/recognize", files=files(photo, "image"))
                    body = r.json()
                    if r.status_code != 200 or body["matches"][0]["sku"] != sku or body["matches"][0]["score"] < 0.999:
                        failures.append(f"recognise {sku}: {r.status_code} {str(body)[:200]}")
                    counts["recognise"] += 1

        def writer(seed: int) -> None:
            rng = random.Random(seed)
            mine: list[int] = []
            with server.client() as http:
                while time.monotonic() < deadline:
                    if mine and rng.random() < 0.4:
                        image_id = mine.pop(rng.randrange(len(mine)))
                        r = http.delete(f"/v1/skus/w{seed}/images/{image_id}")
                        if r.status_code != 204:
                            failures.append(f"delete {image_id}: {r.status_code} {r.text[:200]}")
                        with lock:
                            acked_delete.add(image_id)
                            counts["delete"] += 1
                    else:
                        r = http.post(f"/v1/skus/w{seed}/images", files=files(rng.randrange(10**6)))
                        if r.status_code != 201:
                            failures.append(f"enrol: {r.status_code} {r.text[:200]}")
                            continue
                        image_id = r.json()["image_ids"][0]
                        mine.append(image_id)
                        with lock:
                            acked_enrol[image_id] = f"w{seed}"
                            counts["enrol"] += 1

        threads = [threading.Thread(target=recogniser, args=(i,)) for i in range(4)]
        threads += [threading.Thread(target=writer, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not failures, failures[:5]
        assert counts["recognise"] >= 20 and counts["enrol"] >= 5 and counts["delete"] >= 1, counts
        with server.client() as http:
            for _ in range(4):  # whichever worker answers, it has every write
                present = set()
                for sku in {*acked_enrol.values()}:
                    present.update(http.get(f"/v1/skus/{sku}").json()["image_ids"])
                assert present == set(acked_enrol) - acked_delete
                info = http.get("/v1/admin/info").json()
                assert info["index_images"] == info["reference_images"] == len(present) + len(STABLE)
        print(f"concurrency ({workers} workers, {SECONDS:.0f} s): {counts}")
