"""Lane backgrounds in the catalogue (schema version 3): stored, replaced, deleted, their files kept
apart from reference images and removed when no lane refers to them; an older catalogue migrates."""

import sqlite3

import pytest

from gallery.gallery import DB_FILE, Gallery
from gallery.lanes import BackgroundNotFound, InvalidLane
from gallery.stores.sqlite import schema
from gallery.stores.sqlite.store import CatalogStore
from tests.conftest import make_jpeg
from tests.gallery.test_migration import release_0_catalogue

DIM = 8


def test_put_get_replace_delete(tmp_path, catalog):
    gallery = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    lanes = gallery.lanes
    first, second = make_jpeg(1, (96, 64)), make_jpeg(2, (96, 64))
    record, created = lanes.put("lane-3", first, "image/jpeg", 96, 64)
    assert created and (record.width, record.height, record.media_type) == (96, 64, "image/jpeg")
    assert lanes.read("lane-3") == (record, first)
    if catalog is None:  # files beside SQLite; rows of their own table in PostgreSQL
        assert lanes.blobs.path_for(record.sha256).parent.parent == tmp_path / "lanes"  # apart from reference images
    assert lanes.blobs.exists(record.sha256) and not gallery.blobs.exists(record.sha256)
    replaced, created = lanes.put("lane-3", second, "image/jpeg", 96, 64)
    assert not created and lanes.read("lane-3")[1] == second
    assert not lanes.blobs.exists(record.sha256)  # the replaced photo is gone
    lanes.put("lane-4", second, "image/jpeg", 96, 64)  # two lanes, one photo: one file
    lanes.delete("lane-3")
    assert lanes.find("lane-3") is None and lanes.blobs.exists(replaced.sha256)  # lane-4 still holds it
    with pytest.raises(BackgroundNotFound, match="no background is stored for lane 'lane-3'"):
        lanes.get("lane-3")
    with pytest.raises(BackgroundNotFound):
        lanes.delete("lane-3")
    lanes.delete("lane-4")
    assert not lanes.blobs.exists(replaced.sha256)
    with pytest.raises(InvalidLane, match="invalid lane id"):
        lanes.put("../etc", first, "image/jpeg", 96, 64)
    gallery.close()


def test_backgrounds_survive_a_reopen_and_the_sweep(tmp_path, catalog):
    gallery = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    record, _ = gallery.lanes.put("lane-1", make_jpeg(5), "image/jpeg", 160, 120)
    stray = gallery.lanes.blobs.put(make_jpeg(6))  # a file written by a crash before its commit
    gallery.close()
    again = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    assert again.sweep_files() == 1  # the stray file; the lane's file and no reference image touched
    assert not again.lanes.blobs.exists(stray) and again.lanes.read("lane-1") == (record, make_jpeg(5))
    again.close()


def test_an_older_catalogue_gets_the_lanes_table(tmp_path):
    path = tmp_path / DB_FILE
    release_0_catalogue(path, {"milk": 1.35})
    gallery = Gallery(tmp_path, "model-a", DIM, currency="EUR")  # migrates 0 → LATEST in one transaction
    gallery.lanes.put("lane-1", make_jpeg(7), "image/jpeg", 160, 120)
    assert gallery.get_sku("milk").price_minor == 135
    gallery.close()
    with sqlite3.connect(path) as conn:
        assert (
            schema.has_table(conn, "lanes") and conn.execute("PRAGMA user_version").fetchone()[0] == schema.LATEST == 3
        )


def test_a_version_2_catalogue_migrates_to_3(tmp_path):
    path = tmp_path / DB_FILE
    store = CatalogStore(path)
    store.put_sku("milk", "Milk", 135, None)
    store.close()
    with sqlite3.connect(path) as conn:  # as the previous release left it
        conn.execute("DROP TABLE lanes")
        conn.execute("PRAGMA user_version = 2")
    store = CatalogStore(path)
    assert store.read("SELECT COUNT(*) FROM lanes") == [(0,)] and store.get_sku("milk").price_minor == 135
    store.close()
