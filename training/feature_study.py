"""Which of a trained embedder's features should be served: the pooled backbone feature, the projection
(before the BNNeck: what the triplet loss trains), its BatchNorm'd copy (the neck's output: what the
classifier trains, and what is served), or the last two joined?

Luo et al. (2019) serve the post-neck feature with cosine distance; the pooled feature is what ImageNet
alone gives plus fine-tuning, with no head specialised to the trained SKUs, and could generalise better
to SKUs never trained on. One pass per fold model: a model with the three raw outputs side by side
embeds everything the fold protocol needs (cached as ``fold*/vectors-features.npz``), and each variant
is normalised from them and measured with ``training.fold_metrics.evaluate_fold``:

    python -m training.feature_study runs/folds/gem_seed0 [--pooled-weights 0.5 1]

``--pooled-weights w``: also the pooled feature joined to the served one (unit vectors, ``[w * pooled, post]``
normalised again, so the pooled cosine counts ``w² / (1 + w²)`` of the joined one: 20 % at w = 0.5, half at 1).
The ``post-neck`` row reproduces ``skulens folds``' figures. The feature cache is made again when the fold's
model is newer than it.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gallery.lookalike import normalised
from training.fold_metrics import EMBEDDING_FIELDS, Vectors, evaluate_fold
from training.fold_summary import STUDY_FIGURES, study_header, study_row, summarise

if TYPE_CHECKING:
    import keras


SHOWN = (*STUDY_FIGURES, ("catalogue_photo_only_never_trained", "catalogue photo only, never-trained"))
VARIANTS = ("pooled", "pre-neck", "post-neck", "pre + post")


def feature_model(model: keras.Model) -> keras.Model:
    """``pixels -> [pooled, projection, neck output]`` side by side (raw, unnormalised), same weights as
    ``model`` (an embedder of ``embedder.model.build_embedding_model`` with a neck)."""
    import keras

    from training.train import backbone_layer

    head = model.get_layer("head")
    if "neck" not in {layer.name for layer in head.layers}:
        raise ValueError(f"model {model.name!r} has no neck: its head's layers are {[x.name for x in head.layers]}")
    pixels = keras.Input(model.input_shape[1:], name="pixels")
    pooled = backbone_layer(model)(pixels)
    projection = head.get_layer("projection")(pooled)
    post = head.get_layer("neck")(projection, training=False)
    return keras.Model(pixels, keras.layers.Concatenate()([pooled, projection, post]), name="features")


def variant(raw: np.ndarray, dim: int, name: str) -> np.ndarray:
    """One served-feature choice from ``feature_model``'s raw rows (``dim``: the embedding's width);
    ``name`` one of ``VARIANTS`` or ``"pooled@w"`` (``[w * pooled, post]``, unit vectors joined)."""
    raw = np.asarray(raw, np.float32)
    pooled, pre, post = raw[:, : -2 * dim], raw[:, -2 * dim : -dim], raw[:, -dim:]
    if name.startswith("pooled@"):
        weight = float(name[7:])
        if not 0 < weight < float("inf"):
            raise ValueError(f"the pooled feature's weight must be a positive number, got {name!r}")
        return normalised(np.concatenate([weight * normalised(pooled), normalised(post)], axis=1))
    chosen = {"pooled": pooled, "pre-neck": pre, "post-neck": post}
    if name == "pre + post":
        return normalised(np.concatenate([normalised(pre), normalised(post)], axis=1))
    if name not in chosen:
        raise ValueError(f"unknown feature {name!r}: one of {VARIANTS} or 'pooled@<weight>'")
    return normalised(chosen[name])


def fold_features(fold_dir: Path, skus: tuple[str, ...], root: Path) -> Vectors:
    """The fold model's raw features of every photo the protocol uses, cached beside its other vectors."""
    from training.features import embed_pixels
    from training.folds import cached_vectors, embed_fold
    from training.train import load_trained_model

    def make() -> Vectors:
        config = json.loads((fold_dir / "config.json").read_text())
        model = feature_model(load_trained_model(fold_dir / "finetune" / "model.keras"))
        embed = lambda pixels, desc=None: embed_pixels(model, pixels, desc=desc)  # noqa: E731
        return embed_fold(embed, skus, root, config["input_size"], config["cache_dir"])

    return cached_vectors(fold_dir / "vectors-features.npz", skus, make, source=fold_dir / "finetune" / "model.keras")


def main(argv: list[str] | None = None) -> int:
    from training.folds import read_fold_run

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a `skulens folds` output folder (finetune schedule, neck)")
    parser.add_argument("--pooled-weights", type=float, nargs="*", default=[])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run = read_fold_run(args.run)
    dim = int(run.config["embedding_dim"])
    loaded = [(fold_skus, fold_features(folder, run.skus, run.root)) for folder, fold_skus in run.folds]
    print(f"{len(run.folds)} folds of {args.run}\n")
    print(study_header("served feature", SHOWN))
    for name in [*VARIANTS, *(f"pooled@{w:g}" for w in args.pooled_weights)]:
        rows = []
        for fold_skus, raw in loaded:
            mapped: dict[str, Any] = {field: variant(getattr(raw, field), dim, name) for field in EMBEDDING_FIELDS}
            rows.append(evaluate_fold(replace(raw, **mapped), fold_skus))
        figures = summarise(rows)
        label = f"pooled at {name[7:]} + post-neck" if name.startswith("pooled@") else name
        print(study_row(label, figures, SHOWN))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
