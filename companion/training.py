"""Generic training callbacks, shared by every model family.

Callbacks specific to one model or concern live with it (`KLWarmup` in
`companion.models.vae`, `ModeCoverage` in `companion.dynamics`).

Example:

>>> from companion.training import SampleGrid
>>> recorder = SampleGrid(num=16, seed=0)
>>> recorder.grids
[]
"""

import contextlib
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


class WeightAverage(keras.callbacks.Callback):
    """An exponential moving average of a network's weights, to sample from (Polyak averaging).

    Generators are sampled from the average of their recent weights rather
    than the last ones: the average moves less with each step's noise
    (Yazıcı et al. 2019 for GANs; diffusion models do the same). Every
    `every` training steps, counted across ``fit`` calls:

    ```
    average <- d * average + (1 - d) * weights,   d = momentum ** every
    ```

    which follows a step-by-step average with `momentum` closely when
    `every` is small against its horizon ``1 / (1 - momentum)`` steps. The
    first update copies the weights (at the end of ``fit`` if it ran fewer
    than `every` steps). Batch normalisation's moving
    statistics are averaged with the weights.

    Args:
        network: the `keras.Model` (or layer) whose weights are averaged, e.g.
            a GAN's generator.
        momentum: in [0, 1).
        every: training steps between two updates.

    Attributes:
        average: a list of numpy arrays like ``network.get_weights()``, or
            None before the first update.

    Example:

    >>> network = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> average = WeightAverage(network, momentum=0.5, every=1)
    >>> network.set_weights([np.ones((1, 1)), np.zeros(1)])
    >>> average.update()
    >>> network.set_weights([np.full((1, 1), 3.0), np.zeros(1)])
    >>> average.update()
    >>> float(average.average[0][0, 0])  # 0.5 * 1 + 0.5 * 3
    2.0
    """

    def __init__(self, network, momentum=0.999, every=10):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1); got {momentum!r}.")
        self.network = network
        self.momentum = float(momentum)
        self.every = check_int("every", every)
        self.average = None
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self._steps % self.every == 0:
            self._sync_and_update()

    def on_train_end(self, logs=None):
        if self.average is None and self._steps:  # a run shorter than `every` steps
            self._sync_and_update()

    def _sync_and_update(self):
        self.model.jax_state_sync()  # fit keeps the newest values outside the variables
        self.update()

    def update(self):
        """Fold the network's current weights into the average (the first update copies them)."""
        weights = [np.array(w, dtype="float32") for w in self.network.get_weights()]
        if self.average is None:
            self.average = weights
            return
        decay = self.momentum ** self.every
        self.average = [decay * a + (1.0 - decay) * w for a, w in zip(self.average, weights)]

    @contextlib.contextmanager
    def applied(self):
        """Within the block the network holds the averaged weights; then its own again."""
        if self.average is None:
            raise ValueError("No average yet: train for at least `every` steps first.")
        own = self.network.get_weights()
        self.network.set_weights(self.average)
        try:
            yield self.network
        finally:
            self.network.set_weights(own)
