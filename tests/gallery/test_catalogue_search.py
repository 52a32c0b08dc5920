"""Catalogue search: id and name, any case, prefix or substring, paged; the FTS5 index follows
every change; the LIKE path (short queries, or no FTS5) answers the same."""

import sqlite3

import pytest

from gallery.gallery import DB_FILE
from gallery.stores.open import open_catalog
from gallery.stores.sqlite import schema
from gallery.stores.sqlite.store import CatalogStore
from tests.gallery.test_migration import release_0_catalogue

CATALOGUE = {
    "arla-milk-1l": "Arla Milk 1L",
    "oatly-oat-2l": "Oatly Oat Drink",
    "milka-choc": "Milka Chocolate",
    "banana": "Bananas (loose)",
    "pct": "100% juice",
    "snake_case": "Under score",
}


@pytest.fixture
def store(tmp_path, catalog):
    store = open_catalog(tmp_path, catalog)  # SQLite (FTS5 trigram index, or LIKE) and PostgreSQL (ILIKE, pg_trgm)
    for sku, name in CATALOGUE.items():
        store.put_sku(sku, name, None, None)
    yield store
    store.close()


def found(store, text, offset=0, limit=50):
    page = store.search_skus(text, offset, limit)
    return [s.sku for s, _ in page.items], page.total


@pytest.mark.parametrize("index", [True, False])
def test_substring_and_prefix_any_case(store, index):
    if isinstance(store, CatalogStore):
        store._search_index = index and store._search_index  # False: the LIKE scan a SQLite without FTS5 gets
    assert found(store, "MILK") == (["arla-milk-1l", "milka-choc"], 2)  # id and name, prefix and middle
    assert found(store, "oat") == (["oatly-oat-2l"], 1)
    assert found(store, "choc") == (["milka-choc"], 1)
    assert found(store, "drink") == (["oatly-oat-2l"], 1)  # the name only
    assert found(store, "100%") == (["pct"], 1) and found(store, "%") == (["pct"], 1)
    assert (
        found(store, "e_c") == (["snake_case"], 1)
        and found(store, "e_s") == ([], 0)
        and found(store, "_") == (["snake_case"], 1)
    )
    assert found(store, "zzz") == ([], 0) and found(store, 'a"b') == ([], 0)
    assert found(store, "a", offset=1, limit=2) == (["banana", "milka-choc"], 5)  # all but pct


def test_the_index_follows_renames_and_deletes(store):
    store.put_sku("banana", "Plantain", None, None)
    assert found(store, "bananas") == ([], 0) and found(store, "plantain") == (["banana"], 1)
    store.delete_sku("milka-choc")
    assert found(store, "milk") == (["arla-milk-1l"], 1)


def test_a_migrated_catalogue_is_searchable(tmp_path):
    path = tmp_path / DB_FILE
    release_0_catalogue(path, {"arla-milk-1l": 1.35, "bread": None})
    store = CatalogStore(path, "EUR")  # it has a price: migrated only with the currency set
    assert found(store, "ARLA") == (["arla-milk-1l"], 1) and found(store, "rea") == (["bread"], 1)
    store.close()
    with sqlite3.connect(path) as conn:
        assert schema.has_table(conn, schema.SEARCH_INDEX)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.LATEST >= 2
