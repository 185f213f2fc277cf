"""The one uint8 -> float conversion every model's input goes through (training/images.py)."""

import warnings

import numpy as np
import pytest

from infogan.training.images import as_float_images


def test_real_digits_map_0_255_onto_0_1_exactly(data_dir):
    from infogan.training.data import load_split

    u8 = load_split(data_dir, "mnist", "test")[0][:256]
    x = as_float_images(u8)
    assert x.dtype.is_floating_point and x.dtype.itemsize == 4 and tuple(x.shape) == u8.shape
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0  # real digits hold both ends
    np.testing.assert_array_equal(np.rint(x.numpy() * 255).astype(np.uint8), u8)  # every level kept


def test_a_read_only_slice_is_copied_without_warning_and_never_shared():
    u8 = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 1, 28, 28)[..., ::-1]  # a strided view
    u8.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = as_float_images(u8)
    x.fill_(0.5)
    assert u8.max() == 255 and np.array_equal(u8[0, 0, 0, :3], [27, 26, 25])  # the array is untouched
    assert float(as_float_images(u8)[0, 0, 0, 0]) == pytest.approx(27 / 255)


def test_images_already_float_are_refused_rather_scaled_twice():
    with pytest.raises(TypeError, match="dtype float32: expected uint8"):
        as_float_images(np.ones((1, 1, 28, 28), np.float32))


def test_the_torch_free_twin_reads_every_pixel_as_training_does(data_dir):
    # a client, an export and the explorer convert with infogan.files.from_uint8: the same floats, bit
    # for bit, as the models were trained on, and to_uint8 brings back every level
    from infogan.contract import InfoganError
    from infogan.files import from_uint8, to_uint8
    from infogan.training.data import load_split

    u8 = load_split(data_dir, "mnist", "test")[0][:256]
    x = from_uint8(u8)
    assert x.dtype == np.float32 and x.shape == u8.shape
    np.testing.assert_array_equal(x, as_float_images(u8).numpy())
    np.testing.assert_array_equal(to_uint8(from_uint8(np.arange(256, dtype=np.uint8))), np.arange(256))
    with pytest.raises(InfoganError, match=r"pixels have dtype float32: expected uint8 in 0-255"):
        from_uint8(x)
