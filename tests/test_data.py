"""companion.data: shapes, ranges, determinism, the fixed split, local MNIST files."""

import gzip
import struct

import numpy as np
import pytest

from companion import data


@pytest.mark.parametrize("split, count", [("train", 1437), ("test", 360)])
def test_digits_shapes_and_dtypes(split, count):
    images, labels = data.load("digits", split=split)
    assert images.shape == (count, 28, 28, 1)
    assert images.dtype == np.float32
    assert labels.shape == (count,) and labels.dtype == np.int32
    assert set(np.unique(labels)) == set(range(10))


def test_digits_split_is_disjoint_stratified_and_complete():
    train, train_labels = data.load("digits", split="train", image_size=8)
    test, test_labels = data.load("digits", split="test", image_size=8)
    assert len(train) + len(test) == 1797
    train_rows = {row.tobytes() for row in train.reshape(len(train), -1)}
    test_rows = {row.tobytes() for row in test.reshape(len(test), -1)}
    # The 8x8 set has a few exact duplicates; the split itself must not share indices,
    # so at most those duplicates can appear on both sides.
    assert len(train_rows & test_rows) <= 2
    train_share = np.bincount(train_labels) / len(train_labels)
    test_share = np.bincount(test_labels) / len(test_labels)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)


def test_split_does_not_depend_on_seed():
    a, _ = data.load("digits", split="test", seed=0)
    b, _ = data.load("digits", split="test", seed=5)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("value_range, low, high", [
    ("unit", 0.0, 1.0), ("symmetric", -1.0, 1.0), ("binary", 0.0, 1.0)])
def test_value_ranges(value_range, low, high):
    images, _ = data.load("digits", value_range=value_range)
    assert images.min() == pytest.approx(low)
    assert images.max() == pytest.approx(high)


def test_symmetric_is_an_affine_map_of_unit():
    unit, _ = data.load("digits")
    symmetric, _ = data.load("digits", value_range="symmetric")
    np.testing.assert_allclose(symmetric, 2 * unit - 1, atol=1e-6)


def test_binary_is_bernoulli_of_the_grey_levels_and_seeded():
    unit, _ = data.load("digits")
    first, _ = data.load("digits", value_range="binary", seed=0)
    again, _ = data.load("digits", value_range="binary", seed=0)
    other, _ = data.load("digits", value_range="binary", seed=1)
    assert set(np.unique(first)) == {0.0, 1.0}
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()
    # E[binary] = grey level: the means agree within Monte Carlo error.
    assert abs(first.mean() - unit.mean()) < 3 * np.sqrt(0.25 / first.size) + 1e-3
    assert (first[unit == 0.0] == 0).all() and (first[unit == 1.0] == 1).all()


def test_loading_is_deterministic_and_returns_copies():
    a, la = data.load("digits")
    a[:] = 7.0
    la[:] = 3
    b, lb = data.load("digits")
    assert b.max() <= 1.0 and (lb != 3).any()


@pytest.mark.parametrize("size", [8, 16, 32])
def test_image_size(size):
    images, _ = data.load("digits", split="test", image_size=size)
    assert images.shape == (360, size, size, 1)
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_resize_preserves_the_digit():
    small, _ = data.load("digits", split="test", image_size=8)
    large, _ = data.load("digits", split="test", image_size=32)
    shrunk = data.resize(large, 8)
    correlation = np.corrcoef(shrunk.ravel(), small.ravel())[0, 1]
    assert correlation > 0.9


@pytest.mark.parametrize("kwargs, argument", [
    ({"name": "cifar"}, "name"),
    ({"split": "validation"}, "split"),
    ({"value_range": "bytes"}, "value_range"),
    ({"image_size": 4}, "image_size"),
    ({"image_size": 28.0}, "image_size"),
])
def test_bad_input_names_argument_value_and_choices(kwargs, argument):
    with pytest.raises(ValueError) as error:
        data.load(**kwargs)
    message = str(error.value)
    assert argument in message
    assert repr(list(kwargs.values())[0]) in message or str(list(kwargs.values())[0]) in message


def _fake_mnist(rng, count):
    x = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=count).astype(np.uint8)
    return x, y


def test_mnist_from_local_npz(tmp_path):
    rng = np.random.default_rng(0)
    (xtr, ytr), (xte, yte) = _fake_mnist(rng, 20), _fake_mnist(rng, 10)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    images, labels = data.load("mnist", split="test", path=path)
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.float32
    np.testing.assert_allclose(images[..., 0], xte / 255.0, atol=1e-6)
    np.testing.assert_array_equal(labels, yte)
    folder_images, _ = data.load("mnist", split="test", path=tmp_path)
    np.testing.assert_array_equal(folder_images, images)
    binary, _ = data.load("mnist", split="train", path=path, value_range="binary",
                          image_size=14)
    assert binary.shape == (20, 14, 14, 1) and set(np.unique(binary)) <= {0.0, 1.0}


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


def test_mnist_from_idx_folder(tmp_path):
    rng = np.random.default_rng(1)
    x, y = _fake_mnist(rng, 12)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", x)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y)
    images, labels = data.load("fashion_mnist", split="train", path=tmp_path)
    np.testing.assert_allclose(images[..., 0], x / 255.0, atol=1e-6)
    np.testing.assert_array_equal(labels, y)
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        data.load("fashion_mnist", split="test", path=tmp_path)


def test_missing_local_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load("mnist", path=tmp_path / "nope.npz")


def test_offline_mnist_names_the_digits_alternative(monkeypatch):
    import keras

    def offline():
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(FileNotFoundError, match="digits"):
        data.load("mnist")


def test_gaussian_1d_moments():
    sample = data.gaussian_1d(20000, mean=1.5, std=0.5, seed=0)
    assert sample.shape == (20000, 1) and sample.dtype == np.float32
    assert sample.mean() == pytest.approx(1.5, abs=0.02)
    assert sample.std() == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match="std"):
        data.gaussian_1d(10, std=0.0)


def test_ring_of_gaussians_modes():
    points, modes = data.ring_of_gaussians(8000, modes=8, radius=2.0, std=0.02, seed=0)
    centres = data.ring_centres(8, 2.0)
    nearest = np.argmin(((points[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, modes)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2.0, rtol=1e-6)
    assert np.bincount(modes).min() > 800


def test_moving_digits_move_and_keep_their_ink():
    videos = data.moving_digits(5, frames=8, seed=0)
    assert videos.shape == (5, 8, 28, 28, 1) and videos.dtype == np.float32
    ink = videos.sum(axis=(2, 3, 4))
    np.testing.assert_allclose(ink, ink[:, :1].repeat(8, axis=1), rtol=1e-5)
    moved = np.abs(np.diff(videos, axis=1)).sum(axis=(2, 3, 4))
    assert (moved > 0).all()
    np.testing.assert_array_equal(videos, data.moving_digits(5, frames=8, seed=0))
    with pytest.raises(ValueError, match="canvas_size"):
        data.moving_digits(2, canvas_size=10, digit_size=14)
