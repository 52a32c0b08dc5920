"""Metrics on tiny hand-checked arrays."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from evaluation import metrics

# 2 queries, 5 gallery images of 3 SKUs
SIM = np.array([[0.9, 0.2, 0.8, 0.1, 0.3], [0.1, 0.7, 0.2, 0.6, 0.5]])
G_LABELS = np.array([0, 0, 1, 1, 2])


def test_best_score_per_sku_takes_the_best_image_and_marks_missing_skus():
    scores = metrics.best_score_per_sku(SIM, G_LABELS, n_skus=4)
    np.testing.assert_allclose(scores[:, :3], [[0.9, 0.8, 0.3], [0.7, 0.6, 0.5]])
    assert np.isneginf(scores[:, 3]).all()  # SKU 3 has no gallery image


def test_best_score_per_sku_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="does not match 4 gallery labels"):
        metrics.best_score_per_sku(SIM, G_LABELS[:4], 3)
    with pytest.raises(ValueError, match="outside 0..1"):
        metrics.best_score_per_sku(SIM, G_LABELS, 2)


def test_top_k_accuracy_by_hand():
    scores = metrics.best_score_per_sku(SIM, G_LABELS, 3)
    labels = np.array([1, 0])  # query 0's SKU ranks 2nd, query 1's 1st
    assert metrics.top_k_accuracy(scores, labels, 1) == 0.5
    assert metrics.top_k_accuracy(scores, labels, 2) == 1.0
    np.testing.assert_array_equal(metrics.rank_skus(scores), [[0, 1, 2], [0, 1, 2]])


def test_ties_rank_the_lower_sku_id_first_consistently():
    scores = np.array([[0.5, 0.5, 0.1]])
    assert metrics.true_sku_rank(scores, np.array([0]))[0] == 0
    assert metrics.true_sku_rank(scores, np.array([1]))[0] == 1
    assert metrics.top_k_accuracy(scores, np.array([1]), 1) == 0.0
    assert metrics.top_k_accuracy(scores, np.array([1]), 2) == 1.0
    np.testing.assert_array_equal(metrics.rank_skus(scores)[0], [0, 1, 2])


def test_a_sku_absent_from_the_gallery_is_never_found():
    scores = metrics.best_score_per_sku(SIM, G_LABELS, n_skus=4)
    # -1: SKU unknown to the gallery's vocabulary; 3: in the vocabulary but without images
    ranks = metrics.true_sku_rank(scores, np.array([-1, 3]))
    assert np.isinf(ranks).all()
    assert metrics.top_k_accuracy(scores, np.array([-1, 3]), 100) == 0.0


def test_top_k_edge_cases():
    assert math.isnan(metrics.top_k_accuracy(np.zeros((0, 3)), np.zeros(0, int), 1))
    with pytest.raises(ValueError, match="got 0"):
        metrics.top_k_accuracy(np.zeros((1, 3)), np.zeros(1, int), 0)


def test_recall_at_k_is_image_level():
    # query 0 (SKU 1): nearest images 0 (SKU 0), 2 (SKU 1) → miss at 1, hit at 2
    # query 1 (SKU 2): order 1, 3, 4 → first SKU-2 image at rank 3
    result = metrics.recall_at_k(SIM, G_LABELS, np.array([1, 2]), ks=(1, 2, 3))
    assert result == {1: 0.0, 2: 0.5, 3: 1.0}
    assert all(math.isnan(v) for v in metrics.recall_at_k(SIM[:0], G_LABELS, np.zeros(0, int), (1,)).values())


def test_map_at_r_by_hand():
    labels = np.array([0, 0, 1, 1])
    sim = np.array(
        [
            [0.9, 0.1, 0.8, 0.2],  # SKU 0, R=2: order 0(rel),2,3,1 → AP = (1/1)/2 = 0.5
            [0.1, 0.2, 0.8, 0.9],  # SKU 1, R=2: order 3,2 both rel → AP = 1
            [0.9, 0.1, 0.2, 0.8],
        ]
    )  # SKU 1, R=2: order 0,3(rel) → AP = (1/2)/2 = 0.25
    assert metrics.map_at_r(sim, labels, np.array([0, 1, 1])) == pytest.approx((0.5 + 1 + 0.25) / 3)


def test_map_at_r_against_a_brute_force_definition():
    rng = np.random.default_rng(0)
    sim = rng.normal(size=(20, 30))
    g_labels, q_labels = rng.integers(0, 5, 30), rng.integers(0, 5, 20)
    expected = []
    for row, label in enumerate(q_labels):
        r = int((g_labels == label).sum())
        if r == 0:
            continue
        nearest = np.argsort(-sim[row])[:r]
        total = sum(np.mean(g_labels[nearest[: i + 1]] == label) for i in range(r) if g_labels[nearest[i]] == label)
        expected.append(total / r)
    assert metrics.map_at_r(sim, g_labels, q_labels) == pytest.approx(np.mean(expected))


def test_map_at_r_leaves_out_queries_without_gallery_images():
    labels = np.array([0, 0])
    sim = np.array([[0.9, 0.8], [0.1, 0.2]])
    assert metrics.map_at_r(sim, labels, np.array([0, 7])) == 1.0
    assert math.isnan(metrics.map_at_r(sim, labels, np.array([7, 7])))


def test_per_sku_accuracy_and_most_confused():
    true = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "b", "b", "a", "b", None]
    per = {s.sku: s for s in metrics.per_sku_accuracy(true, pred)}
    assert (per["a"].correct, per["a"].queries, per["a"].accuracy) == (1, 3, pytest.approx(1 / 3))
    assert (per["b"].correct, per["c"].correct) == (1, 0)
    confused = metrics.most_confused(true, pred, top=5)
    assert [(c.true_sku, c.predicted_sku, c.count) for c in confused] == [("a", "b", 2), ("b", "a", 1)]
    assert confused[0].fraction == pytest.approx(2 / 3)
    assert metrics.most_confused(true, pred, top=1)[0].predicted_sku == "b"
    assert metrics.per_sku_accuracy([], []) == [] and metrics.most_confused([], []) == []
    with pytest.raises(ValueError, match="3 true SKUs but 2 predictions"):
        metrics.per_sku_accuracy(["a"] * 3, ["a"] * 2)


def brute_force_auroc(pos, neg) -> float:
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_a_brute_force_pair_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    pos = np.round(rng.normal(0.5, 1, size=rng.integers(1, 40)), 1)  # rounding makes ties
    neg = np.round(rng.normal(0, 1, size=rng.integers(1, 40)), 1)
    assert metrics.auroc(pos, neg) == pytest.approx(brute_force_auroc(pos, neg))


def test_auroc_edge_cases():
    assert metrics.auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert metrics.auroc([0.1], [0.9]) == 0.0
    assert metrics.auroc([0.5, 0.5], [0.5]) == 0.5
    assert math.isnan(metrics.auroc([], [0.1])) and math.isnan(metrics.auroc([0.1], []))


def test_open_set_at_threshold_by_hand():
    scores = np.array([0.9, 0.8, 0.4, 0.7, 0.3])
    correct = np.array([True, False, True, True, False])  # the 4th is unknown: its "correct" is ignored
    known = np.array([True, True, True, False, False])
    r = metrics.open_set_at_threshold(scores, correct, known, 0.75)
    assert (r.known, r.unknown, r.accepted) == (3, 2, 2)
    assert r.known_accuracy == pytest.approx(1 / 3)
    assert r.known_acceptance == pytest.approx(2 / 3)
    assert r.unknown_rejection == 1.0
    assert r.precision == 0.5
    r = metrics.open_set_at_threshold(scores, correct, known, 0.5)  # the unknown 0.7 is now accepted: an error
    assert r.unknown_rejection == 0.5 and r.precision == pytest.approx(1 / 3)


def test_open_set_at_threshold_empty_sets_are_nan():
    r = metrics.open_set_at_threshold(np.array([0.2]), np.array([False]), np.array([False]), 0.5)
    assert math.isnan(r.known_accuracy) and math.isnan(r.precision) and r.unknown_rejection == 1.0
    with pytest.raises(ValueError, match="lengths differ"):
        metrics.open_set_at_threshold(np.array([0.2, 0.3]), np.array([False]), np.array([False]), 0.5)
