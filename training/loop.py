"""A small training loop with per-epoch checkpoints, exact resume, TensorBoard and progress bars.

A custom loop rather than ``model.fit`` so that the data of epoch *e* is a pure
function of (seed, e) — resuming after epoch 3 replays exactly the batches an
uninterrupted run would have seen — and so the checkpoint holds precisely the
model weights, the optimizer's slots and the loop state (``state.json``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from training.losses import active_triplet_fraction, batch_hard_triplet_loss

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

#: ``loss_fn(model, pixels, labels) -> (loss, embeddings)``
LossFn = Callable[["keras.Model", "tf.Tensor", "tf.Tensor"], tuple["tf.Tensor", "tf.Tensor"]]

logger = logging.getLogger(__name__)


@dataclass
class LoopSpec:
    epochs: int
    steps_per_epoch: int
    learning_rate: float
    margin: float
    soft: bool
    distance: str
    val_every: int = 1


class Checkpoint:
    """``<dir>/model.weights.h5`` + ``optimizer.npz`` + ``state.json``, written after every epoch."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.dir = Path(directory)

    def exists(self) -> bool:
        return (self.dir / "state.json").is_file()

    def save(self, model: keras.Model, optimizer: keras.optimizers.Optimizer, state: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        model.save_weights(str(self.dir / "tmp-model.weights.h5"))
        os.replace(self.dir / "tmp-model.weights.h5", self.dir / "model.weights.h5")
        np.savez(self.dir / "optimizer.tmp.npz", *[np.asarray(v) for v in optimizer.variables])
        os.replace(self.dir / "optimizer.tmp.npz", self.dir / "optimizer.npz")
        (self.dir / "state.tmp.json").write_text(json.dumps(state, indent=2))
        os.replace(self.dir / "state.tmp.json", self.dir / "state.json")  # last: marks the checkpoint complete

    def restore(self, model: keras.Model, optimizer: keras.optimizers.Optimizer) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.dir / "state.json").read_text())
        model.load_weights(str(self.dir / "model.weights.h5"))
        optimizer.build(model.trainable_variables)
        with np.load(self.dir / "optimizer.npz") as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        if len(values) != len(optimizer.variables):
            raise ValueError(
                f"checkpoint {self.dir} has {len(values)} optimizer variables, the model needs "
                f"{len(optimizer.variables)}: was the configuration changed?"
            )
        for variable, value in zip(optimizer.variables, values):
            variable.assign(value)
        return state


def train_loop(
    model: keras.Model,
    spec: LoopSpec,
    epoch_data: Callable[[int], Iterable[tuple[np.ndarray, np.ndarray]]],
    validate: Callable[[], float] | None,
    out_dir: str | os.PathLike[str],
    resume: bool,
    on_best: Callable[[], None],
    optimizer: keras.optimizers.Optimizer | None = None,
    loss_fn: LossFn | None = None,
) -> dict[str, Any]:
    """Train ``model`` for ``spec.epochs``; ``validate()`` returns val recall@1; ``on_best()`` saves the best.

    ``validate=None``: no validation and no choice of epoch (the caller keeps the last weights).
    ``loss_fn(model, x, y) -> (loss, embeddings)`` replaces the plain triplet loss on the model's output;
    ``optimizer`` (default Adam at ``spec.learning_rate``) may carry a schedule and EMA.
    """
    import keras
    import tensorflow as tf

    out_dir = Path(out_dir)
    ckpt = Checkpoint(out_dir / "checkpoint")
    optimizer = optimizer or keras.optimizers.Adam(spec.learning_rate)
    state: dict[str, Any] = {"epoch": 0, "best_recall_at_1": -1.0, "best_epoch": None, "history": [], "seconds": 0.0}
    if resume and ckpt.exists():
        state = ckpt.restore(model, optimizer)
        logger.info("resumed from %s after epoch %d", ckpt.dir, state["epoch"])
    elif ckpt.exists():
        logger.warning("starting afresh over the checkpoint in %s (pass --resume to continue it)", ckpt.dir)
    writer = tf.summary.create_file_writer(str(out_dir / "logs"))
    variables = model.trainable_variables

    @tf.function(reduce_retracing=True, autograph=False)
    def step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            if loss_fn is None:
                emb = model(tf.cast(x, tf.float32), training=True)
                loss = batch_hard_triplet_loss(y, emb, spec.margin, spec.soft, spec.distance)
            else:
                loss, emb = loss_fn(model, tf.cast(x, tf.float32), y)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        labels = y[:, 0] if len(y.shape) == 2 else y  # (b, 2): label and photo index (image_dataset's with_index)
        return loss, active_triplet_fraction(labels, emb, spec.margin, spec.distance)

    if state["epoch"] == 0 and not state["history"] and validate is not None:
        recall = validate()
        logger.info("before training: val recall@1 %.4f", recall)
        state["history"].append({"epoch": 0, "val_recall_at_1": recall})
        with writer.as_default():
            write_scalar("val_recall_at_1", recall, 0)
    for epoch in range(state["epoch"], spec.epochs):
        started = time.time()
        losses, actives = [], []
        bar = tqdm(
            epoch_data(epoch), total=spec.steps_per_epoch, desc=f"epoch {epoch + 1}/{spec.epochs}", mininterval=10
        )
        for x, y in bar:
            loss, active = step(x, y)
            losses.append(float(loss))
            actives.append(float(active))
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", active=f"{np.mean(actives):.3f}")
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "active_triplets": float(np.mean(actives))}
        if validate is not None and ((epoch + 1) % spec.val_every == 0 or epoch + 1 == spec.epochs):
            row["val_recall_at_1"] = validate()
            if row["val_recall_at_1"] > state["best_recall_at_1"]:
                state["best_recall_at_1"], state["best_epoch"] = row["val_recall_at_1"], epoch + 1
                on_best()
        row["seconds"] = time.time() - started
        state["seconds"] += row["seconds"]
        state["epoch"] = epoch + 1
        state["history"].append(row)
        with writer.as_default():
            for name, value in row.items():
                if name != "epoch":
                    write_scalar(name, value, epoch + 1)
        writer.flush()
        ckpt.save(model, optimizer, state)
        logger.info("epoch %d/%d: %s", epoch + 1, spec.epochs, json.dumps(row))
    return state


def write_scalar(name: str, value: float, step: int) -> None:
    """A TensorBoard scalar via core ``tf.summary.write`` (no ``tensorboard`` package needed to *write* logs)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step, metadata=metadata.SerializeToString())


def recall_at_1(
    gallery: np.ndarray, gallery_labels: np.ndarray, queries: np.ndarray, query_labels: np.ndarray
) -> float:
    """Fraction of queries whose nearest gallery vector (inner product of unit vectors) has their label."""
    if len(queries) == 0:
        return float("nan")
    nearest = np.argmax(queries @ gallery.T, axis=1)
    return float(np.mean(gallery_labels[nearest] == query_labels))
