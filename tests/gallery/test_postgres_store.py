"""What only the PostgreSQL catalogue has: its schema version and currency checks, change-log rows that
commit in seq order under writers on several replicas, photos in the database, and a server that
cannot be reached (one clear error, never a hang). A real server (``tests/pg_server.py``)."""

import threading
import time

import numpy as np
import psycopg
import pytest

from gallery.stores.base import CatalogUnreachable
from gallery.stores.open import open_catalog
from gallery.stores.postgres import schema
from gallery.stores.postgres.store import WRITE_LOCK, PostgresCatalog
from gallery.types import CurrencyMismatch, SchemaTooNew
from service.settings import Settings
from service.startup import StartupError, check_catalogue
from tests.pg_server import free_port


def test_schema_version_and_currency_are_checked(tmp_path, pg_catalog_url):
    store = open_catalog(tmp_path, pg_catalog_url, "JPY")
    assert isinstance(store, PostgresCatalog) and store.currency.code == "JPY"
    assert store.get_meta(schema.VERSION_KEY) == str(schema.LATEST)
    store.put_sku("ramen", "Ramen", 450, None)
    store.close()
    again = open_catalog(tmp_path, pg_catalog_url)  # not set: the catalogue's own
    assert again.currency.code == "JPY" and again.get_sku("ramen").price_minor == 450
    with pytest.raises(CurrencyMismatch, match="prices are in JPY"):
        open_catalog(tmp_path, pg_catalog_url, "EUR")
    again.set_meta(schema.VERSION_KEY, str(schema.LATEST + 1))
    again.close()
    with pytest.raises(SchemaTooNew, match="newer skulens"):
        open_catalog(tmp_path, pg_catalog_url)


def test_a_version_1_catalogue_gets_lane_settings(tmp_path, pg_catalog_url):
    """Written by the release before lane settings (schema version 1, no ``lane_settings``): opened, it gets
    the table and version 2, its lanes and SKUs as they were."""
    store = open_catalog(tmp_path, pg_catalog_url)
    store.put_sku("milk", "Milk", 135, None)
    store.put_lane(("lane-1", "a" * 64, "image/jpeg", 160, 120, 1.0))
    with store.transaction() as conn:  # as the previous release left it
        conn.execute("DROP TABLE lane_settings")
    store.set_meta(schema.VERSION_KEY, "1")
    store.close()
    again = open_catalog(tmp_path, pg_catalog_url)
    assert again.get_meta(schema.VERSION_KEY) == str(schema.LATEST) == "2"
    assert again.get_lane("lane-1") == ("lane-1", "a" * 64, "image/jpeg", 160, 120, 1.0)
    assert again.get_lane_settings("lane-1") is None and again.get_sku("milk").price_minor == 135
    assert again.put_lane_settings(("lane-1", 0.02, 2.0)) and again.get_lane_settings("lane-1") == ("lane-1", 0.02, 2.0)
    assert not again.put_lane_settings(("lane-1", None, 3.0))  # replaced: back to the default
    assert again.get_lane_settings("lane-1") == ("lane-1", None, 3.0)
    with pytest.raises(psycopg.errors.CheckViolation), again.transaction() as conn:
        conn.execute("UPDATE lane_settings SET item_area = 1.5")
    again.close()


def test_photos_live_in_the_database(tmp_path, pg_catalog_url):
    store = open_catalog(tmp_path, pg_catalog_url)
    photos, lanes = store.photos("images", tmp_path), store.photos("lanes", tmp_path)
    digest = photos.put(b"\xff\xd8 bytes")
    assert photos.put(b"\xff\xd8 bytes") == digest and photos.get(digest) == b"\xff\xd8 bytes"
    assert not lanes.exists(digest)  # reference images and lane backgrounds apart
    with pytest.raises(FileNotFoundError):
        lanes.get(digest)
    with photos.guard():
        assert photos.sweep([digest]) == 0 and photos.sweep([]) == 1
    assert not photos.exists(digest) and not any(tmp_path.iterdir())  # nothing written to the data directory
    photos.close()
    lanes.close()
    store.close()


