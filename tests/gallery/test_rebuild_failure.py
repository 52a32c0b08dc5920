"""A rebuild during catch-up (the change log was compacted past this replica's last applied change) whose
vector stream fails partway leaves the index as it was: it still answers, and still knows it is behind."""

import pytest

from gallery.gallery import Gallery
from gallery.stores.base import CatalogUnreachable
from tests.gallery.test_gallery import DIM, enrol, vec


def test_a_failed_rebuild_keeps_the_old_index(tmp_path, catalog, monkeypatch):
    g = Gallery(tmp_path / "g", "model-a", DIM, catalog=catalog)
    enrol(g, "milk", 1)
    applied = g.follower.applied_seq
    full_stream = g.store.vectors_for

    def cut_mid_stream(model_version, image_ids=None, dim=None):
        if image_ids is None:  # the full rebuild's stream: rows arrive, then the connection is lost
            full_stream(model_version, image_ids, dim)
            raise CatalogUnreachable("the catalogue cannot be reached now (connection lost mid-stream)")
        return full_stream(model_version, image_ids, dim)

    monkeypatch.setattr(g.store, "vectors_for", cut_mid_stream)
    if catalog is not None:  # a replica that was away: its follower stopped, it misses the changes as they come
        g.store._follower.stop()  # type: ignore[attr-defined]
    other = Gallery(tmp_path / ("g" if catalog is None else "other"), "model-a", DIM, catalog=catalog)
    enrol(other, "juice", 2)
    assert other.store.compact_changes(keep=1) > 0  # g's last applied change is gone from the log
    if catalog is not None:
        g.store.heard(g.store.last_seq())  # back: it hears of the newest change
    other.close(snapshot=False)

    with pytest.raises(CatalogUnreachable):
        g.catch_up()
    assert g.recognize(vec(1)[None], 0.99)[0].sku == "milk"  # the old index answers (the catch-up failure logged)
    assert g.follower.applied_seq == applied and g.index_rows == 1  # and does not claim to be current

    monkeypatch.undo()
    g.catch_up()
    assert g.recognize(vec(2)[None], 0.99)[0].sku == "juice" and g.recognize(vec(1)[None], 0.99)[0].sku == "milk"
    g.close(snapshot=False)
