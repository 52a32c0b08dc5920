"""The seeded "other day" query shift."""

from __future__ import annotations

import numpy as np
import pytest

from training.shifts import other_day


def test_shift_is_seeded_per_query_and_keeps_shape():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    a, b = other_day(pixels, seed=0), other_day(pixels, seed=0)
    assert a.shape == pixels.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, other_day(pixels, seed=1))
    assert not np.array_equal(a, pixels)
    assert np.array_equal(other_day(pixels[:1], seed=0), a[:1])  # a query's shift does not depend on the others
    assert other_day(pixels[:0]).shape == (0, 32, 32, 3)
    with pytest.raises(ValueError, match="uint8"):
        other_day(pixels.astype(np.float32))


def test_drawn_scales_are_the_scales_other_day_used():
    """A flat product photo, every other shift neutral (their draws still made): the product's area in
    each shifted frame is the drawn scale squared."""
    from embedder.preprocess import PAD_VALUE
    from training.shifts import ShiftConfig, drawn_scales, other_day

    neutral = ShiftConfig(temperature=0.0, gamma=(1.0, 1.0), max_rotation=0.0, blur_p=0.0, occlusion_p=0.0)
    neutral = ShiftConfig(**{**neutral.__dict__, "jpeg_quality": (100, 100)})
    pixels = np.full((6, 64, 64, 3), 40, np.uint8)
    shifted = other_day(pixels, seed=3, config=neutral)
    product_share = (np.abs(shifted.astype(int) - PAD_VALUE) > 40).all(axis=3).mean(axis=(1, 2))
    scales = drawn_scales(6, seed=3, config=neutral)
    assert len(set(np.round(scales, 3))) == 6 and ((scales >= 0.6) & (scales <= 1.0)).all()
    np.testing.assert_allclose(product_share, scales**2, atol=0.04)
    assert not np.allclose(drawn_scales(6, seed=4, config=neutral), scales)
