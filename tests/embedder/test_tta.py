"""Flip test-time augmentation helpers."""

from __future__ import annotations

import numpy as np
import pytest

from embedder.tta import flip_average, with_mirrored


def test_mirrored_batch_and_average():
    pixels = np.arange(2 * 2 * 3 * 3, dtype=np.uint8).reshape(2, 2, 3, 3)
    both = with_mirrored(pixels)
    assert both.shape == (4, 2, 3, 3)
    assert np.array_equal(both[:2], pixels) and np.array_equal(both[2:], pixels[:, :, ::-1])
    vectors = np.array([[1, 0], [0, 1], [0, 1], [0, 1]], np.float32)
    out = flip_average(vectors)
    assert out.shape == (2, 2)
    assert np.allclose(out[0], [2**-0.5, 2**-0.5]) and np.allclose(out[1], [0, 1])
    with pytest.raises(ValueError, match="2n"):
        flip_average(np.ones((3, 2)))
    with pytest.raises(ValueError, match="batch"):
        with_mirrored(np.ones((2, 3, 3)))
