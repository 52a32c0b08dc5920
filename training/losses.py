"""Batch-hard triplet loss (Hermans et al. 2017) in ``keras.ops``, as ``tfa.losses.TripletHardLoss``.

For each anchor in the batch: the *farthest* positive and the *closest*
negative; loss = mean over anchors of ``max(d_ap - d_an + margin, 0)``, or
``softplus(d_ap - d_an)`` with the soft margin. Edge cases follow TensorFlow
Addons exactly (its masked max/min):

* an anchor with no positive in the batch gets the row minimum as its hardest
  positive distance — 0 for the L2 distances (the anchor's distance to itself);
* an anchor with no negative (a batch of one SKU) gets the row maximum as its
  closest negative distance.

Distances (``distance``): ``"l2"`` Euclidean, with tfa's safe square root (no
NaN gradient at 0); ``"squared_l2"`` (what tfa calls ``"L_2"``); ``"cosine"``
``1 - cos``, floored at 1e-16 as tfa's ``angular_distance``.

``cosine_margin_logits``: the CosFace classifier used beside the triplet loss when the
training config says ``classifier: "cosine"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import ops

if TYPE_CHECKING:
    import tensorflow as tf

DISTANCES = ("l2", "squared_l2", "cosine")


def pairwise_distances(embeddings: tf.Tensor, distance: str = "l2") -> tf.Tensor:
    """``(n, d)`` → ``(n, n)`` distance matrix, float32, as tfa's ``pairwise_distance``/``angular_distance``."""
    if distance not in DISTANCES:
        raise ValueError(f"distance {distance!r} is not one of {DISTANCES}")
    x = ops.cast(embeddings, "float32")
    if distance == "cosine":
        x = x / ops.maximum(ops.norm(x, axis=1, keepdims=True), 1e-12)
        return ops.maximum(1.0 - ops.matmul(x, ops.transpose(x)), 1e-16)
    sq = ops.sum(ops.square(x), axis=1, keepdims=True)
    squared = ops.maximum(sq + ops.transpose(sq) - 2.0 * ops.matmul(x, ops.transpose(x)), 0.0)
    zero = ops.cast(ops.less_equal(squared, 0.0), "float32")
    if distance == "l2":
        dist = ops.sqrt(squared + zero * 1e-16) * (1.0 - zero)
    else:
        dist = squared * (1.0 - zero)
    n = ops.shape(x)[0]
    return dist * (1.0 - ops.eye(n, dtype="float32"))


