"""Replicas on one PostgreSQL catalogue: each has its own data directory (its index snapshot) and
follows the shared change log in the background, woken by LISTEN/NOTIFY, with a poll as fallback.
While the server is down a replica keeps answering from its index in memory; writes fail with
``CatalogUnreachable``; when the server is back the replicas catch up. A real server throughout."""

import statistics
import time

import numpy as np
import psycopg
import pytest

from gallery.gallery import Gallery
from gallery.stores.base import CatalogUnreachable
from tests.gallery.test_gallery import DIM, enrol, upload, vec
from tests.pg_server import start_server


def wait_until(condition, timeout: float = 15.0, step: float = 0.002) -> float:
    """Seconds until ``condition()`` held (fails after ``timeout``)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "condition never held"
        time.sleep(step)
    return time.monotonic() - started


@pytest.fixture
def replicas(tmp_path, pg_catalog_url):
    a = Gallery(tmp_path / "a", "model-a", DIM, catalog=pg_catalog_url)
    b = Gallery(tmp_path / "b", "model-a", DIM, catalog=pg_catalog_url)
    yield a, b
    a.close(snapshot=False)
    b.close(snapshot=False)


def test_an_enrolment_reaches_the_other_replica_without_a_request(replicas):
    a, b = replicas
    wait_until(lambda: b.store.reachable)
    took, seen = [], []
    for i in range(20):
        started = time.monotonic()
        enrol(a, f"sku-{i}", i)
        took.append(time.monotonic() - started)
        wait_until(lambda n=i + 1: b.index_rows == n, step=0.0002)  # memory only: b's follower applied it
        seen.append(time.monotonic() - started)
    assert b.recognize(vec(7)[None], 0.99)[0].sku == "sku-7"
    a.delete_sku("sku-7")
    wait_until(lambda: b.index_rows == 19)
    assert not b.recognize(vec(7)[None], 0.99)[0].known  # a deleted photo disappears everywhere
    print(
        f"\n20 enrolments on replica a: a's enrol returned after median {statistics.median(took) * 1000:.1f} ms "
        f"(max {max(took) * 1000:.1f}); b's index held the image after median {statistics.median(seen) * 1000:.1f} ms "
        f"(max {max(seen) * 1000:.1f}), both from the call"
    )


def test_a_change_without_notification_is_found_by_the_poll(replicas, pg_catalog_url):
    a, b = replicas
    enrol(a, "milk", 1, name="Milk")
    wait_until(lambda: b.sku_details(["milk"]) == {"milk": ("Milk", None)})
    with psycopg.connect(pg_catalog_url, autocommit=True) as conn:  # a change logged with no NOTIFY
        conn.execute("UPDATE skus SET name = 'Arla Milk' WHERE sku = 'milk'")
        conn.execute("INSERT INTO changes(op, image_id, sku) VALUES ('sku', 0, 'milk')")
    took = wait_until(lambda: b.sku_details(["milk"]) == {"milk": ("Arla Milk", None)}, timeout=60)
    assert took < b.store.poll_s + 20  # type: ignore[attr-defined]  # the poll (2 s), with room for a loaded CI


def test_a_replica_answers_from_memory_while_the_server_is_down_and_catches_up_after(tmp_path):
    server = start_server()  # a server of its own: this test stops it
    try:
        url = server.new_database()
        a = Gallery(tmp_path / "a", "model-a", DIM, catalog=url)
        b = Gallery(tmp_path / "b", "model-a", DIM, catalog=url)
        enrol(a, "milk", 1)
        wait_until(lambda: b.index_rows == 1)
        server.stop("fast")
        wait_until(lambda: not b.store.reachable)
        assert b.recognize(vec(1)[None], 0.99)[0].sku == "milk"  # answered from memory
        assert b.search(np.stack([vec(1), vec(2)]), k=1)[0][0].sku == "milk"
        with pytest.raises(CatalogUnreachable, match="cannot be reached"):
            a.enrol("juice", [upload(2)], vec(2)[None])
        with pytest.raises(CatalogUnreachable):
            a.put_sku("juice", "Juice")
        server.start()
        wait_until(lambda: a.store.reachable and b.store.reachable)
        enrol(a, "juice", 2)  # the same replica writes again once the server is back
        wait_until(lambda: b.index_rows == 2)
        assert b.recognize(vec(2)[None], 0.99)[0].sku == "juice"
        assert a.counts() == b.counts() == (2, 2)  # the refused writes left nothing behind
        a.close(snapshot=False)
        b.close(snapshot=False)
    finally:
        server.close()


def test_a_snapshot_made_beside_another_catalogue_is_not_loaded(tmp_path, pg_server):
    """Same ids, same counts, different catalogues: only the recorded catalogue id tells them apart."""
    first, second = pg_server.new_database(), pg_server.new_database()
    other = Gallery(tmp_path / "other", "model-a", DIM, catalog=second)
    enrol(other, "juice", 2)  # image 1 there is juice
    other.close(snapshot=False)
    g = Gallery(tmp_path / "data", "model-a", DIM, catalog=first)
    enrol(g, "milk", 1)  # image 1 here is milk
    g.close(snapshot=True)
    moved = Gallery(tmp_path / "data", "model-a", DIM, catalog=second)  # the data directory pointed elsewhere
    assert moved.recognize(vec(2)[None], 0.99)[0].sku == "juice"
    assert not moved.recognize(vec(1)[None], 0.99)[0].known  # not milk's vector under juice's id
    moved.close(snapshot=False)
