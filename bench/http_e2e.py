"""Benchmark 2: HTTP end to end against the real uvicorn server (``skulens serve``) with real grocery JPEGs.

The gallery is pre-enrolled (through the API) with every grocery train photo; queries are
the val photos (348x348 JPEGs), sent as raw ``image/jpeg`` bodies to ``/v1/recognize`` and
as 4-crop multipart requests to ``/v1/recognize/batch``. A closed-loop asyncio + httpx load
generator (bench/loadgen.py) runs on the same machine (loopback; its CPU time is reported,
it takes CPU from the server on 2 cores) at concurrency 1, 8 and 32, each level bounded by
``--seconds`` and ``--max-requests`` after ``--warmup`` seconds not counted. The model is
the shipped one when present, else a random-weights MobileNetV3Large fp32 LiteRT export.

    .venv/bin/python -m bench.http_e2e [--seconds 15] [--levels 1,8,32] [--profile]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import serverkit
from bench.common import (
    HTTP_COLUMNS,
    RESULTS_DIR,
    Run,
    percentiles,
    photos,
    rss_mib,
    serving_model_dir,
    skip_without_grocery,
    table,
    v3large_export,
)
from bench.loadgen import Judge, encode, run_level, run_level_raw
from bench.profiling import start_record, summarise, thread_names

TARGETS = {"recognize_p50_ms_c1": 15.0, "recognize_rps_c8": 150.0, "recognize_p99_ms_c8": 100.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="timed seconds per level")
    parser.add_argument("--max-requests", type=int, default=20_000, help="requests per level at most")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per level not counted")
    parser.add_argument("--levels", default="1,8,32", help="concurrency levels")
    parser.add_argument("--enrol-limit", type=int, default=None, help="enrol only the first N train photos")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="8",
        default=None,
        metavar="LEVELS",
        help="py-spy record the server during /v1/recognize at these levels (default 8); "
        "profiling takes CPU from the server: use a separate run from the one you report",
    )
    parser.add_argument(
        "--profile-native",
        action="store_true",
        help="py-spy --native (C frames too; py-spy pauses the server for each sample: for looking, not timing)",
    )
    parser.add_argument("--serve-args", default="", help="extra `skulens serve` flags, e.g. '--threads 2'")
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the server (e.g. SKULENS_MAX_WAIT_MS=0)"
    )
    parser.add_argument("--name", default="http_e2e", help="results file name")
    parser.add_argument(
        "--model",
        choices=["shipped", "v3large"],
        default="shipped",
        help="shipped: embedder/default_model if present (else v3large); v3large: the random-weights "
        "MobileNetV3Large fp32 export",
    )
    parser.add_argument("--endpoints", default="recognize,batch,recognize-multipart")
    parser.add_argument(
        "--multipart-levels",
        default=None,
        help="concurrency levels of recognize-multipart (default: the first of --levels)",
    )
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        help="first insert this many synthetic reference vectors (1,000 SKUs' worth each 100, "
        "straight into SQLite, as bench.serving does): a large gallery to search",
    )
    parser.add_argument(
        "--client",
        choices=["httpx", "raw"],
        default="httpx",
        help="httpx.AsyncClient (default), or pre-encoded requests on raw asyncio streams "
        "(the same closed loop with less client CPU on the shared 2 cores)",
    )
    parser.add_argument(
        "--variant",
        help="run bench.variant_server with these flags instead of `skulens serve`, e.g. '--faiss-threads 1'",
    )
    args = parser.parse_args(argv)

    run = Run(args.name)
    grocery = skip_without_grocery(run)
    if grocery is None:
        run.save()
        return 0
    if args.model == "v3large":
        model_dir, model_label = v3large_export("float32"), "MobileNetV3Large random weights, fp32 LiteRT"
    else:
        model_dir, model_label = serving_model_dir(run)
    levels = [int(x) for x in args.levels.split(",")]
    env = dict(kv.split("=", 1) for kv in args.env)
    run.data["settings"] = {
        "seconds": args.seconds,
        "max_requests": args.max_requests,
        "warmup_s": args.warmup,
        "levels": levels,
        "model": model_label,
        "synthetic_vectors": args.synthetic,
        "model_dir": str(model_dir),
        "serve_args": args.serve_args,
        "server_env": env,
        "server": f"bench.variant_server {args.variant}" if args.variant is not None else "skulens serve",
        "load_generator": (
            "asyncio + httpx.AsyncClient" if args.client == "httpx" else "asyncio streams, pre-encoded requests"
        )
        + ", closed loop, keep-alive, same machine",
    }
    queries = photos(grocery / "val")
    bodies = [(sku, path.read_bytes()) for sku, path in queries]

    def judge_single(n: int, body: bytes) -> bool:
        matches = json.loads(body)["matches"]
        return bool(matches) and matches[0]["sku"] == bodies[n % len(bodies)][0]

    def judge_batch(n: int, body: bytes) -> float:
        results = json.loads(body)["results"]
        expected = [bodies[(4 * n + j) % len(bodies)][0] for j in range(4)]
        return sum(bool(r["matches"] and r["matches"][0]["sku"] == e) for r, e in zip(results, expected)) / 4

    endpoints: dict[str, tuple[Callable[[int], dict[str, Any]], Judge, int, list[int]]] = {
        "recognize": (
            lambda n: {
                "url": "/v1/recognize",
                "content": bodies[n % len(bodies)][1],
                "headers": {"Content-Type": "image/jpeg"},
            },
            judge_single,
            1,
            levels,
        ),
        "recognize-multipart": (
            lambda n: {
                "url": "/v1/recognize",
                "files": [("image", ("crop.jpg", bodies[n % len(bodies)][1], "image/jpeg"))],
            },
            judge_single,
            1,
            [int(x) for x in args.multipart_levels.split(",")] if args.multipart_levels else levels[:1],
        ),
        "batch": (
            lambda n: {
                "url": "/v1/recognize/batch",
                "files": [
                    ("images", (f"{j}.jpg", bodies[(4 * n + j) % len(bodies)][1], "image/jpeg")) for j in range(4)
                ],
            },
            judge_batch,
            4,
            levels,
        ),
    }
    chosen = [e.strip() for e in args.endpoints.split(",") if e.strip()]

    work = Path(tempfile.mkdtemp(prefix="skulens-bench-http-"))
    rows = []
    try:
        if args.synthetic:
            from bench.serving import fill_gallery
            from embedder.artifact import load_artifact

            artifact = load_artifact(model_dir)
            run.data["synthetic_vectors"] = args.synthetic
            run.data["synthetic_fill_s"] = fill_gallery(
                work / "data", artifact.version, artifact.embedding_dim, args.synthetic
            )
        if args.variant is not None:
            server, ready_s = serverkit.start_variant(work / "data", model_dir, args.variant.split(), env=env)
        else:
            server, ready_s = serverkit.start(work / "data", model_dir, args.serve_args.split(), env=env)
        process = server.process
        assert process is not None  # started above
        try:
            with server.client() as http:
                enrolled = serverkit.enrol_folder(http, grocery / "train", limit=args.enrol_limit)
                run.data["enrolment"] = enrolled
                run.data["server_ready_s"] = ready_s
                print(
                    f"  enrolled {enrolled['images']} photos of {enrolled['skus']} SKUs in "
                    f"{enrolled['seconds']:.1f} s; {len(bodies)} val photos as queries",
                    flush=True,
                )
                for endpoint in chosen:
                    make, judge, images, its_levels = endpoints[endpoint]
                    for c in its_levels:
                        profile = None
                        profile_path = RESULTS_DIR / f"profile-{args.name}-{endpoint}-c{c}.txt"
                        if args.profile and endpoint.startswith("recognize") and str(c) in args.profile.split(","):
                            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
                            profile = start_record(
                                process.pid, args.seconds + args.warmup, profile_path, native=args.profile_native
                            )
                        pid = process.pid
                        marks: dict[str, Any] = {}

                        def on_start(
                            marks: dict[str, Any] = marks, pid: int = pid
                        ) -> None:  # the measured window opens (after the warm-up)
                            marks["cpu0"], marks["threads0"] = serverkit.cpu_seconds(pid), serverkit.thread_cpu(pid)

                        def on_end(marks: dict[str, Any] = marks, pid: int = pid) -> None:
                            marks["cpu1"], marks["threads1"] = serverkit.cpu_seconds(pid), serverkit.thread_cpu(pid)

                        before = serverkit.scrape(http)  # batch counters: warm-up included (the mean barely moves)
                        if args.client == "raw":
                            encoded = [encode(server.url, make(n)) for n in range(len(bodies))]
                            result = run_level_raw(
                                server.url,
                                c,
                                encoded,
                                judge,
                                args.seconds,
                                args.max_requests,
                                args.warmup,
                                on_start,
                                on_end,
                            )
                        else:
                            result = run_level(
                                server.url,
                                c,
                                make,
                                judge,
                                args.seconds,
                                args.max_requests,
                                args.warmup,
                                on_start,
                                on_end,
                            )
                        server_cpu = marks["cpu1"] - marks["cpu0"]
                        threads0, threads1 = marks["threads0"], marks["threads1"]
                        workers = serverkit.children(pid)
                        per_thread: dict[str, float] | None = (
                            None  # the split reads the supervisor's threads only: none of the workers'
                            if workers
                            else serverkit.thread_cpu_delta(pid, threads0, threads1, result.seconds)
                        )
                        after = serverkit.scrape(http)
                        row = {
                            "endpoint": "/v1/recognize"
                            + (
                                "/batch (4 crops)"
                                if endpoint == "batch"
                                else " (multipart)"
                                if endpoint.endswith("multipart")
                                else ""
                            ),
                            "concurrency": c,
                            "requests": len(result.latencies_s),
                            "non-200": sum(n for s, n in result.statuses.items() if s != 200),
                            "req/s": len(result.latencies_s) / result.seconds,
                            "img/s": len(result.latencies_s) * images / result.seconds,
                            **percentiles(result.latencies_s),
                            "top-1": result.correct / result.judged if result.judged else None,
                            "server CPU cores": server_cpu / result.seconds,
                            "client CPU cores": result.client_cpu_s / result.seconds,
                            "server RSS MiB": rss_mib(process.pid) + sum(rss_mib(w) for w in workers),
                            "server child processes": len(workers),
                            "statuses": dict(result.statuses),
                            "client errors": dict(result.errors),
                            "seconds": result.seconds,
                            "server CPU cores by thread": per_thread,
                        }
                        batches = after.get("skulens_inference_batches_total", 0) - before.get(
                            "skulens_inference_batches_total", 0
                        )
                        images_done = after.get("skulens_inference_images_total", 0) - before.get(
                            "skulens_inference_images_total", 0
                        )
                        row["mean inference batch"] = images_done / batches if batches else None
                        rows.append(row)
                        print(
                            f"  {row['endpoint']} c={c}: {row['req/s']:.1f} req/s, p50 {row['p50_ms']:.1f} ms, "
                            f"p99 {row['p99_ms']:.1f} ms, server {row['server CPU cores']:.2f} cores, "
                            f"client {row['client CPU cores']:.2f} cores, batch {row['mean inference batch']}",
                            flush=True,
                        )
                        print(f"    server threads (cores): {per_thread}", flush=True)
                        if profile is not None:
                            profile.wait(timeout=args.seconds + args.warmup + 60)
                            if profile_path.exists():
                                summary = summarise(profile_path)
                                row["server CPU cores by thread"] = serverkit.thread_cpu_delta(
                                    process.pid, threads0, threads1, result.seconds, thread_names(profile_path)
                                )
                                summary["cpu_cores_by_thread"] = row["server CPU cores by thread"]
                                print(f"    server threads (cores): {row['server CPU cores by thread']}", flush=True)
                                print(f"    py-spy categories: {summary['categories']}", flush=True)
                                run.data.setdefault("profiles", {})[f"{endpoint}-c{c}"] = {
                                    "file": str(profile_path.name),
                                    **summary,
                                }
                                print(
                                    f"  py-spy: {summary['samples']} samples; top self: {summary['self'][:6]}",
                                    flush=True,
                                )
                            else:
                                stderr = profile.stderr.read().decode() if profile.stderr is not None else ""
                                run.note(f"py-spy produced nothing: {stderr[-500:]}")
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    c1 = next((r for r in rows if r["endpoint"] == "/v1/recognize" and r["concurrency"] == 1), None)
    c8 = next((r for r in rows if r["endpoint"] == "/v1/recognize" and r["concurrency"] == 8), None)
    checks = []
    if c1:
        checks.append(
            {
                "target": "/v1/recognize p50 at c=1 <= 15 ms",
                "measured": f"{c1['p50_ms']:.2f} ms",
                "met": c1["p50_ms"] <= 15.0,
                "margin": f"{c1['p50_ms'] - 15.0:+.2f} ms",
            }
        )
    if c8:
        checks.append(
            {
                "target": ">= 150 req/s at c=8",
                "measured": f"{c8['req/s']:.1f} req/s",
                "met": c8["req/s"] >= 150.0,
                "margin": f"{c8['req/s'] / 150.0:.2f}x of target",
            }
        )
        checks.append(
            {
                "target": "p99 <= 100 ms at c=8",
                "measured": f"{c8['p99_ms']:.1f} ms",
                "met": c8["p99_ms"] <= 100.0,
                "margin": f"{c8['p99_ms'] - 100.0:+.1f} ms",
            }
        )
    run.data["rows"] = rows
    run.data["targets"] = checks
    print()
    print(
        table(
            rows,
            HTTP_COLUMNS,
        )
    )
    print()
    print(table(checks))
    run.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
