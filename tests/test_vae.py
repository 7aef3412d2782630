"""Tests of companion.models.vae: shapes, closed forms, bounds, training, saving."""

import math
import random
import re

import numpy as np
import pytest
from scipy.special import expit

from companion import data, evaluation, inference, losses  # selects the JAX backend first
from companion.models import vae

import jax  # noqa: E402  (after companion: see above)
import keras  # noqa: E402
from keras.src.random.seed_generator import global_seed_generator  # noqa: E402

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
    for beta in (-1.0, float("nan"), float("inf"), "1", True, np.float32(-0.5)):
        with pytest.raises(ValueError, match="beta"):
            vae.make_model(latent_dim=2, width=4, beta=beta)
        with pytest.raises(ValueError, match="beta"):
            vae.KLWarmup(epochs=2, beta=beta)


def test_numpy_numbers_are_accepted_for_beta():
    model = vae.make_model(latent_dim=2, width=4, beta=np.float32(0.5))
    assert model.beta == 0.5 and type(model.beta) is float
    assert model.get_config()["beta"] == 0.5
    assert vae.KLWarmup(epochs=2, beta=np.float64(2.0)).beta == 2.0
    assert vae.make_model(latent_dim=2, width=4, beta=np.int64(2)).beta == 2.0


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
    for decode in (model.decode, model.decode_logits):
        with pytest.raises(ValueError, match="z"):
            decode(np.zeros((4, 5), "float32"))


def test_sampling_layer_draws_the_given_gaussian():
    layer = vae.Sampling(seed=0)
    mean = np.full((20000, 2), 2.0, "float32")
    log_var = np.full((20000, 2), math.log(0.25), "float32")
    z = np.asarray(layer([mean, log_var]))
    np.testing.assert_allclose(z.mean(axis=0), [2.0, 2.0], atol=0.02)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 0.5], atol=0.02)


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
    assert set(history) == {"loss", "reconstruction", "kl"}
    assert warmup.weights == [0.0, 1.0, 2.0]
    for epoch, weight in enumerate(warmup.weights):
        expected = history["reconstruction"][epoch] + weight * history["kl"][epoch]
        assert history["loss"][epoch] == pytest.approx(expected, rel=1e-5)
    assert float(model.kl_weight.value) == 2.0


def test_training_minimises_losses_vae_loss(digits):
    # The loss `fit` reports is `losses.vae_loss` of the batch at the weights
    # before the step, with z drawn by the model's own Sampling layer.
    model = vae.make_model(latent_dim=LATENT, width=4, seed=4, beta=0.5)
    x = digits[0][:8]
    state = [[v.value for v in variables] for variables in (
        model.trainable_variables, model.non_trainable_variables)]
    loss, (terms, _) = model.stateless_loss(*state, x, training=True)
    mean, log_var = model.encode(x)
    history = model.fit(x, epochs=1, batch_size=8, shuffle=False, verbose=0).history
    assert history["loss"][0] == pytest.approx(float(loss), rel=1e-6)
    assert float(loss) == pytest.approx(
        float(terms["reconstruction"]) + 0.5 * float(terms["kl"]), rel=1e-6)
    np.testing.assert_allclose(float(terms["kl"]),
                               np.mean(losses.kl_normal(mean, log_var)), rtol=1e-5)


def test_kl_per_dimension_callback_records_each_epoch(digits):
    model = vae.make_model(latent_dim=LATENT, width=4, seed=3)
    fixed = digits[0][:10]
    every_epoch, every_other = vae.KLPerDimension(fixed), vae.KLPerDimension(fixed, every=2)
    history = model.fit(digits[0], epochs=3, batch_size=12, verbose=0,
                        callbacks=[every_epoch, every_other]).history
    assert every_epoch.epochs == [1, 2, 3] and every_other.epochs == [2]
    assert [len(row) for row in every_epoch.history] == [LATENT] * 3
    assert every_other.history == [every_epoch.history[1]]
    np.testing.assert_allclose(every_epoch.history[-1], model.kl_per_dimension(fixed),
                               rtol=1e-6)
    assert not any(name.startswith("kl_dim") for name in history)
    with pytest.raises(ValueError, match="every"):
        vae.KLPerDimension(fixed, every=0)


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


