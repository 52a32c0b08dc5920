"""At start-up an index is loaded from its snapshot (HNSW's graph is not built again) and caught up."""

import logging

import numpy as np
import pytest

from gallery.gallery import Gallery
from gallery.index_follower import IndexFollower
from gallery.search.hnsw import HNSWIndex
from gallery.stores.base import NewImage
from tests.gallery.test_batched_search import fill, unit

DIM = 128


def refuse_to_build(monkeypatch) -> None:
    def no_rebuild(self):
        raise AssertionError("the index was rebuilt from SQLite at start-up")

    def no_add(self, ids, vectors):
        if len(ids) > 5:  # catching up a handful of changes is fine; building the graph is not
            raise AssertionError(f"{len(ids)} vectors added to the HNSW graph at start-up")
        return original_add(self, ids, vectors)

    original_add = HNSWIndex.add
    monkeypatch.setattr(IndexFollower, "_rebuild", no_rebuild)
    monkeypatch.setattr(HNSWIndex, "add", no_add)


def test_hnsw_restart_loads_the_graph_from_its_snapshot(tmp_path, monkeypatch, caplog):
    rng = np.random.default_rng(11)
    g = Gallery(tmp_path, "model-a", DIM, index_kind="hnsw")
    centres = fill(g, rng)
    queries = unit(centres[:50] + 0.2 * rng.normal(size=(50, DIM)))
    before = g.search(queries, k=5)
    rows = len(g.follower.index)
    g.close(snapshot=True)  # as the server does when it stops

    refuse_to_build(monkeypatch)
    with caplog.at_level(logging.INFO, logger="gallery.index_follower"):
        again = Gallery(tmp_path, "model-a", DIM, index_kind="hnsw")
    assert not [r for r in caplog.records if "built hnsw index" in r.getMessage()]
    assert isinstance(again.follower.index, HNSWIndex) and len(again.follower.index) == rows
    assert again.search(queries, k=5) == before  # the same graph: the same answers
    again.close(snapshot=False)


def test_hnsw_snapshot_older_than_the_catalogue_is_caught_up_not_rebuilt(tmp_path, monkeypatch):
    rng = np.random.default_rng(12)
    g = Gallery(tmp_path, "model-a", DIM, index_kind="hnsw")
    fill(g, rng)
    g.save_snapshot()
    extra = unit(rng.normal(size=(1, DIM)))
    ids = g.store.add_images(
        "late", [NewImage("f" * 64, "image/jpeg", 8, 8)], extra[:, None, :], "model-a", name="Late"
    )  # committed after the snapshot; then the process is killed
    g.store.close()

    refuse_to_build(monkeypatch)
    again = Gallery(tmp_path, "model-a", DIM, index_kind="hnsw")
    top = again.search(extra, k=1)[0][0]
    assert (top.sku, top.name) == ("late", "Late") and again.follower.sku_of[ids[0]] == "late"
    again.close(snapshot=False)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_first_start_without_a_snapshot_builds_once(tmp_path, kind, caplog):
    g = Gallery(tmp_path, "model-a", 8, index_kind=kind)
    g.close(snapshot=False)
    with caplog.at_level(logging.INFO, logger="gallery.index_follower"):
        Gallery(tmp_path, "model-a", 8, index_kind=kind).close(snapshot=False)
    assert [r for r in caplog.records if f"built {kind} index" in r.getMessage()]
