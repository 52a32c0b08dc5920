"""Recognise, enrol and delete at once against the real server, with one and with two worker processes."""

import threading

import pytest

from tests.e2e.mixed_load import STABLE, MixedLoad, files
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e
SECONDS = 8.0


@pytest.mark.parametrize("workers", [1, 2])
def test_mixed_load_no_lost_update_no_half_built_index(tmp_path, tiny_model_dir, workers):
    data = tmp_path / "data"
    with Server(data, tiny_model_dir, ["--workers", str(workers)]) as server:
        with server.client() as http:
            for sku, seed in STABLE.items():
                assert http.post(f"/v1/skus/{sku}/images", files=files(seed)).status_code == 201
        load = MixedLoad.for_seconds(SECONDS)
        threads = [threading.Thread(target=load.recorded(load.recogniser), args=(server, i)) for i in range(4)]
        threads += [threading.Thread(target=load.recorded(load.writer), args=(server, i)) for i in range(2)]
        load.run(threads, join_s=60)
        counts = load.counts
        assert counts["recognise"] >= 20 and counts["enrol"] >= 5 and counts["delete"] >= 1, counts
        with server.client() as http:
            for _ in range(4):  # whichever worker answers, it has every write
                present = load.present(http)
                assert present == load.expected
                info = http.get("/v1/admin/info").json()
                assert info["index_images"] == info["reference_images"] == len(present) + len(STABLE)
        print(f"concurrency ({workers} workers, {SECONDS:.0f} s): {counts}")