def test_importance_weighted_bound_is_computed_from_the_log_weights(trained, digits):
    x = digits[0]
    for k in (1, 10):
        weights = trained.log_weights(x, num_samples=k, seed=0)
        np.testing.assert_allclose(trained.log_likelihood(x, num_samples=k, seed=0),
                                   evaluation.importance_weighted_bound(weights), rtol=1e-12)
    bounds = [trained.log_likelihood(x, num_samples=k, seed=0).mean() for k in (1, 10, 200)]
    assert bounds[0] < bounds[1] < bounds[2]
    assert np.isfinite(bounds).all()


def test_elbo_and_log_weights_share_samples_and_agree_in_expectation(trained, digits):
    # With one seed both use the same draws z_s: log w_s = log p(x|z_s) + r_s
    # and ELBO = mean_s log p(x|z_s) - KL, where r_s = log p(z_s) - log q(z_s|x)
    # has expectation exactly -KL. So mean_s log w_s - ELBO = mean_s r_s + KL is
    # a mean of S independent zero-mean terms: within 4 standard errors of 0.
    x, samples = digits[0][:6], 400
    weights = trained.log_weights(x, num_samples=samples, seed=1)
    assert weights.shape == (6, samples)
    mean, log_var = trained.encode(x)
    kl = np.asarray(losses.kl_normal(mean, log_var), "float64")
    log_px, ratio = trained._sample_terms(x, samples, seed=1)
    np.testing.assert_array_equal(weights, log_px + ratio)
    gap = weights.mean(axis=1) - trained.elbo(x, num_samples=samples, seed=1)
    np.testing.assert_allclose(gap, ratio.mean(axis=1) + kl, rtol=1e-9, atol=1e-9)
    standard_error = ratio.std(axis=1, ddof=1) / math.sqrt(samples)
    assert (np.abs(gap) <= 4 * standard_error).all(), (gap, standard_error)


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


def test_sample_is_the_decoded_prior_draws(trained):
    z = trained.noise(4, seed=7)
    assert z.shape == (4, LATENT) and z.dtype == np.float32
    decoded = trained.decode(z)
    assert decoded.dtype == np.float32 and 0.0 <= decoded.min() and decoded.max() <= 1.0
    np.testing.assert_allclose(decoded, expit(trained.decode_logits(z)), rtol=1e-6)
    np.testing.assert_allclose(trained.sample(4, seed=7), decoded, atol=1e-6)


def test_binary_samples_are_bernoulli_draws_of_the_means(trained):
    # Same seed, same codes: the binary pixels are independent Bernoulli(p)
    # draws of the means p. Overall and within each band of p, the fraction
    # of ones must match the mean of p within 4 binomial standard errors.
    num = 400
    means = trained.sample(num, seed=11).ravel().astype("float64")
    pixels = trained.sample(num, seed=11, binary=True).ravel()
    bands = np.digitize(means, [0.02, 0.2, 0.5, 0.8, 0.98])
    for chosen in [np.ones_like(means, bool)] + [bands == b for b in range(6)]:
        count = chosen.sum()
        if count < 100:
            continue
        p = means[chosen]
        standard_error = math.sqrt(np.sum(p * (1 - p))) / count
        assert abs(pixels[chosen].mean() - p.mean()) <= 4 * standard_error + 1e-6


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
    np.testing.assert_allclose(trained.decode_logits(z), expected, atol=1e-4)
    np.testing.assert_allclose(trained.decode_logits(z[:5], batch_size=2), expected[:5],
                               atol=1e-4)


def test_evaluate_reports_the_training_terms_on_held_out_images(digits):
    # q(z|x) = p(z) and p(x|z) = Bernoulli(0.3): the loss is exactly -log p(x).
    x = digits[0][:10]
    model = _constant_model(0.3)
    ones = x.reshape(len(x), -1).sum(axis=1)
    exact = ones * math.log(0.3) + (784 - ones) * math.log(0.7)
    before = [np.asarray(v.value) for v in model.trainable_variables]
    result = model.evaluate(x, batch_size=5, verbose=0, return_dict=True)
    assert set(result) == {"loss", "reconstruction", "kl"}
    assert result["reconstruction"] == pytest.approx(-exact.mean(), rel=1e-5)
    assert result["loss"] == pytest.approx(-exact.mean(), rel=1e-5)
    assert abs(result["kl"]) < 1e-6
    for old, variable in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(np.asarray(variable.value), old)


