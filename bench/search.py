"""Benchmark 3: gallery search latency and recall@10 against exact search, flat vs HNSW.

if TYPE_CHECKING:
    import numpy as np

Synthetic unit vectors, d=256 (``--dim``: 512 for the 512-d models), 10k / 100k / 1M, through ``gallery.search.FlatIndex`` and
``gallery.search.HNSWIndex`` (M=32, efConstruction=80, efSearch=64: the service's
settings). Each (size, kind) runs in its own child process so its memory can be read
cleanly: RSS before and after the build (the vectors themselves are allocated before), and
the serialised index size. Latency is one query per call, as the service searches, k=10, timed per call, with FAISS
on 1 and on 2 OpenMP threads (builds use 2). Two datasets, 1000 queries each:

* ``clustered``: like a real gallery: "SKUs" of 10 reference vectors around a random centre
  (cosine ~0.85 to it), queries a new member of a random SKU (its 10 true neighbours are
  that SKU's vectors);
* ``uniform``: vectors and queries uniform on the sphere, no structure: the hardest case
  for a graph index (in 256-d all neighbours are nearly equidistant).

Ground truth: exact inner-product search (FAISS ``IndexFlatIP``, batched). recall@10 = share
of the true 10 nearest found among the 10 returned; recall@1 = the true nearest is first.
HNSW is also run at efSearch 128 and 256.
An HNSW build is skipped when the previous size's build rate predicts it would exceed
``--max-build-s`` (default 300 s; the 1M builds then are: say ``--max-build-s 3600`` to build them).

    .venv/bin/python -m bench.search [--sizes 10000,100000,1000000] [--query-seconds 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Run, percentiles, rss_mib, table

if TYPE_CHECKING:
    import numpy as np

DIM = 256  # the default --dim
K = 10
CLUSTER = 10  # clustered: reference images per "SKU"
SIGMA = 0.62  # clustered: member-to-centre cosine ~0.85, member-to-member ~0.72


def unit(x: np.ndarray) -> np.ndarray:
    import numpy as np

    unit_rows: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return unit_rows


def make_data(n: int, dataset: str, n_queries: int, dim: int = DIM) -> tuple[np.ndarray, np.ndarray]:
    """``(base, queries)``: unit vectors; see the module docstring for the two datasets."""
    import numpy as np

    rng = np.random.default_rng(n + (0 if dataset == "uniform" else 1))
    base = np.empty((n, dim), np.float32)
    if dataset == "uniform":
        for i in range(0, n, 100_000):  # in chunks: no float64 copy of 1M x 256
            base[i : i + 100_000] = unit(rng.standard_normal((min(100_000, n - i), dim), dtype=np.float32))
        return base, unit(rng.standard_normal((n_queries, dim), dtype=np.float32))
    centers = unit(rng.standard_normal((n // CLUSTER, dim), dtype=np.float32))
    for i in range(0, n, 100_000):
        rows = np.arange(i, min(n, i + 100_000))
        noise = rng.standard_normal((len(rows), dim), dtype=np.float32) * (SIGMA / np.sqrt(dim))
        base[rows] = unit(centers[rows // CLUSTER] + noise)
    picks = rng.integers(0, len(centers), n_queries)
    noise = rng.standard_normal((n_queries, dim), dtype=np.float32) * (SIGMA / np.sqrt(dim))
    return base, unit(centers[picks] + noise)


def worker(
    n: int,
    kind: str,
    dataset: str,
    query_seconds: float,
    n_queries: int,
    ef_values: list[int],
    thread_counts: list[int],
    dim: int = DIM,
) -> dict[str, Any]:
    import faiss
    import numpy as np

    from gallery.search import FlatIndex, HNSWIndex

    faiss.omp_set_num_threads(2)
    base, queries = make_data(n, dataset, n_queries, dim)
    ids = np.arange(1, n + 1, dtype=np.int64)
    exact = faiss.IndexFlatIP(dim)
    exact.add(base)
    truth = exact.search(queries, K)[1] + 1  # row -> id
    del exact
    gc.collect()

    rss0 = rss_mib()
    started = time.perf_counter()
    index = FlatIndex(dim) if kind == "flat" else HNSWIndex(dim)
    index.add(ids, base)
    build_s = time.perf_counter() - started
    gc.collect()
    rss1 = rss_mib()
    size = len(faiss.serialize_index(index._index)) + (index._row_ids.nbytes if isinstance(index, HNSWIndex) else 0)
    out: dict[str, Any] = {
        "n": n,
        "kind": kind,
        "dataset": dataset,
        "build_s": build_s,
        "rss_delta_mib": rss1 - rss0,
        "index_mib": size / 2**20,
        "rss_mib": rss1,
        "runs": [],
    }
    for ef in [None] if kind == "flat" else ef_values:
        if ef is not None and isinstance(index, HNSWIndex):
            index.ef_search = ef
        found = index.search(queries, K)[1]
        recall10 = float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found.tolist(), truth.tolist())]))
        recall1 = float(np.mean(found[:, 0] == truth[:, 0]))
        for threads in thread_counts:
            faiss.omp_set_num_threads(threads)
            for i in range(min(20, len(queries))):  # warm-up
                index.search(queries[i : i + 1], K)
            times, deadline = [], time.perf_counter() + query_seconds
            for i in range(len(queries)):
                t = time.perf_counter()
                index.search(queries[i : i + 1], K)
                times.append(time.perf_counter() - t)
                if time.perf_counter() > deadline:
                    break
            out["runs"].append(
                {
                    "ef_search": ef,
                    "threads": threads,
                    "recall_at_1": recall1,
                    "recall_at_10": recall10,
                    "timed_queries": len(times),
                    **percentiles(times),
                }
            )
        faiss.omp_set_num_threads(2)
    return out


def run_child(n: int, kind: str, dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "bench.search",
        "--child",
        f"{n}:{kind}:{dataset}",
        "--query-seconds",
        str(args.query_seconds),
        "--queries",
        str(args.queries),
        "--ef",
        args.ef,
        "--threads",
        args.threads,
        "--dim",
        str(args.dim),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], check=False)
    if done.returncode != 0:
        raise RuntimeError(f"search child {n}:{kind}:{dataset} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--kinds", default="flat,hnsw")
    parser.add_argument("--datasets", default="clustered,uniform")
    parser.add_argument("--query-seconds", type=float, default=3.0, help="timed seconds per setting at most")
    parser.add_argument("--queries", type=int, default=1000, help="queries per set (recall uses them all)")
    parser.add_argument("--ef", default="64,128,256", help="HNSW efSearch values (64 is the service's)")
    parser.add_argument("--threads", default="1,2", help="FAISS OpenMP threads for the timed single queries")
    parser.add_argument(
        "--max-build-s",
        type=float,
        default=300.0,
        help="skip an HNSW build predicted (from the previous size's rate) to take longer",
    )
    parser.add_argument("--dim", type=int, default=DIM, help="vector width (the shipped model's: 512)")
    parser.add_argument("--name", default="search", help="results file name")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    ef_values = [int(x) for x in args.ef.split(",")]
    thread_counts = [int(x) for x in args.threads.split(",")]
    if args.child:
        n, kind, dataset = args.child.split(":")
        print(
            json.dumps(
                worker(int(n), kind, dataset, args.query_seconds, args.queries, ef_values, thread_counts, args.dim)
            )
        )
        return 0

    run = Run(args.name)
    run.data["settings"] = {
        "dim": args.dim,
        "k": K,
        "queries": args.queries,
        "query_seconds": args.query_seconds,
        "hnsw": {"M": 32, "efConstruction": 80, "efSearch_service": 64, "efSearch_tried": ef_values},
        "build_threads": 2,
        "query_threads": thread_counts,
        "max_build_s": args.max_build_s,
        "clustered": {"per_cluster": CLUSTER, "sigma": SIGMA},
    }
    results, rows = [], []
    for dataset in args.datasets.split(","):
        hnsw_rate = None  # vectors/s of the last HNSW build on this dataset
        for n in [int(x) for x in args.sizes.split(",")]:
            for kind in args.kinds.split(","):
                if kind == "hnsw" and hnsw_rate and n / hnsw_rate > args.max_build_s:
                    run.note(
                        f"HNSW build of {n} {dataset} vectors skipped: at the {hnsw_rate:.0f} vectors/s measured "
                        f"on the previous size it would take at least {n / hnsw_rate:.0f} s (graph construction "
                        f"slows as the graph grows), above --max-build-s {args.max_build_s:.0f}"
                    )
                    continue
                print(f"  {dataset} {kind} n={n} ...", flush=True)
                r = run_child(n, kind, dataset, args)
                results.append(r)
                if kind == "hnsw":
                    hnsw_rate = n / r["build_s"]
                for q in r["runs"]:
                    rows.append(
                        {
                            "dataset": dataset,
                            "vectors": n,
                            "index": kind,
                            "efSearch": q["ef_search"],
                            "threads": q["threads"],
                            "recall@1": q["recall_at_1"],
                            "recall@10": q["recall_at_10"],
                            "p50_ms": q["p50_ms"],
                            "p95_ms": q["p95_ms"],
                            "p99_ms": q["p99_ms"],
                            "timed": q["timed_queries"],
                            "build_s": r["build_s"],
                            "RSS delta MiB": r["rss_delta_mib"],
                            "index MiB": r["index_mib"],
                        }
                    )
                    print(
                        f"    ef={q['ef_search']} threads={q['threads']}: recall@10 {q['recall_at_10']:.4f}, "
                        f"p50 {q['p50_ms']:.3f} ms (build {r['build_s']:.1f} s)",
                        flush=True,
                    )
    run.data["results"] = results
    run.data["rows"] = rows
    checks = []
    for r in rows:
        if r["vectors"] == 100_000 and r["efSearch"] in (None, 64):
            met = r["p50_ms"] <= 2.0 and r["recall@10"] >= 0.99
            checks.append(
                {
                    "target": "search <= 2 ms at 100k with recall >= 0.99",
                    "dataset": r["dataset"],
                    "index": r["index"],
                    "threads": r["threads"],
                    "p50_ms": r["p50_ms"],
                    "recall@10": r["recall@10"],
                    "met": met,
                }
            )
    run.data["targets"] = checks
    print()
    print(table(rows))
    print()
    print(table(checks))
    run.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
