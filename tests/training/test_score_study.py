"""The open-set score study: its cues against naive loops, and the cross-fit picking an informative cue."""

import numpy as np

from training.fold_metrics import Vectors
from training.score_study import ScoreCues, cross_fitted, score_cues, sku_reference_stats


def unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def tiny_vectors(seed=0, n_skus=5, per_sku=4, queries=12, dim=6):
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(n_skus, dim)))
    labels = np.repeat(np.arange(n_skus), per_sku)
    gallery = unit(centres[labels] + 0.4 * rng.normal(size=(len(labels), dim)))
    query_labels = rng.integers(0, n_skus, queries)
    q = unit(centres[query_labels] + 0.6 * rng.normal(size=(queries, dim)))
    empty = np.zeros((0, dim))
    return Vectors(
        skus=tuple(f"s{i}" for i in range(n_skus)),
        gallery=gallery,
        gallery_labels=labels,
        queries=q,
        shifted=q,
        flipped=q,
        query_labels=query_labels,
        catalogue=empty,
        catalogue_labels=np.zeros(0, np.int64),
        views=empty,
        view_labels=np.zeros(0, np.int64),
    )


def test_reference_stats_match_a_naive_loop():
    v = tiny_vectors()
    impostor, genuine = sku_reference_stats(v.gallery, v.gallery_labels, 5)
    for sku in range(5):
        others = [
            max(float(v.gallery[i] @ v.gallery[j]) for j in np.flatnonzero(v.gallery_labels == sku))
            for i in np.flatnonzero(v.gallery_labels != sku)
        ]
        assert np.isclose(impostor[sku], np.quantile(others, 0.99))
        own = np.flatnonzero(v.gallery_labels == sku)
        loo = [max(float(v.gallery[i] @ v.gallery[j]) for j in own if j != i) for i in own]
        assert np.isclose(genuine[sku], np.median(loo))


def test_cues_match_a_naive_loop_with_the_fold_not_enrolled():
    v = tiny_vectors()
    cues = score_cues(v, ("s1",), v.queries)
    for i, q in enumerate(v.queries):
        best = {
            sku: max(float(q @ v.gallery[j]) for j in np.flatnonzero(v.gallery_labels == sku)) for sku in (0, 2, 3, 4)
        }
        ranked = sorted(best.values(), reverse=True)
        answer = max(best, key=lambda s: best[s])
        assert np.isclose(cues.similarity[i], ranked[0]) and np.isclose(cues.runner_up[i], ranked[1])
        assert np.isclose(cues.cohort[i], np.mean(ranked[1:6]))
        assert cues.known[i] == (v.query_labels[i] != 1)
        assert cues.correct[i] == (cues.known[i] and answer == v.query_labels[i])


def synthetic_fold(rng, n=400):
    similarity = rng.uniform(0.5, 1.0, n)
    known = rng.random(n) > 0.2
    runner_up = similarity - np.where(
        known, rng.uniform(0.0, 0.3, n), rng.uniform(0.0, 0.1, n)
    )  # unknowns sit near a look-alike
    correct = known & (similarity - runner_up > 0.12)  # right exactly when the runner-up is far
    noise = rng.uniform(0, 1, n)
    return ScoreCues(similarity, runner_up, noise, noise, noise, noise, correct, known)


def test_cross_fit_weights_an_informative_cue_and_accepts_more():
    rng = np.random.default_rng(0)
    parts = [synthetic_fold(rng) for _ in range(3)]
    informative = cross_fitted(parts, ("runner_up",))
    noise = cross_fitted(parts, ("lookalike",))
    assert informative.weights[0] < -0.5  # the score leans on the margin to the runner-up
    assert informative.known_accepted > noise.known_accepted + 0.2
    assert informative.precision >= 0.9