def test_fit_with_validation_data_reports_validation_terms(digits):
    model = vae.make_model(latent_dim=LATENT, width=4, seed=5, beta=2.0)
    history = model.fit(digits[0][:16], validation_data=digits[0][16:], epochs=1,
                        batch_size=8, verbose=0).history
    assert set(history) == {"loss", "reconstruction", "kl",
                            "val_loss", "val_reconstruction", "val_kl"}
    expected = history["val_reconstruction"][0] + 2.0 * history["val_kl"][0]
    assert history["val_loss"][0] == pytest.approx(expected, rel=1e-5)


def test_reconstruct_decodes_the_posterior_mean(trained, digits):
    x = digits[0][:5]
    mean, _ = trained.encode(x)
    reconstructions = trained.reconstruct(x)
    assert reconstructions.shape == x.shape and reconstructions.dtype == np.float32
    np.testing.assert_allclose(reconstructions, trained.decode(mean), atol=1e-6)
    drawn = trained.reconstruct(x, sample=True, seed=2)
    np.testing.assert_array_equal(drawn, trained.reconstruct(x, sample=True, seed=2))
    assert not np.allclose(drawn, reconstructions)
    assert 0.0 <= drawn.min() and drawn.max() <= 1.0
    np.testing.assert_allclose(_constant_model(0.3).reconstruct(x), 0.3, rtol=1e-5)


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
    assert float(loaded.kl_weight.value) == 0.25
    assert loaded.beta == trained.beta
    loaded.fit(x, epochs=1, batch_size=4, verbose=0)  # compiled and trainable
    trained.kl_weight.assign(trained.beta)


def test_book_config_and_value_range():
    assert vae.VALUE_RANGE == "binary"
    assert {"epochs", "batch_size", "learning_rate", "latent_dim", "width"} <= set(
        vae.BOOK_CONFIG)


# Mixed precision ---------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_and_returns_float32(policy, dtype_policy, digits):
    with dtype_policy(policy):
        model = vae.make_model(latent_dim=LATENT, width=4, seed=0, learning_rate=1e-2)
        assert model.decoder.layers[-1].compute_dtype == policy.removeprefix("mixed_")
        loss = model.fit(digits[0], epochs=4, batch_size=4, verbose=0).history["loss"]
        assert np.isfinite(loss).all() and loss[-1] < loss[0] - 50, loss
        images = model.sample(5, seed=0)
        assert images.dtype == np.float32 and 0.0 <= images.min() and images.max() <= 1.0
        mean, log_var = model.encode(digits[0][:3])
        assert mean.dtype == log_var.dtype == model.decode_logits(mean).dtype == np.float32
        assert np.isfinite(model.log_likelihood(digits[0][:3], num_samples=4, seed=0)).all()


def test_mixed_float16_takes_the_float32_step(digits, dtype_policy):
    # Under mixed float16, Keras' LossScaleOptimizer divides every gradient by
    # its loss scale before the update: the step must differentiate the loss
    # multiplied by that scale, or each step is the scale (here 64) times too
    # small. Plain SGD, so the step is the gradient. (A small initial scale: the
    # default, 2**15, overflows float16 on the first steps, which are skipped.)
    x = digits[0][:8]
    steps = {}
    for policy in ("float32", "mixed_float16"):
        with dtype_policy(policy):
            model = vae.make_model(latent_dim=LATENT, width=4, seed=2)
            optimizer = keras.optimizers.SGD(0.01)
            if policy == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=64.0)
            model.compile(optimizer=optimizer)
            before = [np.asarray(v.value) for v in model.trainable_variables]
            model.fit(x, epochs=1, batch_size=8, shuffle=False, verbose=0)
        steps[policy] = np.concatenate([(np.asarray(v.value) - old).ravel() for old, v in
                                        zip(before, model.trainable_variables)])
    ratio = np.linalg.norm(steps["mixed_float16"]) / np.linalg.norm(steps["float32"])
    assert 0.8 < ratio < 1.25, ratio


# Compiled inference ------------------------------------------------------------------


def test_inference_compiles_one_program_a_purpose_whatever_the_size(digits):
    model = vae.make_model(latent_dim=2, width=2, seed=0)
    x = np.concatenate([digits[0]] * 13)[:300]
    z = np.random.default_rng(0).normal(size=(300, 2)).astype("float32")
    purposes = 6  # encode, decode, noise, sample, sample_binary, sample_terms
    for num in (1, 7, 300):
        assert model.encode(x[:num])[0].shape == (num, 2)
        assert model.decode(z[:num]).shape == model.decode_logits(z[:num]).shape == (
            num, 28, 28, 1)
        assert model.noise(num, seed=0).shape == (num, 2)
        assert model.sample(num, seed=0).shape == (num, 28, 28, 1)
        assert model.sample(num, binary=True).shape == (num, 28, 28, 1)
        assert model.reconstruct(x[:num], sample=True, seed=0).shape == (num, 28, 28, 1)
        assert model.log_weights(x[:num], num_samples=3, seed=0).shape == (num, 3)
        assert model.log_likelihood(x[:2], num_samples=num, seed=0).shape == (2,)
        assert model.elbo(x[:num], num_samples=2).shape == (num,)
        assert inference.compile_count(model) == purposes, model._compiled_inference


