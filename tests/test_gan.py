"""Tests of companion.models.gan: the corrected DCGAN and the generic GAN model."""

import numpy as np
import pytest

import companion  # noqa: F401  (selects the JAX backend)
import keras

from companion import data
from companion.models import gan, toy
from companion.training import SampleGrid


@pytest.fixture(scope="module")
def digits():
    images, _ = data.load("digits", value_range=gan.VALUE_RANGE)
    return images[:96]


@pytest.fixture(scope="module")
def trained(digits):
    model = gan.make_model(width=4, latent_dim=8, seed=0)
    history = model.fit(digits, epochs=2, batch_size=32, verbose=0)
    return model, history


# Networks -------------------------------------------------------------------------


def test_generator_upsamples_7_14_28_to_one_channel_in_tanh_range():
    generator = gan.make_generator(latent_dim=8, width=4)
    shapes = [row["output_shape"] for row in gan.layer_table(generator)]
    assert (None, 7, 7, 16) in shapes and (None, 14, 14, 4) in shapes
    assert shapes[-1] == (None, 28, 28, 1)
    z = np.random.default_rng(0).normal(size=(5, 8)).astype("float32") * 50
    images = np.asarray(generator(z))
    assert images.min() >= -1.0 and images.max() <= 1.0


def test_discriminator_accepts_generator_output_and_returns_logits():
    generator = gan.make_generator(latent_dim=8, width=4)
    discriminator = gan.make_discriminator(width=4)
    logits = np.asarray(discriminator(generator(np.zeros((3, 8), "float32"))))
    assert logits.shape == (3, 1)
    # Logits, not probabilities: no sigmoid at the end.
    assert discriminator.layers[-1].get_config()["activation"] == "linear"


@pytest.mark.parametrize("width, k", [(4, 5), (8, 5), (8, 3)])
def test_parameter_counts_match_the_closed_form(width, k):
    latent, w = 8, width
    dense = latent * 49 * 4 * w + 4 * 49 * 4 * w  # no bias; BN has 4 per unit
    convs = k * k * 4 * w * 2 * w + 4 * 2 * w + k * k * 2 * w * w + 4 * w
    output = k * k * w * 1 + 1
    generator = gan.make_generator(latent, width=w, kernel_size=k)
    assert generator.count_params() == dense + convs + output
    # Of the 4 numbers a batch-normalised unit has, 2 (the moving mean and
    # variance) are not trainable.
    moving = 2 * (49 * 4 * w + 2 * w + w)
    assert sum(int(np.prod(v.shape)) for v in generator.non_trainable_variables) == moving
    critic = (k * k * 1 * w + w) + (k * k * w * 2 * w + 2 * w) + (7 * 7 * 2 * w + 1)
    assert gan.make_discriminator(width=w, kernel_size=k).count_params() == critic


@pytest.mark.parametrize("shape", [(28, 28), (30, 28, 1), (28, 28, 0)])
def test_bad_image_shape_raises(shape):
    with pytest.raises(ValueError, match="image_shape"):
        gan.make_generator(image_shape=shape)


def test_mismatched_networks_raise():
    generator = gan.make_generator(latent_dim=8, width=4)
    discriminator = gan.make_discriminator(image_shape=(32, 32, 1), width=4)
    with pytest.raises(ValueError, match="discriminator"):
        gan.GAN(generator, discriminator, latent_dim=8)
    with pytest.raises(ValueError, match="latent_dim"):
        gan.GAN(generator, gan.make_discriminator(width=4), latent_dim=9)


def test_unknown_generator_loss_raises():
    with pytest.raises(ValueError, match="generator_loss"):
        gan.make_model(width=4, latent_dim=8, generator_loss="hinge")


# Training -------------------------------------------------------------------------


def test_fit_tracks_finite_metrics_in_range(trained):
    _, history = trained
    logs = history.history
    assert sorted(logs) == ["d_fake", "d_loss", "d_real", "g_grad_norm", "g_loss"]
    for values in logs.values():
        assert len(values) == 2 and np.isfinite(values).all()
    assert all(0 < v < 1 for v in logs["d_real"] + logs["d_fake"])
    assert all(v > 0 for v in logs["g_grad_norm"])


