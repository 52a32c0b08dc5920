"""The open-set decision score: its weights, its name, and the batched form against naive loops."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import metrics
from gallery.decision import decide
from gallery.open_set_score import NO_RUNNER_UP, OpenSetScore, TableDecisions
from gallery.types import Match


def test_the_score_subtracts_each_weighted_cue_clipped_at_zero() -> None:
    score = OpenSetScore(beta=0.2, gamma=0.4)
    assert float(score.of(0.9, 0.5, 0.75)) == pytest.approx(0.9 - 0.1 - 0.3)
    assert float(score.of(0.9, -0.5, -0.2)) == pytest.approx(0.9)  # far from everything: no reward
    assert OpenSetScore().of(np.array([0.9, 0.8]), 1.0, 1.0).tolist() == [0.9, 0.8]


def test_each_score_has_its_own_name_for_its_stored_threshold() -> None:
    assert OpenSetScore().name == ""
    assert OpenSetScore(beta=0.19).name == "lookalike-0.19"  # as stored before the runner-up existed
    assert OpenSetScore(gamma=0.386).name == "runner-up-0.386"
    assert OpenSetScore(0.1, 0.2).name == "lookalike-0.1+runner-up-0.2"
    assert OpenSetScore(gamma=0.3).uses_lookalike is False and OpenSetScore(beta=0.3).uses_lookalike
    assert OpenSetScore().label == "similarity" and OpenSetScore(gamma=0.386).label == "runner-up-0.386"


@pytest.mark.parametrize("field,value", [("beta", -0.1), ("gamma", float("nan")), ("gamma", "0.2"), ("beta", True)])
def test_a_bad_weight_is_refused_with_its_value(field: str, value: object) -> None:
    name = "lookalike_beta" if field == "beta" else "runner_up_gamma"
    with pytest.raises(ValueError, match=f"{name} must be a number from 0 to 10, got {value!r}"):
        OpenSetScore(**{field: value})  # type: ignore[arg-type]


def test_table_decisions_match_a_naive_loop() -> None:
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(12, 4))
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 3, 4])
    queries = rng.normal(size=(7, 4))
    table = metrics.best_score_per_sku(queries @ gallery.T, labels, 6)  # SKU 5 has no reference: -inf
    lookalikes = rng.uniform(0, 1, 6)
    decisions = TableDecisions.of(table)
    scores = decisions.scores(OpenSetScore(0.3, 0.5), lookalikes)
    for q, query in enumerate(queries):
        best = {sku: max(float(query @ g) for g, lab in zip(gallery, labels) if lab == sku) for sku in range(5)}
        ranked = sorted(best, key=lambda s: -best[s])
        assert decisions.answer[q] == ranked[0] and decisions.similarity[q] == pytest.approx(best[ranked[0]])
        assert decisions.runner_up[q] == pytest.approx(best[ranked[1]])
        expected = best[ranked[0]] - 0.3 * max(lookalikes[ranked[0]], 0) - 0.5 * max(best[ranked[1]], 0)
        assert scores[q] == pytest.approx(expected)


def test_one_sku_enrolled_has_no_runner_up_and_a_beta_needs_lookalikes() -> None:
    table = np.array([[0.9, -np.inf], [0.4, -np.inf]])
    decisions = TableDecisions.of(table)
    assert decisions.runner_up.tolist() == [NO_RUNNER_UP] * 2
    assert decisions.scores(OpenSetScore(gamma=0.5)).tolist() == [0.9, 0.4]
    assert TableDecisions.of(np.array([[0.7]])).runner_up.tolist() == [NO_RUNNER_UP]
    with pytest.raises(ValueError, match=r"lookalike beta \(0.2\) needs"):
        decisions.scores(OpenSetScore(beta=0.2))


def test_decide_weighs_the_second_match_and_keeps_the_matches_as_similarities() -> None:
    matches = [Match("gala", 0.92), Match("pink-lady", 0.90), Match("oat-milk", 0.3)]
    answer = decide(matches, 0.6, score=OpenSetScore(gamma=0.4))
    assert answer.score == pytest.approx(0.92 - 0.4 * 0.90) and answer.similarity == 0.92
    assert not answer.known and answer.sku is None  # a near tie with the runner-up: not sure enough
    assert [m.score for m in answer.matches] == [0.92, 0.90, 0.3]
    alone = decide(matches[:1], 0.6, score=OpenSetScore(gamma=0.4))
    assert alone.known and alone.score == pytest.approx(0.92)  # nothing to weigh it against
    clear = decide([Match("gala", 0.92), Match("oat-milk", 0.3)], 0.6, score=OpenSetScore(gamma=0.4))
    assert clear.known and clear.sku == "gala" and clear.score == pytest.approx(0.92 - 0.12)
