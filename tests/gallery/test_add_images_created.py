"""CatalogStore.add_images is idempotent per content inside its transaction, and says which ids it
created: a worker that lost a race to store the same photo learns it was already there."""

import numpy as np

from gallery.stores.base import AddedImages, NewImage
from gallery.stores.open import open_catalog

DIM = 8


def image(n: int) -> NewImage:
    return NewImage(f"{n:064x}", "image/jpeg", 8, 8)


def test_a_second_add_of_the_same_content_creates_nothing_and_says_so(tmp_path, catalog):
    store = open_catalog(tmp_path, catalog)
    vectors = np.eye(DIM, dtype=np.float32)
    first = store.add_images("milk", [image(1), image(2)], vectors[:2], "m")
    second = store.add_images("milk", [image(2), image(1), image(3)], vectors[:3], "m")  # two already there
    assert isinstance(first, AddedImages) and isinstance(second, AddedImages)
    assert first.created == frozenset(first) and len(first) == 2
    assert second[:2] == [first[1], first[0]] and second.created == {second[2]}
    again = store.add_images("milk", [image(3)], vectors[:1], "m")
    assert again == [second[2]] and again.created == frozenset()  # the race's loser: its id, created nothing
    twice = store.add_images("milk", [image(4), image(4)], vectors[:2], "m")  # the same content twice in one call
    assert twice[0] == twice[1] and twice.created == {twice[0]}
    other = store.add_images("juice", [image(1)], vectors[:1], "m")  # another SKU: its own reference image
    assert other.created == {other[0]} and other[0] not in first
    assert len(store.get_sku("milk").image_ids) == 4
    assert len([c for c in store.changes_since(0) if c.op == "add"]) == 5
    store.close()


def test_add_vectors_stores_another_models_rows_skips_deleted_images_and_logs_each(tmp_path, catalog):
    """What a re-index writes (both backends; PostgreSQL batches it): one vector row per kept image,
    replaced on a second write, a change per image in the order given, deleted images skipped."""
    store = open_catalog(tmp_path, catalog)
    vectors = np.eye(DIM, dtype=np.float32)
    ids = list(store.add_images("milk", [image(n) for n in range(4)], vectors[:4], "old"))
    store.delete_image("milk", ids[1])
    before = store.last_seq()
    order = [ids[3], ids[1], ids[0], ids[2]]
    assert store.add_vectors(order, vectors[4:8], "new") == 3
    got_ids, skus, got = store.vectors_for("new", dim=DIM)
    assert list(got_ids) == sorted([ids[0], ids[2], ids[3]]) and skus == ["milk"] * 3
    expected = {ids[3]: vectors[4], ids[0]: vectors[6], ids[2]: vectors[7]}
    np.testing.assert_array_equal(got, np.stack([expected[i] for i in got_ids]))
    assert [(c.op, c.image_id, c.model_version) for c in store.changes_since(before)] == [
        ("add", i, "new") for i in (ids[3], ids[0], ids[2])
    ]
    assert store.add_vectors([ids[0]], vectors[1:2], "new") == 1  # written again: replaced, not a second row
    np.testing.assert_array_equal(store.vectors_for("new", [ids[0]], dim=DIM)[2], vectors[1:2])
    assert store.add_vectors([ids[1]], vectors[:1], "new") == 0
    store.close()
