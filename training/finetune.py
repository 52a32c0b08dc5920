"""One-stage fine-tuning (``schedule: finetune``): every layer (or the top blocks) trained from the
start with warm-up then cosine decay, a fixed number of epochs, optional BNNeck + label-smoothed
softmax beside the batch-hard triplet loss, an optional moving average of the weights, and the
SKUs' catalogue photos in the batches.

No epoch is chosen on val photos: the model saved is the last one (its EMA when enabled), so the
fold protocol (``training/folds.py``) measures exactly what a run produces.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedder.backbones import pooled_feature_dim
from training.blend_negatives import blend_negative_loss, blend_weights, closest_pairs, mix_maps
from training.class_neighbours import nearest_classes
from training.config import TrainConfig
from training.data import decode_images
from training.distill import similarity_distillation_loss, teacher_targets
from training.loop import LoopSpec, LossFn, recall_at_1, train_loop
from training.losses import batch_hard_triplet_loss, centre_loss, centre_update, cosine_margin_logits
from training.sampling import PKSampler, image_dataset
from training.train import Data, backbone_layer, build_model, save_model, seed_everything, unfreeze_top

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

logger = logging.getLogger(__name__)


def catalogue_photos(root: Path, class_names: tuple[str, ...]) -> dict[int, str]:
    """Label → path of the SKU's catalogue photo (``<root>/iconic/<SKU>.jpg``), where there is one."""
    out = {}
    for label, sku in enumerate(class_names):
        path = root / "iconic" / f"{sku}.jpg"
        if path.is_file():
            out[label] = str(path)
    return out


def unfreeze(model: keras.Model, blocks: int, train_batchnorm: bool = False) -> None:
    """``blocks`` < 0: every backbone layer trainable, BatchNorm too with ``train_batchnorm`` (else frozen);
    else the top ``blocks`` blocks."""
    import keras

    if blocks >= 0:
        unfreeze_top(model, blocks)
        return
    base = backbone_layer(model)
    base.trainable = True
    for layer in base._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = train_batchnorm


