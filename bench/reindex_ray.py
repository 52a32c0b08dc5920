"""Benchmark 5b: the re-index on Ray beside the local one, on the same CPUs, in one run.

A gallery is filled with ``--photos`` grocery train photos embedded by model A (as ``bench.reindex``);
model B (the shipped model when present) then re-embeds every photo in three ways, ``--rounds`` times
interleaved, its vectors deleted again in between (``prune_vectors``, keeping A's) so that each run embeds them all:

1. local: ``gallery.reindex.reindex`` (LiteRT with ``--cpus`` threads, 2 decode threads), from a fresh
   embedder (its creation counted, as a Ray actor's start is);
2. Ray, ``--cpus`` actors of 1 LiteRT thread each (``ray.init(num_cpus=--cpus)``, started once and timed apart);
3. Ray, 1 actor of ``--cpus`` threads.

Each row's img/s is images / the re-index's own seconds (up to the index build); the Ray rows include
their actors' start (model load). Per actor: images / seconds busy in ``__call__`` (read, decode, embed
a batch), the rate one more actor would add on a cluster where it had its CPUs to itself; the driver:
images / seconds in ``add_vectors``, the most it could write whatever the number of actors.

    .venv/bin/python -m bench.reindex_ray [--photos 1000] [--cpus 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Run, photos, shipped_model_dir, skip_without_grocery, table, v3large_export
from bench.reindex import fill_gallery


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument(
        "--cpus", type=int, default=2, help="CPUs of the local Ray, and LiteRT threads of the local run"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="times each of the three runs is repeated, interleaved")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="the catalogue (photos included) in a PostgreSQL server started here (tests/pg_server.py); "
        "results in reindex_ray_postgres.json",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import ray

    from embedder.artifact import load_artifact
    from embedder.runtime import LiteRTEmbedder
    from gallery.reindex import ReindexReport, reindex
    from gallery.reindex_ray import reindex_on_ray
    from gallery.stores.open import open_catalog

    run = Run("reindex_ray_postgres" if args.postgres else "reindex_ray")
    grocery = skip_without_grocery(run)
    if grocery is None:
        run.save()
        return 0
    items = photos(grocery / "train")
    items = items[:: max(1, len(items) // args.photos)][: args.photos]  # spread over the SKUs
    model_a = LiteRTEmbedder(load_artifact(v3large_export("float32")), num_threads=args.cpus)
    b_dir = shipped_model_dir() or v3large_export("float16")
    artifact_b = load_artifact(b_dir)
    run.data["settings"] = {
        "photos": len(items),
        "cpus": args.cpus,
        "batch_size": args.batch_size,
        "model_b": str(b_dir),
        "rounds": args.rounds,
        "catalogue": "PostgreSQL (loopback, fsync off)" if args.postgres else "SQLite",
        "ray": ray.__version__,
    }

    rows: list[dict[str, Any]] = []

    def record(what: str, report: ReindexReport, wall: float) -> None:
        rows.append(
            {
                "what": what,
                "img/s": report.images_per_second,
                "seconds": report.seconds,
                "with index build s": wall,
                "images": report.embedded,
                "failed": len(report.failed),
            }
        )
        for worker, (images, busy) in sorted(report.workers.items()):
            rows.append(
                {"what": f"  one actor ({worker}): images / busy seconds", "img/s": images / busy, "images": images}
            )
        rows.append(
            {
                "what": "  the driver: images / seconds writing their vectors",
                "img/s": report.embedded / report.write_seconds if report.write_seconds else 0.0,
                "images": report.embedded,
            }
        )
        print(table(rows[-2 - len(report.workers) :]), flush=True)

    work = Path(tempfile.mkdtemp(prefix="skulens-bench-reindex-ray-"))
    data = work / "data"
    pg = None
    try:
        catalog = None
        if args.postgres:
            from tests.pg_server import start_server

            pg = start_server()
            catalog = pg.new_database()
        fill_s = fill_gallery(data, items, model_a, catalog)
        print(f"  gallery filled with {len(items)} photos (model A) in {fill_s:.1f} s", flush=True)

        def forget_b() -> None:
            store = open_catalog(data, catalog)
            store.prune_vectors(model_a.version)
            store.close()

        def local(round_: int) -> None:
            started = time.perf_counter()
            model_b = LiteRTEmbedder(artifact_b, num_threads=args.cpus)
            created = time.perf_counter() - started
            report = reindex(data, model_b, batch_size=args.batch_size, catalog=catalog)
            report.seconds += created
            what = f"round {round_}, local: 1 process, {args.cpus} LiteRT threads + 2 decode threads"
            record(what, report, time.perf_counter() - started)
            forget_b()

        def on_ray(round_: int, workers: int, threads: int) -> None:
            started = time.perf_counter()
            report = reindex_on_ray(
                data,
                artifact_b,
                workers=workers,
                threads_per_worker=threads,
                batch_size=args.batch_size,
                catalog=catalog,
            )
            what = f"round {round_}, Ray: {workers} actor(s) x {threads} LiteRT thread(s), incl. actor start"
            record(what, report, time.perf_counter() - started)
            forget_b()

        started = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False)
        ray_start_s = time.perf_counter() - started
        print(f"  ray.init(num_cpus={args.cpus}): {ray_start_s:.1f} s", flush=True)
        try:
            for round_ in range(1, args.rounds + 1):  # interleaved: a change in the machine's load hits each alike
                local(round_)
                on_ray(round_, args.cpus, 1)
                on_ray(round_, 1, args.cpus)
        finally:
            ray.shutdown()
    finally:
        if pg is not None:
            pg.close()
        shutil.rmtree(work, ignore_errors=True)
    run.data["rows"] = rows
    run.data["fill_seconds"] = fill_s
    run.data["ray_init_seconds"] = ray_start_s
    print()
    print(table(rows))
    run.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
