"""Query degradations keep shape and dtype and do what they say."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import robustness


@pytest.fixture
def pixels():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(3, 96, 96, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", [robustness.CLEAN, *robustness.CONDITIONS])
@pytest.mark.parametrize("size", [96, 224])
def test_every_condition_keeps_shape_and_dtype(name, size):
    pixels = np.random.default_rng(1).integers(0, 256, size=(2, size, size, 3), dtype=np.uint8)
    out = robustness.apply_condition(name, pixels, variants=[0, 1])
    assert out.shape == pixels.shape and out.dtype == np.uint8
    if name != robustness.CLEAN:
        assert not np.array_equal(out, pixels)


def test_dark_scales_brightness(pixels):
    out = robustness.dark(pixels)
    np.testing.assert_allclose(out, pixels * 0.35, atol=0.51)  # rounded to the nearest integer
    assert out.max() <= 90


def test_blurry_and_low_res_smooth_the_image(pixels):
    def roughness(x):
        return np.abs(np.diff(x.astype(np.int32), axis=2)).mean()

    assert roughness(robustness.blurry(pixels)) < roughness(pixels) / 3
    assert roughness(robustness.low_res(pixels)) < roughness(pixels) / 1.5


def test_partial_keeps_one_side_and_pads_the_rest(pixels):
    left = robustness.partial(pixels, variants=[0, 0, 0])
    right = robustness.partial(pixels, variants=[1, 1, 1])
    keep = round(96 * robustness.PARTIAL_KEEP)
    pad = (96 - keep) // 2
    np.testing.assert_array_equal(left[:, :, pad : pad + keep], pixels[:, :, :keep])
    np.testing.assert_array_equal(right[:, :, pad : pad + keep], pixels[:, :, 96 - keep :])
    assert (left[:, :, :pad] == 128).all()  # mid-grey letterbox padding


def test_bad_input_is_quoted(pixels):
    with pytest.raises(ValueError, match="unknown robustness condition 'foggy'"):
        robustness.apply_condition("foggy", pixels)
    with pytest.raises(ValueError, match="got float32"):
        robustness.dark(pixels.astype(np.float32))
    with pytest.raises(ValueError, match=r"got \(96, 96, 3\)"):
        robustness.blurry(pixels[0])
    with pytest.raises(ValueError, match="2 variants for 3 images"):
        robustness.partial(pixels, variants=[0, 1])
