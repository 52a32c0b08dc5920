"""A replica behind a shared catalogue never makes searches wait on the network: a catch-up reads the
catalogue without the index's write lock (taken only to apply what it read), a request skips catching up
while another thread does, and while the catalogue was just found unreachable (the follower keeps
trying); ``check_model`` then answers from memory instead of raising. A real PostgreSQL server."""

import threading
import time

import pytest

import gallery.index_follower as index_follower
from gallery.gallery import Gallery
from tests.gallery.test_gallery import DIM, enrol, vec
from tests.pg_server import start_server


def behind(g: Gallery, other: Gallery) -> None:
    """``other`` enrols juice; ``g`` (its follower stopped) hears of it but has not applied it."""
    enrol(other, "juice", 2)
    g.store.heard(g.store.last_seq())  # type: ignore[attr-defined]
    assert g.store.known_seq() > g.follower.applied_seq


@pytest.fixture
def pair(tmp_path, pg_catalog_url):
    g = Gallery(tmp_path / "g", "model-a", DIM, catalog=pg_catalog_url)
    other = Gallery(tmp_path / "other", "model-a", DIM, catalog=pg_catalog_url)
    enrol(g, "milk", 1)
    g.store._follower.stop()  # type: ignore[attr-defined]  # only requests (and this test) catch up
    yield g, other
    other.close(snapshot=False)
    g.close(snapshot=False)


def test_searches_go_on_while_a_catch_up_waits_on_the_network(pair, monkeypatch):
    g, other = pair
    behind(g, other)
    slow, release = threading.Event(), threading.Event()
    read_changes = g.store.changes_since

    def slow_network(seq):  # a catch-up stuck on the network (a partitioned server: connect timeouts)
        slow.set()
        release.wait(60)
        return read_changes(seq)

    monkeypatch.setattr(g.store, "changes_since", slow_network)
    stuck = threading.Thread(target=g.catch_up)
    stuck.start()
    assert slow.wait(10)
    answers: list[str | None] = []
    searcher = threading.Thread(
        target=lambda: (g.check_model(), answers.append(g.recognize(vec(1)[None], 0.99)[0].sku))
    )
    started = time.monotonic()
    searcher.start()
    searcher.join(30)
    took = time.monotonic() - started
    release.set()
    stuck.join(60)
    assert answers == ["milk"] and took < 15, f"the search waited {took:.1f} s for the catch-up"
    assert g.recognize(vec(2)[None], 0.99)[0].sku == "juice"  # the catch-up applied juice when it was done


def test_a_replica_behind_during_an_outage_answers_without_retrying_each_request(tmp_path, monkeypatch):
    monkeypatch.setattr(index_follower, "UNREACHABLE_BACKOFF_S", 0.5)
    server = start_server()  # a server of its own: this test stops it
    try:
        url = server.new_database()
        g = Gallery(tmp_path / "g", "model-a", DIM, catalog=url)
        other = Gallery(tmp_path / "other", "model-a", DIM, catalog=url)
        enrol(g, "milk", 1)
        g.store._follower.stop()  # type: ignore[attr-defined]
        behind(g, other)
        tries: list[int] = []
        read_changes = g.store.changes_since
        monkeypatch.setattr(g.store, "changes_since", lambda seq: tries.append(seq) or read_changes(seq))
        server.stop("fast")
        for _ in range(5):
            g.check_model()  # no CatalogUnreachable: answered from memory
            assert g.recognize(vec(1)[None], 0.99)[0].sku == "milk"
        assert len(tries) == 1  # tried once, then backed off
        time.sleep(0.6)
        g.check_model()
        assert len(tries) == 2  # and tried again after the back-off
        server.start()
        time.sleep(0.6)
        assert g.recognize(vec(2)[None], 0.99)[0].sku == "juice"  # caught up once the server is back
        other.close(snapshot=False)
        g.close(snapshot=False)
    finally:
        server.close()