def test_concurrent_writers_commit_in_seq_order(tmp_path, pg_catalog_url):
    """Two replicas' stores write side by side while a reader replays the log as a follower does: it
    never finds a change below one it has applied appearing later, so it misses none."""
    writers = [open_catalog(tmp_path, pg_catalog_url) for _ in range(2)]
    reader = open_catalog(tmp_path, pg_catalog_url)
    seen: list[int] = []
    applied = 0

    def write(store, prefix):
        vectors = np.eye(4, dtype=np.float32)
        for i in range(25):
            store.add_images(f"{prefix}{i}", [], vectors[:0], "m")
            store.merge_sku(f"{prefix}{i}", price=i)

    threads = [threading.Thread(target=write, args=(w, p)) for w, p in zip(writers, "ab")]
    for t in threads:
        t.start()
    while True:
        finished = not any(t.is_alive() for t in threads)
        for change in reader.changes_since(applied):
            seen.append(change.seq)
            applied = change.seq
        if finished:
            break
    all_seqs = [c.seq for c in reader.changes_since(0)]
    assert len(all_seqs) == 2 * 25 * 2 and seen == all_seqs  # nothing skipped, nothing out of order
    for store in (*writers, reader):
        store.close()


def test_an_unreachable_server_is_one_clear_error_and_no_hang(tmp_path):
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"  # nobody listens there
    started = time.monotonic()
    with pytest.raises(CatalogUnreachable, match=r"postgresql://127\.0\.0\.1:\d+/nothing cannot be reached"):
        open_catalog(tmp_path, url)
    with pytest.raises(StartupError, match="cannot be reached"):
        check_catalogue(Settings(data_dir=tmp_path, catalog=url))
    assert time.monotonic() - started < 10


def test_a_writer_waits_for_another_replicas_lock_at_most_lock_timeout(tmp_path, pg_catalog_url):
    """A replica that holds the change log's lock (hung mid-write) makes other writers answer 'busy'
    (503) after ``lock_timeout`` (30 s by default; the URL's ``options`` override it, here 1 s)."""
    store = open_catalog(tmp_path, pg_catalog_url + "?options=-c%20lock_timeout%3D1s")
    with psycopg.connect(pg_catalog_url, autocommit=True) as hung, hung.transaction():
        hung.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        started = time.monotonic()
        with pytest.raises(CatalogUnreachable, match="is busy"):
            store.put_sku("milk", "Milk", None, None)
        assert 0.9 < time.monotonic() - started < 20  # lock_timeout 1 s, never the default 30 s
        assert store.counts() == (0, 0)  # reads go on meanwhile
    assert store.put_sku("milk", "Milk", None, None) is True  # and the lock released, writes too
    store.close()


def test_the_command_line_lists_and_searches_a_postgresql_catalogue(tmp_path, pg_catalog_url, capsys):
    import json

    from service.cli import main

    store = open_catalog(tmp_path, pg_catalog_url)
    store.put_sku("arla-milk-1l", "Arla Milk 1L", 135, None)
    store.put_sku("bread", "Bread", None, None)
    store.close()
    assert (
        main(["skus", "--catalog", pg_catalog_url, "--data-dir", str(tmp_path / "empty"), "--search", "MILK", "--json"])
        == 0
    )
    page = json.loads(capsys.readouterr().out)
    assert page["total"] == 1 and page["items"][0] == {
        "sku": "arla-milk-1l",
        "name": "Arla Milk 1L",
        "price": "1.35",
        "currency": "EUR",
        "image_count": 0,
    }
    assert main(["skus", "--catalog", pg_catalog_url.replace("/skulens_", "/nothing_"), "--json"]) == 2
    assert "skulens: the catalogue postgresql://" in capsys.readouterr().err


