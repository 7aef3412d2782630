"""Tests of companion.models.diffusion: the path's algebra, the exact velocity of a
Gaussian mixture, DDPM's schedule and ELBO weights, the networks, training (the
moving average, label dropout), sampling (seeds, guidance, Euler and Heun, chunks)
and saving.

Most tests use a tiny MLP on 2-D points whose classes are the components of a
known Gaussian mixture, so the best velocity is known exactly
(:func:`diffusion.mixture_velocity`); the U-Net tests use ``width=8``. The
networks here are built unseeded unless a test is about seeds: see
``test_seeded_networks_build_without_spawning_a_million_seeds``.
"""

import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from companion import checkpoint, losses  # selects the JAX backend first
from companion._validation import MAX_SEED
from companion.models import diffusion

import keras  # noqa: E402  (after companion: see above)

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLASSES = 3
MEANS = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])  # one component a label
STD = 0.3


def _points(num, seed):
    """`num` points of the mixture, the label of each its component, in turn."""
    labels = np.arange(num) % CLASSES
    noise = np.random.default_rng(seed).standard_normal((num, 2))
    return (MEANS[labels] + STD * noise).astype("float32"), labels


def _fix_weights(network, seed):
    """Glorot-uniform kernels, normal embeddings, zero biases and a zero last layer,
    from NumPy's generator: the same in every run. (A seeded make_mlp_network gives
    that too, but slowly: see test_seeded_networks_build_without_spawning_a_million_seeds.)"""
    rng = np.random.default_rng(seed)
    values = []
    for variable in network.weights:
        shape = tuple(variable.shape)
        if variable.path.endswith("embeddings"):
            values.append(rng.standard_normal(shape))
        elif len(shape) == 2 and not variable.path.startswith("velocity/"):
            values.append(rng.uniform(-1, 1, shape) * math.sqrt(6 / sum(shape)))
        else:
            values.append(np.zeros(shape))
    network.set_weights([v.astype("float32") for v in values])
    return network


