from gallery.decision import aggregate_by_sku, decide
from gallery.types import ImageHit, Match


def hits(*triples):
    return [ImageHit(i, sku, score) for i, sku, score in triples]


def test_best_score_per_sku_no_sku_twice():
    result = aggregate_by_sku(hits((1, "a", 0.9), (2, "a", 0.8), (3, "b", 0.7), (4, "c", 0.6), (5, "b", 0.5)), k=5)
    assert result == [Match("a", 0.9), Match("b", 0.7), Match("c", 0.6)]


def test_at_most_k():
    assert [m.sku for m in aggregate_by_sku(hits((1, "a", 0.9), (2, "b", 0.8), (3, "c", 0.7)), k=2)] == ["a", "b"]


def test_decision_threshold_inclusive_and_unknown():
    matches = [Match("a", 0.6), Match("b", 0.4)]
    assert decide(matches, 0.6).sku == "a" and decide(matches, 0.6).known
    unknown = decide(matches, 0.61)
    assert unknown.sku is None and not unknown.known and unknown.score == 0.6 and len(unknown.matches) == 2


def test_empty_gallery_is_unknown():
    result = decide([], 0.5)
    assert not result.known and result.sku is None and result.matches == ()
