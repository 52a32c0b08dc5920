"""Blended look-alikes as extra negatives for the batch-hard triplet (``blend_negatives`` in the config).

The mistakes that keep the open-set threshold from a till are unknown products whose photos sit close to an
enrolled look-alike: an apple variety never enrolled next to one that is. The triplet only ever sees the SKUs
it trains on. Here each step makes a few synthetic "products between two SKUs": for the batch's closest pairs
of photos of different SKUs (by the current embedding), the backbone's last feature maps of the two photos
are mixed (``lam * A + (1 - lam) * B``) and pooled again, so GeM sees the strongest parts of both. Such a
blend is another product, so it must sit farther from every photo of A (and of B) than A's hardest positive:
``softplus(d(a, hardest positive) - d(a, closest blend of its SKU))`` for each anchor whose SKU was blended.

The idea is manifold mixup as placeholder unknowns (Zhou et al., "Learning Placeholders for Open-Set
Recognition", CVPR 2021; mixing look-alike classes as in Zhang et al.'s MixOE, WACV 2023), put in the
triplet's terms. Mixing the pooled vectors instead would be pointless: the head after pooling is linear, so a
blend of pooled features lands on the segment between the two embeddings. Pure ``keras.ops`` functions here;
``training.finetune`` wires them into the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from keras import ops

from training.losses import hardest_distances, pairwise_distances

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass(frozen=True)
class BlendPairs:
    """The photos a step blends: ``first[k]`` and ``second[k]`` (batch indices, of different SKUs), mixed at
    ``weights[k]`` of the first."""

    first: tf.Tensor
    second: tf.Tensor
    weights: tf.Tensor


def blend_weights(count: int, low: float, high: float) -> tf.Tensor:
    """``count`` mixing weights evenly spaced over ``[low, high]`` (deterministic, so a resumed run draws the same)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count!r}")
    if not 0.0 < low <= high < 1.0:
        raise ValueError(f"blend weights must satisfy 0 < low <= high < 1, got ({low!r}, {high!r})")
    if count == 1:
        return ops.convert_to_tensor([(low + high) / 2.0], "float32")
    return ops.linspace(low, high, count)


def closest_pairs(
    labels: tf.Tensor, embeddings: tf.Tensor, count: int, weights: tf.Tensor, distance: str = "l2"
) -> BlendPairs:
    """Each photo's nearest photo of another SKU, and of those pairs the ``count`` closest: the look-alikes this
    batch confuses most. The batch must hold at least two SKUs (a P x K batch does) and ``count`` photos. The
    closest pair is mutual, so it usually comes twice, once from each side, at two neighbouring weights."""
    labels = ops.reshape(ops.convert_to_tensor(labels), (-1, 1))
    dist = pairwise_distances(ops.stop_gradient(embeddings), distance)
    same = ops.cast(ops.equal(labels, ops.transpose(labels)), "float32")
    masked = dist + same * (ops.max(dist) + 1.0)  # same-SKU photos (and the photo itself) never chosen
    nearest = ops.argmin(masked, axis=1)
    closest = ops.min(masked, axis=1)
    _, first = ops.top_k(-closest, k=count, sorted=True)
    return BlendPairs(first, ops.take(nearest, first), ops.cast(weights[:count], "float32"))


def mix_maps(maps: tf.Tensor, pairs: BlendPairs) -> tf.Tensor:
    """``(n, h, w, c)`` feature maps → ``(count, h, w, c)`` blends ``w * maps[first] + (1 - w) * maps[second]``."""
    weight = ops.reshape(pairs.weights, (-1, 1, 1, 1))
    return weight * ops.take(maps, pairs.first, axis=0) + (1.0 - weight) * ops.take(maps, pairs.second, axis=0)


def blend_negative_loss(
    labels: tf.Tensor,
    embeddings: tf.Tensor,
    blends: tf.Tensor,
    pairs: BlendPairs,
    margin: float = 0.2,
    soft: bool = True,
    distance: str = "l2",
) -> tf.Tensor:
    """Scalar: for each photo whose SKU is one of a blend's two sources, ``softplus(d_ap - d_ab)`` (or the hinge
    with ``margin``), ``d_ap`` its batch-hard positive distance (as ``training.losses.hardest_distances``), ``d_ab``
    its distance to the closest blend of its SKU; the mean over those photos (0 when there are none).

    ``labels`` ``(n,)``, ``embeddings`` ``(n, d)``, ``blends`` ``(m, d)`` (the blends' embeddings, ``pairs``'
    order), ``pairs`` the batch indices each blend mixes."""
    labels = ops.reshape(ops.convert_to_tensor(labels), (-1,))
    hard_pos, _ = hardest_distances(labels, embeddings, distance)
    n = ops.shape(embeddings)[0]
    joined = pairwise_distances(ops.concatenate([embeddings, blends], axis=0), distance)
    to_blends = joined[:n, n:]  # (n, m)
    sources = ops.stack([ops.take(labels, pairs.first), ops.take(labels, pairs.second)], axis=1)  # (m, 2)
    own = ops.cast(ops.any(ops.equal(labels[:, None, None], sources[None, :, :]), axis=2), "float32")  # (n, m)
    high = ops.max(to_blends) + 1.0
    closest = ops.min(to_blends + (1.0 - own) * high, axis=1)
    if soft:
        per_anchor = ops.softplus(hard_pos - closest)
    else:
        per_anchor = ops.maximum(hard_pos - closest + margin, 0.0)
    has_blend = ops.cast(ops.any(own > 0, axis=1), "float32")
    return ops.sum(per_anchor * has_blend) / ops.maximum(ops.sum(has_blend), 1.0)
