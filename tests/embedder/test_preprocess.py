import io

import numpy as np
import pytest
from PIL import Image

from embedder.preprocess import ImageError, ImageTooLarge, UnsupportedImage, decode_image, letterbox, load_image
from tests.conftest import make_jpeg


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_common_formats_decode_to_uint8_rgb_square(fmt):
    data = make_jpeg(1, size=(300, 200), fmt=fmt)
    pixels = load_image(data, size=64)
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8


def test_letterbox_keeps_aspect_and_pads_grey():
    image = Image.new("RGB", (200, 100), (255, 0, 0))
    pixels = letterbox(image, 64)
    assert (pixels[32, :, 0] == 255).all()  # the band in the middle is the image
    assert (pixels[0, 0] == 128).all() and (pixels[-1, -1] == 128).all()  # padding above and below
    assert (pixels[16:48, :, 0] == 255).all()


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "LA", "1"])
def test_modes_are_converted_to_rgb(mode):
    image = Image.new("RGB", (50, 40), (10, 200, 30)).convert(mode)
    fmt = "JPEG" if mode in ("CMYK", "L", "1") and mode != "1" else "PNG"
    pixels = load_image(encode(image, fmt), size=32)
    assert pixels.shape == (32, 32, 3)


def test_rgba_is_composited_on_white():
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    assert (load_image(encode(image, "PNG"), size=20) == 255).all()


def test_16_bit_png_scaled_not_clipped():
    array = np.full((20, 20), 65535 // 2, dtype=np.uint16)
    pixels = load_image(encode(Image.fromarray(array), "PNG"), size=20)
    assert 120 <= int(pixels[10, 10, 0]) <= 135


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (100, 50), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when shown: becomes 50 wide, 100 tall
    decoded = decode_image(encode(image, "JPEG", exif=exif.tobytes()), size=64)
    assert (decoded.width, decoded.height) == (100, 50)  # as stored
    assert (decoded.pixels[32, 0] == 128).all()  # shown tall: padded left and right
    assert decoded.pixels[2, 32, 2] > 200  # and blue from top to bottom


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (30, 30), c) for c in [(255, 0, 0), (0, 255, 0)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    pixels = load_image(buffer.getvalue(), size=30)
    assert pixels[15, 15, 0] > 200 and pixels[15, 15, 1] < 50


def test_large_jpeg_decoded_in_draft_mode_still_right_size():
    data = make_jpeg(3, size=(2000, 1500))
    assert load_image(data, size=224).shape == (224, 224, 3)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\xff\xd8\xff\xe0" + b"\x00" * 20])
def test_garbage_raises_image_error_quoting_what_was_received(data):
    with pytest.raises(ImageError) as info:
        load_image(data)
    assert str(len(data)) in str(info.value)


def test_truncated_jpeg_raises():
    data = make_jpeg(2, size=(400, 400))
    with pytest.raises(ImageError):
        load_image(data[: len(data) // 3])


def test_pixel_limit_checked_before_decoding():
    data = encode(Image.new("L", (3000, 3000)), "PNG")
    with pytest.raises(ImageTooLarge) as info:
        load_image(data, max_pixels=1_000_000)
    assert "3000x3000" in str(info.value)


def test_unsupported_format_is_refused():
    data = encode(Image.new("RGB", (16, 16)), "ICO")
    with pytest.raises(UnsupportedImage) as info:
        load_image(data)
    assert "ICO" in str(info.value)


def test_extreme_aspect_ratio_and_one_pixel():
    assert load_image(encode(Image.new("RGB", (4000, 1)), "PNG"), size=32).shape == (32, 32, 3)
    assert load_image(encode(Image.new("RGB", (1, 1)), "PNG"), size=32).shape == (32, 32, 3)


def test_pillow_bomb_guard_stays_finite_and_tied_to_max_pixels():
    """Pillow's own decompression-bomb guard is not switched off for the whole process."""
    from embedder import preprocess

    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS >= preprocess.DEFAULT_MAX_PIXELS
    assert Image.MAX_IMAGE_PIXELS <= 2 * preprocess.DEFAULT_MAX_PIXELS
    bomb = encode(Image.new("1", (20000, 20000)), "PNG")  # 400 M pixels declared, a small file
    with pytest.raises(ImageTooLarge, match="declares 400000000 pixels"):
        decode_image(bomb, size=32, max_pixels=10**9)  # a setting above Pillow's bound: still refused, ours
    with pytest.raises(Image.DecompressionBombError):  # other code opening images in the process is guarded
        Image.open(io.BytesIO(bomb))
