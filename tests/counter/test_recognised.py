"""The recogniser deciding one item or two (issue 12, round 4): the pure decision, the proposals, the wiring."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2", reason="the counter extra (opencv-python-headless) is not installed")

from counter.alternatives import ProposalConfig, along_axis, between_peaks, proposals
from counter.blobs import Blob
from counter.hypotheses import Change, DecisionConfig, apply, choose, evidence, gain

SPLIT = Change((0,), (3, 4))  # part 0 split into crops 3 and 4
MERGE = Change((1, 2), (5,))  # parts 1 and 2 merged into crop 5
CONFIG = DecisionConfig(split_margin=0.05, merge_margin=0.05, coherence=0.0)


def sims(*rows: tuple[float, ...]) -> np.ndarray:
    """One row of per-product similarities per crop."""
    return np.array(rows, np.float64)


def test_a_split_is_taken_when_its_parts_are_recognised_clearly_better():
    # crop 0 (the whole) matches product 0 at 0.60; its halves 3 and 4 match products 1 and 2 at 0.70, 0.72
    s = sims((0.6, 0.2, 0.2), (0.8, 0, 0), (0.8, 0, 0), (0.3, 0.7, 0), (0.3, 0, 0.72), (0.5, 0, 0))
    assert evidence(SPLIT, s, CONFIG) == pytest.approx(0.71 - 0.60)
    assert gain(SPLIT, s, CONFIG) == pytest.approx(0.71 - 0.60 - 0.05)
    assert choose([SPLIT, MERGE], s, CONFIG) == [SPLIT]  # the merge: 0.5 against 0.8, no gain
    assert apply([0, 1, 2], [SPLIT]) == [1, 2, 3, 4]
    # coherence: each half is recognised 0.4 better as its own product than as the whole's (0.3 vs 0.7)
    coherent = DecisionConfig(split_margin=0.05, merge_margin=0.05, coherence=0.5)
    assert evidence(SPLIT, s, coherent) == pytest.approx(0.11 + 0.5 * (0.7 - 0.3 + 0.72 - 0.3) / 2)


def test_two_halves_of_one_product_are_not_split_however_the_scores_go():
    # both halves look like the whole's product: no coherence evidence, and a better mean within the margin
    s = sims((0.70, 0.1), (0, 0), (0, 0), (0.73, 0.1), (0.74, 0.1), (0, 0))
    config = DecisionConfig(split_margin=0.05, merge_margin=0.05, coherence=1.0)
    assert evidence(SPLIT, s, config) == pytest.approx(0.035)
    assert choose([SPLIT], s, config) == []
    assert choose([SPLIT], s, DecisionConfig(split_margin=0.0, merge_margin=0.0, coherence=1.0)) == [SPLIT]
    assert choose([], s, config) == []


def test_a_merge_is_taken_when_the_whole_is_recognised_better_than_its_parts():
    s = sims((0, 0), (0.55, 0.3), (0.5, 0.35), (0, 0), (0, 0), (0.8, 0.1))
    assert evidence(MERGE, s, CONFIG) == pytest.approx(0.525 - 0.8)  # the finer cut is worse
    assert choose([MERGE], s, CONFIG) == [MERGE]
    assert apply([0, 1, 2], [MERGE]) == [0, 5]


def test_overlapping_changes_the_most_gainful_first():
    whole = Change((0, 1, 2), (6,))
    s = sims((0.5,), (0.5,), (0.5,), (0.0,), (0.0,), (0.7,), (0.9,))
    taken = choose([MERGE, whole], s, CONFIG)
    assert taken == [whole]  # gain 0.4 - 0.1 beats 0.2 - 0.05; the merge then replaces parts already replaced
    assert apply([0, 1, 2], taken) == [6]
    assert apply([0, 1, 2], choose([MERGE], s, CONFIG)) == [0, 5]


def rectangle(height: int, width: int) -> np.ndarray:
    return np.ones((height, width), np.uint8)


def test_a_big_part_is_proposed_cut_in_two_and_three_small_neighbours_merged():
    big = rectangle(20, 80)  # 1600 px: two items of 800 px
    cut = along_axis(big, 2)
    assert [int(m.sum()) for m in cut] == [800, 800]
    assert cut[0][:, :40].all() and not cut[0][:, 40:].any()  # across the long axis
    blob = Blob(0, 0, big, [big])
    found = proposals(blob, 100, 800, ProposalConfig(split_items=1.5, split3_items=1.9))
    assert sorted(len(p.into) for p in found) == [2, 3]  # two equal halves; thirds; no two distance peaks
    assert proposals(blob, 100, 0, ProposalConfig()) == []  # no expected item size: nothing proposed
    left, right = np.zeros((20, 80), np.uint8), np.zeros((20, 80), np.uint8)
    left[:, :40], right[:, 40:] = 1, 1
    merged = proposals(Blob(0, 0, big, [left, right]), 100, 1000, ProposalConfig(split_items=9, merge_items=2))
    assert [(p.replaces, int(p.into[0].sum())) for p in merged] == [((0, 1), 1600)]


def test_two_discs_are_split_between_their_distance_peaks():
    yy, xx = np.mgrid[0:60, 0:110]
    part = (((yy - 30) ** 2 + (xx - 30) ** 2 < 25**2) | ((yy - 30) ** 2 + (xx - 80) ** 2 < 25**2)).astype(np.uint8)
    halves = between_peaks(part, ProposalConfig())
    assert len(halves) == 2 and int(halves[0].sum() + halves[1].sum()) == int(part.sum())
    assert {int(np.nonzero(h)[1].mean()) // 10 for h in halves} == {3, 8}
    assert between_peaks(rectangle(20, 20), ProposalConfig()) == []
