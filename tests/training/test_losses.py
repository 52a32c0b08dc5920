"""Batch-hard triplet loss against a brute-force NumPy reference over written-out triplets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from training.losses import BatchHardTripletLoss, active_triplet_fraction, batch_hard_triplet_loss, pairwise_distances


def ref_distance(a: np.ndarray, b: np.ndarray, kind: str) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    if kind == "l2":
        return float(np.sqrt(np.sum((a - b) ** 2)))
    if kind == "squared_l2":
        return float(np.sum((a - b) ** 2))
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return max(1.0 - cos, 1e-16)


def ref_loss(labels: np.ndarray, emb: np.ndarray, margin: float, soft: bool, kind: str) -> tuple[float, float]:
    """Loop over every (anchor, positive, negative); tfa's rules for anchors without positive/negative."""
    n = len(labels)
    d = np.array(
        [
            [0.0 if i == j and kind != "cosine" else ref_distance(emb[i], emb[j], kind) for j in range(n)]
            for i in range(n)
        ]
    )
    losses = []
    for a in range(n):
        positives = [p for p in range(n) if p != a and labels[p] == labels[a]]
        negatives = [q for q in range(n) if labels[q] != labels[a]]
        hardest_pos = max((d[a, p] for p in positives), default=d[a].min())  # tfa: row minimum (0 for L2)
        hardest_neg = min((d[a, q] for q in negatives), default=d[a].max())  # tfa: row maximum
        # the written-out triplets agree with the hardest pair
        for p, q in itertools.product(positives, negatives):
            assert d[a, p] - d[a, q] <= hardest_pos - hardest_neg + 1e-12
        x = hardest_pos - hardest_neg
        losses.append(np.log1p(np.exp(x)) if soft else max(x + margin, 0.0))
    hinge = [
        max(hardest + margin, 0.0)
        for hardest in [
            max((d[a, p] for p in range(n) if p != a and labels[p] == labels[a]), default=d[a].min())
            - min((d[a, q] for q in range(n) if labels[q] != labels[a]), default=d[a].max())
            for a in range(n)
        ]
    ]
    return float(np.mean(losses)), float(np.mean(np.array(hinge) > 0))


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


CASES = {
    "random": (np.array([0, 0, 1, 1, 2, 2, 3, 3, 0, 1]), 0),
    "one_sku": (np.zeros(6, dtype=int), 1),
    "no_positive": (np.array([0, 1, 1, 2, 3, 3, 3]), 2),
    "all_singletons": (np.arange(5), 3),
}


@pytest.mark.parametrize("distance", ["l2", "squared_l2", "cosine"])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("soft,margin", [(False, 1.0), (False, 0.2), (True, 1.0)])
def test_matches_bruteforce(case, distance, soft, margin):
    labels, seed = CASES[case]
    emb = unit(np.random.default_rng(seed).normal(size=(len(labels), 8)))
    expected, expected_active = ref_loss(labels, emb, margin, soft, distance)
    got = float(batch_hard_triplet_loss(labels, emb, margin=margin, soft=soft, distance=distance))
    assert got == pytest.approx(expected, abs=2e-5)
    active = float(active_triplet_fraction(labels, emb, margin=margin, distance=distance))
    assert active == pytest.approx(expected_active)


def test_ties_and_duplicates():
    """Duplicated embeddings (distance exactly 0) and equal distances: finite loss and gradients."""
    import tensorflow as tf

    base = unit(np.random.default_rng(4).normal(size=(3, 4)))
    emb = np.concatenate([base, base])  # every vector twice: positives at distance 0, tied negatives
    labels = np.array([0, 1, 2, 0, 1, 2])
    for distance in ("l2", "squared_l2", "cosine"):
        expected, _ = ref_loss(labels, emb, 0.5, False, distance)
        x = tf.Variable(emb)
        with tf.GradientTape() as tape:
            loss = batch_hard_triplet_loss(labels, x, margin=0.5, distance=distance)
        assert float(loss) == pytest.approx(expected, abs=2e-5)
        assert np.all(np.isfinite(tape.gradient(loss, x).numpy()))


