"""Generic training callbacks, shared by every model family.

Callbacks specific to one model or concern live with it (`KLWarmup` in
`companion.models.vae`, `ModeCoverage` in `companion.dynamics`).

Example:

>>> from companion.training import SampleGrid
>>> recorder = SampleGrid(num=16, seed=0)
>>> recorder.grids
[]
"""

import time

import keras
import numpy as np

from companion._validation import check_int


class EveryEpochs(keras.callbacks.Callback):
    """Base class of callbacks that record something every `every` epochs of ``fit``.

    A subclass implements `record(epoch)`, which stores whatever it measures;
    this class decides when to call it and keeps `epochs`. Training twice
    with the same callback (e.g. a resumed run) adds no second record before
    training.

    Args:
        every: record after every `every` epochs.
        at_start: record before training too (as epoch 0).

    Attributes:
        epochs: the epoch count at which each record was made (0 = before training).

    Example:

    >>> class Losses(EveryEpochs):
    ...     def __init__(self):
    ...         super().__init__(every=2)
    ...         self.losses = []
    ...     def record(self, epoch):
    ...         self.losses.append(epoch / 10)
    >>> recorder = Losses()
    >>> recorder.on_train_begin()
    >>> for epoch in range(4):
    ...     recorder.on_epoch_end(epoch)
    >>> recorder.epochs, recorder.losses
    ([0, 2, 4], [0.0, 0.2, 0.4])
    """

    def __init__(self, every=1, at_start=True):
        super().__init__()
        self.every = check_int("every", every)
        self.at_start = bool(at_start)
        self.epochs = []

    def record(self, epoch):
        raise NotImplementedError(f"{type(self).__name__} must implement record(epoch).")

    def _record_at(self, epoch):
        self.record(epoch)
        self.epochs.append(epoch)

    def on_train_begin(self, logs=None):
        if self.at_start and not self.epochs:
            self._record_at(0)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self._record_at(epoch + 1)


class SampleGrid(EveryEpochs):
    """Record `model.sample(num, seed)` after every `every` epochs.

    With a fixed `seed` each grid is drawn from the same noise, so the grids
    show how the model's output for fixed inputs changes over training
    (write them as an animation with :func:`companion.plotting.save_animation`).

    Args:
        num: samples a grid.
        seed: the fixed seed passed to `model.sample`.
        every: record after every `every` epochs (and before the first).

    Attributes:
        grids: list of float32 arrays `(num, H, W, 1)` in [0, 1].
        epochs: the epoch count at which each grid was recorded (0 = before training).
    """

    def __init__(self, num=64, seed=0, every=1):
        super().__init__(every)
        self.num = check_int("num", num)
        self.seed = seed
        self.grids = []

    def record(self, epoch):
        self.grids.append(np.asarray(self.model.sample(self.num, seed=self.seed)))


class EpochTimer(keras.callbacks.Callback):
    """Record each epoch's wall time in seconds (`seconds`), for budgets and benchmarks."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)

    @property
    def total(self):
        return float(sum(self.seconds))
