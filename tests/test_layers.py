"""Tests of companion.layers: Keras' transposed convolution with faster gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import companion  # noqa: F401  (selects the JAX backend)
import keras
from keras import ops

from companion import layers

# (input side, channels in, filters, kernel, stride, padding): the book's five
# transposed convolutions first, then odd sizes and the "valid" padding.
CASES = [
    (7, 64, 32, 5, 1, "same"), (7, 32, 16, 5, 2, "same"), (14, 16, 1, 5, 2, "same"),
    (7, 32, 32, 4, 2, "same"), (14, 32, 1, 4, 2, "same"),
    (5, 3, 2, 3, 2, "same"), (6, 2, 3, 4, 3, "same"), (5, 3, 2, 3, 2, "valid"),
    (4, 2, 2, 5, 1, "valid"), (3, 2, 4, 2, 2, "valid"),
]


def _pair(side, channels, filters, kernel, stride, padding, seed=0):
    """Our layer and Keras', with the same random weights (and a nonzero bias)."""
    ours = layers.Conv2DTranspose(filters, kernel, strides=stride, padding=padding,
                                  activation="tanh")
    theirs = keras.layers.Conv2DTranspose(filters, kernel, strides=stride,
                                          padding=padding, activation="tanh")
    shape = (3, side, side, channels)
    ours.build(shape)
    theirs.build(shape)
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=w.shape).astype("float32") * 0.2 for w in ours.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    return ours, theirs, rng.normal(size=shape).astype("float32")


def _gradients(layer, x):
    """Gradients of a fixed random projection of the output w.r.t. the weights and `x`."""
    weights = [v.value for v in layer.trainable_variables]
    probe = np.random.default_rng(1).normal(size=layer.compute_output_shape(x.shape))

    def loss(weights, x):
        return jnp.sum(layer.stateless_call(weights, [], x)[0] * probe)

    return jax.grad(loss, argnums=(0, 1))(weights, x)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_forward_is_keras_bit_for_bit_and_gradients_agree(case):
    ours, theirs, x = _pair(*case)
    np.testing.assert_array_equal(np.asarray(ours(x)), np.asarray(theirs(x)))
    (our_weights, our_x) = _gradients(ours, x)
    (their_weights, their_x) = _gradients(theirs, x)
    for mine, reference in zip([*our_weights, our_x], [*their_weights, their_x]):
        reference = np.asarray(reference)
        scale = np.abs(reference).max()
        assert scale > 0
        np.testing.assert_allclose(np.asarray(mine), reference, rtol=0, atol=1e-5 * scale)


def test_the_transpose_identity_the_gradient_rests_on():
    # <conv_transpose(x, w), g> = <x, conv(g, w)>: the transposed convolution is the
    # adjoint of the strided convolution with the same kernel and padding.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 7, 7, 3)).astype("float32")
    w = rng.normal(size=(5, 5, 4, 3)).astype("float32")
    g = rng.normal(size=(2, 14, 14, 4)).astype("float32")
    left = float(ops.sum(layers.conv_transpose(x, w, (2, 2), "same") * g))
    right = float(ops.sum(x * ops.conv(g, w, strides=2, padding="same")))
    assert left == pytest.approx(right, rel=1e-5)


def test_a_wrong_gradient_is_caught():
    # The comparison above is not vacuous: a kernel gradient off by a factor fails it.
    ours, theirs, x = _pair(7, 4, 3, 4, 2, "same")
    (our_weights, _), (their_weights, _) = _gradients(ours, x), _gradients(theirs, x)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(np.asarray(our_weights[0]) * 1.001,
                                   np.asarray(their_weights[0]), rtol=0,
                                   atol=1e-5 * np.abs(their_weights[0]).max())


@pytest.mark.parametrize("argument, value", [("data_format", "channels_first"),
                                             ("dilation_rate", 2),
                                             ("output_padding", 1)])
def test_unsupported_settings_are_refused_by_name(argument, value):
    with pytest.raises(ValueError, match=argument):
        layers.Conv2DTranspose(2, 3, strides=2, **{argument: value})


def test_saves_and_loads_as_itself(tmp_path):
    inputs = keras.Input((7, 7, 2))
    model = keras.Model(inputs, layers.Conv2DTranspose(3, 4, strides=2, padding="same")(inputs))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.layers[-1]) is layers.Conv2DTranspose
    x = np.ones((1, 7, 7, 2), "float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
