"""SKU names and prices in memory, refreshed through the change log (two Gallery objects = two workers)."""

import sqlite3

import numpy as np

from gallery.gallery import Gallery
from tests.gallery.test_gallery import DIM, enrol, settled, vec


def statements_during(g: Gallery, action) -> list[str]:
    """The SQL the gallery's read connection runs during ``action()`` (SQLite's own trace hook)."""
    seen: list[str] = []
    g.store._reader.set_trace_callback(seen.append)
    try:
        action()
    finally:
        g.store._reader.set_trace_callback(None)
    return seen


def test_a_search_reads_no_name_from_sqlite(tmp_path):
    g = Gallery(tmp_path, "model-a", DIM)
    enrol(g, "milk", 1, name="Arla Milk 1L")
    enrol(g, "juice", 2, name="Orange Juice")
    result = []
    sql = statements_during(g, lambda: result.append(g.recognize(np.stack([vec(1), vec(2)]), 0.9)))
    assert [r.matches[0].name for r in result[0]] == ["Arla Milk 1L", "Orange Juice"]
    assert not [s for s in sql if "skus" in s], sql  # only the change-log position is read
    assert len(sql) <= 1
    assert g.sku_details(["milk", "nope"]) == {"milk": ("Arla Milk 1L", None)}
    g.close(snapshot=False)


def test_another_workers_rename_price_create_and_delete_are_seen_on_the_next_search(tmp_path, catalog):
    a, b = Gallery(tmp_path, "model-a", DIM, catalog=catalog), Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(a, "milk", 1, name="Milk")
    settled(a, b)
    assert b.search(vec(1)[None], k=1)[0][0].name == "Milk"

    a.merge_sku("milk", name="Arla Milk 1L", price=135)  # an update: logged, so b refreshes it
    settled(a, b)
    assert b.search(vec(1)[None], k=1)[0][0].name == "Arla Milk 1L"
    assert b.sku_details(["milk"]) == {"milk": ("Arla Milk 1L", 135)}

    a.put_sku("milk", "Milk 1L", 149, None)
    settled(a, b)
    b.catch_up()
    assert b.sku_details(["milk"]) == {"milk": ("Milk 1L", 149)}

    enrol(a, "tea", 5, name="Green Tea")
    settled(a, b)
    assert b.search(vec(5)[None], k=1)[0][0].name == "Green Tea"
    a.delete_sku("tea")
    settled(a, b)
    b.catch_up()
    assert b.sku_details(["tea", "milk"]) == {"milk": ("Milk 1L", 149)}
    a.close(snapshot=False)
    b.close(snapshot=False)


def test_a_worker_behind_a_compacted_log_reloads_every_name(tmp_path, catalog):
    a, b = Gallery(tmp_path, "model-a", DIM, catalog=catalog), Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(a, "milk", 1, name="Milk")
    settled(a, b)
    b.catch_up()
    a.merge_sku("milk", name="Arla Milk 1L")
    enrol(a, "juice", 2, name="Juice")
    a.store.compact_changes(keep=1)  # b never sees the rename's change row
    settled(a, b)
    assert b.search(vec(1)[None], k=1)[0][0].name == "Arla Milk 1L"
    assert b.sku_details(["juice"]) == {"juice": ("Juice", None)}
    a.close(snapshot=False)
    b.close(snapshot=False)


def test_a_direct_sqlite_edit_is_seen_only_through_the_change_log(tmp_path):
    """What keeps memory right is the change row every SKU write adds (``CatalogStore._upsert_sku``)."""
    g = Gallery(tmp_path, "model-a", DIM)
    enrol(g, "milk", 1, name="Milk")
    with sqlite3.connect(tmp_path / "catalog.sqlite3") as conn:  # behind the store's back: no change row
        conn.execute("UPDATE skus SET name = 'Edited' WHERE sku = 'milk'")
    assert g.search(vec(1)[None], k=1)[0][0].name == "Milk"
    g.merge_sku("milk", price=99)  # any logged write of the SKU refreshes it
    assert g.search(vec(1)[None], k=1)[0][0].name == "Edited"
    g.close(snapshot=False)
