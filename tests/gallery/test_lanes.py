"""Lane backgrounds in the catalogue (schema version 3): stored, replaced, deleted, their files kept
apart from reference images and removed when no lane refers to them; an older catalogue migrates.
Lane settings (schema version 4: ``item_area``): stored apart from the background, validated, kept
across a reopen and a deleted background, read from memory while the catalogue cannot be reached."""

import math
import sqlite3

import pytest

from gallery.gallery import DB_FILE, Gallery
from gallery.lanes import ITEM_AREA_MAX, ITEM_AREA_MIN, BackgroundNotFound, InvalidLane, InvalidLaneSetting
from gallery.stores.base import CatalogUnreachable
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
            schema.has_table(conn, "lanes") and conn.execute("PRAGMA user_version").fetchone()[0] == schema.LATEST == 4
        )
        assert schema.has_table(conn, "lane_settings")


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


def test_lane_settings_are_stored_apart_from_the_background(tmp_path, catalog):
    gallery = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    settings = gallery.lanes.settings
    assert settings.get("lane-5") is None  # never set: the default applies
    record, created = settings.put("lane-5", 0.02)
    assert created and (record.lane, record.item_area) == ("lane-5", 0.02) and settings.get("lane-5") == record
    with pytest.raises(BackgroundNotFound):
        gallery.lanes.get("lane-5")  # settings without a background
    replaced, created = settings.put("lane-5", 0)  # 0: no expected size, not "not set"
    assert not created and settings.get("lane-5").item_area == 0.0  # type: ignore[union-attr]
    gallery.lanes.put("lane-5", make_jpeg(8), "image/jpeg", 160, 120)
    gallery.lanes.delete("lane-5")  # its background goes, its settings stay
    assert settings.get("lane-5") == replaced
    settings.put("lane-6", ITEM_AREA_MAX)
    gallery.close()
    again = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    assert again.lanes.settings.get("lane-6").item_area == ITEM_AREA_MAX  # type: ignore[union-attr]
    reset, created = again.lanes.settings.put("lane-6", None)  # back to the default
    assert not created and reset.item_area is None and again.lanes.settings.get("lane-6") == reset
    again.close()


@pytest.mark.parametrize(
    "value, quoted",
    [
        (0.9, "item_area 0.9 is out of range"),
        (ITEM_AREA_MIN / 2, "item_area 0.002 is out of range"),
        (-0.02, "item_area -0.02 is out of range"),
        (1, "item_area 1 is out of range"),
        (math.nan, "received 'nan'"),
        (math.inf, "received 'inf'"),
        (True, "received 'True'"),
        ("0.02", "received '0.02'"),
    ],
)
def test_an_item_area_out_of_range_is_refused_quoting_it(tmp_path, value, quoted):
    gallery = Gallery(tmp_path, "model-a", DIM)
    with pytest.raises(InvalidLaneSetting, match=quoted):
        gallery.lanes.settings.put("lane-1", value)
    assert gallery.lanes.settings.get("lane-1") is None  # nothing stored
    for fine in (0, ITEM_AREA_MIN, 0.023, ITEM_AREA_MAX):
        assert gallery.lanes.settings.put("lane-1", fine)[0].item_area == fine
    with pytest.raises(InvalidLane, match="invalid lane id"):
        gallery.lanes.settings.put("lane 1", 0.02)
    gallery.close()


def test_a_checkout_reads_the_settings_it_last_read_while_the_catalogue_is_unreachable(tmp_path, monkeypatch):
    gallery = Gallery(tmp_path, "model-a", DIM)
    settings = gallery.lanes.settings
    settings.put("lane-1", 0.05)
    assert settings.current("lane-1").item_area == 0.05  # type: ignore[union-attr]

    def unreachable(lane):
        raise CatalogUnreachable("the catalogue server is down")

    monkeypatch.setattr(gallery.store, "get_lane_settings", unreachable)
    assert settings.current("lane-1").item_area == 0.05  # type: ignore[union-attr]  # as last read
    assert settings.current("lane-2") is None  # never read here: the default
    with pytest.raises(CatalogUnreachable):
        settings.get("lane-1")  # the API's read says so (503)
    gallery.close()


def test_a_version_3_catalogue_migrates_to_4(tmp_path):
    path = tmp_path / DB_FILE
    store = CatalogStore(path)
    store.put_sku("milk", "Milk", 135, None)
    store.put_lane(("lane-1", "a" * 64, "image/jpeg", 160, 120, 1.0))
    store.close()
    with sqlite3.connect(path) as conn:  # as the previous release left it: no lane_settings
        conn.execute("DROP TABLE lane_settings")
        conn.execute("PRAGMA user_version = 3")
    store = CatalogStore(path)
    assert store.get_lane("lane-1") == ("lane-1", "a" * 64, "image/jpeg", 160, 120, 1.0)
    assert store.get_lane_settings("lane-1") is None and store.get_sku("milk").price_minor == 135
    assert store.put_lane_settings(("lane-1", 0.02, 2.0)) and store.get_lane_settings("lane-1") == ("lane-1", 0.02, 2.0)
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
        with pytest.raises(sqlite3.IntegrityError):  # the database refuses a share over the whole photo
            conn.execute("UPDATE lane_settings SET item_area = 1.5")
