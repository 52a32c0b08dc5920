"""The change log that keeps workers' indexes current, and its compaction, on real SQLite files."""

import numpy as np
import pytest

from gallery.gallery import Gallery
from gallery.stores.open import open_catalog
from tests.gallery.test_gallery import DIM, enrol, settled, vec


def test_compaction_keeps_the_newest_rows_and_records_the_cut(tmp_path, catalog):
    g = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(g, "milk", *range(6))  # seven changes: the SKU created, six images added
    store = g.store
    assert store.compact_changes(keep=2) == 5
    assert [c.seq for c in store.changes_since(0)] == [6, 7]
    assert store.compacted_through() == 5
    assert store.compact_changes(keep=5) == 0  # never moves the cut back
    assert store.compacted_through() == 5
    with pytest.raises(ValueError, match="got 0"):
        store.compact_changes(keep=0)
    g.close(snapshot=False)


def test_a_worker_behind_the_cut_rebuilds_from_the_catalogue(tmp_path, catalog):
    a, b = Gallery(tmp_path, "model-a", DIM, catalog=catalog), Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(a, "milk", 1)
    settled(a, b)
    assert b.size == 1  # b has applied the log so far
    ids = enrol(a, "juice", 2, 3, 4)
    a.delete_image("juice", ids[0])
    enrol(a, "tea", 5)
    a.store.compact_changes(keep=1)  # b has not seen the juice, the delete or the tea
    settled(a, b)
    assert b.size == 4
    assert b.recognize(vec(3)[None], 0.9)[0].sku == "juice"
    assert b.recognize(vec(5)[None], 0.9)[0].sku == "tea"
    assert b.recognize(vec(2)[None], 0.99)[0].sku != "juice"  # the deleted image did not come back
    a.close(snapshot=False)
    b.close(snapshot=False)


def test_a_snapshot_older_than_the_cut_is_caught_up_on_open(tmp_path, catalog):
    g = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(g, "milk", 1, 2)
    g.close(snapshot=True)  # snapshot at change 2
    other = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(other, "juice", 3)
    other.delete_sku("milk")
    other.store.compact_changes(keep=1)
    other.close(snapshot=False)
    again = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    assert again.size == 1
    assert again.recognize(vec(3)[None], 0.9)[0].sku == "juice"
    assert not again.recognize(vec(1)[None], 0.99)[0].known
    again.close(snapshot=False)


def test_saving_a_snapshot_compacts_the_log(tmp_path, catalog, monkeypatch):
    monkeypatch.setattr("gallery.index_follower.CHANGE_LOG_KEEP", 3)
    g = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(g, "milk", *range(10))
    g.save_snapshot()
    assert len(g.store.changes_since(0)) == 3
    g.close(snapshot=False)
    store = open_catalog(tmp_path, catalog)
    assert store.counts() == (1, 10)  # the catalogue itself is untouched
    store.close()
    again = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    assert again.size == 10
    assert [r.sku for r in again.recognize(np.stack([vec(i) for i in range(10)]), 0.99)] == ["milk"] * 10
    again.close(snapshot=False)
