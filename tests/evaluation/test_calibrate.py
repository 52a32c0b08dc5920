"""Threshold calibration for a precision target."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.calibrate import calibrate_threshold, cross_fit, make_folds
from evaluation.metrics import open_set_at_threshold


def brute_force(scores, correct, known, target):
    """Lowest threshold among the scores whose accepted answers reach the target; None if none."""
    best = None
    for t in sorted(set(scores.tolist())):
        r = open_set_at_threshold(scores, correct, known, t)
        if r.accepted and r.precision >= target:
            return t, r.accepted
    return best


def test_picks_the_lowest_threshold_reaching_the_target():
    scores = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6])
    correct = np.array([True, True, True, False, True, True])
    known = np.array([True, True, True, False, True, True])  # 0.8 is an unknown query
    cal = calibrate_threshold(scores, correct, known, target_precision=1.0)
    assert cal.reached
    assert 0.8 < cal.threshold < 0.85  # half-way between the lowest accepted (0.85) and the next (0.8)
    assert cal.result.accepted == 3 and cal.result.precision == 1.0
    assert cal.result.unknown_rejection == 1.0
    cal = calibrate_threshold(scores, correct, known, target_precision=0.8)  # all 6 accepted, 5 right
    assert cal.threshold == 0.6 and cal.result.accepted == 6 and cal.result.precision == pytest.approx(5 / 6)
    correct[-1] = False  # now accepting all gives 4/6: stop at 0.7 (5 accepted, 4 right)
    cal = calibrate_threshold(scores, correct, known, target_precision=0.8)
    assert 0.6 < cal.threshold < 0.7 and cal.result.accepted == 5 and cal.result.precision == 0.8


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_a_brute_force_search(seed):
    rng = np.random.default_rng(seed)
    n = 60
    known = rng.random(n) < 0.7
    correct = known & (rng.random(n) < 0.8)
    scores = np.round(rng.normal(0.5, 0.1, n) + 0.2 * correct, 2)  # rounding makes ties
    for target in (0.8, 0.9, 0.99):
        expected = brute_force(scores, correct, known, target)
        cal = calibrate_threshold(scores, correct, known, target)
        if expected is None:
            assert not cal.reached
            continue
        assert cal.reached and cal.result.accepted == expected[1]
        assert cal.result.precision >= target
        assert cal.threshold <= expected[0]


def test_tied_scores_are_accepted_or_rejected_together():
    scores = np.array([0.9, 0.8, 0.8, 0.7])
    correct = np.array([True, True, False, True])
    cal = calibrate_threshold(scores, correct, np.ones(4, bool), target_precision=1.0)
    assert cal.result.accepted == 1 and 0.8 < cal.threshold < 0.9


def test_unreachable_target_returns_the_best_precision_and_says_so():
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([False, True, True, False])
    cal = calibrate_threshold(scores, correct, np.ones(4, bool), target_precision=0.99)
    assert not cal.reached and "cannot be reached" in cal.note
    assert cal.result.precision == pytest.approx(2 / 3) and cal.result.accepted == 3


def test_no_right_answer_rejects_everything():
    scores = np.array([0.9, 0.5])
    cal = calibrate_threshold(scores, np.array([False, False]), np.array([True, False]), 0.99)
    assert not cal.reached and cal.threshold > 0.9 and cal.result.accepted == 0


def test_a_single_query():
    cal = calibrate_threshold(np.array([0.4]), np.array([True]), np.array([True]), 0.99)
    assert cal.reached and cal.threshold == 0.4 and cal.result.accepted == 1


def test_bad_inputs_are_quoted():
    with pytest.raises(ValueError, match="0 queries"):
        calibrate_threshold(np.array([]), np.array([]), np.array([]))
    with pytest.raises(ValueError, match="got 1.5"):
        calibrate_threshold(np.array([0.1]), np.array([True]), np.array([True]), 1.5)
    with pytest.raises(ValueError, match="lengths differ"):
        calibrate_threshold(np.array([0.1, 0.2]), np.array([True]), np.array([True]))
    with pytest.raises(ValueError, match="finite"):
        calibrate_threshold(np.array([-np.inf]), np.array([False]), np.array([False]))


def test_make_folds_splits_unknowns_by_sku_and_knowns_within_each_sku():
    skus = ["a"] * 4 + ["b"] * 3 + ["u1"] * 2 + ["u2"] * 2
    folds = make_folds(skus, {"u1", "u2", "absent"}, n_folds=2, seed=0)
    assert len(set(folds[7:9])) == 1 and len(set(folds[9:11])) == 1 and folds[7] != folds[9]
    assert sorted(folds[:4].tolist()) == [0, 0, 1, 1]
    assert set(folds[4:7].tolist()) == {0, 1}
    np.testing.assert_array_equal(folds, make_folds(skus, {"u1", "u2"}, n_folds=2, seed=0))  # seeded


def test_cross_fit_judges_each_fold_with_the_other_folds_threshold():
    rng = np.random.default_rng(3)
    n = 80
    known = np.r_[np.ones(60, bool), np.zeros(20, bool)]
    correct = known & (rng.random(n) < 0.9)
    scores = rng.normal(0.5, 0.1, n) + 0.3 * correct
    folds = np.arange(n) % 2
    fit = cross_fit(scores, correct, known, folds, target_precision=0.95)
    assert len(fit.thresholds) == 2
    for fold, threshold in enumerate(fit.thresholds):
        other = folds != fold
        assert threshold == calibrate_threshold(scores[other], correct[other], known[other], 0.95).threshold
    accepted = np.where(folds == 0, scores >= fit.thresholds[0], scores >= fit.thresholds[1])
    assert fit.result.accepted == accepted.sum()
    with pytest.raises(ValueError, match="at least 2 folds"):
        cross_fit(scores, correct, known, np.zeros(n, int))


def test_till_calibration_refuses_without_unknowns_or_when_unreachable():
    from evaluation.calibrate import CalibrationRefused, calibrate_for_till, calibration_record, threshold_curve

    scores = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, True, False, False])
    with pytest.raises(CalibrationRefused, match="no unknown"):
        calibrate_for_till(scores, correct, np.ones(4, bool), 0.95)
    known = np.array([True, True, True, False])
    cal = calibrate_for_till(scores, correct, known, 0.95)
    assert 0.7 < cal.threshold < 0.8 and cal.result.precision == 1.0
    with pytest.raises(CalibrationRefused, match="cannot be reached"):
        calibrate_for_till(scores, np.zeros(4, bool), known, 0.95)
    curve = threshold_curve(scores, correct, known, points=4)
    assert [round(p.threshold, 6) for p in curve] == [0.6, 0.7, 0.8, 0.9]
    assert curve[0].known_coverage == 1.0 and curve[0].unknown_rejection == 0.0
    assert curve[-1].precision == 1.0 and curve[-1].known_coverage == pytest.approx(1 / 3)
    record = calibration_record(cal, scores, correct, known, "abc", {"queries": "q"})
    assert record["provenance"]["model_version"] == "abc" and len(record["curve"]) == 101
