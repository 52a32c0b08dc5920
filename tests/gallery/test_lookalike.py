"""The lookalike score: centroids and nearest-other SKU against naive loops, the incremental book
against a recomputation from scratch, and the beta fit on data where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.calibrate import fit_beta
from gallery.lookalike import (
    NO_LOOKALIKE,
    CentroidBook,
    adjusted_score,
    label_lookalikes,
    nearest_other,
    sku_sums,
    unit_centroids,
)


def unit(rng: np.random.Generator, n: int, d: int = 8) -> np.ndarray:
    v = rng.normal(size=(n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def naive_lookalikes(vectors: np.ndarray, labels: list[str]) -> dict[str, float]:
    centroids = {}
    for sku in set(labels):
        mean = np.mean([v for v, lab in zip(vectors, labels) if lab == sku], axis=0)
        centroids[sku] = mean / np.linalg.norm(mean)
    out = {}
    for sku, c in centroids.items():
        others = [float(c @ o) for s, o in centroids.items() if s != sku]
        out[sku] = max(others) if others else NO_LOOKALIKE
    return out


def test_centroids_and_nearest_other_match_a_loop() -> None:
    rng = np.random.default_rng(0)
    vectors = unit(rng, 30)
    labels = rng.integers(0, 5, 30)
    labels[:5] = np.arange(5)
    expected = naive_lookalikes(vectors, [str(x) for x in labels])
    got = label_lookalikes(vectors, labels, 5)
    for k in range(5):
        assert got[k] == pytest.approx(expected[str(k)])


def test_absent_labels_are_never_anyones_lookalike() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]])
    centroids, present = unit_centroids(vectors, np.array([0, 2]), 3)
    assert present.tolist() == [True, False, True]
    near = nearest_other(centroids, present)
    assert near[0] == pytest.approx(0.0) and near[2] == pytest.approx(0.0)  # orthogonal, not the empty row


def put(book: CentroidBook, stored: list[tuple[str, np.ndarray]], skus: set[str]) -> None:
    """Tell ``book`` the sums of ``skus`` as ``stored`` now holds them."""
    names = sorted(skus)
    sums = np.array([sum((v for s, v in stored if s == n), np.zeros(book.dim)) for n in names])
    counts = np.array([sum(1 for s, _ in stored if s == n) for n in names])
    book.set_sums(names, sums, counts)


def test_a_lone_sku_has_no_lookalike() -> None:
    assert label_lookalikes(np.array([[1.0, 0.0]]), np.array([0]), 1).tolist() == [NO_LOOKALIKE]
    book = CentroidBook(2)
    put(book, [("milk", np.array([1.0, 0.0]))], {"milk"})
    assert book.lookalike("milk") == NO_LOOKALIKE
    assert book.lookalike("never-enrolled") == NO_LOOKALIKE


@pytest.mark.parametrize("batch, rebuild_at", [(1, 64), (3, 64), (6, 2)])  # (6, 2): rebuilt at once
def test_the_book_follows_changes_exactly(batch: int, rebuild_at: int) -> None:
    rng = np.random.default_rng(batch)
    book = CentroidBook(8)
    book.rebuild_at = rebuild_at
    stored: list[tuple[str, np.ndarray]] = []
    for step in range(120):
        touched: set[str] = set()
        for _ in range(batch):
            if stored and rng.random() < 0.4:
                sku, _ = stored.pop(int(rng.integers(len(stored))))
            else:
                sku = f"sku{int(rng.integers(15))}"
                stored.append((sku, unit(rng, 1)[0]))
            touched.add(sku)
        put(book, stored, touched)
        if stored:
            expected = naive_lookalikes(np.stack([v for _, v in stored]), [s for s, _ in stored])
            assert len(book) == len(expected)
            for sku, value in expected.items():
                assert book.lookalike(sku) == pytest.approx(value, abs=1e-9), (step, sku)


def test_loading_a_book_at_once_equals_setting_sku_by_sku() -> None:
    rng = np.random.default_rng(4)
    sums = rng.normal(size=(30, 8))
    counts = rng.integers(0, 4, 30)  # some SKUs with nothing
    names = [f"s{i}" for i in range(30)]
    loaded, stepwise = CentroidBook(8), CentroidBook(8)
    loaded.load(names, sums, counts)
    for name, total, count in zip(names, sums, counts):
        stepwise.set_sums([name], total[None], np.array([count]))
    assert len(loaded) == len(stepwise) == int((counts > 0).sum())
    for name in names:
        assert loaded.lookalike(name) == pytest.approx(stepwise.lookalike(name))
    extra = unit(rng, 1)
    for book in (loaded, stepwise):  # and it goes on incrementally, an empty SKU included
        book.set_sums(["s0", "new"], np.concatenate([sums[:1] + extra, -extra]), np.array([counts[0] + 1, 1]))
    for name in [*names, "new"]:
        assert loaded.lookalike(name) == pytest.approx(stepwise.lookalike(name))


def test_a_copy_changes_apart_from_its_original() -> None:
    book = CentroidBook(2)
    book.set_sums(["a", "b"], np.array([[1.0, 0.0], [0.6, 0.8]]), np.array([1, 1]))
    twin = book.copy()
    twin.set_sums(["b", "c"], np.array([[0.0, 1.0], [0.8, 0.6]]), np.array([1, 1]))
    assert book.lookalike("a") == pytest.approx(0.6) and book.lookalike("c") == NO_LOOKALIKE
    assert twin.lookalike("a") == pytest.approx(0.8) and twin.lookalike("b") == pytest.approx(0.6)


def test_removing_every_photo_of_a_sku_forgets_it() -> None:
    book = CentroidBook(2)
    book.set_sums(["a", "b"], np.array([[1.0, 0.0], [0.6, 0.8]]), np.array([1, 1]))
    assert book.lookalike("a") == pytest.approx(0.6)
    book.set_sums(["b", "never"], np.zeros((2, 2)), np.array([0, 0]))  # an unknown SKU: nothing to do
    assert len(book) == 1 and book.lookalike("a") == NO_LOOKALIKE


def test_sku_sums_take_each_images_photo_row_only() -> None:
    row_ids = np.array([7, 7, 7, 9, 4])  # image 7: its photo, then two catalogue views
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.5, 0.5], [3.0, 3.0]])
    names, sums, counts = sku_sums(row_ids, vectors, {7: "a", 9: "a", 4: "other"}, {"a", "gone"})
    assert names == ["a", "gone"]
    assert sums.tolist() == [[1.5, 0.5], [0.0, 0.0]] and counts.tolist() == [2, 0]


def test_adjusted_score_subtracts_beta_times_lookalike() -> None:
    assert float(adjusted_score(0.9, 0.5, 0.2)) == pytest.approx(0.8)
    assert adjusted_score(np.array([0.9, 0.8]), np.array([0.0, 1.0]), 0.0).tolist() == [0.9, 0.8]
    assert float(adjusted_score(0.9, -0.5, 0.2)) == pytest.approx(0.9)  # far from everything: no reward


def test_fit_beta_finds_the_lookalike_weight_it_was_generated_with() -> None:
    rng = np.random.default_rng(2)
    similarity = rng.uniform(0.5, 1.0, 4000)
    lookalike = rng.uniform(0.2, 0.95, 4000)
    logit = 40 * (similarity - 0.3 * lookalike - 0.6)
    correct = rng.random(4000) < 1 / (1 + np.exp(-logit))
    fit = fit_beta(similarity, lookalike, correct)
    assert fit.beta == pytest.approx(0.3, abs=0.05)
    assert fit.samples == 4000


def test_fit_beta_never_rewards_a_lookalike_and_refuses_degenerate_data() -> None:
    rng = np.random.default_rng(3)
    similarity = rng.uniform(0.5, 1.0, 500)
    lookalike = rng.uniform(0.2, 0.95, 500)
    correct = rng.random(500) < 1 / (1 + np.exp(-40 * (similarity + 0.5 * lookalike - 1.0)))
    assert fit_beta(similarity, lookalike, correct).beta == 0.0
    with pytest.raises(ValueError, match="all 3 answers are right"):
        fit_beta(np.ones(3), np.ones(3), np.ones(3, bool))
    with pytest.raises(ValueError, match="got 3, 2 and 3"):
        fit_beta(np.ones(3), np.ones(2), np.ones(3, bool))
