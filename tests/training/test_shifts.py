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