def _probe_gan(generator_loss, learning_rate):
    """A GAN whose gradients have closed forms.

    G(z) = b (the Dense kernel sees 0 * z), D(x) = sigmoid(w x + c).
    """
    z = keras.Input((2,))
    zero = keras.layers.Lambda(lambda t: t * 0.0)(z)
    generator = keras.Model(z, keras.layers.Dense(1, name="g_dense")(zero))
    x = keras.Input((1,))
    discriminator = keras.Model(x, keras.layers.Dense(1, name="d_dense")(x))
    generator.set_weights([np.zeros((2, 1), "float32"), np.array([1.0], "float32")])
    discriminator.set_weights([np.array([[0.5]], "float32"), np.array([0.1], "float32")])
    model = gan.GAN(generator, discriminator, latent_dim=2,
                    generator_loss=generator_loss, seed=0)
    model.compile(d_optimizer=keras.optimizers.SGD(learning_rate),
                  g_optimizer=keras.optimizers.SGD(learning_rate))
    return model


def _sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


def _softplus(t):
    return np.logaddexp(0.0, t)


@pytest.mark.parametrize("generator_loss", ["non-saturating", "saturating"])
def test_each_loss_updates_only_its_own_network(generator_loss):
    rate = 0.5
    model = _probe_gan(generator_loss, rate)
    real = np.array([[-1.0], [0.5], [2.0], [1.0]], "float32")
    history = model.fit(real, epochs=1, batch_size=4, shuffle=False, verbose=0)
    w, c, b = 0.5, 0.1, 1.0
    # d_loss = mean softplus(-(w x + c)) + softplus(w b + c), gradient w.r.t. (w, c):
    s_real = _sigmoid(-(w * real[:, 0] + c))
    s_fake = _sigmoid(w * b + c)
    grad_w = np.mean(-s_real * real[:, 0]) + s_fake * b
    grad_c = np.mean(-s_real) + s_fake
    # g_loss gradient w.r.t. b only (the summed loss would add s_fake * w):
    if generator_loss == "non-saturating":
        grad_b = -_sigmoid(-(w * b + c)) * w
    else:
        grad_b = -_sigmoid(w * b + c) * w
    new_w, new_c = [float(np.ravel(v)[0]) for v in model.discriminator.get_weights()]
    new_b = float(model.generator.get_weights()[1][0])
    assert new_w == pytest.approx(w - rate * grad_w, abs=1e-5)
    assert new_c == pytest.approx(c - rate * grad_c, abs=1e-5)
    assert new_b == pytest.approx(b - rate * grad_b, abs=1e-5)
    assert np.allclose(model.generator.get_weights()[0], 0.0)  # its gradient is 0
    assert history.history["g_grad_norm"][0] == pytest.approx(abs(grad_b), rel=1e-4)


def test_training_is_deterministic_for_a_seed(digits):
    weights = []
    for _ in range(2):
        model = gan.make_model(width=4, latent_dim=8, seed=5, dropout=0.3)
        model.fit(digits, epochs=1, batch_size=32, verbose=0)
        weights.append([np.array(v) for v in model.variables])
    for first, second in zip(*weights):
        np.testing.assert_array_equal(first, second)


def test_discriminator_dropout_state_advances_with_every_call(digits):
    model = gan.make_model(width=4, latent_dim=8, dropout=0.3)
    seeds = model.discriminator.non_trainable_variables
    start = [np.array(v) for v in seeds]
    model.fit(digits[:64], epochs=1, batch_size=32, verbose=0)
    # Three calls a step (fakes for G's loss, real and fakes for D's), two steps.
    for before, after in zip(start, seeds):
        np.testing.assert_array_equal(np.array(after) - before, [0, 6])


def test_evaluate_judges_real_data_and_generated_data_without_training():
    model = _probe_gan("non-saturating", 0.5)
    real = np.array([[-1.0], [0.5], [2.0], [1.0]], "float32")
    before = [np.array(v) for v in model.trainable_variables]
    logs = model.evaluate(real, batch_size=4, verbose=0, return_dict=True)
    w, c, b = 0.5, 0.1, 1.0
    assert logs["d_loss"] == pytest.approx(
        np.mean(_softplus(-(w * real[:, 0] + c))) + _softplus(w * b + c), rel=1e-5)
    assert logs["g_loss"] == pytest.approx(_softplus(-(w * b + c)), rel=1e-5)
    assert logs["d_real"] == pytest.approx(np.mean(_sigmoid(w * real[:, 0] + c)), rel=1e-5)
    assert logs["d_fake"] == pytest.approx(_sigmoid(w * b + c), rel=1e-5)
    for old, new in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(old, np.array(new))


