"""Benchmark: what the recogniser-guided split (``counter/recognised.py``) costs on photos where it proposes.

On the tuning scenes (seeds ``--first-seed``..+N-1) where something is proposed, at concurrency 1, alternating
scene by scene: **before**, the classical segmentation + its items' crops in one embedding batch; **after**,
as the checkout does it with ``SKULENS_COUNTER_RECOGNISED_SPLIT`` on (``service/checkout_split.py``):
segmentation + proposals, every crop (items and proposed parts) in one embedding batch, the decision.
The gallery search is left out of both (the same for the items; a flat search over a few thousand vectors).
Reports the median ms of each side and of their difference, and how many crops were added.

    .venv/bin/python -m bench.counter_split_cost [--scenes 400] [--first-seed 1000] [--name counter_r4_split_cost]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image

from bench.common import Run, skip_without_grocery
from bench.counter_scorer import StoreGallery
from counter.alternatives import ProposalConfig
from counter.hypotheses import DecisionConfig
from counter.recognised import plan
from counter.scenes import catalogue_products, make_scene
from counter.segment import BackgroundSegmenter
from embedder.preprocess import letterbox

log = logging.getLogger("bench.counter_split_cost")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenes", type=int, default=400)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--name", default="counter_r4_split_cost")
    args = parser.parse_args()
    run = Run(args.name)
    root = skip_without_grocery(run)
    if root is None:
        run.save()
        return
    from embedder.artifact import default_model_dir, load_artifact
    from embedder.runtime import LiteRTEmbedder

    embedder = LiteRTEmbedder(load_artifact(default_model_dir()), num_threads=2)
    gallery = StoreGallery.load(embedder, root)
    segmenter, catalogue = BackgroundSegmenter(), catalogue_products(root)
    size = embedder.input_size

    def embed(photo: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
        crops = [letterbox(Image.fromarray(photo).crop(b), size) for b in boxes]
        return embedder.embed(np.stack(crops))

    before, after, added = [], [], []
    for seed in range(args.first_seed, args.first_seed + args.scenes):
        scene = make_scene(catalogue, seed)
        found = plan(segmenter, scene.photo, scene.background, ProposalConfig())
        if not found.changes:
            continue
        start = time.perf_counter()
        boxes = segmenter.segment(scene.photo, scene.background)
        embed(scene.photo, [(b.x0, b.y0, b.x1, b.y1) for b in boxes])
        before.append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        found = plan(segmenter, scene.photo, scene.background, ProposalConfig())
        every = found.photo_boxes(list(range(len(found.boxes))))
        vectors = embed(scene.photo, [(b.x0, b.y0, b.x1, b.y1) for b in every])
        sims = np.maximum.reduceat(vectors[found.judged] @ gallery.vectors.T, gallery.starts, axis=1)
        found.items(sims, DecisionConfig())
        after.append(1000 * (time.perf_counter() - start))
        added.append(len(found.boxes) - len(found.baseline))
    run.data.update(
        scenes=args.scenes,
        seeds=[args.first_seed, args.first_seed + args.scenes - 1],
        scenes_with_proposals=len(before),
        added_crops_median=statistics.median(added) if added else 0,
        added_crops_max=max(added, default=0),
        before_ms_median=statistics.median(before) if before else None,
        after_ms_median=statistics.median(after) if after else None,
        extra_ms_median=statistics.median(a - b for a, b in zip(after, before, strict=True)) if after else None,
    )
    log.info("%s", {k: v for k, v in run.data.items() if k not in ("machine", "code", "notes", "command")})
    run.save()


if __name__ == "__main__":
    main()
