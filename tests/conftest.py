"""Fixtures shared by the tests in this folder (the repository's own
``conftest.py`` sets up the session first)."""

import contextlib

import numpy as np
import pytest

import companion  # noqa: F401  (selects the JAX backend first)
import keras  # noqa: E402


@pytest.fixture
def dtype_policy():
    """`with dtype_policy("mixed_float16"): ...` sets Keras' global dtype policy for
    the block; the policy is float32 again after the block and after the test.

    Yields a function that takes a policy name and returns a context manager;
    use it as often as a test needs, e.g. once per policy a test compares.
    """

    @contextlib.contextmanager
    def use(name):
        keras.mixed_precision.set_global_policy(name)
        try:
            yield name
        finally:
            keras.mixed_precision.set_global_policy("float32")

    try:
        yield use
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def sgd_step(dtype_policy):
    """``sgd_step(make, data, policy)``: the change of every weight of the model
    ``make()`` after one plain SGD step (learning rate 1, one batch) under `policy`.

    Comparing ``"mixed_float16"`` with ``"float32"`` shows whether the train step
    scales its loss: the LossScaleOptimizer divides every gradient by the scale.
    """

    def step(make, data, policy):
        with dtype_policy(policy):
            model = make()
            model.build()
            model.compile(optimizer=keras.optimizers.SGD(1.0))
            before = [np.asarray(w) for w in model.trainable_variables]
            model.fit(data, epochs=1, batch_size=len(data), verbose=0)
            assert int(model.optimizer.iterations) == 1   # the step was not skipped
            return np.concatenate([(np.asarray(w) - b).ravel()
                                   for w, b in zip(model.trainable_variables, before)])

    return step
