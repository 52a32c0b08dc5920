"""Benchmark: the speed cost of a larger input (224 / 256 / 288 px), side by side in one run.

MobileNetV3Large-minimalistic + Dense(256) + BNNeck + L2 (the shipped architecture) with random
weights (speed does not depend on the weight values), exported float32 to LiteRT the way
``skulens export`` does, run with XNNPACK on 2 threads at batch 1 and 16, in ``--rounds``
interleaved rounds of ``--seconds`` each; the median round is reported. The accuracy side of
the trade-off needs a training run per size on the fold protocol (docs/model_card.md).

    .venv/bin/python -m bench.input_size [--seconds 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import CACHE_DIR, Run, table

if TYPE_CHECKING:
    from embedder.artifact import ModelArtifact
    from embedder.runtime import Embedder

SIZES = (224, 256, 288)
BATCHES = (1, 16)
BACKBONE = "mobilenet_v3_large_minimalistic"


def export(size: int) -> ModelArtifact:
    """The artifact for ``size`` px (cached under bench/.cache)."""
    from embedder.artifact import ModelNotFound, load_artifact

    directory = CACHE_DIR / f"v3min_neck_{size}"
    try:
        return load_artifact(directory)
    except ModelNotFound:
        from embedder.export import export_model
        from embedder.model import build_embedding_model, build_head

        head = build_head(960, 256, seed=0, neck=True)
        model = build_embedding_model(BACKBONE, weights=None, input_size=size, head=head, seed=0)
        return export_model(
            model,
            directory,
            backbone=BACKBONE,
            input_size=size,
            embedding_dim=256,
            weights_origin="random initialisation (speed only)",
            trained=False,
        )


def rate(embedder: Embedder, size: int, batch: int, seconds: float) -> float:
    pixels = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    embedder.embed(pixels)  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        embedder.embed(pixels)
        done += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    from embedder.runtime import LiteRTEmbedder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run = Run("input_size")
    embedders = {size: LiteRTEmbedder(export(size), num_threads=2) for size in SIZES}
    samples: dict[tuple[int, int], list[float]] = {(s, b): [] for s in SIZES for b in BATCHES}
    for _ in range(args.rounds):
        for size in SIZES:
            for batch in BATCHES:
                samples[(size, batch)].append(rate(embedders[size], size, batch, args.seconds))
    rows = []
    for size in SIZES:
        row: dict[str, Any] = {"input px": size, "relative pixels": (size / 224) ** 2}
        for batch in BATCHES:
            row[f"img/s b{batch} (median)"] = statistics.median(samples[(size, batch)])
        row["ms/img b1"] = 1000 / row["img/s b1 (median)"]
        rows.append(row)
    base = rows[0]["img/s b1 (median)"]
    for row in rows:
        row["speed vs 224 (b1)"] = row["img/s b1 (median)"] / base
    run.data.update(rows=rows, samples={f"{s}px_b{b}": v for (s, b), v in samples.items()})
    print(table(rows))
    run.save()


if __name__ == "__main__":
    main()
