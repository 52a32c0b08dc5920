"""Synthetic store-like views of catalogue (studio) photos."""

from __future__ import annotations

import numpy as np
import pytest

from embedder.catalogue_views import catalogue_views, is_studio_photo, product_mask, synthetic_view


def packshot(size: int = 64) -> np.ndarray:
    """A red carton with a white label on a white background."""
    image = np.full((size, size, 3), 255, np.uint8)
    image[16:48, 20:44] = (200, 30, 30)
    image[26:34, 26:38] = 255  # white label inside the product
    return image


def test_studio_photo_detection():
    assert is_studio_photo(packshot())
    store = np.random.default_rng(0).integers(0, 200, (64, 64, 3), dtype=np.uint8)
    assert not is_studio_photo(store)
    assert not is_studio_photo(np.zeros((2, 2, 3), np.uint8))


def test_mask_keeps_white_inside_the_product_and_drops_the_background():
    mask = product_mask(packshot())
    assert mask[30, 30] > 0.9  # the white label, enclosed by the product
    assert mask[2, 2] == 0.0 and mask[60, 60] == 0.0
    assert mask[20, 30] > 0.9


def test_views_are_deterministic_and_put_the_product_on_a_new_surface():
    first = catalogue_views(packshot(), 3, 48, seed=1)
    again = catalogue_views(packshot(), 3, 48, seed=1)
    assert len(first) == 3 and all(v.shape == (48, 48, 3) and v.dtype == np.uint8 for v in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], first[1])
    for view in first:  # the white studio background is gone: the border is a surface, not pure white
        border = np.concatenate([view[0], view[-1]])
        assert (border.min(axis=1) > 250).mean() < 0.5
    assert catalogue_views(packshot(), 0, 48) == []
    with pytest.raises(ValueError, match="count"):
        catalogue_views(packshot(), -1, 48)


def test_all_white_photo_is_returned_letterboxed():
    view = synthetic_view(np.full((40, 40, 3), 255, np.uint8), np.random.default_rng(0), 32)
    assert view.shape == (32, 32, 3) and view.min() == 255
