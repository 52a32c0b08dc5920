"""The learned verifier of the counter's proposals (issue 12, round 5): features on tiny arrays, the choice on
constructed cases, the shipped weights' file, the wiring into the recogniser-guided segmenter."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("cv2", reason="the counter extra (opencv-python-headless) is not installed")

from counter.hypotheses import Change, DecisionConfig
from counter.recognised import RecognisedSegmenter
from counter.segment import BackgroundSegmenter
from counter.verifier import WEIGHTS, Verifier, choose_learned, take
from counter.verifier_features import NAMES, Shapes, contact, elongation, features, solidity
from tests.counter.test_recognised import colour_scorer, two_flush_cartons

SPLIT = Change((0,), (1, 2))  # crop 0 split into crops 1 and 2
MERGE = Change((3, 4), (5,))  # crops 3 and 4 merged into crop 5


def halves(height: int = 4, width: int = 8) -> Shapes:
    whole = np.ones((height, width), bool)
    left, right = whole.copy(), whole.copy()
    left[:, width // 2 :], right[:, : width // 2] = False, False
    return Shapes([whole], [left, right])


def sims() -> np.ndarray:
    return np.array(
        [
            (0.60, 0.30, 0.20),  # 0: the whole, product 0
            (0.35, 0.70, 0.10),  # 1: a half, product 1
            (0.30, 0.20, 0.80),  # 2: the other half, product 2
            (0.75, 0.10, 0.10),  # 3, 4: two parts of product 0
            (0.70, 0.20, 0.10),
            (0.90, 0.10, 0.05),  # 5: the two as one
        ]
    )


def test_features_of_a_split_on_tiny_arrays():
    f = features(SPLIT, halves(), sims(), item_area=16.0)
    assert f.better == pytest.approx(0.75 - 0.60)
    assert f.alike == pytest.approx(((0.35 - 0.70) + (0.30 - 0.80)) / 2)
    assert f.agree == 0.0
    assert f.fine_margin == pytest.approx(((0.70 - 0.35) + (0.80 - 0.30)) / 2)
    assert (f.coarse_margin, f.coarse_best, f.fine_worst) == pytest.approx((0.30, 0.60, 0.70))
    assert f.items == pytest.approx(2.0) and f.balance == 1.0
    assert f.cut == pytest.approx(4 / np.sqrt(32))  # 4 rows cut, over sqrt(area)
    assert f.neck == pytest.approx(4 / (4 * np.sqrt(1.25)))  # over the width across the long axis (4 rows)
    assert f.vector().shape == (len(NAMES),)


def test_features_of_a_merge_on_tiny_arrays():
    shapes = halves()
    merge = Shapes(shapes.into, shapes.replaces)  # the two halves replaced by the whole
    f = features(MERGE, merge, sims(), item_area=0.0)
    assert f.better == pytest.approx((0.75 + 0.70) / 2 - 0.90)  # the finer cut (the parts) less the merged
    assert f.agree == 1.0 and f.alike == 0.0  # both parts look like the merged crop's product
    assert f.items == 0.0  # no expected item size


def test_geometry_helpers():
    square = np.ones((5, 5), bool)
    assert solidity(square) == 1.0 and elongation(square) == pytest.approx(1.0)
    ell = square.copy()
    ell[:3, :3] = False  # an L: less convex
    assert solidity(ell) == pytest.approx(16 / 19)  # the hull cuts the corner: 3 more pixels
    assert elongation(np.ones((2, 10), bool)) > 5
    a, b = np.zeros((3, 6), bool), np.zeros((3, 6), bool)
    a[:, :2], b[:, 4:] = True, True
    assert contact([a, b]) == 0.0  # apart
    b[:, 2:] = True
    assert contact([a, b]) == 3.0


def verifier(split_bias: float, merge_bias: float, better: float = 10.0) -> Verifier:
    weights = [0.0] * (len(NAMES) + 1)
    weights[1 + NAMES.index("better")] = better
    return Verifier((split_bias, *weights[1:]), (merge_bias, *(-w for w in weights[1:])))


def test_the_verifier_takes_a_split_whose_parts_are_recognised_better_and_a_merge_whose_whole_is():
    shapes = [halves(), Shapes(halves().into, halves().replaces)]
    # split: log-odds 10 x 0.15 - 1 > 0; merge: -10 x (0.725 - 0.9) - 1 > 0
    taken = choose_learned([SPLIT, MERGE], shapes, sims(), verifier(-1.0, -1.0), 16.0)
    assert taken == [MERGE, SPLIT]  # the most confident first (1.75 against 1.5)
    assert choose_learned([SPLIT, MERGE], shapes, sims(), verifier(-2.0, -2.0), 16.0) == []
    strict = replace(verifier(-1.0, -1.0), split_threshold=1.0)
    assert choose_learned([SPLIT, MERGE], shapes, sims(), strict, 16.0) == [MERGE]


def test_take_never_changes_one_part_twice():
    other = Change((0,), (6, 7))
    assert take([SPLIT, other, MERGE], [0.5, 0.9, -0.1]) == [other]
    assert take([], []) == []


def test_weights_round_trip_and_checked():
    v = replace(verifier(-1.0, 0.5), split_threshold=0.25)
    path_text = v.to_json()
    assert json.loads(path_text)["features"] == list(NAMES)
    with pytest.raises(ValueError):
        Verifier((0.0, 1.0), v.merge)


def test_the_shipped_weights_load_with_their_provenance():
    shipped = Verifier.load(WEIGHTS)
    assert shipped.provenance["fitted_on"].startswith("tuning: seeds 1000-1399")  # type: ignore[union-attr]
    assert "never the catalogue photos" in str(shipped.provenance["gallery"])


def test_the_recognised_segmenter_with_a_verifier():
    base = BackgroundSegmenter().with_item_area(0.09)
    photo, background = two_flush_cartons((175, 60, 50))
    assert len(base.segment(photo, background)) == 1
    calls: list[int] = []
    always, never = verifier(5.0, -5.0, better=0.0), verifier(-5.0, -5.0, better=0.0)
    split = RecognisedSegmenter(base, colour_scorer(calls), DecisionConfig(verifier=always))
    assert len(split.segment(photo, background)) == 2
    kept = RecognisedSegmenter(base, colour_scorer(calls), DecisionConfig(verifier=never))
    assert len(kept.segment(photo, background)) == 1