def _masked_maximum(data: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    low = ops.min(data, axis=1, keepdims=True)
    return ops.max((data - low) * mask, axis=1, keepdims=True) + low


def _masked_minimum(data: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    high = ops.max(data, axis=1, keepdims=True)
    return ops.min((data - high) * mask, axis=1, keepdims=True) + high


def hardest_distances(labels: tf.Tensor, embeddings: tf.Tensor, distance: str = "l2") -> tuple[tf.Tensor, tf.Tensor]:
    """Per anchor: (hardest positive distance, hardest negative distance), each ``(n,)``."""
    labels = ops.reshape(ops.convert_to_tensor(labels), (-1, 1))
    dist = pairwise_distances(embeddings, distance)
    same = ops.cast(ops.equal(labels, ops.transpose(labels)), "float32")
    n = ops.shape(dist)[0]
    positives = same - ops.eye(n, dtype="float32")
    hard_pos = _masked_maximum(dist, positives)
    hard_neg = _masked_minimum(dist, 1.0 - same)
    return ops.reshape(hard_pos, (-1,)), ops.reshape(hard_neg, (-1,))


def _per_anchor(labels: tf.Tensor, embeddings: tf.Tensor, margin: float, soft: bool, distance: str) -> tf.Tensor:
    hard_pos, hard_neg = hardest_distances(labels, embeddings, distance)
    if soft:
        return ops.softplus(hard_pos - hard_neg)
    return ops.maximum(hard_pos - hard_neg + margin, 0.0)


def batch_hard_triplet_loss(
    labels: tf.Tensor, embeddings: tf.Tensor, margin: float = 1.0, soft: bool = False, distance: str = "l2"
) -> tf.Tensor:
    """Scalar batch-hard triplet loss (float32) for integer ``labels`` ``(n,)`` and ``embeddings`` ``(n, d)``."""
    return ops.mean(_per_anchor(labels, embeddings, margin, soft, distance))


def active_triplet_fraction(
    labels: tf.Tensor, embeddings: tf.Tensor, margin: float = 1.0, distance: str = "l2"
) -> tf.Tensor:
    """Fraction of anchors whose hardest triplet still violates the margin (hinge loss > 0).

    Reported for the soft margin too (with ``margin``): it says how much of the
    batch still has work to do, which the never-zero softplus loss hides.
    """
    per_anchor = _per_anchor(labels, embeddings, margin, False, distance)
    return ops.mean(ops.cast(ops.greater(per_anchor, 0.0), "float32"))


def cosine_margin_logits(
    features: tf.Tensor, weights: tf.Tensor, one_hot: tf.Tensor, scale: float = 30.0, margin: float = 0.25
) -> tf.Tensor:
    """CosFace logits (Wang et al. 2018): ``scale * (cos(feature, class weight) - margin * one_hot)``.

    ``features`` ``(n, d)``, ``weights`` ``(d, c)`` (a Dense kernel), ``one_hot`` ``(n, c)``. Both sides
    are L2-normalised, so the classifier works on the same angles as the served unit vectors and the
    margin pushes each class's photos closer to its centre than to any other SKU's by ``margin`` in
    cosine: the gap an open-set threshold needs.
    """
    unit_features = features / ops.maximum(ops.norm(features, axis=1, keepdims=True), 1e-12)
    unit_weights = weights / ops.maximum(ops.norm(weights, axis=0, keepdims=True), 1e-12)
    cosine = ops.matmul(unit_features, unit_weights)
    return scale * (cosine - margin * ops.cast(one_hot, cosine.dtype))


def centre_loss(labels: tf.Tensor, embeddings: tf.Tensor, centres: tf.Tensor) -> tf.Tensor:
    """Centre loss (Wen et al. 2016; Luo et al. 2019 add it beside the batch-hard triplet for re-identification):
    the batch mean of half the squared distance from each embedding ``(n, d)`` to its class's centre, a row of
    ``centres`` ``(c, d)`` picked by the integer ``labels`` ``(n,)``. The triplet only orders distances within a
    batch; this pulls every photo of a SKU towards one point, so an unknown product has a tighter cluster to miss."""
    own = ops.take(centres, ops.cast(ops.convert_to_tensor(labels), "int32"), axis=0)
    return ops.mean(0.5 * ops.sum(ops.square(embeddings - own), axis=1))


def centre_update(labels: tf.Tensor, embeddings: tf.Tensor, centres: tf.Tensor, alpha: float = 0.5) -> tf.Tensor:
    """Wen et al.'s step for the centres, not a gradient one: ``c_j - alpha * sum_i (c_j - x_i) / (1 + n_j)`` over
    the ``n_j`` embeddings of class ``j`` in the batch; classes absent from the batch keep their centre.
    (An optimizer such as Adam would move every centre by about its learning rate per step, far slower than
    the features it should follow, and keep moving absent classes on momentum.)"""
    one_hot = ops.one_hot(ops.cast(ops.convert_to_tensor(labels), "int32"), ops.shape(centres)[0], dtype=centres.dtype)
    counts = ops.expand_dims(ops.sum(one_hot, axis=0), 1)
    sums = ops.matmul(ops.transpose(one_hot), embeddings)
    return centres - alpha * (counts * centres - sums) / (1.0 + counts)


@keras.saving.register_keras_serializable(package="skulens")
class BatchHardTripletLoss(keras.losses.Loss):
    """``keras.losses.Loss`` wrapper: ``y_true`` integer labels ``(n,)``, ``y_pred`` embeddings ``(n, d)``."""

    def __init__(
        self,
        margin: float = 1.0,
        soft: bool = False,
        distance: str = "l2",
        name: str = "batch_hard_triplet",
        **kwargs: Any,
    ) -> None:
        if distance not in DISTANCES:
            raise ValueError(f"distance {distance!r} is not one of {DISTANCES}")
        super().__init__(name=name, **kwargs)
        self.margin, self.soft, self.distance = float(margin), bool(soft), distance

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return batch_hard_triplet_loss(y_true, y_pred, self.margin, self.soft, self.distance)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "margin": self.margin, "soft": self.soft, "distance": self.distance}
