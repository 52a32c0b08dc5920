"""Blended look-alikes as negatives: pair choice, map mixing and the loss against written-out loops."""

from __future__ import annotations

import numpy as np
import pytest

from training.blend_negatives import BlendPairs, blend_negative_loss, blend_weights, closest_pairs, mix_maps


def l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.sum((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_blend_weights_are_evenly_spread_and_checked():
    np.testing.assert_allclose(np.asarray(blend_weights(4, 0.35, 0.65)), [0.35, 0.45, 0.55, 0.65], atol=1e-6)
    np.testing.assert_allclose(np.asarray(blend_weights(1, 0.3, 0.5)), [0.4], atol=1e-6)
    with pytest.raises(ValueError, match="count must be >= 1, got 0"):
        blend_weights(0, 0.35, 0.65)
    with pytest.raises(ValueError, match=r"0 < low <= high < 1, got \(0.7, 0.6\)"):
        blend_weights(2, 0.7, 0.6)


def test_closest_pairs_are_the_batch_s_nearest_photos_of_different_skus():
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    emb = rng.normal(size=(8, 5)).astype(np.float32)
    emb[5] = emb[0] + 0.01  # photo 5 (SKU 2) almost on photo 0 (SKU 0): the closest pair, both ways
    pairs = closest_pairs(labels, emb, 3, blend_weights(3, 0.4, 0.6))
    nearest = {}
    for i in range(8):
        others = [j for j in range(8) if labels[j] != labels[i]]
        j = min(others, key=lambda j: l2(emb[i], emb[j]))
        nearest[i] = (l2(emb[i], emb[j]), j)
    expected = sorted(range(8), key=lambda i: nearest[i][0])[:3]
    first, second = np.asarray(pairs.first).tolist(), np.asarray(pairs.second).tolist()
    assert first == expected
    assert second == [nearest[i][1] for i in expected]
    assert set(first[:2]) == {0, 5} and all(labels[a] != labels[b] for a, b in zip(first, second))
    np.testing.assert_allclose(np.asarray(pairs.weights), [0.4, 0.5, 0.6], atol=1e-6)


def test_mix_maps_blends_each_pair_at_its_weight():
    rng = np.random.default_rng(1)
    maps = rng.uniform(0, 3, size=(4, 2, 2, 3)).astype(np.float32)
    pairs = BlendPairs(np.array([2, 0]), np.array([1, 3]), np.array([0.25, 0.6], np.float32))
    got = np.asarray(mix_maps(maps, pairs))
    np.testing.assert_allclose(got[0], 0.25 * maps[2] + 0.75 * maps[1], rtol=1e-6)
    np.testing.assert_allclose(got[1], 0.6 * maps[0] + 0.4 * maps[3], rtol=1e-6)


def reference_loss(labels, emb, blends, first, second, soft, margin) -> float:
    """Per anchor: its farthest same-SKU photo against its closest blend made from a photo of its SKU."""
    terms = []
    for a in range(len(labels)):
        own = [k for k in range(len(first)) if labels[a] in (labels[first[k]], labels[second[k]])]
        if not own:
            continue
        positives = [p for p in range(len(labels)) if p != a and labels[p] == labels[a]]
        d_ap = max((l2(emb[a], emb[p]) for p in positives), default=0.0)
        d_ab = min(l2(emb[a], blends[k]) for k in own)
        x = d_ap - d_ab
        terms.append(np.log1p(np.exp(x)) if soft else max(x + margin, 0.0))
    return float(np.mean(terms)) if terms else 0.0


@pytest.mark.parametrize("soft,margin", [(True, 0.2), (False, 0.2), (False, 1.0)])
def test_blend_negative_loss_matches_a_loop(soft, margin):
    rng = np.random.default_rng(2)
    labels = np.array([0, 0, 1, 1, 2, 2, 3])  # SKU 3 has no positive; SKU 2 is in no blend
    unit = rng.normal(size=(7, 4))
    emb = (unit / np.linalg.norm(unit, axis=1, keepdims=True)).astype(np.float32)
    blends = rng.normal(size=(3, 4)).astype(np.float32)
    first, second = np.array([0, 2, 6]), np.array([3, 1, 1])
    pairs = BlendPairs(first, second, np.array([0.4, 0.5, 0.6], np.float32))
    got = float(blend_negative_loss(labels, emb, blends, pairs, margin, soft))
    assert got == pytest.approx(reference_loss(labels, emb, blends, first, second, soft, margin), rel=1e-5)


def test_blend_negative_loss_is_zero_once_the_blend_is_farther_than_the_hardest_positive_by_the_margin():
    labels = np.array([0, 0, 1, 1])
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    pairs = BlendPairs(np.array([0]), np.array([2]), np.array([0.5], np.float32))
    near = float(blend_negative_loss(labels, emb, np.array([[0.95, 0.05]], np.float32), pairs, soft=False))
    far = float(blend_negative_loss(labels, emb, np.array([[-3.0, -3.0]], np.float32), pairs, soft=False))
    assert near > 0.0 and far == 0.0


def test_blend_negative_loss_sends_gradients_to_the_blended_skus_photos_only():
    import tensorflow as tf

    rng = np.random.default_rng(6)
    labels = np.array([0, 0, 1, 1, 2, 2])
    emb = tf.Variable(rng.normal(size=(6, 4)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        pairs = closest_pairs(labels, emb, 2, blend_weights(2, 0.4, 0.6))
        blends = 0.5 * (tf.gather(emb, pairs.first) + tf.gather(emb, pairs.second)) + 0.01
        loss = blend_negative_loss(labels, emb, blends, pairs)
    grad = np.asarray(tape.gradient(loss, emb))
    assert np.abs(grad).sum() > 0
    blended_skus = set(labels[np.asarray(pairs.first)]) | set(labels[np.asarray(pairs.second)])
    untouched = [i for i in range(6) if labels[i] not in blended_skus]
    touched = [i for i in range(6) if labels[i] in blended_skus]
    assert np.abs(grad[touched]).sum() > 0
    assert untouched  # the closest pair comes twice (once from each side): one SKU is left out
    np.testing.assert_array_equal(grad[untouched], 0.0)  # neither anchors nor blend sources
