"""companion.training: the SampleGrid and EpochTimer callbacks."""

import numpy as np
import pytest

from companion.training import EpochTimer, SampleGrid


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


def test_sample_grid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num"):
        SampleGrid(num=0)
    with pytest.raises(ValueError, match="every"):
        SampleGrid(every=-1)


def test_epoch_timer_sums_epochs():
    timer = EpochTimer()
    for epoch in range(3):
        timer.on_epoch_begin(epoch)
        timer.on_epoch_end(epoch)
    assert len(timer.seconds) == 3 and timer.total >= 0.0
