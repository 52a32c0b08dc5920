"""Benchmark and fit: the learned verifier of the counter's proposals against round 4's rule (round 5).

``collect --set NAME``: plan and recognise the scenes of one set once (``bench/counter_verifier_data.py``;
cached under ``--cache``; ``--segmenter learned``: cut by the learned item centres, ``counter/centres.py``, cached
as ``learned_NAME.pkl``, for ``bench/counter_rule_refit.py``). Sets: ``tuning`` (seeds 1000-1399, every catalogue product), ``heldout`` (0-199),
``heldout2`` (20000-20199); for the check across products, ``halfA_tuning`` (seeds 1000-1399, the even-numbered
catalogue products in name order) and ``halfB_heldout`` / ``halfB_heldout2`` (0-199 / 20000-20199, the
odd-numbered ones).

``fit``: labels every proposed change from the scenes' truth, fits the verifier on ``tuning`` (and, for the
check, on ``halfA_tuning``), and replays before (round 4's rule, the default) and after (the verifier) on
every set, every SKU enrolled (``store``) and the scene's own SKUs left out (``unknown``);
writes ``bench/results/counter_r5_*.json`` and, with ``--write-weights``, ``counter/verifier_weights.json``.

    .venv/bin/python -m bench.counter_verifier collect --set tuning [--cache /tmp/counter_r5]
    .venv/bin/python -m bench.counter_verifier fit [--cache /tmp/counter_r5] [--write-weights]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench.common import Run, skip_without_grocery

log = logging.getLogger("bench.counter_verifier")

SETS = {  # name: (products, first seed, scenes)
    "tuning": ("all", 1000, 400),
    "heldout": ("all", 0, 200),
    "heldout2": ("all", 20000, 200),
    "halfA_tuning": ("A", 1000, 400),
    "halfB_heldout": ("B", 0, 200),
    "halfB_heldout2": ("B", 20000, 200),
}


def collect_set(name: str, cache: Path, segmenter_name: str = "classical") -> None:
    from bench.counter_scorer import StoreGallery
    from bench.counter_verifier_data import Recogniser, collect
    from counter.scenes import catalogue_products, product_set
    from counter.segment import BackgroundSegmenter
    from embedder.artifact import default_model_dir, load_artifact
    from embedder.runtime import LiteRTEmbedder
    from training.data import decode_images

    stem = name if segmenter_name == "classical" else f"{segmenter_name}_{name}"
    run = Run(f"counter_r5_collect_{stem}")
    root = skip_without_grocery(run)
    if root is None:
        run.save()
        return
    embedder = LiteRTEmbedder(load_artifact(default_model_dir()), num_threads=1)
    gallery = StoreGallery.load(embedder, root)
    iconic = sorted((root / "iconic").glob("*.jpg"))
    catalogue = embedder.embed(decode_images([str(p) for p in iconic], embedder.input_size))
    recogniser = Recogniser(gallery, catalogue, [p.stem for p in iconic])
    every = catalogue_products(root)
    half, first, count = SETS[name]
    chosen = product_set(every, {"all": "all", "A": "even", "B": "odd"}[half])
    segmenter = BackgroundSegmenter()
    if segmenter_name == "learned":
        from counter.centres import CentreDetector, LearnedSegmenter

        segmenter = LearnedSegmenter(CentreDetector())
    collect(cache / f"{stem}.pkl", segmenter, chosen, range(first, first + count), recogniser)
    log.info("%s: %d scenes collected", name, count)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("what", choices=["collect", "fit"])
    parser.add_argument("--set", action="append", choices=list(SETS), help="collect: the set(s) to collect")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/counter_r5"))
    parser.add_argument(
        "--segmenter",
        choices=["classical", "learned"],
        default="classical",
        help="collect: the cut the proposals start from (learned: the shipped centre model)",
    )
    parser.add_argument("--write-weights", action="store_true")
    args = parser.parse_args()
    if args.what == "collect":
        for name in args.set or []:
            collect_set(name, args.cache, args.segmenter)
    else:
        fit_and_replay(args.cache, args.write_weights)


def fit_and_replay(cache: Path, write_weights: bool) -> None:
    from bench.counter_scorer import store_skus
    from bench.counter_verifier_fit import both_ways, fit, penalties, thresholds
    from bench.counter_verifier_replay import changed, decide_rule, decide_with, decision_ms, load, replay

    run = Run("counter_r5_fit")
    root = skip_without_grocery(run)
    if root is None:
        run.save()
        return
    skus = store_skus(root)
    scenes = {name: load(cache, name) for name in SETS if (cache / f"{name}.pkl").exists()}
    verifiers = {}
    for name, fit_on in (("all", "tuning"), ("half A", "halfA_tuning")):
        if fit_on not in scenes:
            continue
        data = both_ways(scenes[fit_on], skus)
        l2, folds = penalties(data, L2S)
        provenance = {
            "fitted_on": f"{fit_on}: seeds {SETS[fit_on][1]}-{SETS[fit_on][1] + SETS[fit_on][2] - 1}, "
            f"products {SETS[fit_on][0]}",
            "gallery": "grocery train photos (store photos): every SKU, and the scene's own SKUs left out (each "
            "change once each way), never the catalogue photos",
            "labels": "a change is right when it alone brings the count closer to the truth and true positives "
            "less false positives at IoU 0.3 do not go down",
            "thresholds": "the most tuning scenes counted right, both galleries together",
            "l2": l2,
            "out_of_fold": {kind: folds[str(l2[kind])] for kind in l2},
            "date_utc": run.data["machine"]["date_utc"],
            "by": "bench/counter_verifier.py fit",
        }
        verifiers[name] = thresholds(fit(data, l2, provenance), scenes[fit_on], skus)
        log.info("%s: l2 %s, out of fold %s", name, l2, folds)
        run.data.setdefault("verifiers", {})[name] = json.loads(verifiers[name].to_json())
    results: dict[str, dict[str, Any]] = {}
    for name, verifier_name in [(n, "all") for n in ("tuning", "heldout", "heldout2")] + [
        (n, "half A") for n in ("halfB_heldout", "halfB_heldout2")
    ]:
        if name not in scenes or verifier_name not in verifiers:
            continue
        sides = {"classical": None, "rule": decide_rule, "learned": decide_with(verifiers[verifier_name])}
        for mode in ("store", "unknown"):
            for side, decide in sides.items():
                tally = replay(scenes[name], skus, decide, mode == "unknown")
                results.setdefault(name, {}).setdefault(mode, {})[side] = {
                    "rows": tally.rows(),
                    "detection": tally.detection(),
                }
            learned = sides["learned"]
            assert learned is not None
            results[name][mode]["learned_against_rule"] = changed(
                scenes[name], skus, decide_rule, learned, mode == "unknown"
            )
        results[name]["decision_ms_median"] = {
            side: decision_ms(scenes[name], skus, decide) for side, decide in sides.items() if decide is not None
        }
        results[name]["verifier"] = verifier_name
    for name, result in results.items():
        print(summary(name, result))
        out = Run(f"counter_r5_{name}")
        out.data.update(result, scenes=len(scenes[name]), products=SETS[name][0], seeds=list(SETS[name][1:]))
        out.save()
    run.save()
    if write_weights:
        from counter.verifier import WEIGHTS

        WEIGHTS.write_text(verifiers["all"].to_json())
        log.info("wrote %s", WEIGHTS)


L2S = (0.1, 1.0, 10.0, 30.0, 100.0, 300.0)


def summary(name: str, result: dict[str, Any]) -> str:
    lines = [f"## {name} (verifier fitted on {result['verifier']})"]
    for mode in ("store", "unknown"):
        for side, data in result[mode].items():
            if side == "learned_against_rule":
                lines.append(f"{mode:8s}learned against rule, scenes: {data}")
                continue
            rows = {r["scenes"]: r for r in data["rows"]}
            det = data["detection"]
            lines.append(
                f"{mode:8s}{side:10s} apart {rows['apart']['count right']:.3f} touching "
                f"{rows['touching']['count right']:.3f} all {rows['all']['count right']:.3f} "
                f"P/R {det['precision_iou50']:.3f}/{det['recall_iou50']:.3f} "
                f"basket {rows['all'].get('basket exactly right', float('nan')):.3f}"
            )
    lines.append(f"decision ms median {result['decision_ms_median']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
