"""The refit of round 4's decision (bench/counter_rule_refit.py): the grid and the choice, on tiny tables."""

import math

import pytest

from bench.counter_rule_refit import ROUND4, Scored, best, distance, grid
from bench.counter_verifier_replay import describe_decision
from counter.hypotheses import DecisionConfig


def test_the_grid_holds_round_4s_rule_never_splitting_and_never_merging():
    configs = grid()
    assert ROUND4 in configs
    assert any(math.isinf(c.split_margin) for c in configs)
    assert any(math.isinf(c.merge_margin) for c in configs)
    assert len(set(configs)) == len(configs)


def test_the_most_scenes_right_over_both_galleries_wins():
    a = Scored(DecisionConfig(0.3, 0.0, 0.75), store=300, unknown=290)
    b = Scored(ROUND4, store=305, unknown=280)
    assert best([b, a]) is a


def test_of_equals_the_config_nearest_round_4_wins_whatever_the_order():
    near = Scored(DecisionConfig(0.175, 0.0, 0.75), store=300, unknown=290)
    far = Scored(DecisionConfig(0.0, 0.2, 0.0), store=290, unknown=300)
    never = Scored(DecisionConfig(math.inf, 0.0, 0.75), store=295, unknown=295)
    assert best([far, never, near]) is near
    assert best([near, never, far]) is near


def test_never_splitting_is_far_from_a_finite_margin():
    assert distance(DecisionConfig(math.inf, 0.0, 0.75)) > distance(DecisionConfig(0.0, 0.2, 0.0))
    assert distance(ROUND4) == 0


def test_an_empty_grid_is_refused():
    with pytest.raises(ValueError, match="no configs"):
        best([])


def test_describe_spells_out_never():
    assert describe_decision(DecisionConfig(math.inf, 0.05, 1.0)) == {
        "split_margin": "never",
        "merge_margin": 0.05,
        "coherence": 1.0,
        "verifier": False,
    }
