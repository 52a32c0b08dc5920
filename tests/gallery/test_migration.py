"""Schema versions: a catalogue written by the first release (prices as REAL, user_version 0) is
migrated on open to integer minor units; newer catalogues and other currencies are refused."""

import sqlite3

import numpy as np
import pytest

from gallery.gallery import DB_FILE, Gallery
from gallery.stores.sqlite import schema
from gallery.stores.sqlite.store import CatalogStore
from gallery.types import CurrencyMismatch, CurrencyNotSet, SchemaTooNew

DIM = 8

# The first release's CREATE statements, verbatim (gallery/store.py, now gallery/stores/sqlite/, before schema versions).
RELEASE_0_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS skus (
    sku TEXT PRIMARY KEY, name TEXT NOT NULL, price REAL, attributes TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY AUTOINCREMENT, sku TEXT NOT NULL REFERENCES skus(sku) ON DELETE CASCADE,
    sha256 TEXT NOT NULL, media_type TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS images_by_sku ON images(sku);
CREATE INDEX IF NOT EXISTS images_by_sha ON images(sha256);
CREATE TABLE IF NOT EXISTS vectors (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE, model_version TEXT NOT NULL,
    vector BLOB NOT NULL, PRIMARY KEY (image_id, model_version));
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, image_id INTEGER NOT NULL,
    sku TEXT NOT NULL, model_version TEXT);
