import numpy as np
import pytest

from gallery.search import FlatIndex, HNSWIndex, make_index


def unit(n, d=32, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_add_search_remove(kind):
    index = make_index(kind, 32)
    vectors = unit(50)
    index.add(np.arange(100, 150), vectors)
    scores, ids = index.search(vectors[:3], 1)
    assert ids[:, 0].tolist() == [100, 101, 102] and np.allclose(scores[:, 0], 1.0, atol=1e-5)
    index.remove(np.array([100, 999]))
    assert len(index) == 49
    _, ids = index.search(vectors[:1], 5)
    assert 100 not in ids[0].tolist()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_re_adding_an_id_replaces_it(kind):
    index = make_index(kind, 32)
    vectors = unit(3)
    index.add(np.array([1, 2, 3]), vectors)
    index.add(np.array([1]), vectors[2:3])
    assert len(index) == 3
    _, ids = index.search(vectors[2:3], 3)
    assert sorted(ids[0].tolist()) == [1, 2, 3]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_vectors_returns_what_was_stored_after_replaces_and_removes(kind):
    index = make_index(kind, 32)
    vectors = unit(6)
    index.add(np.array([10, 11, 12, 13]), vectors[:4])
    index.add(np.array([11]), vectors[4:5])  # replaced
    index.remove(np.array([12]))
    ids, got = index.vectors(np.array([13, 10, 11, 12, 999]))  # removed and unknown ids have none
    assert sorted(ids.tolist()) == [10, 11, 13]
    assert np.allclose(got[np.argsort(ids)], vectors[[0, 4, 3]], atol=1e-6)
    assert index.vectors(np.zeros(0, np.int64))[1].shape == (0, 32)
    index.add(np.array([20, 20]), vectors[[1, 5]])  # an image with a catalogue view: two rows, one id
    assert index.vectors(np.array([20]))[0].tolist() == [20, 20]
    every_id, every = index.vectors()
    assert sorted(every_id.tolist()) == [10, 11, 13, 20, 20] and every.shape == (5, 32)
    assert np.allclose(every[every_id == 11], vectors[4], atol=1e-6)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_empty_and_short_results_padded(kind):
    index = make_index(kind, 32)
    scores, ids = index.search(unit(2), 4)
    assert ids.shape == (2, 4) and (ids == -1).all()
    index.add(np.array([7]), unit(1))
    _, ids = index.search(unit(1), 4)
    assert ids[0].tolist()[0] == 7 and (ids[0, 1:] == -1).all()


@pytest.mark.parametrize("cls", [FlatIndex, HNSWIndex])
def test_save_load_round_trip(tmp_path, cls):
    index = cls(32)
    vectors = unit(40)
    index.add(np.arange(40), vectors)
    index.remove(np.array([5]))
    index.save(tmp_path / "i")
    loaded = cls.load(tmp_path / "i", 32)
    assert len(loaded) == 39
    assert np.array_equal(loaded.search(vectors, 3)[1], index.search(vectors, 3)[1])


def test_hnsw_recall_against_exact_and_rebuild_after_many_deletes():
    vectors = unit(3000, 64, seed=1)
    queries = unit(100, 64, seed=2)
    flat, hnsw = FlatIndex(64), HNSWIndex(64)
    for index in (flat, hnsw):
        index.add(np.arange(3000), vectors)
    exact = flat.search(queries, 1)[1][:, 0]
    assert (hnsw.search(queries, 1)[1][:, 0] == exact).mean() >= 0.95
    gone = np.arange(0, 3000, 2)  # half deleted: tombstones trigger a rebuild
    flat.remove(gone)
    hnsw.remove(gone)
    assert len(hnsw) == 1500 and hnsw._dead < 0.2 * 3000
    exact = flat.search(queries, 1)[1][:, 0]
    got = hnsw.search(queries, 1)[1][:, 0]
    assert (got == exact).mean() >= 0.95 and not np.isin(got, gone).any()


def test_wrong_dimension_refused():
    with pytest.raises(ValueError, match=r"\(n, 32\)"):
        FlatIndex(32).add(np.array([1]), np.zeros((1, 8), np.float32))


def test_unknown_kind():
    with pytest.raises(ValueError, match="'ivf'"):
        make_index("ivf", 8)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_an_id_with_several_rows_is_found_and_removed_whole(kind, tmp_path):
    """A reference image with its catalogue views: one id, several rows."""
    index = make_index(kind, 32)
    vectors = unit(12)
    index.add(np.array([7] * 9 + [8, 9, 10]), vectors)
    assert len(index) == 12
    _, ids = index.search(vectors[3:4], 1)
    assert ids[0, 0] == 7
    index.remove(np.array([7]))
    assert len(index) == 3
    _, ids = index.search(vectors[:9], 3)
    assert 7 not in ids.ravel().tolist()
    index.add(np.array([11, 11]), vectors[:2])
    index.save(tmp_path / "i")
    loaded = type(index).load(tmp_path / "i", 32)
    assert len(loaded) == 5
    loaded.remove(np.array([11]))
    assert len(loaded) == 3
