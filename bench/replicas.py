"""Benchmark: replicas on one PostgreSQL catalogue (issue 15). Two ``skulens serve`` processes, each
with its own data directory, on a PostgreSQL server started here (``tests/pg_server.py``: initdb,
loopback port; Debian's postgresql-15 binaries, ``fsync=off`` like the tests' server).

* Propagation: enrol one photo of a new SKU through replica A (one image per request, ``--catalogue-views``
  0 so only one vector), then read replica B's ``skulens_index_vectors`` gauge (``/metrics``: memory, no
  inference) until it counts the new vector: the time from A's 201 to B holding it. The same for a
  deletion (A's 204 to B's count going down). And whether B's very first ``/v1/recognize`` right after
  A's 201 already answers the new SKU.
* Enrolment latency through A (PostgreSQL) beside a server on the embedded SQLite catalogue, same
  model, same photos, one image per request.

    .venv/bin/python -m bench.replicas [--enrolments 30]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench import serverkit
from bench.common import Run, percentiles, serving_model_dir, table
from tests.conftest import make_jpeg
from tests.pg_server import start_server

ARGS = ["--threshold", "0.999"]
ENV = {"SKULENS_CATALOGUE_VIEWS": "0"}


def index_vectors(http: httpx.Client) -> int:
    found = re.search(r"^skulens_index_vectors\S* ([0-9.e+]+)$", http.get("/metrics").text, re.MULTILINE)
    return int(float(found.group(1))) if found else -1


def wait_for(http: httpx.Client, count: int, since: float, timeout: float = 30.0) -> float:
    """Seconds from ``since`` until B's index holds ``count`` vectors."""
    while index_vectors(http) != count:
        if time.perf_counter() - since > timeout:
            raise RuntimeError(f"replica B never reached {count} vectors")
    return time.perf_counter() - since


def enrol_latencies(http: httpx.Client, seeds: range, prefix: str) -> list[float]:
    out = []
    for seed in seeds:
        started = time.perf_counter()
        r = http.post(f"/v1/skus/{prefix}{seed}/images", files=[("images", ("p.jpg", make_jpeg(seed), "image/jpeg"))])
        out.append(time.perf_counter() - started)
        assert r.status_code == 201, r.text
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--enrolments", type=int, default=30)
    args = parser.parse_args(argv)
    run = Run("replicas")
    model_dir, model_label = serving_model_dir(run)
    run.data["model"] = model_label
    work = Path(tempfile.mkdtemp(prefix="skulens-bench-replicas-"))
    pg = start_server()
    results: dict[str, Any] = {}
    try:
        url = pg.new_database()
        a, _ = serverkit.start(work / "a", model_dir, ["--catalog", url, *ARGS], env=ENV)
        b, _ = serverkit.start(work / "b", model_dir, ["--catalog", url, *ARGS], env=ENV)
        try:
            with a.client() as ha, b.client() as hb:
                enrol_s, seen_s, delete_s, first_known = [], [], [], 0
                for i in range(args.enrolments):
                    photo = make_jpeg(1000 + i)
                    started = time.perf_counter()
                    r = ha.post(f"/v1/skus/p{i}/images", files=[("images", ("p.jpg", photo, "image/jpeg"))])
                    done = time.perf_counter()
                    assert r.status_code == 201, r.text
                    enrol_s.append(done - started)
                    seen_s.append(wait_for(hb, i + 1, done) if i % 2 else 0.0)
                    if not i % 2:  # every other one: B's first recognition right after the 201
                        answer = hb.post("/v1/recognize", content=photo, headers={"Content-Type": "image/jpeg"}).json()
                        first_known += answer["sku"] == f"p{i}"
                        wait_for(hb, i + 1, done)
                for i in range(args.enrolments - 1, args.enrolments - 11, -1):
                    started = time.perf_counter()
                    assert ha.delete(f"/v1/skus/p{i}").status_code == 204
                    done = time.perf_counter()
                    delete_s.append(wait_for(hb, i, done))
                results["pg_enrol_through_a"] = percentiles(enrol_s)
                results["a_201_to_b_index"] = percentiles([s for j, s in enumerate(seen_s) if j % 2])
                results["a_204_to_b_index"] = percentiles(delete_s)
                results["b_first_recognise_after_201_known"] = f"{first_known}/{(args.enrolments + 1) // 2}"
        finally:
            a.stop()
            b.stop()
        sqlite, _ = serverkit.start(work / "sqlite", model_dir, ARGS, env=ENV)
        try:
            with sqlite.client() as hs:
                results["sqlite_enrol"] = percentiles(enrol_latencies(hs, range(args.enrolments), "s"))
        finally:
            sqlite.stop()
    finally:
        pg.close()
        shutil.rmtree(work, ignore_errors=True)
    run.data["results"] = results
    rows = [{"what": k, **v} if isinstance(v, dict) else {"what": k, "p50_ms": v} for k, v in results.items()]
    print(table(rows, ["what", "p50_ms", "p95_ms", "p99_ms", "mean_ms"]))
    run.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