"""


def release_0_catalogue(path, prices: dict[str, float | None]) -> None:
    """A catalogue as the first release wrote it: SKUs with REAL prices, one image + vector each."""
    conn = sqlite3.connect(path)
    conn.executescript(RELEASE_0_SCHEMA)
    rng = np.random.default_rng(0)
    for n, (sku, price) in enumerate(prices.items(), start=1):
        conn.execute(
            "INSERT INTO skus(sku, name, price, attributes, created_at, updated_at) VALUES (?, ?, ?, '{}', 0, 0)",
            (sku, sku.title(), price),
        )
        conn.execute(
            "INSERT INTO images(sku, sha256, media_type, width, height, created_at) "
            "VALUES (?, ?, 'image/jpeg', 10, 10, 0)",
            (sku, f"{n:064x}"),
        )
        vector = rng.normal(size=DIM).astype(np.float32)
        conn.execute(
            "INSERT INTO vectors(image_id, model_version, vector) VALUES (?, 'model-a', ?)",
            (n, (vector / np.linalg.norm(vector)).tobytes()),
        )
        conn.execute("INSERT INTO changes(op, image_id, sku, model_version) VALUES ('add', ?, ?, 'model-a')", (n, sku))
    conn.commit()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()


def columns(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[1] for row in conn.execute("PRAGMA table_info(skus)")}


def test_release_0_catalogue_is_migrated_to_minor_units(tmp_path, caplog):
    path = tmp_path / DB_FILE
    release_0_catalogue(path, {"milk": 1.35, "bread": 0.29, "odd": 0.125, "tiny": 0.004, "free": None, "bad": -2.0})
    with caplog.at_level("WARNING", logger="gallery.stores.sqlite.schema"):
        gallery = Gallery(
            tmp_path, "model-a", DIM, currency="EUR"
        )  # opens, migrates, builds its index from the old vectors
    got = {s.sku: s.price_minor for s, _ in gallery.list_skus(0, 50).items}
    # a price that would need rounding is no price (listed in needs_attention at checkout), never 0.00
    assert got == {"milk": 135, "bread": 29, "odd": None, "tiny": None, "free": None, "bad": None}
    warned = {r.args[0]: r.getMessage() for r in caplog.records if r.args and r.args[0] in got}
    assert set(warned) == {"odd", "tiny", "bad"}
    assert "0.004 has more decimals than EUR has (2)" in warned["tiny"] and "no price" in warned["tiny"]
    assert any("3 SKUs" in r.getMessage() and "'odd', 'tiny', 'bad'" in r.getMessage() for r in caplog.records)
    assert gallery.currency.code == "EUR" and gallery.size == 6
    assert gallery.recognize(np.stack(gallery.store.vectors_for("model-a")[2][:1]), 0.5)[0].sku == "milk"  # first image
    gallery.close()
    assert "price" not in columns(path) and "price_minor" in columns(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.LATEST
    again = CatalogStore(path)  # opening a migrated catalogue changes nothing
    assert again.get_sku("milk").price_minor == 135
    again.close()


def test_the_migration_runs_on_sqlite_before_3_35(tmp_path):
    """ALTER TABLE ... DROP COLUMN needs SQLite 3.35 (2021); Ubuntu 20.04's Python has 3.31. The price
    column goes by rebuilding the table (create, copy, drop, rename: SQLite's own recipe, with foreign
    keys off so that dropping the old table cascades to no image), so no statement needs a newer SQLite,
    every image and vector stays, and foreign keys are on again and enforced afterwards."""
    path = tmp_path / DB_FILE
    release_0_catalogue(path, {"milk": 1.35, "bread": None})
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")  # as CatalogStore opens it
    ran: list[str] = []
    conn.set_trace_callback(ran.append)
    assert schema.prepare(conn, "EUR").code == "EUR"
    conn.set_trace_callback(None)
    assert not [s for s in ran if "DROP COLUMN" in s.upper()], ran
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("SELECT sku, price_minor FROM skus ORDER BY sku").fetchall() == [("bread", None), ("milk", 135)]
    assert conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 2
    assert conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == 2
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert "price" not in {row[1] for row in conn.execute("PRAGMA table_info(skus)")}
    with pytest.raises(sqlite3.IntegrityError):  # the rebuilt table keeps the CHECK on prices
        conn.execute("UPDATE skus SET price_minor = -1 WHERE sku = 'milk'")
    with pytest.raises(sqlite3.IntegrityError):  # images still reference skus
        conn.execute(
            "INSERT INTO images(sku, sha256, media_type, width, height, created_at) "
            "VALUES ('nope', 'x', 'image/jpeg', 1, 1, 0)"
        )
    conn.execute("DELETE FROM skus WHERE sku = 'milk'")  # and deleting a SKU still cascades
    assert conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 1
    conn.close()


def test_a_failed_migration_leaves_the_catalogue_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / DB_FILE
    release_0_catalogue(path, {"milk": 1.35})

    def broken(conn, money):
        conn.execute("ALTER TABLE skus ADD COLUMN price_minor INTEGER")
        raise RuntimeError("power cut")

    monkeypatch.setattr(schema, "MIGRATIONS", [(1, broken)])
    with pytest.raises(RuntimeError, match="power cut"):
        CatalogStore(path, "EUR")
    assert columns(path) == {"sku", "name", "price", "attributes", "created_at", "updated_at"}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert conn.execute("SELECT price FROM skus").fetchone()[0] == 1.35
    monkeypatch.undo()
    store = CatalogStore(path, "EUR")  # and the real step then succeeds
    assert store.get_sku("milk").price_minor == 135
    store.close()


def test_migration_reads_prices_in_the_currency_setting(tmp_path):
    path = tmp_path / DB_FILE
    release_0_catalogue(path, {"rice": 450.0})
    store = CatalogStore(path, "JPY")
    assert (store.currency.code, store.get_sku("rice").price_minor) == ("JPY", 450)
    store.close()


def test_an_old_catalogue_with_prices_needs_the_currency_set_to_migrate(tmp_path):
    """Its REAL prices say no currency: migrating them in the default (EUR) would store a JPY shop's
    450.0 as 450.00 EUR for good. Refused, the catalogue left as it was, until the setting is given."""
    path = tmp_path / DB_FILE
    release_0_catalogue(path, {"rice": 450.0, "free": None})
    with pytest.raises(CurrencyNotSet) as info:
        CatalogStore(path)  # currency not set
    message = str(info.value)
    assert "\n" not in message and "SKULENS_CURRENCY" in message and "1 SKU" in message
    assert columns(path) >= {"price"}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    store = CatalogStore(path, "JPY")
    assert (store.currency.code, store.get_sku("rice").price_minor) == ("JPY", 450)
    store.close()
    assert CatalogStore(path).currency.code == "JPY"  # migrated: the catalogue says its currency from now on


def test_an_old_catalogue_without_prices_migrates_in_the_default_currency(tmp_path):
    path = tmp_path / DB_FILE
    release_0_catalogue(path, {"milk": None})
    store = CatalogStore(path)
    assert (store.currency.code, store.get_sku("milk").price_minor) == ("EUR", None)
    store.close()


def test_newer_schema_and_other_currency_are_refused(tmp_path):
    path = tmp_path / DB_FILE
    store = CatalogStore(path, "EUR")
    store.put_sku("milk", "Milk", 135, None)
    store.close()
    with pytest.raises(CurrencyMismatch, match="prices are in EUR .* currency setting is USD"):
        CatalogStore(path, "USD")
    assert CatalogStore(path).currency.code == "EUR"  # unchanged by the refusal
    empty = CatalogStore(tmp_path / "other.sqlite3", "EUR")
    empty.close()
    assert CatalogStore(tmp_path / "other.sqlite3", "USD").currency.code == "USD"  # no prices: free to switch
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    with pytest.raises(SchemaTooNew, match="newer skulens"):
        CatalogStore(path)


def test_the_database_refuses_a_negative_price(tmp_path):
    store = CatalogStore(tmp_path / DB_FILE)
    with pytest.raises(sqlite3.IntegrityError):
        store.put_sku("milk", "Milk", -1, None)
    store.close()
