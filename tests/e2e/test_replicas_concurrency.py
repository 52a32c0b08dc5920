"""Recognise, enrol and delete at once through two replicas (``skulens serve``, each its own data
directory) on one PostgreSQL catalogue: no failed recognition of an untouched SKU, every write through
one replica recognised by the other soon after, and in the end both indexes agree with the catalogue."""

import threading
import time

import httpx
import pytest

from tests.e2e.mixed_load import STABLE, AfterEnrol, MixedLoad, files
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e
SECONDS = 8.0
# a write through one replica reaches the other in milliseconds (NOTIFY), or by the 2 s poll if a notification
# is lost; never is the failure this catches: generous for a loaded 2-core CI machine
PROPAGATION_LIMIT_S = 20.0


def test_two_replicas_under_mixed_load(tmp_path, tiny_model_dir, pg_catalog_url):
    args = ["--catalog", pg_catalog_url]
    with Server(tmp_path / "a", tiny_model_dir, args) as a, Server(tmp_path / "b", tiny_model_dir, args) as b:
        with a.client() as http:
            for sku, seed in STABLE.items():
                assert http.post(f"/v1/skus/{sku}/images", files=files(seed)).status_code == 201
        load = MixedLoad.for_seconds(SECONDS)
        propagation: list[float] = []

        def seen_by(other: Server, elsewhere: httpx.Client) -> AfterEnrol:
            """After each enrolment through one replica: the other recognises the photo soon after."""

            def check(image_id: int, photo: int, acked: float) -> None:
                while True:
                    seen = elsewhere.post("/v1/recognize", files=files(photo, "image"))
                    if seen.status_code != 200:
                        load.failures.append(f"recognise on {other.url}: {seen.status_code} {seen.text[:200]}")
                        return
                    answer = seen.json()
                    if answer["matches"] and answer["matches"][0]["score"] > 0.999:
                        propagation.append(time.monotonic() - acked)
                        return
                    if time.monotonic() - acked > PROPAGATION_LIMIT_S:
                        load.failures.append(f"image {image_id} never reached {other.url}")
                        return

            return check

        recognise, write = load.recorded(load.recogniser), load.recorded(load.writer)
        threads = [threading.Thread(target=recognise, args=(s, i)) for i, s in enumerate((a, a, b, b))]
        with a.client() as to_a, b.client() as to_b:
            threads += [
                threading.Thread(target=write, args=(a, 0, seen_by(b, to_b))),
                threading.Thread(target=write, args=(b, 1, seen_by(a, to_a))),
            ]
            load.run(threads, join_s=SECONDS + PROPAGATION_LIMIT_S + 60)
        counts = load.counts
        assert counts["recognise"] >= 20 and counts["enrol"] >= 4 and counts["delete"] >= 1, counts
        for server in (a, b):
            with server.client() as http:
                assert load.present(http) == load.expected
                for _ in range(100):  # the last deletions reach the other replica's index
                    info = http.get("/v1/admin/info").json()
                    if info["index_images"] == len(load.expected) + len(STABLE):
                        break
                    time.sleep(0.05)
                assert info["index_images"] == info["reference_images"] == len(load.expected) + len(STABLE), info
        print(
            f"two replicas ({SECONDS:.0f} s): {counts}; a write through one recognised by the other after "
            f"median {sorted(propagation)[len(propagation) // 2] * 1000:.0f} ms, max {max(propagation) * 1000:.0f} ms "
            f"(each try one recognise request)"
        )
