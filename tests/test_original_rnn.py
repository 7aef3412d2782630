"""companion.original.rnn: the original's RNN listing and formulas, errors pinned."""

import numpy as np
import pytest

from companion.original import rnn as original  # first: selects the JAX backend
import jax  # noqa: E402


def test_listing_returns_one_vector_per_sequence():
    model = original.rnn_model()
    rows = np.random.default_rng(0).random((3, 28, 28)).astype("float32")
    out = np.asarray(model(rows))
    assert out.shape == (3, 28)          # one row for a whole image, not 28 rows
    assert ((out > 0) & (out < 1)).all()
    # Any number of steps in, still one vector out: nothing to feed back per step.
    assert np.asarray(model(rows[:, :5])).shape == (3, 28)
    layer = model.layers[0]
    assert layer.return_sequences is False and layer.activation.__name__ == "relu"


def test_listing_has_no_way_to_sample():
    model = original.rnn_model()
    assert not hasattr(model, "sample")
    # It has no loss either: fitting the listing as given is impossible.
    with pytest.raises(ValueError):
        model.fit(np.zeros((2, 28, 28), "float32"), np.zeros((2, 28), "float32"),
                  verbose=0)


def test_objective_is_identically_zero_with_zero_gradient():
    rng = np.random.default_rng(1)
    for _ in range(5):
        W, U, b = rng.normal(size=(8, 3)), rng.normal(size=(8, 8)), rng.normal(size=8)
        log_p = np.log(rng.random((50, 4)))
        assert original.original_rnn_objective(W, U, b, log_p) == 0.0

    def as_function_of_weights(W):
        return original.original_rnn_objective(W, None, None,
                                               jax.numpy.log(jax.numpy.ones((2, 3)) / 2))

    grad = jax.grad(as_function_of_weights)(jax.numpy.ones((8, 3)))
    np.testing.assert_array_equal(np.asarray(grad), 0.0)


def test_recurrence_is_the_elman_step():
    rng = np.random.default_rng(2)
    W, U, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 4)), rng.normal(size=4)
    x, h = rng.normal(size=3), rng.normal(size=4)
    expected = np.tanh(sum(W[:, j] * x[j] for j in range(3)) + U @ h + b)
    np.testing.assert_allclose(original.original_rnn_step(x, h, W, U, b), expected)


def test_output_equation_dimensions_mismatch():
    units, input_dim = 128, 28
    W, b, h = np.ones((units, input_dim)), np.zeros(units), np.ones(units)
    with pytest.raises(ValueError, match="broadcast"):
        original.original_rnn_output(h, W, b)
    # It only "works" in the special case units == input_dim.
    square = original.original_rnn_output(np.ones(4), np.eye(4), np.zeros(4))
    assert square.shape == (4,)