def joint_loss(
    head: keras.Model,
    classifier: keras.layers.Layer,
    config: TrainConfig,
    n_classes: int,
    teacher: np.ndarray | None = None,
    centres: keras.Variable | None = None,
    maps: keras.Model | None = None,
) -> LossFn:
    """``loss_fn`` for ``train_loop``: triplet on the projection (pre-neck), CE on the neck's output
    through a linear or a cosine-margin (CosFace) classifier; with ``teacher`` (one row per photo,
    ``training.distill.teacher_targets``; the labels then carry each photo's index), plus the relational
    distillation loss on the served (post-neck) embedding; with ``centres`` (a ``(n_classes, d)`` variable), plus
    the centre loss on the triplet's (normalised pre-neck) feature, and each step moves the batch's centres; with
    ``maps`` (the backbone up to its GeM pooling, ``last_maps``), plus the blended look-alikes' loss
    (``training.blend_negatives``) at ``config.blend_weight``."""
    import keras
    import tensorflow as tf

    projection, neck = head.get_layer("projection"), head.get_layer("neck")
    ce = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing)
    targets = None if teacher is None else tf.constant(teacher)
    blend_at = blend_weights(config.blend_negatives, *config.blend_range) if maps is not None else None

    def loss_fn(model: keras.Model, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        index = None
        if targets is not None:
            y, index = y[:, 0], y[:, 1]
        base = backbone_layer(model)
        if maps is not None:
            pool = base.get_layer("gem_pooling")
            last = maps(x, training=True)
            features = pool(last)
        else:
            features = base(x, training=True)
        pre = projection(features)
        post = neck(pre, training=True)
        # on the unit sphere, like the served vectors: a soft margin on raw features would just grow their scale
        unit_pre = tf.math.l2_normalize(pre, axis=1)
        triplet = batch_hard_triplet_loss(y, unit_pre, config.margin, config.soft_margin, config.distance)
        one_hot = tf.one_hot(y, n_classes)
        if config.classifier == "cosine":
            logits = cosine_margin_logits(post, classifier.kernel, one_hot, config.cosine_scale, config.cosine_margin)
        else:
            logits = classifier(post)
        loss = triplet + config.ce_weight * ce(one_hot, logits)
        if maps is not None and blend_at is not None:
            pairs = closest_pairs(y, unit_pre, config.blend_negatives, blend_at, config.distance)
            blends = tf.math.l2_normalize(projection(pool(mix_maps(last, pairs))), axis=1)
            loss += config.blend_weight * blend_negative_loss(
                y, unit_pre, blends, pairs, config.margin, config.soft_margin, config.distance
            )
        if centres is not None:
            loss += config.centre_weight * centre_loss(y, unit_pre, centres)
            centres.assign(centre_update(y, tf.stop_gradient(unit_pre), centres, config.centre_alpha))
        if targets is not None:
            loss += config.distill_weight * similarity_distillation_loss(post, tf.gather(targets, index))
        return loss, tf.math.l2_normalize(post, axis=1)

    return loss_fn


def run_finetune(config: TrainConfig, data: Data, out: Path, resume: bool, root: Path) -> Path:
    import keras

    from embedder.model import build_head
    from training.scaled_adam import ScaledAdam

    seed_everything(config.seed)
    stage = config.finetune
    n_classes = len(data.train.class_names)
    head = build_head(
        pooled_feature_dim(config.backbone, config.pooling), config.embedding_dim, seed=config.seed, neck=config.neck
    )
    model = build_model(config, head=head)
    unfreeze(model, config.unfreeze_blocks, config.batchnorm == "train")
    pixels, labels = data.train_pixels, data.train.labels
    studio = np.zeros(len(labels), dtype=bool)
    paired: dict[int, int] = {}
    if config.catalogue_p > 0:
        photos = catalogue_photos(root, data.train.class_names)
        extra = decode_images(list(photos.values()), config.input_size)
        paired = {label: len(labels) + i for i, label in enumerate(photos)}
        pixels = np.concatenate([np.asarray(pixels), extra])
        labels = np.concatenate([labels, np.array(list(photos), dtype=labels.dtype)])
        studio = np.concatenate([studio, np.ones(len(extra), dtype=bool)])
        logger.info("catalogue photos of %d SKUs in the batches (p=%.2f)", len(photos), config.catalogue_p)
    sampler = PKSampler(
        labels,
        stage.p,
        stage.k,
        seed=config.seed,
        steps_per_epoch=stage.steps_per_epoch,
        paired=paired,
        paired_p=config.catalogue_p,
        neighbours=_class_neighbours(model, data, config.lookalike_group),
        group=config.lookalike_group,
    )
    steps = sampler.steps_per_epoch * stage.epochs
    warmup = min(sampler.steps_per_epoch * config.warmup_epochs, steps - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        stage.learning_rate * 0.01, steps - warmup, alpha=0.01, warmup_target=stage.learning_rate, warmup_steps=warmup
    )
    optimizer = ScaledAdam(
        schedule,
        scaled=backbone_layer(model).trainable_variables,
        scale=config.backbone_lr_scale,
        use_ema=config.ema_momentum is not None,
        ema_momentum=config.ema_momentum or 0.99,
    )
    loss_fn, teacher = None, None
    if config.neck:
        classifier = keras.layers.Dense(
            n_classes,
            use_bias=False,
            name="classifier",
            kernel_initializer=keras.initializers.RandomNormal(0.0, 0.001, seed=config.seed),
        )
        classifier.build((None, config.embedding_dim))
        if config.distill_from:
            teacher = teacher_targets(config.distill_from, pixels, config.held_out, out / "finetune" / "teacher.npy")
        centres = (n_classes, config.embedding_dim) if config.centre_weight > 0 else None
        trainer = _trainer(model, classifier, config.input_size, centres)
        maps = last_maps(model) if config.blend_negatives > 0 else None
        loss_fn = joint_loss(head, classifier, config, n_classes, teacher, getattr(trainer, "centres", None), maps)
    else:
        trainer = model
    directory = out / "finetune"
    spec = LoopSpec(
        stage.epochs,
        sampler.steps_per_epoch,
        stage.learning_rate,
        config.margin,
        config.soft_margin,
        config.distance,
        stage.val_every,
    )
    logger.info(
        "fine-tuning %d weight tensors for %d steps (warm-up %d)", len(trainer.trainable_variables), steps, warmup
    )
    train_loop(
        trainer,
        spec,
        lambda epoch: image_dataset(
            pixels, labels, sampler, epoch, config.augment, config.seed, studio=studio, with_index=teacher is not None
        ),
        None,
        directory,
        resume,
        lambda: None,
        optimizer=optimizer,
        loss_fn=(lambda _m, x, y: loss_fn(model, x, y)) if loss_fn else None,
    )
    if config.ema_momentum is not None:
        optimizer.finalize_variable_values(trainer.trainable_variables)
    from training.features import embed_pixels

    recall = recall_at_1(
        embed_pixels(model, data.train_pixels), data.train.labels, embed_pixels(model, data.val_pixels), data.val.labels
    )
    logger.info("fine-tuned: val recall@1 %.4f (monitoring only: no epoch was chosen by it)", recall)
    return save_model(model, config, directory, "finetune", recall)


def last_maps(model: keras.Model) -> keras.Model:
    """The embedder's backbone up to its GeM pooling (the same layers, so the same weights): pixels → last map."""
    import keras

    base = backbone_layer(model)
    return keras.Model(base.input, base.get_layer("gem_pooling").input, name="last_maps")


def _class_neighbours(model: keras.Model, data: Data, group: int) -> dict[int, tuple[int, ...]] | None:
    """Each SKU's ``group - 1`` nearest SKUs by the untrained backbone's pooled features of the train photos
    (deterministic: the same before a resume as after it); None when batches are not grouped."""
    if group <= 1:
        return None
    from training.features import embed_pixels

    base = backbone_layer(model)
    neighbours = nearest_classes(embed_pixels(base, data.train_pixels), data.train.labels, group - 1)
    names = data.train.class_names
    logger.info(
        "look-alike groups, e.g. %s", {names[c]: [names[n] for n in neighbours[c]] for c in list(neighbours)[:5]}
    )
    return neighbours


def _trainer(
    model: keras.Model, classifier: keras.layers.Layer, input_size: int, centres: tuple[int, int] | None = None
) -> keras.Model:
    """The served model plus the training-only classifier as one Keras model, so that checkpoints hold both and
    ``trainable_variables`` covers both; with ``centres`` (shape), also the centre loss's centres (``.centres``,
    zeros, not trainable: ``training.losses.centre_update`` moves them) in the checkpoint."""
    import keras

    class Trainer(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="trainer")
            self.embedder, self.classifier = model, classifier
            if centres is not None:
                self.centres = self.add_weight(shape=centres, initializer="zeros", trainable=False, name="centres")

        def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
            return self.embedder(x, training=training)

    trainer = Trainer()
    trainer(np.zeros((1, input_size, input_size, 3), np.float32))
    return trainer