def test_draws_do_not_depend_on_the_request_size(trained, digits):
    for binary in (False, True):
        np.testing.assert_array_equal(trained.sample(1000, seed=4, binary=binary)[:10],
                                      trained.sample(10, seed=4, binary=binary))
    codes = trained.noise(600, seed=4)
    np.testing.assert_array_equal(codes[:10], trained.noise(10, seed=4))
    chunk = inference.CHUNK  # each chunk draws from its own key
    assert not np.allclose(codes[:chunk], codes[chunk:2 * chunk])
    x = digits[0]
    np.testing.assert_array_equal(trained.log_weights(x, num_samples=50, seed=4)[:3],
                                  trained.log_weights(x[:3], num_samples=50, seed=4))
    mean, log_var = trained.encode(x)
    for a, b in zip((mean[:5], log_var[:5]), trained.encode(x[:5])):
        np.testing.assert_allclose(a, b, atol=1e-6)


# Input checks ------------------------------------------------------------------------


def test_fit_accepts_a_python_generator_of_batches(digits):
    model = vae.make_model(latent_dim=2, width=4)

    def batches(wrap):
        for start in range(0, 24, 8):
            yield wrap(digits[0][start:start + 8])

    history = model.fit(batches(lambda batch: (batch,)), epochs=1, verbose=0,
                        shuffle=False, steps_per_epoch=3).history
    assert np.isfinite(history["loss"]).all()
    with pytest.raises(ValueError, match="tuple"):  # Keras' own clear message
        model.fit(batches(lambda batch: batch), epochs=1, verbose=0, shuffle=False)


def test_evaluate_and_validation_data_are_checked(digits):
    model = vae.make_model(latent_dim=2, width=4)
    with pytest.raises(ValueError, match=r"`x` values must lie in \[0, 1\]"):
        model.evaluate(digits[0] * 2.0 - 1.0, verbose=0)
    with pytest.raises(ValueError, match="`x` must have shape"):
        model.evaluate(np.zeros((4, 32, 32, 1), "float32"), verbose=0)
    with pytest.raises(ValueError, match="`x` must be numbers"):
        model.evaluate([np.zeros((28, 28, 1)), np.zeros((14, 14, 1))], verbose=0)
    with pytest.raises(ValueError, match="`validation_data` values"):
        model.fit(digits[0], validation_data=digits[0] * 2.0, epochs=1, verbose=0)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_bad_batch_sizes_raise(batch_size, digits):
    model = vae.make_model(latent_dim=2, width=4)
    x, z = digits[0][:4], np.zeros((4, 2), "float32")
    calls = [lambda: model.fit(x, batch_size=batch_size, epochs=1, verbose=0),
             lambda: model.evaluate(x, batch_size=batch_size, verbose=0),
             lambda: model.encode(x, batch_size=batch_size),
             lambda: model.decode(z, batch_size=batch_size),
             lambda: model.decode_logits(z, batch_size=batch_size)]
    for call in calls:
        with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1"):
            call()


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "0"])
def test_bad_seeds_raise(seed, digits):
    model = vae.make_model(latent_dim=2, width=4)
    x = digits[0][:2]
    calls = [lambda: model.sample(2, seed=seed), lambda: model.noise(2, seed=seed),
             lambda: model.reconstruct(x, sample=True, seed=seed),
             lambda: model.log_weights(x, seed=seed), lambda: model.elbo(x, seed=seed),
             lambda: model.log_likelihood(x, num_samples=2, seed=seed),
             lambda: vae.make_model(latent_dim=2, width=4, seed=seed),
             lambda: vae.make_encoder(2, width=4, seed=seed),
             lambda: vae.make_decoder(2, width=4, seed=seed),
             lambda: vae.VAE(model.encoder, model.decoder, seed=seed),
             lambda: vae.Sampling(seed=seed)]
    for call in calls:
        with pytest.raises(ValueError, match="`seed` must be None or an integer"):
            call()


