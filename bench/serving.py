"""Benchmark 6: the serving process: start-up time, resident memory with 100k vectors, install size.

* Start-up: from spawning ``skulens serve`` to ``/readyz`` answering 200, with an empty
  gallery (3 times) and with a gallery of 100k reference images: first start (index built
  from SQLite), then a restart (index snapshot loaded), for the flat and the HNSW index.
* Memory: RSS (``VmRSS`` of /proc/PID/status) of the server when ready and after 200
  recognitions, empty and with 100k vectors; ``VmHWM`` is the peak. The 100k reference
  images are inserted straight through ``gallery.stores.sqlite.store.CatalogStore.add_images`` (1,000
  SKUs x 100 images, one tiny shared image file, clustered synthetic unit vectors), under
  the served model's version, so the server indexes them as its own.
* With those 100k: ``/v1/recognize`` latency at concurrency 1 (grocery val photos) and the
  latency of enrolling a new SKU, flat vs HNSW (search and index update inside a request).
* Install size: a fresh venv in /tmp, ``pip install /work/main`` (no extras, from PyPI),
  ``du -sh``; ``import tensorflow`` must fail there and ``skulens serve --help`` work.

    .venv/bin/python -m bench.serving [--sections startup,memory,install] [--vectors 100000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import serverkit
from bench.common import (
    ROOT,
    Run,
    hwm_mib,
    percentiles,
    photos,
    rss_mib,
    serving_model_dir,
    skip_without_grocery,
    table,
)
from bench.loadgen import run_level

if TYPE_CHECKING:
    from embedder.artifact import ModelArtifact
    from tests.e2e.server import Server

SIGMA = 0.62


def fill_gallery(data_dir: Path, model_version: str, dim: int, n: int, per_sku: int = 100) -> float:
    """``n`` reference images with clustered random unit vectors, straight into SQLite; returns seconds."""
    import io

    import numpy as np
    from PIL import Image

    from gallery.blobs import BlobStore
    from gallery.stores.base import NewImage
    from gallery.stores.sqlite.store import CatalogStore

    started = time.perf_counter()
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(buffer, "JPEG")
    digest = BlobStore(data_dir / "images").put(buffer.getvalue())
    store = CatalogStore(data_dir / "catalog.sqlite3")
    rng = np.random.default_rng(0)
    for s in range(0, n, per_sku):
        count = min(per_sku, n - s)
        center = rng.standard_normal(dim).astype(np.float32)
        center /= np.linalg.norm(center)
        vectors = center + rng.standard_normal((count, dim)).astype(np.float32) * (SIGMA / np.sqrt(dim))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.add_images(
            f"synthetic-{s // per_sku:05d}",
            [NewImage(digest, "image/jpeg", 8, 8)] * count,
            vectors,
            model_version,
            name=f"Synthetic {s // per_sku}",
        )
    store.set_meta("model_version", model_version)
    store.close()
    return time.perf_counter() - started


def memory_of(server: Server) -> dict[str, Any]:
    assert server.process is not None  # a started server
    return {"rss_mib": rss_mib(server.process.pid), "hwm_mib": hwm_mib(server.process.pid)}


def recognise_c1(server: Server, bodies: list[bytes], n: int) -> dict[str, Any]:
    result = run_level(
        server.url,
        1,
        lambda i: {
            "url": "/v1/recognize",
            "content": bodies[i % len(bodies)],
            "headers": {"Content-Type": "image/jpeg"},
        },
        seconds=60.0,
        max_requests=n,
        warmup_s=1.0,
    )
    return {
        "requests": len(result.latencies_s),
        "non_200": sum(v for k, v in result.statuses.items() if k != 200),
        **percentiles(result.latencies_s),
    }


def gallery_search(
    data_dir: Path, artifact: ModelArtifact, kinds: list[str], n_queries: int = 500
) -> list[dict[str, Any]]:
    """``Gallery.search`` in-process (index search + per-SKU aggregation + SKU names from SQLite), one query
    per call, on the large gallery the servers left behind (their index snapshots are loaded)."""
    import faiss
    import numpy as np

    from gallery.gallery import Gallery

    rows = []
    for kind in kinds:
        gallery = Gallery(data_dir, artifact.version, artifact.embedding_dim, kind)
        _, _, vectors = gallery.store.vectors_for(artifact.version, list(range(1, 100 * n_queries, 100)))
        rng = np.random.default_rng(1)
        queries = vectors + rng.standard_normal(vectors.shape).astype(np.float32) * (SIGMA / np.sqrt(vectors.shape[1]))
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        for threads in (1, 2):
            faiss.omp_set_num_threads(threads)
            for q in queries[:20]:
                gallery.search(q[None], 5)
            times = []
            for q in queries:
                t = time.perf_counter()
                gallery.search(q[None], 5)
                times.append(time.perf_counter() - t)
            rows.append(
                {
                    "what": "Gallery.search (k=5)",
                    "vectors": gallery.size,
                    "index": kind,
                    "faiss threads": threads,
                    "queries": len(times),
                    **percentiles(times),
                }
            )
        gallery.close(snapshot=False)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return rows


def section_startup_memory(run: Run, model_dir: Path, n_vectors: int, kinds: list[str], bodies: list[bytes]) -> None:
    from embedder.artifact import load_artifact

    artifact = load_artifact(model_dir)
    rows, work = [], Path(tempfile.mkdtemp(prefix="skulens-bench-serving-"))
    try:
        for attempt in range(3):  # empty gallery
            server, ready_s = serverkit.start(work / "empty", model_dir)
            try:
                ready = memory_of(server)
                latency = recognise_c1(server, bodies, 200) if attempt == 0 else {}
                after = memory_of(server)
            finally:
                server.stop()
            rows.append(
                {
                    "gallery": "empty",
                    "index": "flat",
                    "start": f"start {attempt + 1}",
                    "ready_s": ready_s,
                    "RSS ready MiB": ready["rss_mib"],
                    "RSS after 200 req MiB": after["rss_mib"],
                    "peak RSS MiB": after["hwm_mib"],
                    **{f"recognise {k}": v for k, v in latency.items() if k in ("p50_ms", "p99_ms")},
                }
            )
            print(f"  {rows[-1]}", flush=True)
        fill_s = fill_gallery(work / "big", artifact.version, artifact.embedding_dim, n_vectors)
        run.data["fill_seconds"] = fill_s
        run.data["sqlite_mib"] = (work / "big" / "catalog.sqlite3").stat().st_size / 2**20
        print(f"  inserted {n_vectors} reference images in {fill_s:.1f} s", flush=True)
        enrol_rows = []
        for kind in kinds:
            for start in ("first start: index built from SQLite", "restart: index snapshot loaded"):
                server, ready_s = serverkit.start(work / "big", model_dir, ["--index-kind", kind], timeout=1800)
                try:
                    ready = memory_of(server)
                    latency = recognise_c1(server, bodies, 200)
                    after = memory_of(server)
                    if start.startswith("restart"):
                        with server.client() as http:
                            step = max(1, len(bodies) // 10)  # photos of different products
                            trials = serverkit.enrol_then_recognise(
                                http, [(f"bench-new-{kind}-{i:02d}", bodies[i * step]) for i in range(10)]
                            )
                        post = percentiles([t["post_s"] for t in trials])
                        enrol_rows.append(
                            {
                                "gallery": f"{n_vectors} images",
                                "index": kind,
                                "trials": len(trials),
                                "POST p50_ms": post["p50_ms"],
                                "POST p95_ms": post["p95_ms"],
                                "found by next recognise": sum(t["found"] for t in trials),
                                "trial details": trials,
                            }
                        )
                finally:
                    server.stop(timeout=120)
                rows.append(
                    {
                        "gallery": f"{n_vectors} images",
                        "index": kind,
                        "start": start,
                        "ready_s": ready_s,
                        "RSS ready MiB": ready["rss_mib"],
                        "RSS after 200 req MiB": after["rss_mib"],
                        "peak RSS MiB": after["hwm_mib"],
                        "recognise p50_ms": latency["p50_ms"],
                        "recognise p99_ms": latency["p99_ms"],
                    }
                )
                print(f"  {rows[-1]}", flush=True)
        run.data["gallery_search_rows"] = gallery_search(work / "big", artifact, kinds)
        run.data["startup_memory_rows"] = rows
        run.data["enrol_at_scale_rows"] = enrol_rows
        print()
        print(table(rows))
        print()
        print(table(run.data["gallery_search_rows"]))
        print()
        print(
            table(enrol_rows, ["gallery", "index", "trials", "POST p50_ms", "POST p95_ms", "found by next recognise"])
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def section_install(run: Run) -> None:
    venv = Path(tempfile.gettempdir()) / "skulens-serve-only-venv"
    shutil.rmtree(venv, ignore_errors=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    subprocess.run([*pip, "install", "-q", "--upgrade", "pip"], check=True)
    empty = subprocess.run(["du", "-sm", str(venv)], capture_output=True, text=True, check=False).stdout.split()[0]
    started = time.perf_counter()
    done = subprocess.run([*pip, "install", "-q", str(ROOT)], capture_output=True, text=True, check=False)
    install_s = time.perf_counter() - started
    if done.returncode != 0:
        run.note(f"pip install failed: {done.stderr[-1500:]}")
        return
    du_h = subprocess.run(["du", "-sh", str(venv)], capture_output=True, text=True, check=False).stdout.split()[0]
    du_m = int(subprocess.run(["du", "-sm", str(venv)], capture_output=True, text=True, check=False).stdout.split()[0])
    site = next((venv / "lib").glob("python*/site-packages"))
    sizes = (
        subprocess.run(
            f"du -sm {site}/* | sort -rn | head -12", shell=True, capture_output=True, text=True, check=False
        )
        .stdout.strip()
        .splitlines()
    )
    tf = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import tensorflow"], capture_output=True, text=True, check=False
    )
    keras = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import keras"], capture_output=True, text=True, check=False
    )
    helped = subprocess.run(
        [str(venv / "bin" / "skulens"), "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        check=False,
    )
    frozen = subprocess.run([*pip, "freeze"], capture_output=True, text=True, check=False).stdout.strip().splitlines()
    info = {
        "venv": str(venv),
        "du_sh": du_h,
        "du_mib": du_m,
        "empty_venv_mib": int(empty),
        "install_seconds": install_s,
        "largest_in_site_packages_mib": sizes,
        "import_tensorflow_fails": tf.returncode != 0,
        "import_tensorflow_error": tf.stderr.strip().splitlines()[-1:],
        "import_keras_fails": keras.returncode != 0,
        "skulens_serve_help_works": helped.returncode == 0 and "usage" in helped.stdout,
        "packages": frozen,
        "target_mib": 400,
        "met": du_m <= 400,
    }
    run.data["install"] = info
    print(
        table(
            [
                {
                    "what": "serve-only install (pip install /work/main, no extras)",
                    "du -sh": du_h,
                    "MiB": du_m,
                    "target": "<= 400 MB",
                    "met": info["met"],
                    "import tensorflow fails": info["import_tensorflow_fails"],
                    "skulens serve --help works": info["skulens_serve_help_works"],
                }
            ]
        )
    )
    print("largest in site-packages (MiB):\n  " + "\n  ".join(sizes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="startup,install")
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--kinds", default="flat,hnsw", help="index kinds for the large gallery")
    parser.add_argument("--name", default="serving", help="results file bench/results/NAME.json")
    args = parser.parse_args(argv)

    run = Run(args.name)
    sections = args.sections.split(",")
    if "startup" in sections:
        grocery = skip_without_grocery(run)
        model_dir, label = serving_model_dir(run)
        run.data["settings"] = {"model": label, "vectors": args.vectors, "kinds": args.kinds}
        bodies = [p.read_bytes() for _, p in photos(grocery / "val")] if grocery else []
        if bodies:
            section_startup_memory(run, model_dir, args.vectors, args.kinds.split(","), bodies)
    if "install" in sections:
        section_install(run)
    run.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