def _mlp_model(label_dropout=0.1, ema_momentum=0.999, learning_rate=0.02, seed=0,
               units=32):
    network = _fix_weights(
        diffusion.make_mlp_network(units=units, depth=2, num_classes=CLASSES), seed)
    model = diffusion.FlowMatching(network, num_classes=CLASSES, label_dropout=label_dropout,
                                   ema_momentum=ema_momentum, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def _randomise(model, seed, scale=1.0):
    """Set the averaged weights (the ones sampling uses) to fixed random values, each
    of variance scale^2 / fan-in: the zero-initialised last layer then gives a
    velocity of size ~1 that depends on x, t and the label, the same in every run
    (unseeded networks are built quickly but differently each time)."""
    rng = np.random.default_rng(seed)
    model.average.set_weights([
        (scale / math.sqrt(np.prod(w.shape[:-1]) if w.ndim > 1 else 1.0)
         * rng.standard_normal(w.shape)).astype("float32")
        for w in model.average.get_weights()])
    return model


def _weights(network):
    return [np.array(w) for w in network.get_weights()]


def _direct_velocity(model, x, t, labels):
    """The averaged network called by hand (no guidance, no doubled batch)."""
    t = np.broadcast_to(np.asarray(t, "float32"), (len(x),))
    return np.asarray(model.average([np.asarray(x, "float32"), t,
                                     np.asarray(labels, "int32")]))


@pytest.fixture(scope="module")
def field():
    """An untrained MLP model with random averaged weights: a fixed velocity field."""
    return _randomise(_mlp_model(seed=7), seed=1)


@pytest.fixture(scope="module")
def unet():
    """The book's U-Net at width 8 (unseeded: quick to build), random averaged weights."""
    return _randomise(diffusion.make_model(width=8, seed=None), seed=2)


# The path's algebra -----------------------------------------------------------------


def test_interpolate_runs_from_noise_at_zero_to_data_at_one():
    rng = np.random.default_rng(0)
    x, noise = rng.normal(size=(2, 4, 3, 3, 2)).astype("float32")
    t = np.array([0.0, 1.0, 0.25, 0.5], "float32")
    x_t = np.asarray(diffusion.interpolate(x, noise, t))
    assert x_t.shape == x.shape
    np.testing.assert_array_equal(x_t[0], noise[0])
    np.testing.assert_array_equal(x_t[1], x[1])
    np.testing.assert_allclose(x_t[2], 0.25 * x[2] + 0.75 * noise[2], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x_t[3], (x[3] + noise[3]) / 2, rtol=1e-6, atol=1e-6)


def test_the_reparameterisations_by_hand():
    x_t, t = np.array([[1.0]]), np.array([0.5])
    assert diffusion.velocity_from_noise(x_t, t, np.array([[-1.0]]))[0, 0] == 4.0  # (1+1)/.5
    assert diffusion.velocity_from_data(x_t, t, np.array([[3.0]]))[0, 0] == 4.0  # (3-1)/.5
    data, noise = diffusion.to_data_and_noise(x_t, t, np.array([[4.0]]))
    assert (data[0, 0], noise[0, 0]) == (3.0, -1.0)


@pytest.mark.parametrize("t", [1e-4, 0.01, 0.3, 0.5, 0.9, 0.9999])
def test_velocity_noise_and_data_predictions_are_one_another(t):
    rng = np.random.default_rng(int(t * 1e4))
    x, eps = rng.normal(size=(2, 5, 4))
    times = np.full(5, t)
    x_t = t * x + (1 - t) * eps
    data, noise = diffusion.to_data_and_noise(x_t, times, x - eps)
    np.testing.assert_allclose(data, x, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(noise, eps, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(diffusion.velocity_from_noise(x_t, times, eps), x - eps,
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(diffusion.velocity_from_data(x_t, times, x), x - eps,
                               rtol=1e-6, atol=1e-9)
    # Any velocity, not only the true one, goes to a (data, noise) pair and back.
    velocity = rng.normal(size=x.shape)
    data, noise = diffusion.to_data_and_noise(x_t, times, velocity)
    np.testing.assert_allclose(diffusion.velocity_from_noise(x_t, times, noise), velocity,
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(diffusion.velocity_from_data(x_t, times, data), velocity,
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(t * data + (1 - t) * noise, x_t, atol=1e-12)  # on the path


def test_the_reparameterisations_take_one_time_an_example_and_are_linear():
    rng = np.random.default_rng(1)
    t = np.array([0.0, 0.2, 0.7, 1.0])  # to_data_and_noise is defined at both ends
    x_t, v, y_t, w = rng.normal(size=(4, 4, 3, 3, 2))
    data, noise = diffusion.to_data_and_noise(x_t, t, v)
    for i, time in enumerate(t):  # example by example, with a scalar time
        np.testing.assert_allclose(data[i], x_t[i] + (1 - time) * v[i], atol=1e-12)
        np.testing.assert_allclose(noise[i], x_t[i] - time * v[i], atol=1e-12)
    a, b = 2.5, -0.75
    combined = diffusion.to_data_and_noise(a * x_t + b * y_t, t, a * v + b * w)
    for got, first, second in zip(combined, diffusion.to_data_and_noise(x_t, t, v),
                                  diffusion.to_data_and_noise(y_t, t, w)):
        np.testing.assert_allclose(got, a * first + b * second, atol=1e-12)
    inner = t[1:3]
    for function in (diffusion.velocity_from_noise, diffusion.velocity_from_data):
        got = function(a * x_t[1:3] + b * y_t[1:3], inner, a * v[1:3] + b * w[1:3])
        expected = a * function(x_t[1:3], inner, v[1:3]) + b * function(y_t[1:3], inner, w[1:3])
        np.testing.assert_allclose(got, expected, atol=1e-11)


def test_flow_matching_loss_of_a_noise_prediction_is_its_error_over_t_squared():
    # v = (x_t - eps) / t: an error e in the noise is an error -e / t in the velocity.
    rng = np.random.default_rng(2)
    x, eps, guess = rng.normal(size=(3, 6, 4))
    t = np.full(6, 0.4)
    x_t = 0.4 * x + 0.6 * eps
    velocity = diffusion.velocity_from_noise(x_t, t, guess)
    assert float(losses.flow_matching_loss(x - eps, velocity)) == pytest.approx(
        float(losses.denoising_loss(eps, guess)) / 0.4 ** 2, rel=1e-5)


# The exact velocity of a mixture ----------------------------------------------------


def test_mixture_velocity_of_one_gaussian_is_the_linear_regression_of_the_velocity():
    mean, std = np.array([[1.0, -2.0, 0.5]]), 1.7
    rng = np.random.default_rng(3)
    x_t = rng.normal(size=(5, 3)) * 3
    t = np.array([0.0, 0.3, 0.5, 0.8, 1.0])
    # Cov(x - eps, x_t) / Var(x_t) with x_t = t x + (1 - t) eps, per dimension.
    slope = (t * std ** 2 - (1 - t)) / (t ** 2 * std ** 2 + (1 - t) ** 2)
    expected = mean + slope[:, None] * (x_t - t[:, None] * mean)
    np.testing.assert_allclose(diffusion.mixture_velocity(x_t, t, mean, std), expected,
                               rtol=1e-12)
    # The same slope from samples: least squares of x - eps on x_t at t = 0.3.
    x = mean[0, 0] + std * rng.standard_normal(200_000)
    eps = rng.standard_normal(200_000)
    fitted = np.polyfit(0.3 * x + 0.7 * eps, x - eps, 1)
    assert fitted[0] == pytest.approx(slope[1], abs=0.025)  # standard errors ~0.005
    assert fitted[1] == pytest.approx(mean[0, 0] - slope[1] * 0.3 * mean[0, 0], abs=0.025)


def test_mixture_velocity_at_the_ends_of_the_path():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 2)) * 2
    zeros, ones = np.zeros(6), np.ones(6)
    # t = 0: x_0 is the noise, independent of the data: v* = E[x] - x_0.
    np.testing.assert_allclose(diffusion.mixture_velocity(x, zeros, MEANS, STD),
                               MEANS.mean(axis=0) - x, atol=1e-12)
    # t = 1: x_1 is the data, the noise unknown (mean 0): v* = x_1.
    np.testing.assert_allclose(diffusion.mixture_velocity(x, ones, MEANS, STD), x,
                               atol=1e-12)
    # The docstring's example: a Gaussian at 3, std 2, at t = 0 and x_0 = 0.5.
    assert diffusion.mixture_velocity([[0.5]], [0.0], [[3.0]], 2.0)[0, 0] == 2.5


def test_mixture_velocity_is_the_conditional_mean_of_the_velocity():
    # 1-D, two components; within a narrow bin of x_t the mean of x - eps is v*.
    rng = np.random.default_rng(5)
    means, std, t, num = np.array([[-2.0], [2.0]]), 0.5, 0.6, 1_000_000
    x = means[rng.integers(2, size=num)] + std * rng.standard_normal((num, 1))
    eps = rng.standard_normal((num, 1))
    x_t, target = t * x + (1 - t) * eps, x - eps
    exact = []
    for centre in (-1.5, -0.6, 0.0, 0.3, 0.6, 1.2):
        inside = np.abs(x_t[:, 0] - centre) < 0.05
        assert inside.sum() > 1000
        field = diffusion.mixture_velocity(x_t[inside], np.full(inside.sum(), t), means, std)
        error = target[inside] - field
        standard_error = error.std() / math.sqrt(inside.sum())  # 0.01 to 0.05
        assert abs(error.mean()) < 4 * standard_error, centre
        exact.append(float(diffusion.mixture_velocity([[centre]], [t], means, std)[0, 0]))
    # Not a linear field: between the components the velocity turns round.
    assert exact[2] == pytest.approx(0.0, abs=1e-12)  # symmetric
    assert exact[3] > 0.5 and exact[4] > exact[5]


def test_mixture_velocity_minimises_the_flow_matching_loss():
    rng = np.random.default_rng(6)
    num = 100_000
    x = MEANS[rng.integers(3, size=num)] + STD * rng.standard_normal((num, 2))
    eps = rng.standard_normal((num, 2))
    t = rng.uniform(size=num)
    x_t, target = t[:, None] * x + (1 - t[:, None]) * eps, x - eps
    best = diffusion.mixture_velocity(x_t, t, MEANS, STD)

    def loss(velocity):
        return float(np.mean((velocity - target) ** 2))

    assert float(losses.flow_matching_loss(target, best)) == pytest.approx(loss(best),
                                                                            rel=1e-4)
    perturbations = [np.ones_like(x_t), np.sin(3 * x_t), t[:, None] * x_t,
                     np.sign(x_t[:, ::-1]) * (1 - t[:, None])]
    for g in perturbations:
        for delta in (-0.2, 0.2):
            gap = loss(best + delta * g) - loss(best)
            # Pythagoras: the error of v* is orthogonal to every function of (x_t, t).
            assert gap == pytest.approx(delta ** 2 * np.mean(g ** 2), rel=0.2)
    # A wrong mixture (std too large) is worse too.
    assert loss(diffusion.mixture_velocity(x_t, t, MEANS, 3 * STD)) > loss(best) + 0.01


# DDPM ---------------------------------------------------------------------------------


def test_ddpm_schedule_by_hand_and_the_default():
    deltas, lambdas = diffusion.ddpm_schedule(3, 0.1, 0.3)
    np.testing.assert_allclose(deltas, [0.1, 0.2, 0.3], rtol=1e-12)
    np.testing.assert_allclose(lambdas, [0.9, 0.9 * 0.8, 0.9 * 0.8 * 0.7], rtol=1e-12)
    deltas, lambdas = diffusion.ddpm_schedule()
    assert deltas.shape == lambdas.shape == (1000,) and deltas.dtype == np.float64
    assert (deltas[0], deltas[-1]) == (1e-4, 0.02)
    for index in (0, 1, 499, 999):
        assert lambdas[index] == pytest.approx(np.prod(1.0 - deltas[:index + 1]), rel=1e-12)
    assert np.all(np.diff(lambdas) < 0) and 0 < lambdas[-1] < 1e-4  # ~4e-5
    assert diffusion.ddpm_schedule(1, 0.1, 0.2)[0].tolist() == [0.1]


@pytest.mark.parametrize("kwargs, name", [
    ({"steps": 0}, "steps"), ({"steps": 2.5}, "steps"), ({"steps": True}, "steps"),
    ({"delta_start": 0.0}, "delta_start"), ({"delta_start": -0.1}, "delta_start"),
    ({"delta_start": 0.3, "delta_end": 0.2}, "delta_end"), ({"delta_end": 1.0}, "delta_end"),
    ({"delta_end": float("nan")}, "delta_end"),
])
def test_ddpm_schedule_refuses_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        diffusion.ddpm_schedule(**{"steps": 10, **kwargs})


def _gaussian_kl(mean_q, var_q, mean_p, var_p):
    """KL(N(mean_q, var_q I) || N(mean_p, var_p I)), summed over the last axis."""
    return 0.5 * np.sum(var_q / var_p + (mean_q - mean_p) ** 2 / var_p - 1
                        - np.log(var_q / var_p), axis=-1)


def test_ddpm_elbo_weights_by_hand():
    # t = 1: 1 - lambda_1 = delta_1, so the weight is 1 / (2 (1 - delta_1)).
    weights = diffusion.ddpm_elbo_weights([0.1, 0.2])
    np.testing.assert_allclose(weights, [1 / 1.8, 0.04 / (2 * 0.2 * 0.8 * 0.28)], rtol=1e-12)


def test_ddpm_elbo_weights_turn_the_squared_noise_error_into_the_kl():
    deltas, lambdas = diffusion.ddpm_schedule(50, 1e-3, 0.2)
    weights = diffusion.ddpm_elbo_weights(deltas)
    assert weights.shape == (50,)
    rng = np.random.default_rng(7)
    for index in (1, 2, 10, 30, 49):  # t = index + 1 >= 2
        delta, lam, previous = deltas[index], lambdas[index], lambdas[index - 1]
        x0, eps, guess = rng.normal(size=(3, 8))
        x_t = math.sqrt(lam) * x0 + math.sqrt(1 - lam) * eps
        # The forward posterior q(x_{t-1} | x_t, x_0), written with x_0 (Ho et al. eq. 7).
        mean_q = (math.sqrt(previous) * delta / (1 - lam) * x0
                  + math.sqrt(1 - delta) * (1 - previous) / (1 - lam) * x_t)
        var_q = (1 - previous) / (1 - lam) * delta

        def mean_p(noise):  # the reverse step's mean from a noise prediction
            return (x_t - delta / math.sqrt(1 - lam) * noise) / math.sqrt(1 - delta)

        exact = _gaussian_kl(mean_q, var_q, mean_p(guess), delta)
        # The KL is nu_t times the error plus a constant zeta_t (the variance mismatch
        # sigma_t^2 = delta_t vs delta~_t), the KL at a perfect prediction.
        constant = _gaussian_kl(mean_q, var_q, mean_p(eps), delta)
        assert constant == pytest.approx(
            0.5 * 8 * (var_q / delta - 1 - math.log(var_q / delta)), rel=1e-9)
        assert (exact - constant) / np.sum((eps - guess) ** 2) == pytest.approx(
            weights[index], rel=1e-9)


# The networks -----------------------------------------------------------------------


def test_sinusoidal_embedding_shape_values_and_config():
    layer = diffusion.SinusoidalEmbedding(6)
    zero = np.asarray(layer(np.zeros(5, "float32")))
    assert zero.shape == (5, 6) and layer.compute_output_shape((5,)) == (5, 6)
    np.testing.assert_array_equal(zero[:, :3], 0.0)  # sines
    np.testing.assert_array_equal(zero[:, 3:], 1.0)  # cosines
    # dim 4: frequencies 1 and max_frequency; at t = 1/4, angles pi/2 and 500 pi.
    quarter = np.asarray(diffusion.SinusoidalEmbedding(4)(np.array([0.25], "float32")))
    np.testing.assert_allclose(quarter, [[1.0, 0.0, 0.0, 1.0]], atol=2e-3)
    # dim 6, max_frequency 100: frequencies 1, 10, 100 (geometric).
    t = np.array([0.013, 0.37, 0.9], "float32")
    angles = 2 * np.pi * t.astype("float64")[:, None] * np.array([1.0, 10.0, 100.0])
    got = np.asarray(diffusion.SinusoidalEmbedding(6, max_frequency=100.0)(t))
    np.testing.assert_allclose(got, np.concatenate([np.sin(angles), np.cos(angles)], 1),
                               atol=5e-4)
    copy = diffusion.SinusoidalEmbedding.from_config(
        diffusion.SinusoidalEmbedding(6, max_frequency=100.0).get_config())
    assert (copy.dim, copy.max_frequency) == (6, 100.0)


@pytest.mark.parametrize("dim", [5, 2, 0, 4.0, True])
def test_sinusoidal_embedding_refuses_odd_or_small_dims(dim):
    with pytest.raises(ValueError, match="dim"):
        diffusion.SinusoidalEmbedding(dim)


def test_unet_shapes_inputs_and_zero_initial_velocity():
    network = diffusion.make_unet(width=8)
    assert network.output_shape == (None, 28, 28, 1)
    assert [tuple(s) for s in network.input_shape] == [(None, 28, 28, 1), (None,), (None,)]
    assert network.get_layer("label_embedding").input_dim == diffusion.NUM_CLASSES + 1
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, 28, 28, 1)).astype("float32")
    velocity = np.asarray(network([x, np.array([0.0, 0.5, 1.0], "float32"),
                                   np.array([0, 9, 10], "int32")]))
    np.testing.assert_array_equal(velocity, 0.0)  # the last convolution starts at zero
    other = diffusion.make_unet(image_shape=(8, 12, 3), width=16, num_classes=2)
    assert other.output_shape == (None, 8, 12, 3)
    assert other.get_layer("label_embedding").input_dim == 3


@pytest.mark.parametrize("kwargs, name", [
    ({"width": 12}, "width"), ({"width": 4}, "width"), ({"width": 8.0}, "width"),
    ({"image_shape": (30, 28, 1)}, "image_shape"), ({"image_shape": (28, 26, 1)}, "image_shape"),
    ({"num_classes": 0}, "num_classes"),
])
def test_unet_refuses_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        diffusion.make_unet(**{"width": 8, **kwargs})


def test_mlp_network_shapes_depth_and_zero_initial_velocity():
    network = diffusion.make_mlp_network(data_dim=3, units=8, depth=1, num_classes=4)
    assert network.output_shape == (None, 3)
    names = [layer.name for layer in network.layers]
    assert "hidden_1" in names and "hidden_2" not in names
    assert network.get_layer("hidden_1").units == 8
    x = np.ones((2, 3), "float32")
    velocity = network([x, np.array([0.1, 0.9], "float32"), np.array([0, 4], "int32")])
    np.testing.assert_array_equal(np.asarray(velocity), 0.0)
    for kwargs in ({"units": 0}, {"depth": 0}, {"data_dim": 0}, {"num_classes": 0},
                   {"units": 2.0}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            diffusion.make_mlp_network(**kwargs)


def test_flow_matching_checks_its_arguments_and_holds_a_frozen_copy():
    network = diffusion.make_mlp_network(units=8, num_classes=CLASSES)
    for value in (-0.1, 1.5, True, "0.1", float("nan")):
        with pytest.raises(ValueError, match="label_dropout"):
            diffusion.FlowMatching(network, num_classes=CLASSES, label_dropout=value)
    for value in (1.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="ema_momentum"):
            diffusion.FlowMatching(network, num_classes=CLASSES, ema_momentum=value)
    with pytest.raises(ValueError, match="seed"):
        diffusion.FlowMatching(network, num_classes=CLASSES, seed=-1)
    x, t = keras.Input((2,)), keras.Input(())
    label = keras.Input((), dtype="int32")
    wrong_output = keras.Model([x, t, label], keras.layers.Dense(3)(x))
    with pytest.raises(ValueError, match="network"):
        diffusion.FlowMatching(wrong_output)
    two_inputs = keras.Model([x, t], keras.layers.Dense(2)(x))
    with pytest.raises(ValueError, match="network"):
        diffusion.FlowMatching(two_inputs)

    model = diffusion.FlowMatching(network, num_classes=CLASSES, label_dropout=1.0,
                                   ema_momentum=0.0)
    assert model.data_shape == (2,)
    assert model.average is not model.network and not model.average.trainable
    assert [v.path for v in model.trainable_variables] == [
        v.path for v in network.trainable_variables]
    for a, b in zip(_weights(model.average), _weights(network)):
        np.testing.assert_array_equal(a, b)


# Training -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def steps():
    """Two models, each trained two steps (all the data in one batch): label dropout 1
    with momentum 0.999, and label dropout 0 with momentum 0.05. Holds the network's
    and the average's weights before and after each step."""
    x, labels = _points(96, seed=0)
    runs = {}
    for dropout, momentum in ((1.0, 0.999), (0.0, 0.05)):
        model = _mlp_model(label_dropout=dropout, ema_momentum=momentum)
        # With dropout 1 the labels may include the "no label" token, CLASSES.
        given = np.arange(len(x)) % (CLASSES + 1) if dropout == 1.0 else labels
        run = {"model": model, "network": [_weights(model.network)],
               "average": [_weights(model.average)], "loss": []}
        for _ in range(2):
            history = model.fit((x, given), batch_size=len(x), epochs=1, shuffle=False,
                                verbose=0)
            run["network"].append(_weights(model.network))
            run["average"].append(_weights(model.average))
            run["loss"].append(history.history["loss"][0])
        runs[dropout] = run
    return runs


@pytest.mark.parametrize("dropout, decays", [(1.0, (0.1, 2 / 11)), (0.0, (0.05, 0.05))])
def test_the_average_after_each_step(steps, dropout, decays):
    # d = min(momentum, (1 + n) / (10 + n)) after n earlier steps: 0.1 then 2/11 for
    # momentum 0.999; the momentum itself, 0.05, when smaller.
    run = steps[dropout]
    assert float(run["model"].average_steps.value) == 2.0
    for a, w in zip(run["average"][0], run["network"][0]):
        np.testing.assert_array_equal(a, w)  # the average starts at the weights
    for step, decay in enumerate(decays):
        for old, new, average in zip(run["average"][step], run["network"][step + 1],
                                     run["average"][step + 1]):
            np.testing.assert_allclose(average, decay * old + (1 - decay) * new,
                                       rtol=1e-5, atol=1e-7)
    changed = [np.abs(n - w).max() for n, w in zip(run["network"][2], run["network"][0])]
    assert max(changed) > 1e-3  # the network did move, so the check above has teeth
    assert not any(np.array_equal(a, n) for a, n in
                   zip(run["average"][2], run["network"][2]) if a.ndim == 2)


def test_label_dropout_decides_which_label_rows_learn(steps):
    # Adam leaves a weight exactly where it was while its gradient is exactly zero:
    # an embedding row changes if and only if its label was seen in a step.
    def rows(run, index):
        network = run["model"].network
        position = [v.path for v in network.weights].index(
            network.get_layer("label_embedding").embeddings.path)
        return run["network"][index][position]

    unlabelled, labelled = steps[1.0], steps[0.0]
    moved = np.abs(rows(unlabelled, 2) - rows(unlabelled, 0)).max(axis=1)
    assert moved[:CLASSES].max() == 0.0 and moved[CLASSES] > 0  # every label dropped
    moved = np.abs(rows(labelled, 2) - rows(labelled, 0)).max(axis=1)
    assert moved[:CLASSES].min() > 0 and moved[CLASSES] == 0.0  # none dropped


@pytest.fixture(scope="module")
def trained(steps):
    """The label-dropout-0 model of `steps`, trained on: its MC loss before and after
    on fixed noise and times, and the optimal loss there (v* of each label's component)."""
    model = steps[0.0]["model"]
    x, labels = _points(96, seed=0)
    evaluation, eval_labels = _points(3000, seed=10)
    rng = np.random.default_rng(11)
    eps, t = rng.standard_normal(evaluation.shape), rng.uniform(size=len(evaluation))
    x_t, target = t[:, None] * evaluation + (1 - t[:, None]) * eps, evaluation - eps
    optimum = np.concatenate([diffusion.mixture_velocity(x_t[i:i + 1], t[i:i + 1],
                                                         MEANS[k:k + 1], STD)
                              for i, k in enumerate(eval_labels)])

    def loss():
        return float(losses.flow_matching_loss(
            target, model.velocity(x_t, t, eval_labels, guidance=1.0)))

    before = loss()
    history = model.fit((x, labels), batch_size=len(x), epochs=80, shuffle=False,
                        verbose=0).history
    return {"model": model, "before": before, "after": loss(), "history": history["loss"],
            "optimum": float(np.mean((optimum - target) ** 2))}


def test_fit_lowers_the_loss_towards_the_exact_minimum(trained):
    assert trained["optimum"] < trained["after"] < trained["before"]
    gap_before = trained["before"] - trained["optimum"]
    assert trained["after"] - trained["optimum"] < 0.2 * gap_before
    assert np.mean(trained["history"][-10:]) < 0.5 * trained["history"][0]


def test_labelled_samples_of_the_trained_model_land_on_their_component(trained):
    labels = np.arange(300) % CLASSES
    samples = trained["model"].generate(300, seed=0, labels=labels, guidance=1.0,
                                        steps=20, sampler="heun")
    # The components lie 3.2 or more apart; a few dozen noisy steps get within ~0.3
    # of their means and spreads (E|N(0, STD^2 I_2)| = 0.38).
    for k in range(CLASSES):
        mine = samples[labels == k]
        np.testing.assert_allclose(mine.mean(axis=0), MEANS[k], atol=0.35)
        assert np.linalg.norm(mine - MEANS[k], axis=1).mean() < 2 * STD * math.sqrt(math.pi / 2)


def test_fit_refuses_data_without_labels_or_of_the_wrong_shape(field):
    x, labels = _points(12, seed=0)
    with pytest.raises(ValueError, match=r"needs labels.*np\.full\(len\(data\), 3\)"):
        field.fit(x, epochs=1, verbose=0)
    for bad in (labels + CLASSES, labels - 1, labels.astype("float32"), labels[:-1],
                np.zeros((12, 1), "int32")):
        with pytest.raises(ValueError, match="labels"):
            field.fit((x, bad), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="labels"):  # labels as y
        field.fit(x, labels + 4, epochs=1, verbose=0)
    for bad in (x[:, :1], x[:, :, None], np.where(x > 1, np.nan, x)):
        with pytest.raises(ValueError, match=r"`x` must be finite with shape \(N, 2\)"):
            field.fit((bad, labels), epochs=1, verbose=0)
    assert float(field.average_steps.value) == 0.0  # nothing ran


# Sampling -----------------------------------------------------------------------------


def test_unet_samples_have_the_image_shape_and_lie_in_the_unit_interval(unet):
    samples = unet.sample(3, seed=0, steps=2)
    assert samples.shape == (3, 28, 28, 1) and samples.dtype == np.float32
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    np.testing.assert_array_equal(
        samples, np.clip((unet.generate(3, seed=0, steps=2) + 1) / 2, 0, 1))
    start = np.clip((unet.noise(3, seed=0) + 1) / 2, 0, 1)
    assert np.abs(samples - start).max() > 1e-3  # the field moved the noise
    np.testing.assert_array_equal(unet.sample(3, seed=0, steps=2), samples)
    assert not np.array_equal(unet.sample(3, seed=1, steps=2), samples)
    labelled = unet.sample(3, seed=0, labels=[0, 5, 9], steps=2)
    assert labelled.shape == (3, 28, 28, 1) and not np.array_equal(labelled, samples)
    assert labelled.min() >= 0.0 and labelled.max() <= 1.0


def test_same_seed_same_samples_and_seed_none_advances_the_generator(field):
    labels = [0, 1, 2, 1]
    first = field.generate(4, seed=3, labels=labels, steps=2)
    np.testing.assert_array_equal(field.generate(4, seed=3, labels=labels, steps=2), first)
    assert np.abs(field.generate(4, seed=4, labels=labels, steps=2) - first).min() > 1e-4
    drawn = [field.generate(4, labels=labels, steps=2) for _ in range(2)]
    assert np.abs(drawn[0] - drawn[1]).min() > 1e-4
    np.testing.assert_array_equal(field.sample(4, seed=3, labels=labels, steps=2),
                                  np.clip((first + 1) / 2, 0, 1))
    # The unseeded stream is the model's: two models of one seed draw the same
    # noise, and a seeded draw in between does not move it.
    a, b = _mlp_model(seed=5, units=4), _mlp_model(seed=5, units=4)
    a_noise = [a.noise(3), a.noise(3)]
    b_noise = [b.noise(3), b.noise(3, seed=0), b.noise(3)]
    np.testing.assert_array_equal(a_noise[0], b_noise[0])
    np.testing.assert_array_equal(a_noise[1], b_noise[2])
    assert not np.array_equal(a_noise[0], a_noise[1])
    assert a_noise[0].shape == (3, 2) and a_noise[0].dtype == np.float32
    np.testing.assert_array_equal(a.noise(3, seed=0), b_noise[1])  # a seed is a seed


@pytest.mark.parametrize("kwargs, name", [
    ({"labels": [0, 1, 2]}, "labels"), ({"labels": [0, 1, 2, 3]}, "labels"),
    ({"labels": [0, -1, 2, 1]}, "labels"), ({"labels": [0.0, 1.0, 2.0, 1.0]}, "labels"),
    ({"labels": [[0, 1, 2, 1]]}, "labels"), ({"labels": [True, False, True, True]}, "labels"),
    ({"labels": [0, 1, 2, 1], "guidance": -1.0}, "guidance"),
    ({"labels": [0, 1, 2, 1], "guidance": "2"}, "guidance"),
    ({"labels": [0, 1, 2, 1], "guidance": float("nan")}, "guidance"),
    ({"labels": [0, 1, 2, 1], "guidance": float("inf")}, "guidance"),
    ({"labels": [0, 1, 2, 1], "guidance": True}, "guidance"),
    ({"guidance": -0.5}, "guidance"),
    ({"steps": 0}, "steps"), ({"steps": 2.0}, "steps"), ({"sampler": "rk4"}, "sampler"),
    ({"seed": -1}, "seed"), ({"seed": 2.0}, "seed"),
])
def test_sample_refuses_bad_arguments(field, kwargs, name):
    with pytest.raises(ValueError, match=name):
        field.sample(4, **kwargs)


@pytest.mark.parametrize("num", [0, -1, 2.0, None])
def test_sample_refuses_a_bad_number(field, num):
    with pytest.raises(ValueError, match="num"):
        field.sample(num, seed=0)


def test_trajectory_starts_at_the_noise_and_ends_at_generate(field):
    labels = np.array([0, 1, 2, 2, 0])
    noise = field.noise(5, seed=9)
    for sampler in ("euler", "heun"):
        states = field.trajectory(noise, labels=labels, guidance=2.0, steps=3,
                                  sampler=sampler)
        assert states.shape == (4, 5, 2)
        np.testing.assert_array_equal(states[0], noise)
        np.testing.assert_allclose(
            states[-1], field.generate(5, seed=9, labels=labels, guidance=2.0, steps=3,
                                       sampler=sampler), rtol=1e-6, atol=1e-6)
    unguided = field.trajectory(noise, steps=2)
    assert unguided.shape == (3, 5, 2)
    np.testing.assert_allclose(unguided[-1], field.generate(5, seed=9, steps=2), atol=1e-6)


@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_each_step_is_an_euler_or_heun_step_of_the_guided_velocity(field, sampler):
    labels, steps, guidance = np.array([0, 1, 2, 2, 0]), 4, 3.0
    states = field.trajectory(field.noise(5, seed=1), labels=labels, guidance=guidance,
                              steps=steps, sampler=sampler)
    dt = 1.0 / steps
    for i in range(steps):
        v = field.velocity(states[i], i * dt, labels, guidance)
        if sampler == "heun":
            v = 0.5 * (v + field.velocity(states[i] + dt * v, (i + 1) * dt, labels, guidance))
        assert np.abs(v).max() > 0.1
        # float32 rounding of states up to ~40: a few ulps of the largest.
        np.testing.assert_allclose(states[i + 1], states[i] + dt * v, rtol=1e-5,
                                   atol=1e-5 * np.abs(states).max())


def test_guidance_mixes_the_conditional_and_unconditional_velocities(field):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(6, 2)).astype("float32")
    t, labels = np.linspace(0, 1, 6).astype("float32"), np.array([0, 1, 2, 0, 1, 2])
    conditional = _direct_velocity(field, x, t, labels)
    unconditional = _direct_velocity(field, x, t, np.full(6, CLASSES))
    assert np.abs(conditional - unconditional).min() > 1e-3  # the label matters
    for w in (0.0, 1.0, 2.5):
        np.testing.assert_allclose(field.velocity(x, t, labels, guidance=w),
                                   unconditional + w * (conditional - unconditional),
                                   rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(field.velocity(x, t, labels, guidance=0.0),
                               field.velocity(x, t), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(field.velocity(x, t), unconditional, rtol=1e-6, atol=1e-6)
    # A scalar time is every example's time.
    np.testing.assert_allclose(field.velocity(x, 0.3, labels),
                               _direct_velocity(field, x, 0.3, labels), rtol=1e-5, atol=1e-6)


def test_guidance_one_ignores_the_unconditional_branch_and_zero_the_label():
    model = _randomise(_mlp_model(units=4), seed=13)
    labels = np.array([0, 1, 2, 0])
    runs = {w: model.generate(4, seed=2, labels=labels, guidance=w, steps=2)
            for w in (0.0, 1.0, 2.0)}
    unlabelled = model.generate(4, seed=2, steps=2)
    embeddings = model.average.get_layer("label_embedding").embeddings
    rows = np.array(embeddings.value)
    changed = rows.copy()
    changed[CLASSES] += 1.0  # the "no label" token's embedding only
    embeddings.assign(changed)
    np.testing.assert_allclose(model.generate(4, seed=2, labels=labels, guidance=1.0,
                                              steps=2), runs[1.0], rtol=1e-5, atol=1e-5)
    assert np.abs(model.generate(4, seed=2, labels=labels, guidance=2.0, steps=2)
                  - runs[2.0]).max() > 1e-3
    changed = rows.copy()
    changed[:CLASSES] += 1.0  # every label's embedding, not the token's
    embeddings.assign(changed)
    np.testing.assert_allclose(model.generate(4, seed=2, labels=labels, guidance=0.0,
                                              steps=2), runs[0.0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(runs[0.0], unlabelled, rtol=1e-5, atol=1e-6)
    assert np.abs(model.generate(4, seed=2, labels=labels, guidance=1.0, steps=2)
                  - runs[1.0]).max() > 1e-3


def test_sampling_in_chunks_equals_integrating_each_chunk(field):
    num = 600  # more than two chunks of diffusion._CHUNK
    assert diffusion._CHUNK < num // 2
    labels = (np.arange(num) * 7) % CLASSES
    noise = field.noise(num, seed=4)
    together = field.generate(num, seed=4, labels=labels, guidance=2.0, steps=2)
    pieces = [field.trajectory(noise[i:i + diffusion._CHUNK],
                               labels=labels[i:i + diffusion._CHUNK], guidance=2.0,
                               steps=2)[-1]
              for i in range(0, num, diffusion._CHUNK)]
    assert together.shape == (num, 2)
    np.testing.assert_allclose(together, np.concatenate(pieces), rtol=1e-6, atol=1e-6)
    whole = field.trajectory(noise, labels=labels, guidance=2.0, steps=2)[-1]
    np.testing.assert_allclose(together, whole, rtol=1e-6, atol=1e-6)
    unlabelled = field.generate(num, seed=4, steps=2)
    np.testing.assert_allclose(unlabelled, field.trajectory(noise, steps=2)[-1],
                               rtol=1e-6, atol=1e-6)


# Saving and seeds ---------------------------------------------------------------------


_LOAD_AND_SAMPLE = """
import sys
import numpy as np
from companion import checkpoint

model = checkpoint.load_model(sys.argv[1])
arrays = {f"{name}_{i}": np.array(w) for name in ("average", "network")
          for i, w in enumerate(getattr(model, name).get_weights())}
np.savez(sys.argv[2], **arrays,
         samples=model.sample(3, seed=5, labels=[1, 4, 9], guidance=2.0, steps=2),
         steps=np.array(model.average_steps.value))
print(type(model).__name__, model.num_classes, model.label_dropout, model.ema_momentum,
      model.seed)
"""


def test_save_and_load_in_a_fresh_process_keeps_the_average_and_the_samples(tmp_path):
    model = _randomise(diffusion.make_model(width=8, seed=None, label_dropout=0.25,
                                            ema_momentum=0.9), seed=3)
    model.average_steps.assign(7.0)
    # Sampled here first: the child then finds the compiled sampler in JAX's cache.
    expected = model.sample(3, seed=5, labels=[1, 4, 9], guidance=2.0, steps=2)
    path = tmp_path / "flow.keras"
    checkpoint.save_model(model, path)
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT))
    child = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_SAMPLE, str(path), str(tmp_path / "out.npz")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stdout.split() == ["FlowMatching", "10", "0.25", "0.9", "None"]
    # (A .keras file does not keep the noise generators' states, so only seeded
    # samples are compared: see companion.pretrained._Run.restore.)
    with np.load(tmp_path / "out.npz") as loaded:
        np.testing.assert_array_equal(loaded["samples"], expected)
        assert float(loaded["steps"]) == 7.0
        restored = {name: [loaded[f"{name}_{i}"] for i in range(len(_weights(model.network)))]
                    for name in ("average", "network")}
    for name in ("average", "network"):
        saved = _weights(getattr(model, name))
        assert len(saved) == len(restored[name])
        for a, b in zip(saved, restored[name]):
            np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, n) for a, n in zip(*restored.values()))


def test_make_model_seed_fixes_the_weights_and_the_first_epoch():
    rng = np.random.default_rng(14)
    images = rng.uniform(-1, 1, size=(8, 8, 8, 1)).astype("float32")
    labels = np.arange(8) % diffusion.NUM_CLASSES
    runs = []
    for _ in range(2):
        model = diffusion.make_model(image_shape=(8, 8, 1), width=8, seed=3)
        weights = _weights(model.network)
        # shuffle=False: Keras' shuffling draws from its own unseeded generator.
        history = model.fit((images, labels), batch_size=4, epochs=1, shuffle=False,
                            verbose=0)
        runs.append((weights, history.history["loss"][0], _weights(model.network)))
    for first, second in zip(runs[0][0] + runs[0][2], runs[1][0] + runs[1][2]):
        np.testing.assert_array_equal(first, second)
    assert runs[0][1] == runs[1][1]
    other = _weights(diffusion.make_unet(image_shape=(8, 8, 1), width=8, seed=4))
    kernels = [(a, b) for a, b in zip(runs[0][0], other) if a.ndim > 1 and a.any()]
    assert kernels and not any(np.array_equal(a, b) for a, b in kernels)


def test_book_config():
    assert diffusion.VALUE_RANGE == "symmetric" and diffusion.SAMPLERS == ("euler", "heun")
    assert {"width", "epochs", "batch_size", "learning_rate", "label_dropout",
            "ema_momentum"} <= set(diffusion.BOOK_CONFIG)
    assert diffusion.BOOK_CONFIG["width"] % 8 == 0
    assert 0 <= diffusion.BOOK_CONFIG["label_dropout"] <= 1
    assert 0 <= diffusion.BOOK_CONFIG["ema_momentum"] < 1


# Regressions: bugs found in review, fixed ----------------------------------------------


class _NoHugeSpawn(np.random.SeedSequence):
    def spawn(self, n_children):
        assert n_children <= 10_000, f"SeedSequence.spawn({n_children})"
        return super().spawn(n_children)


def test_seeded_networks_build_without_spawning_a_million_seeds(monkeypatch):
    monkeypatch.setattr(np.random, "SeedSequence", _NoHugeSpawn)
    diffusion.make_mlp_network(units=4, depth=1, seed=0)


def test_the_largest_seed_is_accepted():
    model = diffusion.FlowMatching(diffusion.make_mlp_network(units=4, num_classes=2),
                                   num_classes=2, seed=MAX_SEED)
    assert model.noise(2).shape == (2, 2)


def _batch_norm_network(norm_last):
    """An MLP velocity network with batch norm, in the middle or as its last layer
    (where its variables come last in either order)."""
    x, t = keras.Input((2,), name="x"), keras.Input((), name="t")
    label = keras.Input((), dtype="int32", name="label")
    h = keras.layers.Dense(4, name="first")(x)
    if not norm_last:
        h = keras.layers.BatchNormalization(name="norm")(h)
    h = keras.layers.Dense(4, name="second")(h)
    h = keras.layers.Concatenate()([h, keras.layers.Reshape((1,))(t)])
    velocity = keras.layers.Dense(2, name="velocity")(h)
    if norm_last:
        velocity = keras.layers.BatchNormalization(name="norm")(velocity)
    return keras.Model([x, t, label], velocity)


def test_the_average_of_a_network_with_batch_norm_matches_it_variable_by_variable():
    model = diffusion.FlowMatching(_batch_norm_network(norm_last=False), num_classes=2,
                                   ema_momentum=0.0)
    model.compile(optimizer="adam")
    x = np.random.default_rng(15).normal(size=(8, 2)).astype("float32")
    model.fit((x, np.zeros(8, int)), batch_size=8, epochs=1, verbose=0)  # momentum 0: a copy
    for average, weight in zip(model.average.weights, model.network.weights):
        assert average.path.split("/")[-2:] == weight.path.split("/")[-2:]
        np.testing.assert_allclose(np.asarray(average), np.asarray(weight), atol=1e-6)


def test_batch_norm_statistics_move_in_training():
    network = _batch_norm_network(norm_last=True)  # the order bug above does not bite
    model = diffusion.FlowMatching(network, num_classes=2)
    model.compile(optimizer="adam")
    x = (3.0 + np.random.default_rng(16).normal(size=(8, 2))).astype("float32")
    model.fit((x, np.zeros(8, int)), batch_size=8, epochs=1, verbose=0)
    assert float(model.average_steps.value) == 1.0  # it trained
    assert np.abs(np.asarray(network.get_layer("norm").moving_mean)).max() > 0


def test_evaluate_gives_the_loss_or_a_clear_error(field):
    x, labels = _points(8, seed=0)
    try:
        result = field.evaluate((x, labels), verbose=0)
    except (ValueError, NotImplementedError) as error:
        assert "evaluate" in str(error) or "validation" in str(error)
    else:
        assert np.isfinite(result)
