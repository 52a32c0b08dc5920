"""Property-based: any bytes give a uint8 array or an ImageError, never anything else."""

import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from embedder.preprocess import ImageError, load_image
from gallery.types import InvalidSku, validate_sku

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(data: bytes) -> None:
    try:
        pixels = load_image(data, size=32, max_pixels=4_000_000)
    except ImageError as exc:
        assert str(exc)
    else:
        assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8


@SETTINGS
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data):
    _check(data)


def _encoded(fmt: str, w: int, h: int, mode: str) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (w, h), (w % 256, h % 256, 77)).convert(mode)
    if fmt == "JPEG" and mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@SETTINGS
@given(
    fmt=st.sampled_from(["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"]),
    w=st.integers(1, 400),
    h=st.integers(1, 400),
    mode=st.sampled_from(["RGB", "L", "RGBA", "P", "CMYK"]),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.integers(0, 10_000), max_size=8),
)
def test_valid_and_damaged_images(fmt, w, h, mode, cut, flips):
    if fmt not in ("JPEG", "TIFF") and mode == "CMYK":
        mode = "RGB"
    data = bytearray(_encoded(fmt, w, h, mode))
    _check(bytes(data))  # intact: must decode
    for position in flips:  # flipped bytes
        if data:
            data[position % len(data)] ^= 0xFF
    _check(bytes(data[: max(0, int(len(data) * cut))]))  # and truncated


@SETTINGS
@given(st.text(max_size=100))
def test_sku_validation_accepts_only_the_documented_pattern(text):
    import re

    ok = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", text) is not None
    try:
        validate_sku(text)
        assert ok
    except InvalidSku as exc:
        assert not ok and "invalid SKU id" in str(exc)
