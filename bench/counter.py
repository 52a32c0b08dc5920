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

With ``--learned`` the segmenter of the learned item-centre detector (``counter/centres.py``) runs beside the
classical one (before / after); ``--products SHARE`` makes the scenes of a share of the catalogue
(``counter.scenes.PRODUCT_SETS``: a centre model trained on scenes of ``even`` is measured on ``odd``, one trained
on ``even_odd_a`` on ``odd_b``: products it never saw).

With ``--recognised store|unknown`` the recogniser-guided split (``counter/recognised.py``: proposals for
uncertain blobs judged by the recogniser, ``bench/counter_scorer.py``: a gallery of the grocery **train**
photos only, never the catalogue photos the scenes are cut from; ``unknown``: the scene's own SKUs left out
of it) runs beside the classical segmenter on every scene: ``before`` and ``after`` in one run, the 6-item
latency alternating the two repeat by repeat. Each cut is judged with the settings fitted for it
(``counter.recognised.split_settings``: round 9's on the learned cut); ``--decision round4`` judges both with round
4's, as rounds 6-8 measured.

    .venv/bin/python -m bench.counter [--scenes 200] [--first-seed 0] [--name counter] [--no-baskets]
        [--recognised store|unknown [--decision fitted|round4]] [--learned]
        [--products all|even|odd|odd_a|odd_b|even_odd_a]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image

from bench.common import Run, skip_without_grocery, table
from bench.counter_tally import Tally
from bench.counter_verifier_replay import describe_decision
from counter.centres import DEFAULT_CENTRE_MODEL
from counter.recognised import DEFAULT_DECISION, DEFAULT_PROPOSAL, RecognisedSegmenter
from counter.scenes import PRODUCT_SETS, Product, catalogue_products, make_scene, product_set
from counter.segment import BackgroundSegmenter
from embedder.preprocess import letterbox

log = logging.getLogger("bench.counter")

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from counter.boxes import Box
    from counter.recognised import Scorer
    from counter.segment import Segmenter
    from embedder.runtime import LiteRTEmbedder


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
    parser.add_argument(
        "--recognised",
        choices=["store", "unknown"],
        help="also run the recogniser-guided split (after) beside the classical segmenter (before), its gallery the "
        "store photos of every SKU (store) or of the SKUs not in the scene (unknown)",
    )
    parser.add_argument(
        "--learned",
        action="store_true",
        help="after: the learned centre detector's segmenter (counter/centres.py); before: the classical one "
        "(both recogniser-guided with --recognised)",
    )
    parser.add_argument(
        "--decision",
        choices=["fitted", "round4"],
        default="fitted",
        help="with --recognised: each cut's own settings (counter.recognised.split_settings: round 9's on the learned "
        "cut) or round 4's on both (as rounds 6-8 measured)",
    )
    parser.add_argument(
        "--products",
        choices=list(PRODUCT_SETS),
        default="all",
        help="the catalogue products the scenes are made of, in name order (the centre model trains on the even)",
    )
    parser.add_argument(
        "--centre-model",
        type=Path,
        default=DEFAULT_CENTRE_MODEL,
        help="with --learned: a centre model folder (centres.tflite + centres.json; default the shipped one)",
    )
    args = parser.parse_args()
    run = Run(args.name)
    root = skip_without_grocery(run)
    if root is None:
        run.save()
        return
    segmenter = BackgroundSegmenter()
    learned = None
    if args.learned:
        from counter.centres import CentreDetector, LearnedSegmenter

        learned = LearnedSegmenter(CentreDetector(args.centre_model))
    catalogue = catalogue_products(root)
    catalogue = product_set(catalogue, args.products)
    embedder, recognise_ = recogniser(root) if not args.no_baskets or args.recognised else (None, None)
    recognise = None if args.no_baskets else recognise_
    gallery = None
    if args.recognised:
        from bench.counter_scorer import StoreGallery

        gallery = StoreGallery.load(embedder, root)  # type: ignore[arg-type]
    compared = gallery is not None or learned is not None
    settings = (DEFAULT_DECISION, DEFAULT_PROPOSAL) if args.decision == "round4" else (None, None)
    sides = {"before": Tally(), "after": Tally()} if compared else {"": Tally()}
    bases = {"": segmenter, "before": segmenter, "after": learned or segmenter}
    judged = JudgedCount()
    seeds = range(args.first_seed, args.first_seed + args.scenes)
    for seed in seeds:
        scene = make_scene(catalogue, seed)
        for side, tally_ in sides.items():
            chosen: Segmenter = bases[side]
            if gallery is not None and (side == "after" or learned is not None):
                excluding = frozenset(i.sku for i in scene.items) if args.recognised == "unknown" else frozenset()
                chosen = RecognisedSegmenter(bases[side], judged.counting(gallery.scorer(excluding)), *settings)
            boxes = chosen.segment(scene.photo, scene.background)
            tally_.add(scene, boxes, None if recognise is None else recognise(crops_of(scene.photo, boxes)))
            if not scene.touching:
                tally_.add_no_background(scene, chosen.segment(scene.photo))
    for side, tally_ in sides.items():
        log.info("%sseeds %d-%d\n%s", f"{side}: " if side else "", seeds.start, seeds.stop - 1, table(tally_.rows()))
        log.info("%s", json.dumps(tally_.detection()))
    if not compared:
        latency = six_item_latency({"": segmenter}, catalogue, recognise)
        run.data.update(rows=sides[""].rows(), detection=sides[""].detection())
    else:
        plain: dict[str, BackgroundSegmenter] = {"before": segmenter, "after": bases["after"]}
        timed: dict[str, Segmenter] = dict(plain)
        if gallery is not None:
            timed = {
                side: RecognisedSegmenter(base, judged.counting(gallery.scorer(), six_item=True), *settings)
                if side == "after" or learned is not None
                else base
                for side, base in plain.items()
            }
        latency = six_item_latency(timed, catalogue, recognise)
        latency["six_item_judged_crops"] = judged.six_item
        run.data.update({side: {"rows": t.rows(), "detection": t.detection()} for side, t in sides.items()})
        if learned is not None:
            run.data["learned"] = {
                "segmenter": "counter.centres.LearnedSegmenter",
                "model": learned.detector.info.provenance,
            }
        if gallery is not None:
            recognised = {side: s for side, s in timed.items() if isinstance(s, RecognisedSegmenter)}
            run.data["recognised"] = {
                "gallery": f"{args.recognised}: grocery train photos (store photos), never the catalogue photos"
                + (", the scene's own SKUs left out" if args.recognised == "unknown" else ""),
                "decision": {side: describe_decision(s.decision) for side, s in recognised.items()},
                "proposal": {side: asdict(s.proposal) for side, s in recognised.items()},
                "scorer_calls": judged.calls,  # segment() calls with something proposed (no-background ones too)
                "judged_crops": judged.crops,
            }
    log.info("%s", json.dumps(latency))
    run.data.update(latency=latency, scenes=args.scenes, seeds=[seeds.start, seeds.stop - 1], products=args.products)
    run.save()


@dataclass
class JudgedCount:
    """How often the recogniser-guided split asks the scorer, and about how many crops."""

    calls: int = 0
    crops: int = 0
    six_item: int = 0

    def counting(self, scorer: Scorer, six_item: bool = False) -> Scorer:
        def score(crops: list[np.ndarray]) -> np.ndarray:
            if six_item:
                self.six_item = len(crops)
            else:
                self.calls, self.crops = self.calls + 1, self.crops + len(crops)
            return scorer(crops)

        return score


def six_item_latency(
    segmenters: dict[str, Segmenter],
    catalogue: list[Product],
    recognise: Callable[[list[np.ndarray]], list[str]] | None,
    repeats: int = 20,
) -> dict[str, float]:
    """Median ms of a 6-item photo (seed 10000) at concurrency 1: segmentation, and segmentation + crops + one
    embedding batch (when a recogniser is given); several segmenters alternate repeat by repeat."""
    six = make_scene(catalogue, 10_000, n_items=6, touching=False)
    seg_ms: dict[str, list[float]] = {side: [] for side in segmenters}
    total_ms: dict[str, list[float]] = {side: [] for side in segmenters}
    for _ in range(repeats):
        for side, segmenter in segmenters.items():
            start = time.perf_counter()
            boxes = segmenter.segment(six.photo, six.background)
            seg_ms[side].append(1000 * (time.perf_counter() - start))
            if recognise is not None:
                recognise(crops_of(six.photo, boxes))
                total_ms[side].append(1000 * (time.perf_counter() - start))
    latency = {}
    for side in segmenters:
        prefix = f"{side}_" if side else ""
        latency[f"{prefix}six_item_segment_ms_median"] = statistics.median(seg_ms[side])
        if total_ms[side]:
            latency[f"{prefix}six_item_segment_and_recognise_ms_median"] = statistics.median(total_ms[side])
    return latency


if __name__ == "__main__":
    main()
