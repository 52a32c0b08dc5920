"""Stage-1 feature cache: pooled backbone features of every training photo, computed once.

With the backbone frozen, the head only ever sees pooled features, so they are
computed once (~30 img/s for MobileNetV2 at 224 px on 2 cores) and stored as an
``.npz`` keyed by everything that determines them: backbone, weights (content
hash of the file), input size, the photo listing, the number of augmented views,
the seed and the augmentation settings. View 0 of every photo is the clean
photo; views 1..V are augmented, so the head sees some of the variety stage 2
gets on the fly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from embedder.artifact import write_atomically_with
from training.augment import AugmentConfig, augment, view_rng
from training.data import ImageFolder

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    #: uint8 pixels ``(n, size, size, 3)`` -> embeddings (a traced ``tf.function``)
    Inference = Callable[[np.ndarray], tf.Tensor]

logger = logging.getLogger(__name__)


def weights_key(weights: str | None) -> str:
    """``imagenet``/``none``, or the sha256 prefix of a weights file's bytes."""
    if weights in (None, "none", "imagenet"):
        return str(weights or "none")
    return "sha-" + hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:16]


def cache_key(
    backbone: str,
    weights: str | None,
    input_size: int,
    folder: ImageFolder,
    views: int,
    seed: int,
    augment_config: AugmentConfig,
) -> str:
    spec = {
        "backbone": backbone,
        "weights": weights_key(weights),
        "input_size": input_size,
        "photos": folder.fingerprint(),
        "views": views,
        "seed": seed,
        "augment": augment_config.to_dict(),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FeatureCache:
    features: np.ndarray  # (n, 1 + views, feature_dim) float32; view 0 is the clean photo
    labels: np.ndarray  # (n,) int32
    path: Path


_INFER: weakref.WeakKeyDictionary[keras.Model, Inference] = weakref.WeakKeyDictionary()


def inference_fn(model: keras.Model) -> Inference:
    """One traced inference function per model (tracing a MobileNet costs seconds; validation runs often)."""
    import tensorflow as tf

    fn: Inference | None = _INFER.get(model)
    if fn is None:
        fn = tf.function(
            lambda x: model(tf.cast(x, tf.float32), training=False),
            reduce_retracing=True,
            autograph=False,
            input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.uint8)],
        )
        _INFER[model] = fn
    return fn


def forget_inference(model: keras.Model) -> None:
    """Drop ``model``'s traced inference function, so the next call traces it again (after its layers
    were patched or restored, ``training.int8_simulation``)."""
    _INFER.pop(model, None)


def embed_pixels(model: keras.Model, pixels: np.ndarray, batch_size: int = 32, desc: str | None = None) -> np.ndarray:
    """Run ``model`` over uint8 pixels in batches (with a progress bar); float32 outputs."""
    infer = inference_fn(model)
    outs = [
        infer(np.asarray(pixels[start : start + batch_size], dtype=np.uint8)).numpy()
        for start in tqdm(range(0, len(pixels), batch_size), desc=desc, disable=desc is None, mininterval=5)
    ]
    return np.concatenate(outs).astype(np.float32) if outs else np.zeros((0, int(model.output_shape[-1])), np.float32)


def augmented_copies(pixels: np.ndarray, seed: int, view: int, config: AugmentConfig, workers: int = 2) -> np.ndarray:
    out = np.empty_like(pixels)

    def work(i: int) -> None:
        out[i] = augment(np.asarray(pixels[i]), view_rng(seed, 1_000_000 + view, i), config)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(work, range(len(pixels))))
    return out


def build_feature_cache(
    backbone_model: keras.Model,
    pixels: np.ndarray,
    folder: ImageFolder,
    key: str,
    cache_dir: str | os.PathLike[str],
    views: int,
    seed: int,
    augment_config: AugmentConfig,
    batch_size: int = 32,
) -> FeatureCache:
    """Load ``<cache_dir>/features-<key>.npz`` or compute it (clean view + ``views`` augmented views)."""
    path = Path(cache_dir) / f"features-{key}.npz"
    if path.is_file():
        with np.load(path) as data:
            logger.info("stage-1 features from cache %s", path)
            return FeatureCache(data["features"], data["labels"], path)
    per_view = []
    for view in range(views + 1):
        view_pixels = pixels if view == 0 else augmented_copies(pixels, seed, view, augment_config)
        per_view.append(embed_pixels(backbone_model, view_pixels, batch_size, desc=f"features view {view}/{views}"))
        logger.info("features of view %d/%d done", view, views)
    features = np.stack(per_view, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically_with(
        path,
        lambda f: np.savez(
            f,
            features=features,
            labels=folder.labels,
            paths=np.asarray(folder.paths),
            class_names=np.asarray(folder.class_names),
        ),
    )
    logger.info("cached features %s to %s", features.shape, path)
    return FeatureCache(features, folder.labels, path)
