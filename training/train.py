"""The two-stage schedule: stage 1 trains the head on cached frozen-backbone features; stage 2
fine-tunes the top blocks of the backbone on augmented photos. See docs/model_card.md.

Output folder layout (``--out``)::

    config.json                 the effective configuration
    untrained/model.keras       backbone as initialised + random head (the baseline)
    stage1/  checkpoint/ logs/ head.weights.h5 model.keras
    stage2/  checkpoint/ logs/ best.weights.h5 model.keras
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedder.backbones import describe_weights, pooled_feature_dim
from training.config import StageConfig, TrainConfig
from training.data import ImageFolder, cached_pixels, grocery_dir, list_image_folder
from training.features import build_feature_cache, cache_key, embed_pixels
from training.loop import LoopSpec, recall_at_1, train_loop
from training.sampling import PKSampler, feature_batches, image_dataset

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

META_FILE = "training_meta.json"


@dataclass
class Data:
    train: ImageFolder
    val: ImageFolder
    train_pixels: np.ndarray
    val_pixels: np.ndarray


def load_data(config: TrainConfig) -> Data:
    """Train photos of every SKU not held out; val photos of those SKUs only (labelled alike)."""
    root = Path(config.data_dir) if config.data_dir else grocery_dir()
    train = list_image_folder(root / "train", exclude=config.held_out)
    val = list_image_folder(root / "val", class_names=train.class_names)
    return Data(
        train,
        val,
        cached_pixels(train, config.input_size, config.cache_dir),
        cached_pixels(val, config.input_size, config.cache_dir),
    )


def seed_everything(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)


def build_model(config: TrainConfig, head: keras.Model | None = None) -> keras.Model:
    from embedder.model import build_embedding_model

    return build_embedding_model(
        config.backbone,
        weights=config.resolved_weights(),
        embedding_dim=config.embedding_dim,
        input_size=config.input_size,
        head=head,
        seed=config.seed,
        pooling=config.pooling,
        train_batchnorm=config.batchnorm == "train",
    )


def load_trained_model(path: str | os.PathLike[str], input_size: int | None = None) -> keras.Model:
    """A saved ``model.keras``, with skulens' own layers (GeM pooling) registered first; rebuilt for
    ``input_size`` px (``embedder.model.at_input_size``) when that is given and not its own size."""
    import keras

    import embedder.pooling  # noqa: F401  (registers GeMPooling)
    from embedder.model import at_input_size

    model = keras.models.load_model(path)
    if input_size is not None and input_size != model.input_shape[1]:
        model = at_input_size(model, input_size)
    return model


def save_model(model: keras.Model, config: TrainConfig, directory: Path, stage: str, recall: float | None) -> Path:
    """``model.keras`` + ``training_meta.json`` (what ``skulens export`` needs to write the card)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.keras"
    model.save(path)
    meta = {
        "backbone": config.backbone,
        "input_size": config.input_size,
        "embedding_dim": config.embedding_dim,
        "weights_origin": describe_weights(config.resolved_weights()),
        "trained": stage != "untrained",
        "stage": stage,
        "val_recall_at_1": recall,
        "held_out_skus": list(config.held_out),
    }
    (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    logger.info("saved %s model to %s", stage, path)
    return path


def _spec(config: TrainConfig, stage: StageConfig, steps: int) -> LoopSpec:
    return LoopSpec(
        stage.epochs, steps, stage.learning_rate, config.margin, config.soft_margin, config.distance, stage.val_every
    )


def run_untrained(config: TrainConfig, out: Path) -> Path:
    seed_everything(config.seed)
    return save_model(build_model(config), config, out / "untrained", "untrained", None)


def run_stage1(config: TrainConfig, data: Data, out: Path, resume: bool) -> Path:
    """Head on cached features (clean + augmented views), P×K batches."""
    from embedder.backbones import build_backbone
    from embedder.model import build_head

    seed_everything(config.seed)
    backbone = build_backbone(config.backbone, config.input_size, config.resolved_weights())
    key = cache_key(
        config.backbone,
        config.resolved_weights(),
        config.input_size,
        data.train,
        config.feature_views,
        config.seed,
        config.augment,
    )
    cache = build_feature_cache(
        backbone,
        data.train_pixels,
        data.train,
        key,
        config.cache_dir,
        config.feature_views,
        config.seed,
        config.augment,
    )
    val_features = embed_pixels(backbone, data.val_pixels, desc="val features")
    # two-stage caches average-pooled features (TrainConfig refuses another pooling for it)
    head = build_head(pooled_feature_dim(config.backbone, "avg"), config.embedding_dim, seed=config.seed)
    stage = config.stage1
    sampler = PKSampler(cache.labels, stage.p, stage.k, seed=config.seed, steps_per_epoch=stage.steps_per_epoch)
    directory = out / "stage1"

    def validate() -> float:
        gallery = head.predict(cache.features[:, 0], batch_size=256, verbose=0)
        queries = head.predict(val_features, batch_size=256, verbose=0)
        return recall_at_1(gallery, cache.labels, queries, data.val.labels)

    def on_best() -> None:
        head.save_weights(str(directory / "head.weights.h5"))

    state = train_loop(
        head,
        _spec(config, stage, sampler.steps_per_epoch),
        lambda epoch: feature_batches(cache.features, cache.labels, sampler, epoch),
        validate,
        directory,
        resume,
        on_best,
    )
    head.load_weights(str(directory / "head.weights.h5"))
    logger.info("stage 1: best val recall@1 %.4f at epoch %s", state["best_recall_at_1"], state["best_epoch"])
    return save_model(build_model(config, head=head), config, directory, "stage1", state["best_recall_at_1"])


def backbone_layer(model: keras.Model) -> keras.Model:
    """The embedder's ImageNet backbone, a nested model named ``backbone_<name>`` (``embedder.backbones``)."""
    return next(layer for layer in model.layers if layer.name.startswith("backbone_"))


def backbone_network(model: keras.Model) -> keras.Model:
    """The applications network (e.g. ``MobileNetV3Large``) inside the embedder's backbone."""
    import keras

    return next(layer for layer in backbone_layer(model).layers if isinstance(layer, keras.Model))


def unfreeze_top(model: keras.Model, blocks: int) -> list[str]:
    """Make the last ``blocks`` inverted-residual blocks and every layer after them trainable.

    BatchNorm layers stay frozen (and run in inference mode anyway: the backbone
    is called with ``training=False``). Returns the names of the trainable layers.
    """
    import keras

    base = backbone_layer(model)
    inner = backbone_network(model)
    pattern = re.compile(r"^(?:block|expanded_conv)_(\d+)_")
    ids = [int(m.group(1)) for layer in inner.layers if (m := pattern.match(layer.name))]
    if not ids:
        raise ValueError(f"no inverted-residual blocks found in {inner.name!r}")
    first = max(ids) - blocks + 1
    start = next(
        i for i, layer in enumerate(inner.layers) if (m := pattern.match(layer.name)) and int(m.group(1)) >= first
    )
    base.trainable = inner.trainable = True
    names = []
    for i, layer in enumerate(inner.layers):
        layer.trainable = i >= start and not isinstance(layer, keras.layers.BatchNormalization)
        if layer.trainable and layer.weights:
            names.append(layer.name)
    return names


def run_stage2(config: TrainConfig, data: Data, out: Path, resume: bool, stage1_dir: Path | None = None) -> Path:
    """Fine-tune the top blocks + head on augmented photos, from stage 1's head."""
    from embedder.model import build_head

    seed_everything(config.seed)
    stage1_dir = stage1_dir or out / "stage1"
    # two-stage caches average-pooled features (TrainConfig refuses another pooling for it)
    head = build_head(pooled_feature_dim(config.backbone, "avg"), config.embedding_dim, seed=config.seed)
    head.load_weights(str(stage1_dir / "head.weights.h5"))
    model = build_model(config, head=head)  # rebuilt, not loaded: the backbone is called with training=False
    for layer in model.layers:
        layer.trainable = False
    trainable = unfreeze_top(model, config.unfreeze_blocks)
    head.trainable = True
    logger.info("stage 2 trains %d weight tensors in %s + head", len(model.trainable_weights), trainable)
    stage = config.stage2
    sampler = PKSampler(data.train.labels, stage.p, stage.k, seed=config.seed, steps_per_epoch=stage.steps_per_epoch)
    directory = out / "stage2"

    def validate() -> float:
        gallery = embed_pixels(model, data.train_pixels, desc="val gallery")
        queries = embed_pixels(model, data.val_pixels)
        return recall_at_1(gallery, data.train.labels, queries, data.val.labels)

    def on_best() -> None:
        model.save_weights(str(directory / "best.weights.h5"))

    state = train_loop(
        model,
        _spec(config, stage, sampler.steps_per_epoch),
        lambda epoch: image_dataset(data.train_pixels, data.train.labels, sampler, epoch, config.augment, config.seed),
        validate,
        directory,
        resume,
        on_best,
    )
    model.load_weights(str(directory / "best.weights.h5"))
    logger.info("stage 2: best val recall@1 %.4f at epoch %s", state["best_recall_at_1"], state["best_epoch"])
    return save_model(model, config, directory, "stage2", state["best_recall_at_1"])


def run(config: TrainConfig, out: str | os.PathLike[str], stage: str = "all", resume: bool = False) -> dict[str, Path]:
    """Run ``stage`` (``1``, ``2`` or ``all``) into ``out``; returns the saved model paths."""
    if stage not in ("1", "2", "all"):
        raise ValueError(f"stage must be 1, 2 or all, got {stage!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "config.json")
    data = load_data(config)
    logger.info(
        "training on %d photos of %d SKUs (held out: %d SKUs); validating on %d photos",
        len(data.train),
        len(data.train.class_names),
        len(config.held_out),
        len(data.val),
    )
    saved: dict[str, Path] = {}
    if config.schedule == "finetune":
        from training.finetune import run_finetune

        root = Path(config.data_dir) if config.data_dir else grocery_dir()
        saved["finetune"] = run_finetune(config, data, out, resume, root)
        return saved
    if stage in ("1", "all"):
        saved["untrained"] = run_untrained(config, out)
        saved["stage1"] = run_stage1(config, data, out, resume)
    if stage in ("2", "all"):
        saved["stage2"] = run_stage2(config, data, out, resume)
    return saved
