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


def _gradient_jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    """A smooth photo-like JPEG (gradients and a few bars), optionally with an EXIF orientation."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack(
        [255 * x // width, 255 * y // height, 128 + 100 * ((x // max(1, width // 8)) % 2) - 50], axis=-1
    ).astype(np.uint8)
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    return encode(Image.fromarray(pixels, "RGB"), "JPEG", quality=92, exif=exif.tobytes())


def _full_scale_reference(data: bytes, size: int) -> np.ndarray:
    """The letterbox of the photo decoded at full scale (no DCT scaling), upright."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    return letterbox(image, size)


@pytest.mark.parametrize(("width", "height", "orientation"), [(3200, 800, None), (800, 3200, None), (3200, 800, 6)])
def test_long_narrow_jpeg_is_draft_decoded_close_to_a_full_decode(width, height, orientation, monkeypatch):
    """A long, narrow photo is DCT-scaled down to its letterboxed size (1/8 here, where asking for
    size x size kept it at 1/2) and still answers what a full decode would, within JPEG-scaling noise."""
    data = _gradient_jpeg(width, height, orientation)
    from PIL import JpegImagePlugin

    drafts = []
    original_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = original_draft(self, mode, size)
        drafts.append(self.size)  # the size the decoder will produce
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    decoded = decode_image(data, size=256)
    assert drafts == [(width // 8, height // 8)]  # asking for 256 x 256 gave 1/2: 1600 x 400
    reference = _full_scale_reference(data, 256)
    assert decoded.pixels.shape == reference.shape == (256, 256, 3)
    content = (reference != 128).any(axis=-1)  # the letterboxed area is the same in both
    assert ((decoded.pixels != 128).any(axis=-1) == content).mean() > 0.98
    assert np.abs(decoded.pixels.astype(int) - reference.astype(int)).mean() < 3.0
    if orientation == 6 or height > width:  # shown tall: padded left and right
        assert (decoded.pixels[:, 0] == 128).all()
    else:
        assert (decoded.pixels[0, :] == 128).all()


def test_a_photo_at_most_twice_the_input_size_is_decoded_exactly_as_before():
    """The grocery crops (348 px for a 256 px model) are never DCT-scaled: training and serving see the
    full decode, resized once."""
    data = _gradient_jpeg(348, 348)
    assert np.array_equal(decode_image(data, size=256).pixels, _full_scale_reference(data, 256))
