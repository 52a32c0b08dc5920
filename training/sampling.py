"""P×K batches (P SKUs × K photos) and the tf.data pipelines that feed them.

Batch-hard mining needs positives *and* negatives in every batch, hence P×K
(Hermans et al. 2017). A SKU with fewer than K photos is sampled with
replacement — its photos repeat in the batch, but on the fly their augmented
views differ, and a duplicate positive at distance 0 is never the *hardest*
positive unless the SKU truly has one photo. SKUs with a single photo are
dropped (no positive pair can exist). Batches are a pure function of
(seed, epoch), so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from embedder.catalogue_views import synthetic_view
from training.augment import AugmentConfig, augment, view_rng

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger(__name__)


class PKSampler:
    """Index batches of ``p`` labels × ``k`` samples; ``epoch_batches(epoch)`` is deterministic."""

    def __init__(
        self,
        labels: np.ndarray,
        p: int,
        k: int,
        seed: int = 0,
        steps_per_epoch: int | None = None,
        paired: dict[int, int] | None = None,
        paired_p: float = 0.0,
        neighbours: Mapping[int, Sequence[int]] | None = None,
        group: int = 1,
    ):
        """``paired``: label → index of one extra sample (a SKU's catalogue photo) that takes one of
        the label's K places with probability ``paired_p``; it is never drawn otherwise.

        ``group`` > 1: each label drawn brings up to ``group - 1`` of its ``neighbours`` (nearest first,
        those not already in the batch) into the batch with it (``training.class_neighbours``)."""
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
        if p < 2 or k < 2:
            raise ValueError(f"P×K sampling needs p >= 2 and k >= 2, got p={p}, k={k}")
        self.paired, self.paired_p = dict(paired or {}), paired_p
        ordinary = np.ones(len(labels), dtype=bool)
        ordinary[list(self.paired.values())] = False
        by_label = {int(c): np.flatnonzero((labels == c) & ordinary) for c in np.unique(labels[ordinary])}
        dropped = sorted(c for c, idx in by_label.items() if len(idx) < 2)
        if dropped:
            logger.warning("P×K sampler drops labels with a single sample: %s", dropped)
        self.by_label = {c: idx for c, idx in by_label.items() if len(idx) >= 2}
        if len(self.by_label) < p:
            raise ValueError(f"p={p} SKUs per batch but only {len(self.by_label)} have at least 2 samples")
        if not 1 <= group <= p:
            raise ValueError(f"group must be in [1, p={p}], got {group!r}")
        if group > 1 and neighbours is None:
            raise ValueError(f"group={group} needs the labels' neighbours")
        self.group = group
        self.neighbours = {c: [n for n in (neighbours or {}).get(c, ()) if n in self.by_label] for c in self.by_label}
        self.p, self.k, self.seed = p, k, seed
        total = sum(len(idx) for idx in self.by_label.values())
        self.steps_per_epoch = steps_per_epoch or max(1, total // (p * k))

    @property
    def batch_size(self) -> int:
        return self.p * self.k

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """``(steps_per_epoch, p * k)`` sample indices; SKUs visited in shuffled rounds so all get used."""
        rng = np.random.default_rng([self.seed, epoch])
        classes = np.array(sorted(self.by_label))
        order: list[int] = []
        while len(order) < self.steps_per_epoch * self.p:
            order.extend(rng.permutation(classes).tolist())
        batches = np.empty((self.steps_per_epoch, self.p * self.k), dtype=np.int64)
        cursor = 0
        for step in range(self.steps_per_epoch):
            chosen: list[int] = []
            while len(chosen) < self.p:  # no SKU twice within a batch
                c = order[cursor % len(order)]
                cursor += 1
                if c not in chosen:
                    chosen.append(c)
                    chosen.extend(self._companions(c, chosen))
            picks = []
            for c in chosen:
                idx = self.by_label[c]
                pick = rng.choice(idx, size=self.k, replace=len(idx) < self.k)
                if c in self.paired and rng.random() < self.paired_p:
                    pick[0] = self.paired[c]
                picks.append(pick)
            batches[step] = np.concatenate(picks)
        return batches

    def _companions(self, label: int, chosen: list[int]) -> list[int]:
        """Up to ``group - 1`` nearest neighbours of ``label`` not yet in the batch, within its ``p``."""
        room = min(self.group - 1, self.p - len(chosen))
        return [n for n in self.neighbours[label] if n not in chosen][: max(room, 0)]

    def iter_epochs(self, start_epoch: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        epoch = start_epoch
        while True:
            yield epoch, self.epoch_batches(epoch)
            epoch += 1


def feature_batches(
    features: np.ndarray,
    labels: np.ndarray,
    sampler: PKSampler,
    epoch: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stage 1: batches of cached features; each sampled photo contributes one random view of ``features[i]``."""
    rng = np.random.default_rng([sampler.seed, epoch, 1])
    for batch in sampler.epoch_batches(epoch):
        views = rng.integers(0, features.shape[1], size=len(batch))
        yield np.asarray(features[batch, views], dtype=np.float32), labels[batch].astype(np.int32)


def image_dataset(
    pixels: np.ndarray,
    labels: np.ndarray,
    sampler: PKSampler,
    epoch: int,
    augment_config: AugmentConfig | None,
    seed: int,
    parallel: int | None = None,
    studio: np.ndarray | None = None,
    with_index: bool = False,
) -> tf.data.Dataset:
    """Stage 2: a ``tf.data.Dataset`` of one epoch of P×K batches ``(uint8 images, int32 labels)``;
    ``with_index``: the labels are ``(b, 2)``, each photo's label beside its index in ``pixels``
    (for per-photo targets such as a teacher's, ``training.distill``).

    Augmentation runs per image in parallel tf.data threads (``tf.numpy_function``
    around ``augment``); each image's generator is seeded by (seed, epoch,
    position), so the result does not depend on thread timing. Pixels come from
    the decode-once cache (``training.data.cached_pixels``); the next batch is
    prefetched while the current one trains.
    """
    import tensorflow as tf

    batches = sampler.epoch_batches(epoch)
    flat = batches.reshape(-1)
    size = pixels.shape[1]
    positions = np.arange(len(flat), dtype=np.int64)

    def load(index: np.ndarray, position: np.ndarray) -> np.ndarray:
        image = np.asarray(pixels[int(index)])
        if augment_config is None:
            return image
        rng = view_rng(seed, epoch, int(position))
        if studio is not None and studio[int(index)] and rng.random() < 0.8:
            image = synthetic_view(image, rng, size)  # a studio photo, placed as a store would show it
        return augment(image, rng, augment_config)

    def mapper(index: tf.Tensor, position: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.numpy_function(load, [index, position], tf.uint8, stateful=False)
        image.set_shape((size, size, 3))
        return image, label

    targets = labels[flat].astype(np.int32)
    if with_index:
        targets = np.stack([targets, flat.astype(np.int32)], axis=1)
    ds = tf.data.Dataset.from_tensor_slices((flat, positions, targets))
    ds = ds.map(mapper, num_parallel_calls=parallel or tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(sampler.batch_size, drop_remainder=True).prefetch(2)


def embed_in_batches(fn: Callable[[np.ndarray], np.ndarray], data: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([fn(data[i : i + batch_size]) for i in range(0, len(data), batch_size)])
