"""companion.training: the EveryEpochs base, SampleGrid and EpochTimer callbacks."""

import numpy as np
import pytest

from companion import training

import keras  # noqa: E402  (after companion: the JAX backend)
from companion.training import EpochTimer, EveryEpochs, SampleGrid


class _Counter:
    """Stands in for a model: its samples record how often it was asked."""

    def __init__(self):
        self.calls = []

    def sample(self, num, seed=None):
        self.calls.append(seed)
        return np.full((num, 28, 28, 1), len(self.calls) / 10, dtype="float32")


def test_sample_grid_records_before_training_and_every_epochs():
    model = _Counter()
    callback = SampleGrid(num=4, seed=7, every=2)
    callback.set_model(model)
    callback.on_train_begin()
    for epoch in range(5):
        callback.on_epoch_end(epoch)
    assert callback.epochs == [0, 2, 4]
    assert model.calls == [7, 7, 7]
    assert [g.shape for g in callback.grids] == [(4, 28, 28, 1)] * 3
    assert [float(g[0, 0, 0, 0]) for g in callback.grids] == pytest.approx([0.1, 0.2, 0.3])


def test_a_second_fit_adds_no_second_record_before_training():
    model = _Counter()
    callback = SampleGrid(num=2, seed=0)
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_end(0)
    callback.on_train_begin()  # e.g. a resumed run
    callback.on_epoch_end(1)
    assert callback.epochs == [0, 1, 2] and len(callback.grids) == 3


def test_every_epochs_requires_record():
    callback = EveryEpochs()
    with pytest.raises(NotImplementedError, match="EveryEpochs must implement record"):
        callback.on_train_begin()
    assert callback.epochs == []


def test_sample_grid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num"):
        SampleGrid(num=0)
    with pytest.raises(ValueError, match="every"):
        SampleGrid(every=-1)


def test_epoch_timer_records_each_epochs_wall_time(monkeypatch):
    clock = iter([10.0, 11.5, 20.0, 22.5, 30.0, 30.25])
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(clock))
    timer = EpochTimer()
    for epoch in range(3):
        timer.on_epoch_begin(epoch)
        timer.on_epoch_end(epoch)
    assert timer.seconds == [1.5, 2.5, 0.25]
    assert timer.total == 4.25


def test_every_epochs_can_skip_the_record_before_training():
    class Epochs(EveryEpochs):
        def record(self, epoch):
            pass

    callback = Epochs(every=3, at_start=False)
    callback.on_train_begin()
    for epoch in range(7):
        callback.on_epoch_end(epoch)
    assert callback.epochs == [3, 6]


def test_weight_average_follows_the_formula_during_fit_and_swaps_back():
    from companion.training import WeightAverage

    network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    network.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    average = WeightAverage(network, momentum=0.9, every=2)
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if (batch + 1) % 2 == 0:
                self.model.jax_state_sync()
                snapshots.append([np.array(w) for w in network.get_weights()])

    x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    network.fit(x, x[:, :1] * 3.0, batch_size=4, epochs=1, verbose=0,
                callbacks=[average, Snapshot()], shuffle=False)
    expected = snapshots[0]
    for weights in snapshots[1:]:  # 8 steps: updates after steps 2, 4, 6 and 8
        expected = [0.81 * e + 0.19 * w for e, w in zip(expected, weights)]
    for got, want in zip(average.average, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    own = [np.array(w) for w in network.get_weights()]
    with average.applied():
        np.testing.assert_allclose(network.get_weights()[0], expected[0], rtol=1e-6)
    np.testing.assert_array_equal(network.get_weights()[0], own[0])


def test_weight_average_refuses_a_bad_momentum_and_an_empty_average():
    from companion.training import WeightAverage

    network = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="`momentum` must be in"):
        WeightAverage(network, momentum=1.0)
    with pytest.raises(ValueError, match="No average yet"):
        with WeightAverage(network).applied():
            pass


def test_weight_average_of_a_run_shorter_than_every_is_its_last_weights():
    from companion.training import WeightAverage

    network = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    network.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    average = WeightAverage(network, momentum=0.5, every=10)
    x = np.ones((3, 1), "float32")
    network.fit(x, 2 * x, batch_size=1, epochs=1, verbose=0, callbacks=[average])
    np.testing.assert_array_equal(average.average[0], network.get_weights()[0])
    network.fit(x, 2 * x, batch_size=1, epochs=3, verbose=0, callbacks=[average])
    assert average._steps == 12  # updated after step 10 of 12, counted across fits
