"""Tests of companion.models.vae: shapes, closed forms, bounds, training, saving."""

import math

import numpy as np
import pytest

from companion import data, losses  # selects the JAX backend before keras loads
from companion.models import vae

import jax  # noqa: E402  (after companion: see above)
import keras  # noqa: E402

LATENT = 3


@pytest.fixture(scope="module")
def digits():
    images, labels = data.load("digits", "test", value_range="binary")
    return images[:24], labels[:24]


@pytest.fixture(scope="module")
def trained(digits):
    model = vae.make_model(latent_dim=LATENT, width=4, seed=0)
    model.fit(digits[0], epochs=2, batch_size=8, verbose=0)
    return model


def test_networks_have_the_image_shape_and_two_heads():
    encoder = vae.make_encoder(LATENT, width=4)
    decoder = vae.make_decoder(LATENT, width=4)
    assert [tuple(s) for s in encoder.output_shape] == [(None, LATENT)] * 2
    assert decoder.output_shape == (None, 28, 28, 1)
    assert vae.make_decoder(2, image_shape=(16, 12, 1), width=2).output_shape == (
        None, 16, 12, 1)


@pytest.mark.parametrize("latent_dim", [0, -1, 2.5, True])
def test_bad_latent_dim_raises(latent_dim):
    with pytest.raises(ValueError, match="latent_dim"):
        vae.make_model(latent_dim=latent_dim, width=4)


def test_bad_image_shape_and_beta_raise():
    with pytest.raises(ValueError, match="image_shape"):
        vae.make_encoder(2, image_shape=(30, 30, 1))
    with pytest.raises(ValueError, match="beta"):
        vae.make_model(latent_dim=2, width=4, beta=-1.0)


def test_mismatched_networks_raise():
    with pytest.raises(ValueError, match="decoder"):
        vae.VAE(vae.make_encoder(2, width=4), vae.make_decoder(3, width=4))


def test_fit_rejects_values_outside_unit_interval_and_wrong_shapes(digits):
    model = vae.make_model(latent_dim=2, width=4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.fit(digits[0] * 2.0 - 1.0, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="shape"):
        model.fit(np.zeros((4, 28, 28), "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="shape"):
        model.elbo(np.zeros((4, 32, 32, 1), "float32"))
    with pytest.raises(ValueError, match="z"):
        model.decode(np.zeros((4, 5), "float32"))


def test_sampling_layer_draws_the_given_gaussian():
    layer = vae.Sampling(seed=0)
    mean = np.full((20000, 2), 2.0, "float32")
    log_var = np.full((20000, 2), math.log(0.25), "float32")
    z = np.asarray(layer([mean, log_var]))
    np.testing.assert_allclose(z.mean(axis=0), [2.0, 2.0], atol=0.02)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 0.5], atol=0.02)


def test_kl_per_dimension_sums_to_kl_normal():
    rng = np.random.default_rng(0)
    mean, log_var = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    per_dim = np.asarray(vae.kl_per_dimension(mean, log_var))
    np.testing.assert_allclose(per_dim.sum(axis=1),
                               np.asarray(losses.kl_normal(mean, log_var)), rtol=1e-5)
    assert (per_dim >= 0).all()


def test_one_fit_step_gives_encoder_and_decoder_nonzero_gradients(digits):
    # Adam's first step moves a weight by about -learning_rate * sign(gradient)
    # and leaves it exactly unchanged where the gradient is 0: so every weight
    # changing after one step means every weight got a non-zero gradient.
    model = vae.make_model(latent_dim=LATENT, width=4, seed=1)
    x = digits[0][:8]
    before = {n.name: [np.asarray(v.value) for v in n.trainable_variables]
              for n in (model.encoder, model.decoder)}
    model.fit(x, epochs=1, batch_size=8, verbose=0)
    for network in (model.encoder, model.decoder):
        for old, variable in zip(before[network.name], network.trainable_variables):
            step = np.abs(np.asarray(variable.value) - old)
            assert step.max() > 1e-5, (network.name, variable.path)


def test_kl_warmup_and_tracked_metrics(digits):
    model = vae.make_model(latent_dim=LATENT, width=4, seed=3, beta=2.0)
    warmup = vae.KLWarmup(epochs=2)
    history = model.fit(digits[0], epochs=3, batch_size=24, verbose=0,
                        callbacks=[warmup]).history
    assert set(history) == {"loss", "reconstruction", "kl"} | {
        f"kl_dim_{j}" for j in range(LATENT)}
    assert warmup.weights == [0.0, 1.0, 2.0]
    for epoch, weight in enumerate(warmup.weights):
        expected = history["reconstruction"][epoch] + weight * history["kl"][epoch]
        assert history["loss"][epoch] == pytest.approx(expected, rel=1e-4)
        kl_dims = sum(history[f"kl_dim_{j}"][epoch] for j in range(LATENT))
        assert history["kl"][epoch] == pytest.approx(kl_dims, rel=1e-4)
    assert float(model.kl_weight.numpy()) == 2.0


def _constant_model(probability):
    """q(z|x) = p(z) and p(x|z) = Bernoulli(probability): log p(x) is known."""
    model = vae.make_model(latent_dim=2, width=2, seed=0)
    for layer in model.encoder.layers[-2:]:  # the mean and log_var heads
        for variable in layer.weights:
            variable.assign(np.zeros(variable.shape, "float32"))
    last = model.decoder.layers[-1]
    last.kernel.assign(np.zeros(last.kernel.shape, "float32"))
    last.bias.assign(np.full(last.bias.shape, math.log(probability / (1 - probability)),
                             "float32"))
    return model


def test_bounds_equal_the_exact_log_likelihood_when_q_is_the_posterior(digits):
    x = digits[0][:5]
    model = _constant_model(0.3)
    ones = x.reshape(len(x), -1).sum(axis=1)
    exact = ones * math.log(0.3) + (784 - ones) * math.log(0.7)
    np.testing.assert_allclose(model.log_likelihood(x, num_samples=7, seed=0), exact,
                               rtol=1e-5)
    np.testing.assert_allclose(model.elbo(x, seed=0), exact, rtol=1e-5)


def test_elbo_below_importance_weighted_bound_which_grows_with_k(trained, digits):
    x = digits[0]
    elbo = trained.elbo(x, num_samples=10, seed=0).mean()
    bounds = [trained.log_likelihood(x, num_samples=k, seed=0).mean()
              for k in (1, 10, 200)]
    assert elbo <= bounds[0] + 1.0  # both estimate the ELBO (k = 1)
    assert bounds[0] < bounds[1] < bounds[2]
    assert np.isfinite(bounds).all()


def test_log_weights_average_to_the_elbo(trained, digits):
    x = digits[0][:6]
    weights = trained.log_weights(x, num_samples=400, seed=1)
    assert weights.shape == (6, 400)
    np.testing.assert_allclose(weights.mean(axis=1),
                               trained.elbo(x, num_samples=400, seed=1), atol=0.5)


def test_log_likelihood_is_deterministic_with_a_seed(trained, digits):
    x = digits[0][:3]
    a = trained.log_likelihood(x, num_samples=150, seed=4)
    b = trained.log_likelihood(x, num_samples=150, seed=4)
    np.testing.assert_array_equal(a, b)


def test_sample_is_deterministic_with_a_seed_and_in_unit_range(trained):
    a, b = trained.sample(6, seed=5), trained.sample(6, seed=5)
    assert a.dtype == np.float32 and a.shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert not np.array_equal(a, trained.sample(6, seed=6))
    binary = trained.sample(6, seed=5, binary=True)
    assert set(np.unique(binary)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="num"):
        trained.sample(0)


def test_sample_is_the_sigmoid_of_decoded_prior_draws(trained):
    z = trained.noise(4, seed=7)
    assert z.shape == (4, LATENT) and z.dtype == np.float32
    expected = 1.0 / (1.0 + np.exp(-trained.decode(z)))
    np.testing.assert_allclose(trained.sample(4, seed=7), expected, atol=1e-6)


def test_noise_is_standard_normal_and_deterministic(trained):
    z = trained.noise(4000, seed=2)
    np.testing.assert_array_equal(z, trained.noise(4000, seed=2))
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=0.06)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=0.05)


