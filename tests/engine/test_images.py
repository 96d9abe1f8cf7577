"""engine.data.images.open_rgb: any PIL-readable image to 8-bit RGB, JPEG draft mode, and clear failures."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from engine.data.images import BadImage, open_rgb


def save(img: Image.Image, path, **kwargs):
    img.save(path, **kwargs)
    return path


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img)


def noise_jpeg(path, size=(256, 192), quality=90):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr, "RGB").save(path, "JPEG", quality=quality)
    return path


# ---------------------------------------------------------------- modes


def test_rgb_jpeg_stays_rgb(tmp_path):
    path = save(Image.new("RGB", (16, 12), (10, 200, 30)), tmp_path / "a.jpg", quality=100)
    img = open_rgb(path)
    assert img.mode == "RGB"
    assert img.size == (16, 12)
    r, g, b = img.getpixel((8, 6))
    assert abs(r - 10) <= 3 and abs(g - 200) <= 3 and abs(b - 30) <= 3


def test_grayscale_L(tmp_path):
    path = save(Image.new("L", (8, 8), 77), tmp_path / "l.png")
    img = open_rgb(path)
    assert img.mode == "RGB"
    assert img.getpixel((3, 3)) == (77, 77, 77)


def test_grayscale_with_alpha_LA(tmp_path):
    path = save(Image.new("LA", (8, 8), (100, 50)), tmp_path / "la.png")
    assert Image.open(path).mode == "LA"
    img = open_rgb(path)
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (100, 100, 100)


def _palette_image() -> Image.Image:
    img = Image.new("P", (4, 4), 0)
    palette = [0] * 768
    palette[0:3] = [10, 20, 30]  # index 0
    palette[3:6] = [200, 100, 50]  # index 1
    img.putpalette(palette)
    img.putpixel((1, 1), 1)
    return img


def test_palette_P_without_transparency(tmp_path):
    path = save(_palette_image(), tmp_path / "p.png")
    assert Image.open(path).mode == "P"
    assert "transparency" not in Image.open(path).info
    img = open_rgb(path)
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (10, 20, 30)
    assert img.getpixel((1, 1)) == (200, 100, 50)


def test_palette_P_with_transparency_keeps_palette_colours(tmp_path):
    path = save(_palette_image(), tmp_path / "pt.png", transparency=0)
    with Image.open(path) as src:
        assert src.mode == "P"
        assert "transparency" in src.info
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL warns when a P image with transparency goes straight to RGB
        img = open_rgb(path)
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (10, 20, 30)  # the transparent index keeps its colour
    assert img.getpixel((1, 1)) == (200, 100, 50)


def test_palette_gif(tmp_path):
    path = save(_palette_image(), tmp_path / "p.gif")
    img = open_rgb(path)
    assert img.mode == "RGB"
    assert img.getpixel((1, 1)) == (200, 100, 50)


def test_rgba_drops_alpha(tmp_path):
    path = save(Image.new("RGBA", (8, 8), (10, 20, 30, 0)), tmp_path / "rgba.png")
    img = open_rgb(path)
    assert img.mode == "RGB"
    assert img.getpixel((2, 2)) == (10, 20, 30)


@pytest.mark.parametrize("min_size", [None, 4])
def test_cmyk_jpeg(tmp_path, min_size):
    path = save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", quality=100)
    assert Image.open(path).mode == "CMYK"
    img = open_rgb(path, min_size=min_size)
    assert img.mode == "RGB"
    r, g, b = img.getpixel((2, 2))
    assert r >= 240 and g <= 15 and b <= 15  # cyan 0, magenta+yellow full: red


def test_16bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1000, 16384, 32768, 49152, 65535]], dtype=np.uint16)
    path = save(Image.fromarray(values), tmp_path / "g16.png")
    assert Image.open(path).mode in ("I;16", "I")
    img = open_rgb(path)
    assert img.mode == "RGB"
    out = pixels(img)
    assert out.dtype == np.uint8
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    gray = out[0, :, 0].astype(int).tolist()
    assert gray[0] == 0
    assert gray[1] <= 5  # 1000/65535 of full scale, not clipped to 255
    assert abs(gray[2] - 64) <= 1
    assert abs(gray[3] - 128) <= 1
    assert abs(gray[4] - 191) <= 1
    assert gray[5] == 255


def test_16bit_mid_grey_maps_to_about_128(tmp_path):
    path = save(Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)), tmp_path / "mid.png")
    assert abs(open_rgb(path).getpixel((1, 1))[0] - 128) <= 1


def test_32bit_integer_I_image(tmp_path):
    values = np.array([[-100000, 0], [50000, 100000]], dtype=np.int32)
    path = save(Image.fromarray(values), tmp_path / "i32.tif")
    assert Image.open(path).mode == "I"
    img = open_rgb(path)
    assert img.mode == "RGB"
    gray = pixels(img)[..., 0].astype(int)
    assert gray[0, 0] == 0 and gray[1, 1] == 255  # the range is stretched, not clipped
    assert 0 < gray[0, 1] < gray[1, 0] < 255  # and keeps its order


def test_float_F_image(tmp_path):
    values = np.array([[0.0, 0.5], [1.5, -2.0]], dtype=np.float32)
    path = save(Image.fromarray(values), tmp_path / "f.tif")
    assert Image.open(path).mode == "F"
    img = open_rgb(path)
    assert img.mode == "RGB"
    gray = pixels(img)[..., 0].astype(int)
    assert gray[1, 1] == 0 and gray[1, 0] == 255
    assert 0 < gray[0, 0] < gray[0, 1] < 255


def test_constant_float_image_does_not_divide_by_zero(tmp_path):
    path = save(Image.fromarray(np.full((3, 3), 7.5, dtype=np.float32)), tmp_path / "c.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = open_rgb(path)
    assert img.mode == "RGB"
    assert np.unique(pixels(img)).size == 1


def test_bilevel_1_image(tmp_path):
    img = Image.new("1", (8, 8), 0)
    img.putpixel((1, 1), 1)
    out = open_rgb(save(img, tmp_path / "b.png"))
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (0, 0, 0)
    assert out.getpixel((1, 1)) == (255, 255, 255)


# ---------------------------------------------------------------- draft mode and size


def test_jpeg_draft_mode_decodes_smaller_but_not_below_min_size(tmp_path):
    path = noise_jpeg(tmp_path / "big.jpg", size=(1024, 768))
    full = open_rgb(path)
    assert full.size == (1024, 768)
    small = open_rgb(path, min_size=128)
    assert small.mode == "RGB"
    assert small.size[0] < 1024 and small.size[1] < 768
    assert min(small.size) >= 128
    assert small.size[0] * 768 == small.size[1] * 1024  # aspect ratio kept


@pytest.mark.parametrize("min_size", [128, 200, 300, 384, 500])
def test_jpeg_draft_mode_never_goes_below_min_size(tmp_path, min_size):
    path = noise_jpeg(tmp_path / "big.jpg", size=(1024, 768), quality=50)
    img = open_rgb(path, min_size=min_size)
    assert min(img.size) >= min_size
    assert img.size[0] <= 1024


def test_jpeg_min_size_larger_than_image_keeps_full_size(tmp_path):
    path = noise_jpeg(tmp_path / "a.jpg", size=(320, 240), quality=50)
    assert open_rgb(path, min_size=2000).size == (320, 240)


def test_png_is_not_affected_by_min_size(tmp_path):
    path = save(Image.new("RGB", (1024, 768), (1, 2, 3)), tmp_path / "big.png")
    img = open_rgb(path, min_size=128)
    assert img.size == (1024, 768)
    assert img.getpixel((500, 500)) == (1, 2, 3)


def test_image_above_pil_default_bomb_limit_opens(tmp_path):
    assert 10000 * 9000 > 89_478_485  # PIL's default MAX_IMAGE_PIXELS
    path = tmp_path / "huge.jpg"
    Image.new("L", (10000, 9000), 140).save(path, "JPEG", quality=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a DecompressionBombWarning escapes
        img = open_rgb(path)
        small = open_rgb(path, min_size=512)
    assert img.mode == "RGB"
    assert img.size == (10000, 9000)
    r, g, b = img.getpixel((9999, 8999))
    assert abs(r - 140) <= 2 and r == g == b
    assert min(small.size) >= 512 and small.size[0] < 10000


# ---------------------------------------------------------------- bad files


def test_truncated_jpeg_raises_bad_image(tmp_path):
    data = noise_jpeg(tmp_path / "full.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImage) as info:
        open_rgb(path)
    assert "truncated" in str(info.value)
    with pytest.raises(BadImage):
        open_rgb(path, min_size=32)


def test_zero_byte_file_raises_bad_image_saying_empty(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(BadImage) as info:
        open_rgb(path)
    assert str(info.value) == "empty file (0 bytes)"


def test_text_file_named_jpg_raises_bad_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image\n")
    with pytest.raises(BadImage) as info:
        open_rgb(path)
    reason = str(info.value)
    assert reason
    assert "cannot identify image file" in reason
    assert "empty file" not in reason


def test_missing_file_raises_bad_image(tmp_path):
    with pytest.raises(BadImage) as info:
        open_rgb(tmp_path / "nope.jpg")
    assert str(info.value) == "file not found"


def test_bad_image_is_not_an_oserror():
    # callers count BadImage separately from real I/O failures
    assert not issubclass(BadImage, OSError)


def test_open_rgb_accepts_str_path(tmp_path):
    path = save(Image.new("L", (4, 4), 9), tmp_path / "s.png")
    assert open_rgb(str(path)).getpixel((0, 0)) == (9, 9, 9)


def test_open_rgb_returns_a_loaded_image_independent_of_the_file(tmp_path):
    path = save(Image.new("RGB", (4, 4), (5, 6, 7)), tmp_path / "x.png")
    img = open_rgb(path)
    path.unlink()
    assert img.getpixel((0, 0)) == (5, 6, 7)
    buf = io.BytesIO()
    img.save(buf, "PNG")  # fully usable after the file is gone
    assert buf.getvalue()