def test_sessions_carry_server_side_timeouts_and_the_urls_options_win(tmp_path, pg_catalog_url):
    """Keepalives on the server's side too, and idle-in-transaction sessions ended by the server; the URL's
    own ``options`` come after skulens's, so a setting given there wins and the others stay."""
    from gallery.stores.postgres.link import Link

    def settings(url):
        link = Link(url, "shown", "test")
        with link.use() as conn:
            names = (
                "idle_in_transaction_session_timeout",
                "tcp_keepalives_idle",
                "tcp_keepalives_interval",
                "tcp_keepalives_count",
                "lock_timeout",
            )
            got = {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}
        link.close()
        return got

    assert settings(pg_catalog_url) == {
        "idle_in_transaction_session_timeout": "1min",
        "tcp_keepalives_idle": "5",
        "tcp_keepalives_interval": "2",
        "tcp_keepalives_count": "3",
        "lock_timeout": "30s",
    }
    mine = settings(pg_catalog_url + "?options=-c%20lock_timeout%3D2s")
    assert mine["lock_timeout"] == "2s" and mine["idle_in_transaction_session_timeout"] == "1min"


def test_a_frozen_replicas_transaction_is_ended_by_the_server(tmp_path, pg_catalog_url):
    """A replica frozen inside a write transaction (holding the change log's lock) is ended by the server
    after idle_in_transaction_session_timeout (here 1 s): other replicas' writes go on, not 'busy'."""
    from gallery.stores.postgres.link import Link

    url = pg_catalog_url + "?options=-c%20idle_in_transaction_session_timeout%3D1s%20-c%20lock_timeout%3D30s"
    store = open_catalog(tmp_path, url)
    frozen = Link(url, "shown", "frozen").connect()
    frozen.execute("BEGIN")
    frozen.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))  # as a writer does, then nothing more
    started = time.monotonic()
    assert store.put_sku("milk", "Milk", None, None) is True
    assert time.monotonic() - started < 20  # ended after about 1 s, not after lock_timeout (30 s: 'busy')
    frozen.close()
    store.close()


def test_the_photo_guard_is_released_by_the_server_when_its_holder_freezes(tmp_path, pg_catalog_url, monkeypatch):
    from gallery.stores.postgres import photos as photos_module

    monkeypatch.setattr(photos_module, "GUARD_IDLE_TIMEOUT", "1s")
    store = open_catalog(tmp_path, pg_catalog_url)
    frozen, other = store.photos("images", tmp_path), store.photos("images", tmp_path)
    entered = threading.Event()
    outcome: list[BaseException | None] = []

    def hold_frozen():
        try:
            with frozen.guard():
                entered.set()
                time.sleep(12)  # frozen inside the block: the guard's transaction idle
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    holder = threading.Thread(target=hold_frozen)
    holder.start()
    assert entered.wait(10)
    started = time.monotonic()
    with other.guard():  # granted once the server ended the frozen holder's transaction
        waited = time.monotonic() - started
    holder.join(40)
    assert 0.5 < waited < 10  # about 1 s: before the holder woke
    assert len(outcome) == 1 and isinstance(outcome[0], CatalogUnreachable)  # the lost guard is not silent
    with frozen.guard():  # and the holder's next block works (a new connection)
        pass
    for p in (frozen, other):
        p.close()
    store.close()


def test_vacuum_runs_beside_a_write_transaction(tmp_path, pg_catalog_url):
    """Writers take turns on an advisory lock, not a table lock: (auto)VACUUM of the change log neither
    waits for a write in progress nor makes writers wait."""
    store = open_catalog(tmp_path, pg_catalog_url)
    store.put_sku("milk", "Milk", None, None)
    with store.transaction() as conn, psycopg.connect(pg_catalog_url, autocommit=True) as other:
        conn.execute("INSERT INTO changes(op, image_id, sku) VALUES ('sku', 0, 'milk')")
        other.execute("SET lock_timeout = '2s'")
        other.execute("VACUUM changes")  # LockNotAvailable here when writers locked the table
    assert store.last_seq() == 2
    store.close()