def test_binary_pixels_use_noise_independent_of_the_codes():
    # With p(x|z) = 1/2 everywhere a pixel is 1 exactly when its uniform is
    # below 1/2. Drawing the codes and the pixels from one key made the m-th
    # pixel uniform a function of the m-th code (pixel = 1 exactly where the
    # code is negative); with two independent keys they agree half the time.
    model = _constant_model(0.5)
    num = 2000
    pixels = model.sample(num, seed=3, binary=True).reshape(num, -1)
    z = model.noise(num, seed=3)
    flat = np.mean((pixels.ravel()[:z.size] == 1) == (z.ravel() < 0))
    per_image = np.mean((pixels[:, :z.shape[1]] == 1) == (z < 0))
    assert abs(flat - 0.5) < 0.05 and abs(per_image - 0.5) < 0.05
    assert abs(pixels.mean() - 0.5) < 0.01


def test_compiled_decode_matches_the_decoder_for_any_count(trained):
    z = np.random.default_rng(0).normal(size=(300, LATENT)).astype("float32")
    expected = np.asarray(trained.decoder(z, training=False))
    np.testing.assert_allclose(trained.decode(z), expected, atol=1e-4)
    np.testing.assert_allclose(trained.decode(z[:5], batch_size=2), expected[:5], atol=1e-4)


def test_kl_per_dimension_method_matches_encoder(trained, digits):
    x = digits[0]
    mean, log_var = trained.encode(x)
    per_dim = trained.kl_per_dimension(x)
    assert per_dim.shape == (LATENT,)
    np.testing.assert_allclose(per_dim.sum(),
                               np.asarray(losses.kl_normal(mean, log_var)).mean(),
                               rtol=1e-5)


def test_save_and_load_round_trip(trained, digits, tmp_path):
    trained.kl_weight.assign(0.25)
    path = tmp_path / "vae.keras"
    trained.save(path)
    loaded = keras.saving.load_model(path)
    x = digits[0][:4]
    for a, b in zip(trained.encode(x), loaded.encode(x)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(trained.sample(3, seed=8), loaded.sample(3, seed=8),
                               atol=1e-6)
    assert float(loaded.kl_weight.numpy()) == 0.25
    assert loaded.beta == trained.beta
    loaded.fit(x, epochs=1, batch_size=4, verbose=0)  # compiled and trainable
    trained.kl_weight.assign(trained.beta)


def test_book_config_and_value_range():
    assert vae.VALUE_RANGE == "binary"
    assert {"epochs", "batch_size", "learning_rate", "latent_dim", "width"} <= set(
        vae.BOOK_CONFIG)
