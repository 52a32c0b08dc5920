"""Checkout augmentation: shape, dtype, determinism with a seed, each transform."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.augment import AugmentConfig, augment, jpeg_recompress, low_resolution, random_resized_crop, view_rng


@pytest.fixture
def pixels() -> np.ndarray:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((64, 64), Image.Resampling.NEAREST))


def test_shape_dtype_and_determinism(pixels):
    a = augment(pixels, view_rng(1, 2, 3))
    b = augment(pixels, view_rng(1, 2, 3))
    c = augment(pixels, view_rng(1, 2, 4))
    assert a.shape == pixels.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_everything_off_is_identity(pixels):
    off = AugmentConfig(crop_p=0, hflip_p=0, vflip_p=0, rotate_p=0, color_p=0, blur_p=0, lowres_p=0, jpeg_p=0)
    assert np.array_equal(augment(pixels, view_rng(0), off), pixels)


def test_everything_on_changes_the_image(pixels):
    on = AugmentConfig(crop_p=1, hflip_p=1, vflip_p=1, rotate_p=1, color_p=1, blur_p=1, lowres_p=1, jpeg_p=1)
    out = augment(pixels, view_rng(0), on)
    assert out.shape == pixels.shape and not np.array_equal(out, pixels)


def test_flip_only(pixels):
    flip = AugmentConfig(crop_p=0, hflip_p=1, rotate_p=0, color_p=0, blur_p=0, lowres_p=0, jpeg_p=0)
    assert np.array_equal(augment(pixels, view_rng(0), flip), pixels[:, ::-1])


def test_transforms(pixels):
    image = Image.fromarray(pixels)
    crop = random_resized_crop(image, view_rng(0), (0.3, 0.5), (0.75, 1.33))
    assert crop.size[0] * crop.size[1] <= 0.55 * 64 * 64
    assert low_resolution(image, 16).size == (64, 64)
    assert jpeg_recompress(image, 20).size == (64, 64)


def test_rejects_wrong_input(pixels):
    with pytest.raises(ValueError, match="float32"):
        augment(pixels.astype(np.float32), view_rng(0))


def test_config_round_trip():
    config = AugmentConfig(crop_scale=(0.5, 1.0))
    assert AugmentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="sharpness"):
        AugmentConfig.from_dict({"sharpness": 1})


def test_light_and_erasing_transforms():
    from training.augment import AugmentConfig, augment, color_temperature, gamma, random_erase

    from PIL import Image

    grey = Image.fromarray(np.full((8, 8, 3), 128, np.uint8))
    warm = np.asarray(color_temperature(grey, 0.2))
    assert warm[0, 0, 0] > 128 > warm[0, 0, 2] and warm[0, 0, 1] == 128
    assert np.asarray(gamma(grey, 2.0))[0, 0, 0] < 128 < np.asarray(gamma(grey, 0.5))[0, 0, 0]
    pixels = np.full((32, 32, 3), 7, np.uint8)
    erased = random_erase(pixels, np.random.default_rng(0), (0.1, 0.2))
    changed = (erased != 7).any(axis=2).mean()
    assert 0.02 < changed <= 0.2 and (pixels == 7).all()
    config = AugmentConfig(temperature_p=1.0, gamma_p=1.0, erase_p=1.0)
    out = augment(np.full((32, 32, 3), 100, np.uint8), np.random.default_rng(1), config)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_zoom_out_shrinks_the_photo_onto_a_padded_canvas():
    from embedder.preprocess import PAD_VALUE
    from training.augment import zoom_out

    image = Image.fromarray(np.full((40, 60, 3), 9, np.uint8))
    out = np.asarray(zoom_out(image, 0.5, np.random.default_rng(0)))
    assert out.shape == (40, 60, 3)
    product = (out == 9).all(axis=2)
    assert product.sum() == 20 * 30  # the photo at half its side, whole
    assert (out[~product] == PAD_VALUE).all()  # the rest is the letterbox's padding
    rows, cols = np.flatnonzero(product.any(axis=1)), np.flatnonzero(product.any(axis=0))
    assert len(rows) == 20 and len(cols) == 30 and np.ptp(rows) == 19 and np.ptp(cols) == 29  # one block
    assert np.array_equal(np.asarray(zoom_out(image, 1.0, np.random.default_rng(0))), np.asarray(image))
    with pytest.raises(ValueError, match="1.5"):
        zoom_out(image, 1.5, np.random.default_rng(0))


class CountingRng:
    """A generator that counts its ``random()`` draws (the "does this transform happen" coin flips)."""

    def __init__(self, seed: int) -> None:
        self.rng, self.flips = np.random.default_rng(seed), 0

    def random(self) -> float:
        self.flips += 1
        return float(self.rng.random())

    def __getattr__(self, name: str):
        return getattr(self.rng, name)


def test_zoom_out_off_flips_no_coin_so_earlier_runs_augment_as_before(pixels):
    """With ``zoom_out_p`` 0 (the default) a view makes the same draws as before the setting existed: one
    coin per transform, none for zoom-out; on, one more coin and the photo shrinks."""
    assert AugmentConfig().zoom_out_p == 0.0
    nothing = {"crop_p": 0, "hflip_p": 0, "rotate_p": 0, "color_p": 0, "blur_p": 0, "lowres_p": 0, "jpeg_p": 0}
    off, on = CountingRng(0), CountingRng(0)
    plain = augment(pixels, off, AugmentConfig(**nothing))  # type: ignore[arg-type]
    shrunk = augment(pixels, on, AugmentConfig(**nothing, zoom_out_p=1.0, zoom_out_scale=(0.5, 0.5)))  # type: ignore[arg-type]
    assert off.flips == 11 and on.flips == 12  # crop, flips x2, rotate, colour, light x2, blur, low-res, JPEG, erase
    assert np.array_equal(plain, pixels) and (shrunk == pixels).all(axis=2).mean() < 0.3


@pytest.mark.parametrize("scale", [(0.0, 1.0), (0.5, 1.2), (0.9, 0.5)])
def test_a_zoom_out_range_outside_0_1_is_refused_when_the_config_is_read(scale):
    with pytest.raises(ValueError, match=str(scale).replace("(", r"\(").replace(")", r"\)")):
        AugmentConfig.from_dict({"zoom_out_scale": list(scale)})
