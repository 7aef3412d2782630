"""Tests of companion.models.gan: the corrected DCGAN and the generic GAN model."""

import random

import numpy as np
import pytest

import companion  # noqa: F401  (selects the JAX backend)
import keras

from companion import data, inference
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


def _global_draws():
    """One number from each global generator: Python's, NumPy's and Keras'."""
    return random.random(), float(np.random.random()), float(keras.random.uniform(()))


def test_make_model_changes_no_global_random_state():
    keras.utils.set_random_seed(1)
    expected = _global_draws()
    keras.utils.set_random_seed(1)
    first = gan.make_model(width=4, latent_dim=8, seed=3, dropout=0.3)
    assert _global_draws() == expected
    # The seed alone decides the weights, whatever the global state.
    keras.utils.set_random_seed(2)
    second = gan.make_model(width=4, latent_dim=8, seed=3, dropout=0.3)
    other = gan.make_model(width=4, latent_dim=8, seed=4, dropout=0.3)
    assert len(first.variables) == len(second.variables)
    for a, b in zip(first.variables, second.variables):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    assert not np.allclose(first.generator.get_weights()[0],
                           other.generator.get_weights()[0])


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


# The probe GAN's starting weights: D(x) = sigmoid(w x + c), G(z) = b.
_PROBE_WEIGHTS = (0.5, 0.1, 1.0)


def _probe_gradients(real, generator_loss):
    """The closed-form gradients of the probe GAN's first step, ``(dw, dc, db)``."""
    w, c, b = _PROBE_WEIGHTS
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
    return grad_w, grad_c, grad_b


@pytest.mark.parametrize("generator_loss", ["non-saturating", "saturating"])
def test_each_loss_updates_only_its_own_network(generator_loss):
    rate = 0.5
    model = _probe_gan(generator_loss, rate)
    real = np.array([[-1.0], [0.5], [2.0], [1.0]], "float32")
    history = model.fit(real, epochs=1, batch_size=4, shuffle=False, verbose=0)
    (w, c, b), (grad_w, grad_c, grad_b) = _PROBE_WEIGHTS, _probe_gradients(real, generator_loss)
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
        keras.utils.set_random_seed(0)  # the data order: the caller's global seed
        model.fit(digits, epochs=1, batch_size=32, verbose=0)
        weights.append([np.array(v) for v in model.variables])
    for first, second in zip(*weights):
        np.testing.assert_array_equal(first, second)


class _LookDuringTraining(keras.callbacks.Callback):
    """Sample (unseeded) and evaluate at the end of every epoch."""

    def __init__(self, images):
        super().__init__()
        self.images = images

    def on_epoch_end(self, epoch, logs=None):
        self.model.sample(4)
        self.model.evaluate(self.images, batch_size=32, verbose=0)


def test_sampling_and_evaluating_during_fit_leave_training_unchanged(digits):
    finals = []
    for looking in (False, True):
        model = gan.make_model(width=4, latent_dim=8, seed=5, dropout=0.3)
        extra = ({"callbacks": [_LookDuringTraining(digits[:32])],
                  "validation_data": (digits[:32],)} if looking else {})
        model.fit(digits, epochs=3, batch_size=32, shuffle=False, verbose=0, **extra)
        finals.append([np.array(v) for v in model.generator.variables
                       + model.discriminator.variables
                       + [model.training_seed_generator.state]])
    for plain, looked in zip(*finals):
        np.testing.assert_array_equal(plain, looked)


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


# Mixed precision --------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_step_matches_the_float32_closed_form(policy, dtype_policy):
    with dtype_policy(policy):
        rate = 0.5
        model = _probe_gan("non-saturating", rate)
        assert model.discriminator.compute_dtype == policy.split("_")[1]
        real = np.array([[-1.0], [0.5], [2.0], [1.0]], "float32")
        history = model.fit(real, epochs=1, batch_size=4, shuffle=False, verbose=0)
        (w, _, b), (grad_w, _, grad_b) = _PROBE_WEIGHTS, _probe_gradients(real, "non-saturating")
        new_w = float(np.ravel(model.discriminator.get_weights()[0])[0])
        new_b = float(model.generator.get_weights()[1][0])
        # Unscaled, a float16 step would be 2**15 times too small.
        assert abs(rate * grad_w) > 0.05 and abs(rate * grad_b) > 0.05
        assert new_w == pytest.approx(w - rate * grad_w, abs=5e-3)
        assert new_b == pytest.approx(b - rate * grad_b, abs=5e-3)
        assert history.history["g_grad_norm"][0] == pytest.approx(abs(grad_b), rel=1e-2)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_dcgan_trains_and_samples_float32(policy, dtype_policy, digits):
    def d_losses():
        model = gan.make_model(width=4, latent_dim=8, seed=0)
        history = model.fit(digits, epochs=4, batch_size=32, shuffle=False,
                            verbose=0).history
        for values in history.values():
            assert np.isfinite(values).all()
        return model, np.array(history["d_loss"])

    _, full_precision = d_losses()
    with dtype_policy(policy):
        model, history = d_losses()
        assert model.generator.compute_dtype == policy.split("_")[1]
        # It learns as float32 does: the same falling losses, to rounding.
        assert np.all(np.diff(history) < 0)
        np.testing.assert_allclose(history, full_precision, atol=0.01)
        images = model.sample(5, seed=0)
        assert images.dtype == np.float32 and images.shape == (5, 28, 28, 1)
        assert 0.0 <= images.min() and images.max() <= 1.0
        assert model.decode(model.noise(2, seed=0)).dtype == np.float32


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


