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
