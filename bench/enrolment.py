"""Benchmark 4: enrolment: from the POST of a new SKU's photo to that SKU being found.

Against the real server (``skulens serve``) whose gallery holds every grocery train photo,
each trial enrols a new SKU id (``bench-new-NNN``) with one grocery val photo through
``POST /v1/skus/{sku}/images`` and, as soon as that answers, sends the same photo to
``POST /v1/recognize``. Reported: POST latency, the latency of that next recognise, and in
how many trials the next recognise already answers the new SKU (top match, and decision
"known"). Run with 1 worker process and with 2 (``--workers 2``: the next request may land
on the other process, which must replay the change log first).

    .venv/bin/python -m bench.enrolment [--trials 50]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import serverkit
from bench.common import Run, percentiles, photos, serving_model_dir, skip_without_grocery, table


def summarise(label: str, trials: list[dict[str, Any]]) -> dict[str, Any]:
    post = percentiles([t["post_s"] for t in trials])
    rec = percentiles([t["recognise_s"] for t in trials])
    return {
        "scenario": label,
        "trials": len(trials),
        "POST 201": sum(t["post_status"] == 201 for t in trials),
        "POST p50_ms": post["p50_ms"],
        "POST p95_ms": post["p95_ms"],
        "POST max_ms": max(t["post_s"] for t in trials) * 1e3,
        "next recognise p50_ms": rec["p50_ms"],
        "next recognise p95_ms": rec["p95_ms"],
        "POST + recognise p50_ms": percentiles([t["post_s"] + t["recognise_s"] for t in trials])["p50_ms"],
        "found as top match": sum(t["found"] for t in trials),
        "decision known = new SKU": sum(t["found"] and t["decision"] == "known" for t in trials),
        "min top score": min((t["top_score"] or 0.0) for t in trials),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--enrol-limit", type=int, default=None, help="pre-enrol only the first N train photos")
    parser.add_argument("--workers", default="1,2", help="worker-process counts to run")
    args = parser.parse_args(argv)

    run = Run("enrolment")
    grocery = skip_without_grocery(run)
    if grocery is None:
        run.save()
        return 0
    model_dir, model_label = serving_model_dir(run)
    val = photos(grocery / "val")
    step = max(1, len(val) // args.trials)
    chosen = [val[i * step % len(val)][1].read_bytes() for i in range(args.trials)]
    run.data["settings"] = {"trials": args.trials, "model": model_label, "photos": "grocery val photos, one per trial"}
    rows, work = [], Path(tempfile.mkdtemp(prefix="skulens-bench-enrol-"))
    try:
        for number, workers in enumerate(int(w) for w in args.workers.split(",")):
            server, _ = serverkit.start(work / "data", model_dir, ["--workers", str(workers)])
            try:
                with server.client() as http:
                    if number == 0:
                        pre = serverkit.enrol_folder(http, grocery / "train", limit=args.enrol_limit)
                        run.data["pre_enrolled"] = pre
                        print(f"  pre-enrolled {pre['images']} photos of {pre['skus']} SKUs", flush=True)
                    for i in range(3):  # warm-up: interpreters of batch 1 created in every worker
                        http.post("/v1/recognize", content=chosen[i], headers={"Content-Type": "image/jpeg"})
                    trials = serverkit.enrol_then_recognise(
                        http, [(f"bench-new-w{workers}-{i:03d}", data) for i, data in enumerate(chosen)]
                    )
                    gallery_images = http.get("/readyz").json()["reference_images"]
            finally:
                server.stop()
            row = summarise(f"{workers} worker process(es), gallery {gallery_images} images at the end", trials)
            rows.append(row)
            run.data.setdefault("trials", {})[f"workers_{workers}"] = trials
            print(
                f"  workers={workers}: found {row['found as top match']}/{len(trials)}, "
                f"POST p50 {row['POST p50_ms']:.1f} ms",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    run.data["rows"] = rows
    run.data["targets"] = [
        {
            "target": "an enrolled SKU is found by the next request",
            "scenario": r["scenario"],
            "met": r["found as top match"] == r["trials"],
            "measured": f"{r['found as top match']}/{r['trials']}",
        }
        for r in rows
    ]
    print()
    print(table(rows))
    run.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
