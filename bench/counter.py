"""Benchmark: counter photos → items, on seeded synthetic scenes (``counter/scenes.py``).

``--scenes`` scenes (seeds 0..N-1; the segmenter's settings were tuned on seeds 1000-1239, never
these) of 1-8 catalogue products on wood, laminate or a dark belt, some touching, photographed
under another light than the stored empty counter. Reports:

* detection precision and recall at IoU 0.5 (greedy one-to-one matching);
* the share of scenes whose item count is right, split by items apart / touching and by count;
* the share of baskets exactly right (every SKU and quantity): each found box cropped and
  recognised by the shipped model against a gallery of every SKU's train photos and catalogue
  photo (nearest reference image, no threshold);
* the same counts without the background photo (the plain-counter fallback), items apart;
* latency of a 6-item photo at concurrency 1: segmentation, and segmentation + crops + one
  embedding batch (median of 20).

    .venv/bin/python -m bench.counter [--scenes 200]
"""

from __future__ import annotations

import argparse
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200)
    args = parser.parse_args()
    run = Run("counter")
    root = skip_without_grocery(run)
    if root is None:
        run.save()
        return
    segmenter = BackgroundSegmenter()
    catalogue = products(root)
    _, recognise = recogniser(root)
    tp = fp = fn = 0
    counts: dict[str, list[int]] = {}
    baskets: dict[str, list[int]] = {}
    no_background = [0, 0]

    def tally(table_: dict[str, list[int]], key: str, ok: bool) -> None:
        table_.setdefault(key, [0, 0])
        table_[key][0] += int(ok)
        table_[key][1] += 1

    for seed in range(args.scenes):
        scene = make_scene(catalogue, seed)
        truth = [i.box for i in scene.items]
        boxes = segmenter.segment(scene.photo, scene.background)
        matched = match(boxes, truth)
        tp, fp, fn = tp + len(matched), fp + len(boxes) - len(matched), fn + len(truth) - len(matched)
        layout = "touching" if scene.touching else "apart"
        right_count = len(boxes) == len(truth)
        basket_right = Counter(recognise(crops_of(scene.photo, boxes))) == Counter(i.sku for i in scene.items)
        for key in (layout, f"{len(truth)} items", "all"):
            tally(counts, key, right_count)
            tally(baskets, key, basket_right)
        if not scene.touching:
            no_background[0] += int(len(segmenter.segment(scene.photo)) == len(truth))
            no_background[1] += 1
    order = ["all", "apart", "touching"] + [f"{n} items" for n in range(1, 9)]
    rows = [
        {
            "scenes": k,
            "n": counts[k][1],
            "count right": counts[k][0] / counts[k][1],
            "basket exactly right": baskets[k][0] / baskets[k][1],
        }
        for k in order
        if k in counts
    ]
    detection = {
        "precision_iou50": tp / max(1, tp + fp),
        "recall_iou50": tp / max(1, tp + fn),
        "no_background_apart_count_right": no_background[0] / max(1, no_background[1]),
    }
    six = next(make_scene(catalogue, 10_000 + s, n_items=6, touching=False) for s in range(1))
    seg_ms, total_ms = [], []
    for _ in range(20):
        start = time.perf_counter()
        boxes = segmenter.segment(six.photo, six.background)
        seg_ms.append(1000 * (time.perf_counter() - start))
        recognise(crops_of(six.photo, boxes))
        total_ms.append(1000 * (time.perf_counter() - start))
    latency = {
        "six_item_segment_ms_median": statistics.median(seg_ms),
        "six_item_segment_and_recognise_ms_median": statistics.median(total_ms),
    }
    run.data.update(rows=rows, detection=detection, latency=latency, scenes=args.scenes)
    print(table(rows))
    print(detection)
    print(latency)
    run.save()


if __name__ == "__main__":
    main()
