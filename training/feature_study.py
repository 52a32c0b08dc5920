"""Which of a trained embedder's features should be served: the pooled backbone feature, the projection
(before the BNNeck: what the triplet loss trains), its BatchNorm'd copy (the neck's output: what the
classifier trains, and what is served), or the last two joined?

Luo et al. (2019) serve the post-neck feature with cosine distance; the pooled feature is what ImageNet
alone gives plus fine-tuning, with no head specialised to the trained SKUs, and could generalise better
to SKUs never trained on. One pass per fold model: a model with the three raw outputs side by side
embeds everything the fold protocol needs (cached as ``fold*/vectors-features.npz``), and each variant
is normalised from them and measured with ``training.fold_metrics.evaluate_fold``:

    python -m training.feature_study runs/folds/gem_seed0 [--pooled-weights 0.5 1]

``--pooled-weights w``: also the pooled feature joined to the served one at weight ``w`` (unit vectors,
``[w * pooled, post]`` normalised again). The ``post-neck`` row reproduces ``skulens folds``' figures.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training.fold_metrics import EMBEDDING_FIELDS, Vectors, evaluate_fold
from training.fold_summary import summarise
from training.whitening_study import FIGURES

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

SHOWN = (*FIGURES, ("catalogue_photo_only_never_trained", "catalogue photo only, never-trained"))
VARIANTS = ("pooled", "pre-neck", "post-neck", "pre + post")


def unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    return out


def feature_model(model: keras.Model) -> keras.Model:
    """``pixels -> [pooled, projection, neck output]`` side by side (raw, unnormalised), same weights as
    ``model`` (an embedder of ``embedder.model.build_embedding_model`` with a neck)."""
    import keras

    from training.train import backbone_layer

    base = backbone_layer(model)
    heads = [layer for layer in model.layers if isinstance(layer, keras.Model) and layer is not base]
    if len(heads) != 1 or "neck" not in {layer.name for layer in heads[0].layers}:
        raise ValueError(f"expected one head with a neck in model {model.name!r}, found {[x.name for x in heads]}")
    pixels = keras.Input(model.input_shape[1:], name="pixels")
    pooled = base(pixels)
    projection = heads[0].get_layer("projection")(pooled)
    post = heads[0].get_layer("neck")(projection, training=False)
    return keras.Model(pixels, keras.layers.Concatenate()([pooled, projection, post]), name="features")


def variant(raw: np.ndarray, dim: int, name: str) -> np.ndarray:
    """One served-feature choice from ``feature_model``'s raw rows (``dim``: the embedding's width);
    ``name`` one of ``VARIANTS`` or ``"pooled@w"`` (``[w * pooled, post]``, unit vectors joined)."""
    pooled, pre, post = raw[:, : -2 * dim], raw[:, -2 * dim : -dim], raw[:, -dim:]
    if name.startswith("pooled@"):
        return unit(np.concatenate([float(name[7:]) * unit(pooled), unit(post)], axis=1))
    chosen = {"pooled": pooled, "pre-neck": pre, "post-neck": post}
    if name == "pre + post":
        return unit(np.concatenate([unit(pre), unit(post)], axis=1))
    if name not in chosen:
        raise ValueError(f"unknown feature {name!r}: one of {VARIANTS} or 'pooled@<weight>'")
    return unit(chosen[name])


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

    return cached_vectors(fold_dir / "vectors-features.npz", skus, make)


def main(argv: list[str] | None = None) -> int:
    from training.data import grocery_dir, list_skus

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a `skulens folds` output folder (finetune schedule, neck)")
    parser.add_argument("--pooled-weights", type=float, nargs="*", default=[])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    folds = sorted(p.parent for p in args.run.glob("fold*/result.json"))
    if not folds:
        raise SystemExit(f"no fold*/result.json under {str(args.run)!r}: run `skulens folds` first")
    config = json.loads((folds[0] / "config.json").read_text())
    root = Path(config["data_dir"]) if config.get("data_dir") else grocery_dir()
    skus, dim = tuple(list_skus(root / "train")), int(config["embedding_dim"])
    loaded = []
    for fold_dir in folds:
        fold_skus = tuple(json.loads((fold_dir / "result.json").read_text())["fold_skus"])
        loaded.append((fold_skus, fold_features(fold_dir, skus, root)))
    print(f"{len(folds)} folds of {args.run}\n")
    print("| served feature | " + " | ".join(name for _, name in SHOWN) + " |")
    print("| --- |" + " --- |" * len(SHOWN))
    for name in [*VARIANTS, *(f"pooled@{w:g}" for w in args.pooled_weights)]:
        rows = []
        for fold_skus, raw in loaded:
            mapped: dict[str, Any] = {field: variant(getattr(raw, field), dim, name) for field in EMBEDDING_FIELDS}
            rows.append(evaluate_fold(replace(raw, **mapped), fold_skus))
        figures = summarise(rows)
        label = f"pooled at {name[7:]} + post-neck" if name.startswith("pooled@") else name
        print(f"| {label} | " + " | ".join(f"{figures[key]['mean']:.3f}" for key, _ in SHOWN) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
