"""Benchmark: whole checkouts through the real server, on the seeded counter scenes of ``bench.counter``.

For each scene (seeds ``--first-seed``..+N-1, as ``bench.counter``; the segmenter is tuned on seeds
1000-1399 only, the held-out ranges are 0-199 and 20000-20199: bench/README.md)
its empty counter is stored as the lane's background (``PUT /v1/lanes/bench/background``) and the
loaded photo is posted to ``POST /v1/checkout`` with ``lane=bench``, both as JPEG (quality 95): the
decoding, segmentation against the lane's background, padded crops, one micro-batched embedding,
search, open-set decision and pricing a till gets, over loopback HTTP to ``skulens serve`` (uvicorn).
The gallery: every SKU's train photos and its catalogue photo, enrolled through the API (catalogue
views as the server's default), every SKU priced 1.00; with ``--store-photos-only`` the train photos only
(the scenes are cut from the catalogue photos: recognising them against themselves is artificially easy).
``--recognised-split`` serves with ``SKULENS_COUNTER_RECOGNISED_SPLIT=1`` (the recogniser deciding one item
or two, docs/checkout.md; the service's default since round 4); without it the server runs with it set to 0
(the classical segmenter alone, as before round 4). ``--segmenter classical`` serves with the classical cues
cutting the blobs instead of the learned item-centre model (``counter/centres.py``, the default since round 6).

A basket is **exactly right** when its lines (SKU, quantity) are the scene's and nothing needs
attention. Reported by items apart / touching and by number of items, at two stored thresholds:
0 (every item takes its nearest SKU, like ``bench.counter``'s recogniser) and the shipped model's
calibrated one (95 % precision on the fold protocol; it accepts few known products: README).
Latency: a 6-item photo (scene 10000) at concurrency 1, end to end, median of 20 posts.

    .venv/bin/python -m bench.counter_checkout [--scenes 200] [--first-seed 0] [--name counter_checkout]
        [--store-photos-only] [--recognised-split] [--segmenter learned|classical]
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np
from PIL import Image

from bench import serverkit
from bench.common import Run, serving_model_dir, skip_without_grocery, table
from counter.boxes import Box, match
from counter.scenes import Scene, catalogue_products, make_scene

log = logging.getLogger("bench.counter_checkout")

LANE = "bench"


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def enrol(http: httpx.Client, root: Path, skus: list[str], catalogue_photos: bool = True) -> dict[str, Any]:
    """Train photos and (unless ``catalogue_photos`` is False) catalogue photos of every SKU, each SKU priced 1.00."""
    enrolled = serverkit.enrol_folder(http, root / "train")
    for sku in skus:
        r = http.put(f"/v1/skus/{sku}", json={"name": sku, "price": "1.00"})
        if r.status_code not in (200, 201):
            raise RuntimeError(f"price {sku}: {r.status_code} {r.text[:300]}")
        if not catalogue_photos:
            continue
        r = http.post(
            f"/v1/skus/{sku}/images",
            timeout=300.0,
            files=[("images", (f"{sku}.jpg", (root / "iconic" / f"{sku}.jpg").read_bytes(), "image/jpeg"))],
        )
        if r.status_code not in (200, 201):
            raise RuntimeError(f"enrol {sku}: {r.status_code} {r.text[:300]}")
    return enrolled


def checkout(http: httpx.Client, scene: Scene) -> dict[str, Any]:
    r = http.put(f"/v1/lanes/{LANE}/background", content=jpeg(scene.background), headers={"Content-Type": "image/jpeg"})
    if r.status_code not in (200, 201):
        raise RuntimeError(f"background: {r.status_code} {r.text[:300]}")
    r = http.post(
        "/v1/checkout", files={"photo": ("counter.jpg", jpeg(scene.photo), "image/jpeg")}, data={"lane": LANE}
    )
    if r.status_code != 200:
        raise RuntimeError(f"checkout: {r.status_code} {r.text[:300]}")
    out: dict[str, Any] = r.json()
    if out["segmentation"] != "lane_background":
        raise RuntimeError(
            f"expected segmentation against the lane's background, got {out['segmentation']}: {out['note']}"
        )
    return out


def measure(http: httpx.Client, scenes: list[Scene]) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Rows (count right, basket exactly right) by layout and item count; detection precision and recall."""
    tally: dict[str, list[int]] = {}
    tp = fp = fn = 0
    for scene in scenes:
        out = checkout(http, scene)
        truth = [item.box for item in scene.items]
        found = [Box(*item["box"]) for item in out["items"]]
        matched = len(match(found, truth))
        tp, fp, fn = tp + matched, fp + len(found) - matched, fn + len(truth) - matched
        lines = Counter({line["sku"]: line["quantity"] for line in out["lines"]})
        right_basket = lines == Counter(item.sku for item in scene.items) and not out["needs_attention"]
        for key in ("all", "touching" if scene.touching else "apart", f"{len(truth)} items"):
            counts = tally.setdefault(key, [0, 0, 0])
            counts[0] += int(len(found) == len(truth))
            counts[1] += int(right_basket)
            counts[2] += 1
    order = ["all", "apart", "touching"] + [f"{n} items" for n in range(1, 9)]
    rows = [
        {
            "scenes": k,
            "n": tally[k][2],
            "count right": tally[k][0] / tally[k][2],
            "basket exactly right": tally[k][1] / tally[k][2],
        }
        for k in order
        if k in tally
    ]
    return rows, {"precision_iou50": tp / max(1, tp + fp), "recall_iou50": tp / max(1, tp + fn)}


