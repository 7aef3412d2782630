"""Training helpers shared by every model family: callbacks.

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


class SampleGrid(keras.callbacks.Callback):
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
        super().__init__()
        self.num = check_int("num", num)
        self.every = check_int("every", every)
        self.seed = seed
        self.grids = []
        self.epochs = []

    def _record(self, epoch):
        self.grids.append(np.asarray(self.model.sample(self.num, seed=self.seed)))
        self.epochs.append(epoch)

    def on_train_begin(self, logs=None):
        if not self.grids:
            self._record(0)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self._record(epoch + 1)


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