def test_the_largest_seed_is_accepted():
    model = vae.make_model(latent_dim=2, width=4, seed=2**32 - 1)
    assert model.sample(2, seed=2**32 - 1).shape == (2, 28, 28, 1)


def test_empty_inputs_raise_naming_the_argument():
    model = vae.make_model(latent_dim=2, width=4)
    with pytest.raises(ValueError, match="`x` must hold at least one image"):
        model.encode(np.zeros((0, 28, 28, 1), "float32"))
    with pytest.raises(ValueError, match="`z` must have shape"):
        model.decode(np.zeros((0, 2), "float32"))


# Keras' own methods ------------------------------------------------------------------


def test_only_the_intended_keras_methods_are_overridden():
    # A method of keras.Model's name with another signature breaks Keras code
    # that calls it (the JAX trainer's compute_loss_and_updates, for one).
    overridden = {name for name in vars(vae.VAE)
                  if hasattr(keras.Model, name) and not name.startswith("__")}
    assert overridden == {"call", "fit", "evaluate", "train_step", "test_step", "metrics",
                          "get_config", "from_config"}
    assert vae.VAE.compute_loss_and_updates is keras.Model.compute_loss_and_updates


# Global state ------------------------------------------------------------------------


def _next_global_draws():
    return (random.random(), float(np.random.random()),
            np.asarray(global_seed_generator().next()).tolist())


def test_make_model_leaves_global_random_state_alone():
    keras.utils.set_random_seed(123)
    expected = _next_global_draws()
    keras.utils.set_random_seed(123)
    vae.make_model(latent_dim=2, width=4, seed=7)
    assert _next_global_draws() == expected


def test_the_seed_alone_fixes_the_initial_weights():
    def weights(seed, global_seed):
        keras.utils.set_random_seed(global_seed)
        model = vae.make_model(latent_dim=2, width=4, seed=seed)
        return [np.asarray(v.value) for v in model.weights]

    same = weights(3, global_seed=0)
    for a, b in zip(same, weights(3, global_seed=1)):
        np.testing.assert_array_equal(a, b)
    kernels = [a for a, b in zip(same, weights(4, global_seed=0)) if not np.array_equal(a, b)]
    assert len(kernels) >= 8  # every kernel of both networks differs
    model = vae.make_model(latent_dim=2, width=4, seed=3)
    encoder_kernel = model.encoder.layers[1].kernel.value
    decoder_kernel = model.decoder.layers[-1].kernel.value
    assert not np.allclose(np.ravel(encoder_kernel)[:9], np.ravel(decoder_kernel)[:9])


# Docstrings --------------------------------------------------------------------------


def test_the_module_records_no_tuning_runs():
    # A docstring says what a configuration is and why; timings, experiment
    # results and "we tried" lists belong to the benchmarks or the book's pages.
    record = re.compile(r"\b\d+(\.\d+)? ?(s|sec|seconds?|ms|minutes?)\b|\d nats?\b|"
                        r"\btried\b|\bfaster\b|\bslower\b|hundredths", re.IGNORECASE)
    with open(vae.__file__, encoding="utf-8") as source:
        found = [line.strip() for line in source if record.search(line)]
    assert found == []


def test_reparameterise_is_mean_plus_standard_deviation_times_noise():
    mean = np.array([[1.0, -2.0]], "float32")
    log_var = np.log(np.array([[4.0, 0.25]], "float32"))
    noise = np.array([[0.5, 2.0]], "float32")
    np.testing.assert_allclose(vae.reparameterise(mean, log_var, noise), [[2.0, -1.0]],
                               rtol=1e-6)
    np.testing.assert_allclose(vae.reparameterise(mean, np.full((1, 2), -200.0), noise), mean)
    with pytest.raises(ValueError, match=r"noise.shape=\(1, 3\)"):
        vae.reparameterise(mean, log_var, np.zeros((1, 3), "float32"))


def test_active_dimensions_counts_kl_above_the_book_threshold():
    assert vae.ACTIVE_KL_NATS == 0.1
    assert vae.active_dimensions([0.0, 0.1, 0.1001, 2.0]) == 2  # strictly above
    assert vae.active_dimensions(np.array([0.3, 0.3]), threshold=0.5) == 0
    with pytest.raises(ValueError, match="one-dimensional"):
        vae.active_dimensions(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="threshold"):
        vae.active_dimensions([1.0], threshold=-1)