def test_sampling_compiles_once_whatever_the_number_asked_for():
    model = gan.make_model(width=4, latent_dim=8)
    for num in (1, 7, 300):
        assert model.sample(num, seed=num).shape == (num, 28, 28, 1)
    # One program for the noise, one for the generator, whatever `num`.
    assert inference.compile_count(model) == 2
    model.decode(model.noise(5, seed=0))
    model.generate(513)
    assert inference.compile_count(model) == 2


def test_first_samples_do_not_depend_on_how_many_are_drawn(trained):
    model, _ = trained
    # The noise is drawn chunk by chunk, chunk i from fold_in(key, i).
    np.testing.assert_array_equal(model.sample(1000, seed=4)[:10], model.sample(10, seed=4))
    np.testing.assert_array_equal(model.noise(300, seed=4)[:7], model.noise(7, seed=4))
    assert not np.allclose(model.noise(300, seed=4)[256:263], model.noise(7, seed=4))


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


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0"])
def test_bad_seeds_raise_value_errors_naming_the_seed(trained, seed):
    model, _ = trained
    calls = (lambda: model.sample(2, seed=seed), lambda: model.generate(2, seed=seed),
             lambda: model.noise(2, seed=seed),
             lambda: gan.make_model(width=4, latent_dim=8, seed=seed),
             lambda: gan.make_generator(8, width=4, seed=seed),
             lambda: gan.GAN(model.generator, model.discriminator, latent_dim=8, seed=seed))
    for call in calls:
        with pytest.raises(ValueError, match="seed"):
            call()


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


def test_save_and_load_keep_every_compile_argument(tmp_path, dtype_policy):
    with dtype_policy("mixed_float16"):
        plain = gan.make_model(width=4, latent_dim=8)
        assert isinstance(plain.optimizer, keras.optimizers.LossScaleOptimizer)
        model = gan.make_model(width=4, latent_dim=8)
        model.compile(d_optimizer=keras.optimizers.SGD(0.1),
                      g_optimizer=keras.optimizers.Adam(3e-4), steps_per_execution=3,
                      jit_compile=False, auto_scale_loss=False)
        for network, name in ((plain, "plain"), (model, "model")):
            network.optimizer.build(network.trainable_variables)  # as after a step
            network.save(tmp_path / f"{name}.keras")
        loaded = keras.saving.load_model(tmp_path / "model.keras")
        loaded_plain = keras.saving.load_model(tmp_path / "plain.keras")
    assert loaded.steps_per_execution == 3 and loaded.jit_compile is False
    assert not isinstance(loaded.optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(loaded_plain.optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(loaded.d_optimizer, keras.optimizers.SGD)
    assert float(loaded.g_optimizer.learning_rate) == pytest.approx(3e-4)


def test_model_compiled_with_one_optimizer_saves_and_resizes(digits, tmp_path):
    model = gan.GAN(gan.make_generator(8, width=4, seed=0),
                    gan.make_discriminator(width=4, seed=0), latent_dim=8, seed=0)
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, 6)
    model.compile(optimizer=keras.optimizers.Adam(schedule), steps_per_execution=2)
    assert model.d_optimizer is not model.g_optimizer  # the generator gets a copy
    assert model.g_optimizer._learning_rate.decay_steps == 6
    model.fit(digits[:64], epochs=1, batch_size=32, verbose=0)
    model.save(tmp_path / "gan.keras")
    loaded = keras.saving.load_model(tmp_path / "gan.keras")
    assert loaded.get_compile_config() is not None and loaded.steps_per_execution == 2
    gan.resize_schedule(loaded, 12)
    assert loaded.d_optimizer._learning_rate.decay_steps == 12
    assert loaded.g_optimizer._learning_rate.decay_steps == 12
    # A MultiOptimizer made by the model is taken apart again.
    d_optimizer = loaded.d_optimizer
    loaded.compile(optimizer=loaded.optimizer)
    assert loaded.d_optimizer is d_optimizer
    with pytest.raises(ValueError, match="not both"):
        loaded.compile(optimizer="adam", d_optimizer=keras.optimizers.SGD())


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
