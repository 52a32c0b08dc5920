"""The change log that keeps workers' indexes current, and its compaction, on real SQLite files."""

import numpy as np
import pytest

from gallery.gallery import Gallery
from gallery.store import CatalogStore
from tests.gallery.test_gallery import DIM, enrol, vec


def test_compaction_keeps_the_newest_rows_and_records_the_cut(tmp_path):
    g = Gallery(tmp_path, "model-a", DIM)
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


def test_a_worker_behind_the_cut_rebuilds_from_the_catalogue(tmp_path):
    a, b = Gallery(tmp_path, "model-a", DIM), Gallery(tmp_path, "model-a", DIM)
    enrol(a, "milk", 1)
    assert b.size == 1  # b has applied the log so far
    ids = enrol(a, "juice", 2, 3, 4)
    a.delete_image("juice", ids[0])
    enrol(a, "tea", 5)
    a.store.compact_changes(keep=1)  # b has not seen the juice, the delete or the tea
    assert b.size == 4
    assert b.recognize(vec(3)[None], 0.9)[0].sku == "juice"
    assert b.recognize(vec(5)[None], 0.9)[0].sku == "tea"
    assert b.recognize(vec(2)[None], 0.99)[0].sku != "juice"  # the deleted image did not come back
    a.close(snapshot=False)
    b.close(snapshot=False)


def test_a_snapshot_older_than_the_cut_is_caught_up_on_open(tmp_path):
    g = Gallery(tmp_path, "model-a", DIM)
    enrol(g, "milk", 1, 2)
    g.close(snapshot=True)  # snapshot at change 2
    other = Gallery(tmp_path, "model-a", DIM)
    enrol(other, "juice", 3)
    other.delete_sku("milk")
    other.store.compact_changes(keep=1)
    other.close(snapshot=False)
    again = Gallery(tmp_path, "model-a", DIM)
    assert again.size == 1
    assert again.recognize(vec(3)[None], 0.9)[0].sku == "juice"
    assert not again.recognize(vec(1)[None], 0.99)[0].known
    again.close(snapshot=False)


def test_saving_a_snapshot_compacts_the_log(tmp_path, monkeypatch):
    monkeypatch.setattr("gallery.gallery.CHANGE_LOG_KEEP", 3)
    g = Gallery(tmp_path, "model-a", DIM)
    enrol(g, "milk", *range(10))
    g.save_snapshot()
    assert len(g.store.changes_since(0)) == 3
    g.close(snapshot=False)
    store = CatalogStore(tmp_path / "catalog.sqlite3")
    assert store.counts() == (1, 10)  # the catalogue itself is untouched
    store.close()
    again = Gallery(tmp_path, "model-a", DIM)
    assert again.size == 10
    assert [r.sku for r in again.recognize(np.stack([vec(i) for i in range(10)]), 0.99)] == ["milk"] * 10
    again.close(snapshot=False)