def latency(http: httpx.Client, scene: Scene, repeats: int = 20) -> dict[str, float]:
    checkout(http, scene)  # stores the background; warms up
    photo = jpeg(scene.photo)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        r = http.post("/v1/checkout", files={"photo": ("counter.jpg", photo, "image/jpeg")}, data={"lane": LANE})
        samples.append(1000 * (time.perf_counter() - started))
        if r.status_code != 200 or len(r.json()["items"]) != len(scene.items):
            raise RuntimeError(f"latency scene: {r.status_code}, {len(r.json().get('items', []))} items")
    return {"six_item_checkout_ms_median": statistics.median(samples), "six_item_checkout_ms_min": min(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=0, help="scenes are seeds FIRST..FIRST+N-1")
    parser.add_argument("--name", default="counter_checkout", help="results file bench/results/NAME.json")
    parser.add_argument(
        "--store-photos-only",
        action="store_true",
        help="the gallery: the train (store) photos only, not the catalogue photos the scenes are cut from",
    )
    parser.add_argument("--recognised-split", action="store_true", help="serve with SKULENS_COUNTER_RECOGNISED_SPLIT=1")
    parser.add_argument(
        "--segmenter",
        choices=["learned", "classical"],
        default="learned",
        help="serve with SKULENS_COUNTER_SEGMENTER (learned: the item-centre model, the default since round 6)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    run = Run(args.name)
    root = skip_without_grocery(run)
    if root is None:
        run.save()
        return
    from embedder.artifact import load_artifact

    model_dir, model_label = serving_model_dir(run)
    calibrated = load_artifact(model_dir).threshold
    catalogue = catalogue_products(root)
    seeds = range(args.first_seed, args.first_seed + args.scenes)
    scenes = [make_scene(catalogue, seed) for seed in seeds]
    with tempfile.TemporaryDirectory(prefix="counter-checkout-") as work:
        env = {
            "SKULENS_COUNTER_RECOGNISED_SPLIT": "1" if args.recognised_split else "0",
            "SKULENS_COUNTER_SEGMENTER": args.segmenter,
        }
        server, ready_s = serverkit.start(Path(work) / "data", model_dir, env=env)
        try:
            with server.client() as http:
                enrolled = enrol(http, root, [p.sku for p in catalogue], not args.store_photos_only)
                model_version = http.get("/v1/admin/info").json()["model_version"]
                results: dict[str, Any] = {}
                for label, threshold in (("nearest SKU (threshold 0)", 0.0), ("shipped threshold", calibrated)):
                    if threshold is None:
                        continue
                    r = http.put("/v1/admin/threshold", json={"threshold": threshold})
                    r.raise_for_status()
                    rows, detection = measure(http, scenes)
                    results[label] = {"threshold": threshold, "rows": rows, "detection": detection}
                    log.info("## %s: %s\n%s\n%s", label, threshold, table(rows), detection)
                http.put("/v1/admin/threshold", json={"threshold": 0.0}).raise_for_status()
                timing = latency(http, make_scene(catalogue, 10_000, n_items=6, touching=False))
                log.info("%s", timing)
        finally:
            server.stop()
    run.data.update(
        model=model_label,
        model_version=model_version,
        server_ready_s=ready_s,
        enrolled=enrolled,
        gallery="train (store) photos only" if args.store_photos_only else "train photos and catalogue photos",
        recognised_split=args.recognised_split,
        segmenter=args.segmenter,
        scenes=args.scenes,
        seeds=[seeds.start, seeds.stop - 1],
        results=results,
        latency=timing,
    )
    run.save()


if __name__ == "__main__":
    main()
