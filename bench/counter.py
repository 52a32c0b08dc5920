"""Benchmark: counter photos → items, on seeded synthetic scenes (``counter/scenes.py``).

``--scenes`` scenes (seeds ``--first-seed``.. ``--first-seed`` + N - 1) of 1-8 catalogue products on
wood, laminate or a dark belt, some touching, photographed under another light than the stored empty
counter. Seed ranges (bench/README.md): the segmenter's settings are tuned on seeds 1000-1399 only;
0-199 (the held-out range since issue 12's first segmenter) and 20000-20199 (held out from the second
round of tuning on, never looked at while tuning) are what is reported; the latency scene is seed 10000.
Reports:

* detection precision and recall at IoU 0.5 (greedy one-to-one matching), all and apart / touching;
* the share of scenes whose item count is right, split by items apart / touching and by count;
* the share of baskets exactly right (every SKU and quantity): each found box cropped and
  recognised by the shipped model against a gallery of every SKU's train photos and catalogue
  photo (nearest reference image, no threshold);
* the same counts without the background photo (the plain-counter fallback), items apart;
* latency of a 6-item photo at concurrency 1: segmentation, and segmentation + crops + one
  embedding batch (median of 20).

    .venv/bin/python -m bench.counter [--scenes 200] [--first-seed 0] [--name counter] [--no-baskets]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image

from bench.common import Run, skip_without_grocery, table
from counter.boxes import match
from counter.scenes import Product, make_scene
from counter.segment import BackgroundSegmenter
from embedder.preprocess import letterbox

log = logging.getLogger("bench.counter")

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from counter.boxes import Box
    from embedder.runtime import LiteRTEmbedder


def products(root: Path) -> list[Product]:
    return [Product(p.stem, np.asarray(Image.open(p).convert("RGB"))) for p in sorted((root / "iconic").glob("*.jpg"))]


def recogniser(root: Path) -> tuple[LiteRTEmbedder, Callable[[list[np.ndarray]], list[str]]]:
    """``crops -> SKUs``: the shipped model, nearest reference image among train + catalogue photos."""
    from embedder.artifact import default_model_dir, load_artifact
    from embedder.runtime import LiteRTEmbedder
    from training.data import cached_pixels, decode_images, list_image_folder

    embedder = LiteRTEmbedder(load_artifact(default_model_dir()), num_threads=2)
    train = list_image_folder(root / "train")
    iconic = sorted((root / "iconic").glob("*.jpg"))
    gallery = np.concatenate(
        [
            embedder.embed(np.asarray(cached_pixels(train, embedder.input_size, "runs/cache"))),
            embedder.embed(decode_images([str(p) for p in iconic], embedder.input_size)),
        ]
    )
    skus = [train.class_names[i] for i in train.labels] + [p.stem for p in iconic]

    def recognise(crops: list[np.ndarray]) -> list[str]:
        if not crops:
            return []
        pixels = np.stack([letterbox(Image.fromarray(c), embedder.input_size) for c in crops])
        return [skus[i] for i in np.argmax(embedder.embed(pixels) @ gallery.T, axis=1)]

    return embedder, recognise


def crops_of(photo: np.ndarray, boxes: Iterable[Box]) -> list[np.ndarray]:
    return [photo[b.y0 : b.y1, b.x0 : b.x1] for b in boxes]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=0, help="scenes are seeds FIRST..FIRST+N-1")
    parser.add_argument("--name", default="counter", help="results file bench/results/NAME.json")
    parser.add_argument("--no-baskets", action="store_true", help="counts and boxes only (no recogniser)")
    args = parser.parse_args()
    run = Run(args.name)
    root = skip_without_grocery(run)
    if root is None:
        run.save()
        return
    segmenter = BackgroundSegmenter()
    catalogue = products(root)
    recognise = None if args.no_baskets else recogniser(root)[1]
    found: dict[str, list[int]] = {}  # layout -> [true positives, boxes found, true boxes]
    counts: dict[str, list[int]] = {}
    baskets: dict[str, list[int]] = {}
    no_background = [0, 0]

    def tally(table_: dict[str, list[int]], key: str, ok: bool) -> None:
        table_.setdefault(key, [0, 0])
        table_[key][0] += int(ok)
        table_[key][1] += 1

    seeds = range(args.first_seed, args.first_seed + args.scenes)
    for seed in seeds:
        scene = make_scene(catalogue, seed)
        truth = [i.box for i in scene.items]
        boxes = segmenter.segment(scene.photo, scene.background)
        matched = match(boxes, truth)
        layout = "touching" if scene.touching else "apart"
        for key in (layout, "all"):
            totals = found.setdefault(key, [0, 0, 0])
            totals[0], totals[1], totals[2] = totals[0] + len(matched), totals[1] + len(boxes), totals[2] + len(truth)
        right_count = len(boxes) == len(truth)
        for key in (layout, f"{len(truth)} items", "all", scene.surface):
            tally(counts, key, right_count)
        if recognise is not None:
            basket_right = Counter(recognise(crops_of(scene.photo, boxes))) == Counter(i.sku for i in scene.items)
            for key in (layout, f"{len(truth)} items", "all", scene.surface):
                tally(baskets, key, basket_right)
        if not scene.touching:
            no_background[0] += int(len(segmenter.segment(scene.photo)) == len(truth))
            no_background[1] += 1
    order = ["all", "apart", "touching"] + [f"{n} items" for n in range(1, 9)] + ["wood", "laminate", "belt"]
    rows: list[dict[str, object]] = []
    for k in order:
        if k not in counts:
            continue
        row: dict[str, object] = {"scenes": k, "n": counts[k][1], "count right": counts[k][0] / counts[k][1]}
        if recognise is not None:
            row["basket exactly right"] = baskets[k][0] / baskets[k][1]
        rows.append(row)
    detection: dict[str, float] = {}
    for key, (tp, n_found, n_true) in found.items():
        suffix = "" if key == "all" else f"_{key}"
        detection[f"precision_iou50{suffix}"] = tp / max(1, n_found)
        detection[f"recall_iou50{suffix}"] = tp / max(1, n_true)
    detection["no_background_apart_count_right"] = no_background[0] / max(1, no_background[1])
    latency = six_item_latency(segmenter, catalogue, recognise)
    run.data.update(
        rows=rows, detection=detection, latency=latency, scenes=args.scenes, seeds=[seeds.start, seeds.stop - 1]
    )
    log.info("seeds %d-%d\n%s", seeds.start, seeds.stop - 1, table(rows))
    log.info("%s", json.dumps(detection))
    log.info("%s", json.dumps(latency))
    run.save()


def six_item_latency(
    segmenter: BackgroundSegmenter,
    catalogue: list[Product],
    recognise: Callable[[list[np.ndarray]], list[str]] | None,
    repeats: int = 20,
) -> dict[str, float]:
    """Median ms of a 6-item photo (seed 10000) at concurrency 1: segmentation, and segmentation + crops + one
    embedding batch (when a recogniser is given)."""
    six = make_scene(catalogue, 10_000, n_items=6, touching=False)
    seg_ms, total_ms = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        boxes = segmenter.segment(six.photo, six.background)
        seg_ms.append(1000 * (time.perf_counter() - start))
        if recognise is not None:
            recognise(crops_of(six.photo, boxes))
            total_ms.append(1000 * (time.perf_counter() - start))
    latency = {"six_item_segment_ms_median": statistics.median(seg_ms)}
    if total_ms:
        latency["six_item_segment_and_recognise_ms_median"] = statistics.median(total_ms)
    return latency


if __name__ == "__main__":
    main()
