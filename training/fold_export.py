"""Fold models measured as they would be served: exported to LiteRT at a precision, embedded by
the LiteRT runtime. The int8 exports (``int8``, ``int8_float_head``) are calibrated on photos of
the fold's *trained* SKUs only, so the never-trained SKUs stay unseen by every step."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from embedder.artifact import ModelArtifact
    from training.config import TrainConfig
    from training.folds import Embed

logger = logging.getLogger(__name__)

REPRESENTATIVE_PHOTOS = 300


def representative_pixels(
    config: TrainConfig, root: Path, count: int = REPRESENTATIVE_PHOTOS, seed: int = 0
) -> np.ndarray:
    """``count`` seeded train photos of the SKUs ``config`` trains on, decoded as served."""
    from training.data import cached_pixels, list_image_folder

    train = list_image_folder(root / "train", exclude=config.held_out)
    pixels = cached_pixels(train, config.input_size, config.cache_dir)
    chosen = np.sort(np.random.default_rng(seed).choice(len(train), min(count, len(train)), replace=False))
    return np.asarray(pixels[chosen])


def export_litert(
    model_path: Path, out: Path, precision: str, config: TrainConfig, root: Path, serve_size: int | None = None
) -> ModelArtifact:
    """``out`` as a skulens model folder (exported once, reused); at ``serve_size`` px when given."""

    from embedder.artifact import ModelNotFound, load_artifact
    from embedder.export import CALIBRATED, export_model
    from training.train import load_trained_model

    try:
        return load_artifact(out)
    except ModelNotFound:
        pass
    meta = json.loads((Path(model_path).parent / "training_meta.json").read_text())
    size = meta["input_size"] if serve_size is None else serve_size
    model = load_trained_model(model_path, size)
    representative = representative_pixels(replace(config, input_size=size), root) if precision in CALIBRATED else None
    return export_model(
        model,
        out,
        backbone=meta["backbone"],
        input_size=size,
        embedding_dim=meta["embedding_dim"],
        weights_origin=meta["weights_origin"],
        trained=meta["trained"],
        precision=precision,
        representative=representative,
        held_out_skus=meta.get("held_out_skus"),
    )


def litert_embed(
    model_path: Path, out: Path, precision: str, config: TrainConfig, root: Path, serve_size: int | None = None
) -> Embed:
    """``pixels -> vectors`` through the LiteRT file of ``model_path`` at ``precision`` (and ``serve_size``)."""
    from embedder.runtime import LiteRTEmbedder

    artifact = export_litert(model_path, out, precision, config, root, serve_size)
    embedder = LiteRTEmbedder(artifact, num_threads=2)
    logger.info("fold model %s as LiteRT %s (version %s)", model_path, precision, embedder.version)
    return lambda pixels, desc=None: embedder.embed(np.asarray(pixels, dtype=np.uint8))
