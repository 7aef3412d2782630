"""Argument checks shared by the package: every error names the argument,
the value it got and what is allowed."""

import math
import numbers
import reprlib

import numpy as np


def check_choice(name, value, allowed):
    """Return `value` if it is one of `allowed`, else raise `ValueError`."""
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"`{name}` must be one of {options}; got {value!r}.")
    return value


def check_int(name, value, minimum=1):
    """Return `value` as an int if it is an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value}.")
    return int(value)


def check_non_negative(name, value):
    """`value` as a float if it is a finite real number >= 0; `ValueError` otherwise.

    >>> check_non_negative("beta", 2)
    2.0
    """
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not 0 <= value < math.inf):
        raise ValueError(f"`{name}` must be a finite number >= 0; got {value!r}.")
    return float(value)


def check_images(images, name="images", shape=None, value_range=(0.0, 1.0)):
    """Return `images` as a float32 array of rank 4 after checking it.

    Args:
        images: array-like `(N, H, W, C)`.
        name: the argument's name, for the error message.
        shape: the expected `(H, W, C)`, or None to accept any.
        value_range: `(low, high)` the values must lie in, or None.

    Raises:
        ValueError: naming `name`, for input that is ragged, not numeric, not of
            rank 4, of another shape or outside `value_range`.

    Example:

    >>> import numpy as np
    >>> check_images(np.zeros((2, 28, 28, 1))).dtype
    dtype('float32')
    >>> check_images([np.zeros((28, 28, 1)), np.zeros((14, 14, 1))])
    Traceback (most recent call last):
    ...
    ValueError: `images` must be numbers forming one array of shape (N, H, W, C), all images of the same shape; got a list of 2 items of shapes (28, 28, 1), (14, 14, 1), which is ragged or not numeric.
    >>> check_images("digits")
    Traceback (most recent call last):
    ...
    ValueError: `images` must be numbers forming one array of shape (N, H, W, C), all images of the same shape; got 'digits', which is ragged or not numeric.
    """
    array = _as_float_array(images, name)
    if array.ndim != 4:
        raise ValueError(
            f"`{name}` must have shape (N, H, W, C); got shape {array.shape}."
        )
    if shape is not None and tuple(array.shape[1:]) != tuple(shape):
        raise ValueError(
            f"`{name}` must have shape (N, {', '.join(map(str, shape))}); "
            f"got shape {array.shape}."
        )
    if value_range is not None and array.size:
        low, high = value_range
        found_low, found_high = float(array.min()), float(array.max())
        if found_low < low or found_high > high or not np.isfinite(array).all():
            raise ValueError(
                f"`{name}` values must lie in [{low:g}, {high:g}]; got values in "
                f"[{found_low:g}, {found_high:g}]. Load data with "
                "companion.data.load(..., value_range=...) to get the right range."
            )
    return array


def _as_float_array(images, name):
    try:
        return np.asarray(images, dtype="float32")
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be numbers forming one array of shape (N, H, W, C), all "
            f"images of the same shape; got {_describe(images)}, which is ragged or "
            "not numeric."
        ) from None


def _describe(value):
    if not isinstance(value, (list, tuple)):
        return reprlib.repr(value)
    shapes = []
    for item in value[:3]:
        try:
            shapes.append(str(np.shape(item)))
        except ValueError:
            shapes.append("ragged")
    more = ", ..." if len(value) > 3 else ""
    return (f"a {type(value).__name__} of {len(value)} items of shapes "
            f"{', '.join(shapes)}{more}")


def check_features(features, name="features", minimum=1):
    """Return `features` as a float64 array `(rows, d)` of finite numbers, rows >= `minimum`.

    >>> check_features([[0.0, 1.0], [2.0, 3.0]]).shape
    (2, 2)
    >>> check_features(np.zeros(3), "real_features")
    Traceback (most recent call last):
    ...
    ValueError: `real_features` must be a finite array of shape (rows, features) with at least 1 row; got shape (3,).
    """
    wanted = (f"`{name}` must be a finite array of shape (rows, features) with at least "
              f"{minimum} row{'s' if minimum > 1 else ''}")
    try:
        array = np.asarray(features, dtype="float64")
    except (TypeError, ValueError):
        raise ValueError(f"{wanted}; got {_describe(features)}, which is ragged or not "
                         "numeric.") from None
    if array.ndim != 2 or len(array) < minimum or array.shape[1] < 1:
        raise ValueError(f"{wanted}; got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{wanted}; got NaN or infinite values.")
    return array


def check_image_shape(image_shape, multiple_of=1):
    """Return `image_shape` as a tuple of three positive ints `(H, W, C)`.

    Args:
        image_shape: the shape to check.
        multiple_of: H and W must be divisible by it (4 for two stride-2 layers).

    >>> check_image_shape((28, 28, 1), multiple_of=4)
    (28, 28, 1)
    """
    shape = tuple(image_shape)
    if len(shape) != 3 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                  and s >= 1 for s in shape):
        raise ValueError("`image_shape` must be (height, width, channels) of positive ints; "
                         f"got {image_shape!r}.")
    if shape[0] % multiple_of or shape[1] % multiple_of:
        raise ValueError(f"`image_shape` must have height and width divisible by "
                         f"{multiple_of}; got {image_shape!r}.")
    return tuple(int(s) for s in shape)


def check_binary(images, name="images", shape=None):
    """Return `images` (checked by :func:`check_images`) if every value is 0 or 1.

    >>> check_binary([[[[0.0], [1.0]]]]).shape
    (1, 1, 2, 1)
    """
    images = check_images(images, name=name, shape=shape)
    if not np.isin(images, (0.0, 1.0)).all():
        raise ValueError(f"`{name}` must be binary (values 0 and 1); load the images with "
                         "companion.data.load(..., value_range='binary').")
    return images


# An int seed becomes a JAX key of two uint32 words; a seed must fit one of them.
MAX_SEED = 2**32 - 1


def check_seed(seed, name="seed"):
    """Return `seed` as an int in [0, 2**32 - 1], or None (draw from the model's generator).

    Every model's ``sample``, ``noise`` and evaluation method checks its seed
    here, so a negative or huge seed gets the same error everywhere.

    >>> check_seed(7), check_seed(None)
    (7, None)
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    ValueError: `seed` must be None or an integer in [0, 4294967295]; got -1.
    """
    if seed is None:
        return None
    if (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
            or not 0 <= seed <= MAX_SEED):
        raise ValueError(f"`{name}` must be None or an integer in [0, {MAX_SEED}]; "
                         f"got {seed!r}.")
    return int(seed)


def derived_seed(seed, offset):
    """A second seed made from `seed`: ``(seed + offset) mod 2**32``, or None when
    `seed` is None (then Keras draws a fresh one).

    >>> derived_seed(MAX_SEED, 1), derived_seed(None, 1)
    (0, None)
    """
    return None if seed is None else (seed + offset) % (MAX_SEED + 1)


def check_fit_data(x, name="x", shape=None, value_range=(0.0, 1.0)):
    """Check what a model's `fit` or `evaluate` receives, the same way in every family.

    An array (or a list or tuple of examples) is checked with
    :func:`check_images` and returned as float32. Anything else (None, a
    `tf.data.Dataset`, a `keras.utils.PyDataset`, a Python generator of
    batches) is returned unchanged for Keras to read; Keras says what it
    expects of those.

    >>> import numpy as np
    >>> check_fit_data(np.zeros((2, 28, 28, 1)), shape=(28, 28, 1)).dtype
    dtype('float32')
    >>> batches = (np.zeros((2, 28, 28, 1)) for _ in range(3))
    >>> check_fit_data(batches) is batches
    True
    """
    if isinstance(x, (list, tuple)) or hasattr(x, "__array__"):
        return check_images(x, name, shape=shape, value_range=value_range)
    return x