def test_fit_with_validation_data_reports_validation_losses(digits):
    model = gan.make_model(width=4, latent_dim=8)
    history = model.fit(digits[:64], epochs=1, batch_size=32, verbose=0,
                        validation_data=(digits[64:],))
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert np.isfinite(history.history["val_" + name]).all()


def test_saturating_gradient_vanishes_when_fakes_are_rejected():
    norms = {}
    for loss in gan.GENERATOR_LOSSES:
        model = _probe_gan(loss, 0.0)
        model.discriminator.set_weights([np.array([[4.0]], "float32"),
                                         np.array([-8.0], "float32")])  # D(b)≈0.02
        history = model.fit(np.ones((4, 1), "float32"), epochs=1, batch_size=4,
                            verbose=0)
        norms[loss] = history.history["g_grad_norm"][0]
    assert norms["saturating"] < 0.05 * norms["non-saturating"]


def test_sample_grid_callback_records_a_changing_grid(digits):
    model = gan.make_model(width=4, latent_dim=8, seed=1)
    grid = SampleGrid(num=4, seed=3)
    model.fit(digits, epochs=2, batch_size=32, verbose=0, callbacks=[grid])
    assert grid.epochs == [0, 1, 2]
    assert all(g.shape == (4, 28, 28, 1) for g in grid.grids)
    assert not np.allclose(grid.grids[0], grid.grids[-1])


# Sampling ---------------------------------------------------------------------------


def test_sample_is_float32_unit_range_and_deterministic(trained):
    model, _ = trained
    first = model.sample(6, seed=7)
    assert first.shape == (6, 28, 28, 1) and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    np.testing.assert_array_equal(first, model.sample(6, seed=7))
    assert not np.allclose(first, model.sample(6, seed=8))
    raw = model.generate(6, seed=7)
    np.testing.assert_allclose(first, (raw + 1) / 2, atol=1e-6)


def test_noise_without_seed_draws_from_the_model_seed_generator():
    first, second = (gan.make_model(width=4, latent_dim=8, seed=3) for _ in range(2))
    a = first.noise(4)
    keras.utils.set_random_seed(123)  # the global RNG plays no part
    np.testing.assert_array_equal(a, second.noise(4))
    assert not np.allclose(a, first.noise(4))  # the model's generator advanced


def test_decode_matches_sample_for_the_same_noise(trained):
    model, _ = trained
    np.testing.assert_allclose(model.decode(model.noise(3, seed=2)),
                               model.sample(3, seed=2), atol=1e-6)


def test_generate_in_padded_batches_matches_one_batch(trained):
    model, _ = trained
    np.testing.assert_allclose(model.generate(5, seed=3, batch_size=2),
                               model.generate(5, seed=3), atol=1e-6)


def test_sampler_is_compiled_once_and_reused(trained, monkeypatch):
    model, _ = trained
    traces = []
    call = model.generator.stateless_call

    def counting_call(*args, **kwargs):
        traces.append(1)  # runs only while jax.jit traces the sampler
        return call(*args, **kwargs)

    monkeypatch.setattr(model.generator, "stateless_call", counting_call)
    model._jitted_generator = None
    first = model.sample(13, seed=0)
    second = model.sample(13, seed=1)
    assert len(traces) == 1
    assert not np.allclose(first, second)


@pytest.mark.parametrize("num", [0, -1, 2.5])
def test_bad_num_raises(trained, num):
    model, _ = trained
    with pytest.raises(ValueError, match="num"):
        model.sample(num)


def test_toy_gan_sample_points_to_generate():
    model = toy.make_model(data_dim=2, latent_dim=2, width=4)
    with pytest.raises(ValueError, match="generate"):
        model.sample(2)
    assert model.generate(3, seed=0).shape == (3, 2)


# Input checks ----------------------------------------------------------------------


