"""companion.data: shapes, ranges, determinism, the fixed split, local MNIST files."""

import gzip
import hashlib
import struct

import numpy as np
import pytest

from companion import data


# SHA-256 of the shipped file, as printed by tools/make_mnist_subset.py.
MNIST10K_SHA256 = "5329777faeb370df1202a12be1ed5e0d16f06013c64d4aa06e367e5f0f5668b0"
MNIST10K_TRAIN_COUNTS = [901, 1014, 892, 929, 882, 777, 913, 963, 849, 880]
MNIST10K_TEST_COUNTS = [100, 113, 99, 103, 98, 86, 101, 107, 95, 98]


def test_mnist10k_file_is_the_converted_npm_package():
    digest = hashlib.sha256(data.MNIST10K_FILE.read_bytes()).hexdigest()
    assert digest == MNIST10K_SHA256, "rebuild with tools/make_mnist_subset.py"
    with np.load(data.MNIST10K_FILE) as archive:
        assert sorted(archive.files) == ["x_test", "x_train", "y_test", "y_train"]
        for split, count in [("train", 9000), ("test", 1000)]:
            x, y = archive[f"x_{split}"], archive[f"y_{split}"]
            assert x.shape == (count, 28, 28) and x.dtype == np.uint8
            assert y.shape == (count,) and y.dtype == np.uint8
            assert x.min() == 0 and x.max() == 255
        assert np.bincount(archive["y_train"]).tolist() == MNIST10K_TRAIN_COUNTS
        assert np.bincount(archive["y_test"]).tolist() == MNIST10K_TEST_COUNTS


def test_mnist10k_is_the_default_with_a_stratified_disjoint_split():
    train, train_labels = data.load()
    test, test_labels = data.load("mnist10k", split="test")
    assert train.shape == (9000, 28, 28, 1) and test.shape == (1000, 28, 28, 1)
    assert train.dtype == test.dtype == np.float32
    assert train_labels.dtype == np.int32
    assert train.min() == 0.0 and train.max() == 1.0
    # Grey levels are k / 255 exactly as float32 of the uint8 values.
    np.testing.assert_array_equal(np.rint(train * 255) / 255, train)
    train_rows = {row.tobytes() for row in train.reshape(len(train), -1)}
    assert not any(row.tobytes() in train_rows for row in test.reshape(len(test), -1))
    train_share = np.bincount(train_labels) / len(train_labels)
    test_share = np.bincount(test_labels) / len(test_labels)
    np.testing.assert_allclose(train_share, test_share, atol=0.002)
    # Not grouped by class: the first images of each split show several digits.
    assert len(set(train_labels[:20].tolist())) >= 6
    assert len(set(test_labels[:20].tolist())) >= 6


def test_mnist10k_is_upright():
    """A wrong orientation is easy to miss in numbers: a "1" is taller than wide."""
    images, labels = data.load("mnist10k", split="test")
    ones = images[labels == 1][..., 0]
    rows_used = (ones.max(axis=2) > 0.5).sum(axis=1).mean()
    cols_used = (ones.max(axis=1) > 0.5).sum(axis=1).mean()
    assert rows_used > 2 * cols_used
    # Upside down or mirrored shows in the mean digits: a 7's bar is its most
    # inked row, in the top half; a 6's loop is low, on the left.
    sevens, sixes = (images[labels == d][..., 0].mean(axis=0) for d in (7, 6))
    assert sevens.sum(axis=1).argmax() < 14
    assert sixes.sum(axis=1).argmax() >= 14 and sixes.sum(axis=0).argmax() < 14


def test_mnist10k_binarisation_is_fixed_stochastic():
    grey, _ = data.load("mnist10k", split="test")
    first, _ = data.load("mnist10k", split="test", value_range="binary", seed=0)
    again, _ = data.load("mnist10k", split="test", value_range="binary", seed=0)
    other, _ = data.load("mnist10k", split="test", value_range="binary", seed=1)
    np.testing.assert_array_equal(first, again)
    # Pixels strictly between 0 and 1 are drawn, not thresholded: some grey
    # levels below 0.5 become 1 and some above become 0, and a new seed redraws.
    mid = (grey > 0.05) & (grey < 0.95)
    assert (first[mid & (grey < 0.5)] == 1).any() and (first[mid & (grey > 0.5)] == 0).any()
    assert (first[mid] != other[mid]).mean() > 0.1
    assert (first[grey == 0.0] == 0).all() and (first[grey == 1.0] == 1).all()
    assert abs(first.mean() - grey.mean()) < 3 * np.sqrt(0.25 / first.size)


def test_embedded_sets_ignore_the_seed_for_the_split():
    a, la = data.load("mnist10k", split="test", seed=0)
    b, lb = data.load("mnist10k", split="test", seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)


def test_mnist10k_returns_copies():
    images, labels = data.load("mnist10k", split="test")
    images[:] = 0.5
    labels[:] = 3
    again, again_labels = data.load("mnist10k", split="test")
    assert again.max() == 1.0 and (again_labels != 3).any()


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
    ({"name": "MNIST10k"}, "name"),
    ({"name": "mnist10k", "split": "val"}, "split"),
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
    value = kwargs[argument]
    assert repr(value) in message or str(value) in message
    if argument == "name":
        assert "mnist10k" in message  # the choices are listed


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


def test_load_images_of_a_name_equals_load():
    images = data.load_images("digits", "test", "binary", seed=3, limit=7)
    expected, _ = data.load("digits", "test", value_range="binary", seed=3)
    np.testing.assert_array_equal(images, expected[:7])


def test_load_images_reads_uint8_npy_and_npz_files(tmp_path):
    grey = np.arange(5 * 28 * 28, dtype="int64").reshape(5, 28, 28) % 256
    np.save(tmp_path / "a.npy", grey.astype("uint8"))
    images = data.load_images(tmp_path / "a.npy", value_range="symmetric")
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
    np.testing.assert_allclose(images[..., 0], grey / 255.0 * 2 - 1, atol=1e-6)
    np.savez(tmp_path / "b.npz", x_train=grey[:3].astype("uint8"),
             x_test=grey[3:].astype("uint8"))
    assert len(data.load_images(tmp_path / "b.npz", "test")) == 2
    binary = data.load_images(tmp_path / "b.npz", value_range="binary", seed=1)
    assert set(np.unique(binary)) <= {0.0, 1.0}


@pytest.mark.parametrize("make, split, match", [
    (lambda d: d / "missing.npy", "train", "an existing .npy/.npz file"),
    (lambda d: d / "a.npy", "test", "is a .npy file: it has no 'test' split"),
    (lambda d: d / "b.npz", "test", "has no array 'x_test'"),
])
def test_load_images_bad_files_name_the_problem(make, split, match, tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 28, 28), "uint8"))
    np.savez(tmp_path / "b.npz", x_train=np.zeros((2, 28, 28), "uint8"))
    with pytest.raises(ValueError, match=match):
        data.load_images(make(tmp_path), split)
