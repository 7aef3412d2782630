"""Data-parallel training through Keras' distribution API (JAX backend).

`keras.distribution.DataParallel` replicates every variable on each device of
a one-axis mesh and splits every batch along that axis; JAX compiles the
train step once for the whole mesh (GSPMD) and inserts the gradient
all-reduce itself. Nothing here is home-made: this module only chooses the
devices and checks the two things that fail otherwise with an obscure
sharding error:

- the batch size must be a multiple of the number of devices;
- so must the size of the *last*, partial batch, so the data are trimmed to
  a multiple of the device count (at most ``devices - 1`` images dropped).

Because the split batch is one global array, batch statistics (batch
normalisation) and losses are computed over the whole batch exactly as on
one device; results differ only by floating-point summation order.

Several hosts: start one process per host, call
``keras.distribution.initialize(...)`` (a thin wrapper of
``jax.distributed.initialize``) first in each, and give each process its own
shard of the data (:func:`process_shard`). See the book's command-line
appendix.

Example:

>>> from companion import distribute
>>> import keras
>>> distribution = distribute.data_parallel()
>>> with distribution.scope():
...     model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
>>> distribute.device_count(distribution) >= 1
True
"""

import numpy as np

from companion._validation import check_int


def data_parallel(devices=None):
    """A `keras.distribution.DataParallel` over all devices (or the given ones).

    Create *and* train the model inside its scope::

        distribution = data_parallel()
        with distribution.scope():
            model = gan.make_model()
            model.fit(images, batch_size=64)

    Args:
        devices: a list of JAX devices or Keras device strings
            (``"gpu:0"``); None takes ``keras.distribution.list_devices()``:
            every GPU or TPU core (every CPU device when there is no
            accelerator), across all processes after multi-host initialisation.

    Returns:
        A `keras.distribution.DataParallel`.

    Raises:
        ValueError: for an empty device list.
    """
    import keras

    if devices is None:
        devices = keras.distribution.list_devices()
    devices = list(devices)
    if not devices:
        raise ValueError("`devices` must name at least one device; got an empty list.")
    return keras.distribution.DataParallel(devices=devices)


def device_count(distribution):
    """Number of devices the batch is split over."""
    return int(np.prod(distribution.device_mesh.shape))


def check_batch_size(batch_size, num_devices):
    """Return `batch_size` if every device gets the same share of a batch.

    Raises:
        ValueError: if `batch_size` is not a positive multiple of `num_devices`.
    """
    batch_size = check_int("batch_size", batch_size)
    if batch_size % num_devices:
        raise ValueError(
            f"`batch_size` must be a multiple of the {num_devices} devices for "
            f"data-parallel training; got {batch_size}. Try "
            f"{max(num_devices, batch_size - batch_size % num_devices)}.")
    return batch_size


def trim_to_devices(images, num_devices):
    """Drop the last ``len(images) % num_devices`` images.

    Then every batch, the last partial one included, splits evenly.

    Args:
        images: array `(N, ...)`.
        num_devices: the device count (>= 1).

    Returns:
        ``images[:N - N % num_devices]``.

    Raises:
        ValueError: if fewer images than devices remain.

    Example:

    >>> trim_to_devices(np.zeros((7, 2)), 2).shape
    (6, 2)
    """
    num_devices = check_int("num_devices", num_devices)
    keep = len(images) - len(images) % num_devices
    if keep == 0:
        raise ValueError(f"Data-parallel training over {num_devices} devices needs "
                         f"at least {num_devices} images; got {len(images)}.")
    return images[:keep]


def process_shard(images):
    """This process's share of the data when JAX runs on several hosts.

    With one process it returns `images` unchanged. With ``P`` processes
    (after ``keras.distribution.initialize``), process ``p`` keeps images
    ``p, p + P, p + 2P, ...``: every process feeds its local devices with
    different examples, and the global batch is ``P`` times the local one.
    """
    import jax

    count, index = jax.process_count(), jax.process_index()
    return images if count == 1 else images[index::count]