def test_separated_clusters_have_zero_hinge_loss():
    labels = np.array([0, 0, 1, 1])
    emb = np.array([[1, 0], [1, 0.01], [-1, 0], [-1, 0.01]], dtype=np.float32)
    assert float(batch_hard_triplet_loss(labels, emb, margin=1.0)) == 0.0
    assert float(active_triplet_fraction(labels, emb, margin=1.0)) == 0.0


def test_pairwise_distances_and_bad_distance():
    emb = unit(np.random.default_rng(5).normal(size=(4, 3)))
    d = np.asarray(pairwise_distances(emb, "l2"))
    assert np.allclose(np.diag(d), 0) and np.allclose(d, d.T, atol=1e-6)
    with pytest.raises(ValueError, match="'manhattan'"):
        pairwise_distances(emb, "manhattan")


def test_keras_loss_wrapper_round_trip():
    import keras

    loss = BatchHardTripletLoss(margin=0.3, soft=True, distance="cosine")
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    labels = np.array([0, 0, 1, 1])
    emb = unit(np.random.default_rng(6).normal(size=(4, 5)))
    assert float(loss(labels, emb)) == pytest.approx(float(batch_hard_triplet_loss(labels, emb, 0.3, True, "cosine")))
    assert (clone.margin, clone.soft, clone.distance) == (0.3, True, "cosine")


def test_cosine_margin_logits_match_a_loop():
    from training.losses import cosine_margin_logits

    rng = np.random.default_rng(3)
    features, weights = rng.normal(size=(5, 4)), rng.normal(size=(4, 3))
    labels = np.array([0, 2, 1, 1, 0])
    one_hot = np.eye(3)[labels]
    got = np.asarray(
        cosine_margin_logits(
            features.astype(np.float32), weights.astype(np.float32), one_hot.astype(np.float32), scale=30.0, margin=0.25
        )
    )
    for i in range(5):
        for c in range(3):
            cos = features[i] @ weights[:, c] / (np.linalg.norm(features[i]) * np.linalg.norm(weights[:, c]))
            expected = 30.0 * (cos - (0.25 if labels[i] == c else 0.0))
            assert got[i, c] == pytest.approx(expected, abs=1e-4)


def test_cosine_margin_logits_ignore_the_scale_of_features_and_weights():
    from training.losses import cosine_margin_logits

    rng = np.random.default_rng(4)
    features, weights = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)
    one_hot = np.eye(2, dtype=np.float32)[[0, 1, 1]]
    a = np.asarray(cosine_margin_logits(features, weights, one_hot))
    b = np.asarray(cosine_margin_logits(7.0 * features, 0.01 * weights, one_hot))
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_centre_loss_matches_a_loop():
    from training.losses import centre_loss

    rng = np.random.default_rng(4)
    embeddings, centres = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    labels = np.array([3, 0, 0, 2, 3])
    expected = np.mean([0.5 * sum((embeddings[i, j] - centres[labels[i], j]) ** 2 for j in range(3)) for i in range(5)])
    got = float(centre_loss(labels, embeddings.astype(np.float32), centres.astype(np.float32)))
    assert got == pytest.approx(expected, rel=1e-5)
    assert float(centre_loss(labels, centres[labels].astype(np.float32), centres.astype(np.float32))) == 0.0


def test_centre_update_matches_wen_et_al_s_rule_in_a_loop():
    from training.losses import centre_update

    rng = np.random.default_rng(5)
    embeddings, centres = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    labels = np.array([3, 0, 0, 2, 3])  # class 1 absent
    got = np.asarray(centre_update(labels, embeddings.astype(np.float32), centres.astype(np.float32), alpha=0.5))
    for j in range(4):
        members = [i for i in range(5) if labels[i] == j]
        delta = sum((centres[j] - embeddings[i] for i in members), np.zeros(3)) / (1 + len(members))
        np.testing.assert_allclose(got[j], centres[j] - 0.5 * delta, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[1], centres[1].astype(np.float32))  # absent: unchanged