def test_fit_rejects_bad_images(trained, digits):
    model, _ = trained
    with pytest.raises(ValueError, match="shape"):
        model.fit(digits[:, :14], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        model.fit(digits * 2.0, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="symmetric"):
        model.fit((digits + 1) / 2, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="symmetric"):
        model.evaluate((digits + 1) / 2, verbose=0)


def test_only_data_that_looks_scaled_to_unit_range_is_rejected(digits):
    model = gan.make_model(width=4, latent_dim=8)
    # All >= 0 but no black background: bright images in [-1, 1] train.
    bright = np.clip(digits[:32] + 1.0, 0.2, 1.0)
    model.fit(bright, epochs=1, batch_size=32, verbose=0)
    grey = np.full((32, 28, 28, 1), 0.5, "float32")
    model.fit(grey, epochs=1, batch_size=32, verbose=0)


def test_fit_accepts_a_python_generator_of_batches(digits):
    model = gan.make_model(width=4, latent_dim=8)

    def batches(wrap):
        for start in range(0, 96, 32):
            yield wrap(digits[start:start + 32])

    history = model.fit(batches(lambda batch: (batch,)), epochs=1, verbose=0, shuffle=False,
                        steps_per_epoch=3)
    assert np.isfinite(history.history["d_loss"]).all()
    with pytest.raises(ValueError, match="tuple"):  # Keras' own clear message
        model.fit(batches(lambda batch: batch), epochs=1, verbose=0, shuffle=False)


# Saving -----------------------------------------------------------------------------


def test_save_and_load_give_identical_samples(trained, tmp_path):
    model, _ = trained
    path = tmp_path / "gan.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, gan.GAN)
    assert loaded.latent_dim == model.latent_dim
    np.testing.assert_array_equal(loaded.sample(5, seed=11), model.sample(5, seed=11))
    # The optimisers and their state come back too.
    assert float(loaded.d_optimizer.learning_rate) == pytest.approx(
        float(model.d_optimizer.learning_rate))
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables) > 6
    for old, new in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.array(old), np.array(new))


def test_book_config_matches_make_model_defaults():
    model = gan.make_model()
    assert model.latent_dim == gan.BOOK_CONFIG["latent_dim"]
    kernels = {layer.get_config()["kernel_size"] for network in (model.generator,
               model.discriminator) for layer in network.layers
               if "kernel_size" in layer.get_config()}
    assert kernels == {(gan.BOOK_CONFIG["kernel_size"],) * 2}
    rates = {layer.get_config()["rate"] for layer in model.discriminator.layers
             if isinstance(layer, keras.layers.Dropout)}
    assert rates == {gan.BOOK_CONFIG["dropout"]}
    assert float(model.g_optimizer.learning_rate) == pytest.approx(
        gan.BOOK_CONFIG["g_learning_rate"])
    assert gan.VALUE_RANGE in data.VALUE_RANGES


def test_cosine_decay_reaches_zero_after_decay_steps(digits):
    assert gan.decay_steps_for(96, epochs=3, batch_size=32) == 9
    assert gan.decay_steps_for(97, epochs=3, batch_size=32) == 12
    model = gan.make_model(width=4, latent_dim=8, decay_steps=6)
    assert float(model.d_optimizer.learning_rate) == pytest.approx(
        gan.BOOK_CONFIG["d_learning_rate"])
    model.fit(digits, epochs=2, batch_size=32, verbose=0)  # 3 steps an epoch
    assert float(model.d_optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    assert float(model.g_optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)


def test_resumed_run_continues_on_a_stretched_schedule(digits, tmp_path):
    model = gan.make_model(width=4, latent_dim=8, decay_steps=6)
    model.fit(digits, epochs=2, batch_size=32, verbose=0)  # 6 steps: rate 0
    model.save(tmp_path / "gan.keras")
    loaded = keras.saving.load_model(tmp_path / "gan.keras")
    with pytest.raises(ValueError, match="total_steps"):
        gan.resize_schedule(loaded, 5)
    gan.resize_schedule(loaded, 12)
    rate = gan.BOOK_CONFIG["d_learning_rate"]
    # Half way through a 12-step cosine: half the initial rate.
    assert float(loaded.d_optimizer.learning_rate) == pytest.approx(rate / 2, rel=1e-5)
    assert float(loaded.g_optimizer.learning_rate) == pytest.approx(rate / 2, rel=1e-5)
    before = [np.array(v) for v in loaded.generator.trainable_variables]
    loaded.fit(digits, epochs=2, batch_size=32, verbose=0)
    assert any(not np.allclose(b, np.array(v))
               for b, v in zip(before, loaded.generator.trainable_variables))
    assert int(loaded.optimizer.iterations) == 12
    assert float(loaded.d_optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    # The stretched schedule is saved with the model.
    loaded.save(tmp_path / "again.keras")
    again = keras.saving.load_model(tmp_path / "again.keras")
    assert again.d_optimizer._learning_rate.decay_steps == 12
