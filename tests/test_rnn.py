"""companion.models.rnn: the row-by-row autoregressive model and gradient flow."""

import random
import re

import numpy as np
import pytest

from companion import inference, losses  # first: selects the JAX backend
import keras  # noqa: E402
from companion.models import rnn

SHAPE = (6, 5, 1)


def _binary(num, seed=0, shape=SHAPE):
    rng = np.random.default_rng(seed)
    return (rng.random((num,) + shape) < 0.4).astype("float32")


def _randomise_left_kernel(model, seed=0):
    """The left-context matrix starts at zero; give it values so tests see it."""
    rng = np.random.default_rng(seed)
    model.left_kernel.assign(rng.normal(size=model.left_kernel.shape).astype("float32"))
    return model


@pytest.fixture(scope="module", params=rnn.CELLS)
def model(request):
    return _randomise_left_kernel(
        rnn.make_model(image_shape=SHAPE, cell=request.param, units=8, seed=3))


def test_causality_in_raster_order(model):
    """The logit of pixel k reads pixels before k (row by row, left to right) only."""
    images = _binary(3)
    base = model.logits(images).reshape(3, -1)
    size = base.shape[1]
    for k in range(size):
        changed = images.reshape(3, -1).copy()
        changed[:, k:] = 1.0 - changed[:, k:]
        logits = model.logits(changed.reshape(images.shape)).reshape(3, -1)
        np.testing.assert_array_equal(logits[:, :k + 1], base[:, :k + 1])
        if k + 1 < size:   # and the model does look at earlier pixels
            assert np.abs(logits[:, k + 1:] - base[:, k + 1:]).max() > 1e-6


def test_without_left_context_a_row_does_not_see_itself():
    plain = rnn.make_model(image_shape=SHAPE, cell="gru", units=8, seed=3,
                           left_context=False)
    assert not any("left_kernel" in v.path for v in plain.weights)
    images = _binary(3)
    base = plain.logits(images)
    for t in range(SHAPE[0]):
        changed = images.copy()
        changed[:, t:] = 1.0 - changed[:, t:]
        np.testing.assert_array_equal(plain.logits(changed)[:, :t + 1], base[:, :t + 1])


def test_log_likelihood_is_the_sum_of_the_pixels_bernoulli_log_probabilities(model):
    images = _binary(4, seed=1)
    logits = np.asarray(model(images), "float64")
    p_one = 1 / (1 + np.exp(-logits))
    expected = np.log(np.where(images == 1, p_one, 1 - p_one)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(model.log_likelihood(images), expected, rtol=1e-5)
    np.testing.assert_allclose(model.logits(images), logits, rtol=1e-5, atol=1e-5)


def test_likelihood_is_normalised_over_all_images():
    # Every binary 2 x 2 image: the probabilities must sum to exactly 1.
    tiny = _randomise_left_kernel(
        rnn.make_model(image_shape=(2, 2, 1), cell="lstm", units=4, seed=0))
    images = _all_binary_images((2, 2, 1))
    total = np.exp(tiny.log_likelihood(images)).sum()
    assert total == pytest.approx(1.0, abs=1e-5)


def _all_binary_images(shape):
    size = int(np.prod(shape))
    codes = np.arange(2 ** size)[:, None] >> np.arange(size)[None, :] & 1
    return codes.reshape((-1,) + shape).astype("float32")


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_samples_have_the_model_distribution_over_all_images(temperature):
    # 2 x 2 images: row 1 depends strongly on row 0, so a sampler that fed the
    # wrong row back, or drew a pixel before its left neighbour, would fail.
    # At temperature tau the sampler draws each pixel from sigmoid(logit / tau):
    # p_tau(x) = exp(-autoregressive_nll(x, logits(x) / tau)).
    tiny = _randomise_left_kernel(
        rnn.make_model(image_shape=(2, 2, 1), cell="gru", units=4, seed=0))
    for variable in tiny.recurrent.trainable_variables + [tiny.readout.kernel]:
        variable.assign(np.asarray(variable) * 3.0)
    images = _all_binary_images((2, 2, 1))
    logits = tiny.logits(images) / temperature
    probability = np.exp(-np.asarray(losses.autoregressive_nll(images, logits), "float64"))
    conditional = probability.reshape(4, 4) / probability.reshape(4, 4).sum(0)
    assert np.ptp(conditional, axis=1).max() > 0.1   # row 1 depends on row 0
    samples = tiny.sample(20000, seed=0, temperature=temperature).reshape(-1, 4)
    index = (samples.astype(int) << np.arange(4)).sum(axis=1)
    frequency = np.bincount(index, minlength=16) / len(samples)
    np.testing.assert_allclose(frequency, probability, atol=0.012)   # ~5 sigma


def test_sampling_is_deterministic_with_a_seed_and_binary(model):
    first, second = model.sample(5, seed=11), model.sample(5, seed=11)
    np.testing.assert_array_equal(first, second)
    assert first.shape == (5,) + SHAPE and first.dtype == np.float32
    assert set(np.unique(first)) <= {0.0, 1.0}
    assert not np.array_equal(first, model.sample(5, seed=12))
    assert not np.array_equal(model.sample(5), model.sample(5))


def test_sampling_follows_the_model_probabilities():
    # Row 0 is drawn from sigmoid(readout(cell(0))): check the frequency.
    tiny = rnn.make_model(image_shape=(2, 3, 1), cell="gru", units=4, seed=1)
    tiny.readout.bias.assign(np.array([1.0, -1.5, 0.2], "float32"))
    samples = tiny.sample(4000, seed=0)
    p_first_row = 1 / (1 + np.exp(-tiny.logits(np.zeros((1, 2, 3, 1), "float32"))[0, 0]))
    np.testing.assert_allclose(samples[:, 0].mean(0), p_first_row, atol=0.03)


def test_sampling_draws_each_pixel_given_the_pixels_to_its_left():
    # Row 0: p(x_00 = 1) = sigmoid(b_0), p(x_01 = 1 | x_00) = sigmoid(b_1 + A_01 x_00).
    tiny = rnn.make_model(image_shape=(2, 2, 1), cell="gru", units=4, seed=1)
    tiny.readout.bias.assign(np.array([0.0, -1.0], "float32"))
    tiny.left_kernel.assign(np.array([[0.0, 3.0], [-5.0, 0.0]], "float32"))  # -5 is masked
    first_row = tiny.sample(6000, seed=0)[:, 0, :, 0]
    sigmoid = lambda v: 1 / (1 + np.exp(-v))
    assert first_row[:, 0].mean() == pytest.approx(0.5, abs=0.025)
    after_one = first_row[first_row[:, 0] == 1, 1].mean()
    after_zero = first_row[first_row[:, 0] == 0, 1].mean()
    assert after_one == pytest.approx(sigmoid(2.0), abs=0.03)
    assert after_zero == pytest.approx(sigmoid(-1.0), abs=0.03)


def test_low_temperature_sharpens():
    tiny = rnn.make_model(image_shape=(2, 3, 1), cell="simple", units=4, seed=1)
    tiny.readout.bias.assign(np.array([1.0, -1.5, 0.3], "float32"))
    probs = 1 / (1 + np.exp(-tiny.logits(np.zeros((1, 2, 3, 1), "float32"))[0, 0, :, 0]))
    cold = tiny.sample(500, seed=0, temperature=0.05)[:, 0, :, 0].mean(0)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-np.array([1.0, -1.5, 0.3]))),
                               rtol=1e-5)   # zero input and state: sigmoid(bias)
    np.testing.assert_allclose(cold, (probs > 0.5).astype("float32"), atol=0.02)


def test_completion_keeps_the_given_rows_bit_for_bit(model):
    images = _binary(6, seed=2)
    for rows_given in (0, 2, SHAPE[0]):
        completed = model.complete(images, rows_given, seed=0)
        np.testing.assert_array_equal(completed[:, :rows_given], images[:, :rows_given])
    np.testing.assert_array_equal(model.complete(images, SHAPE[0]), images)
    # The rows given condition the rest: with seed fixed, changing them matters.
    other = 1.0 - images
    assert not np.array_equal(model.complete(images, 3, seed=0)[:, 3:],
                              model.complete(other, 3, seed=0)[:, 3:])


def test_fit_lowers_the_negative_log_likelihood():
    images = np.tile(_binary(2, seed=5), (16, 1, 1, 1))
    model = rnn.make_model(image_shape=SHAPE, cell="lstm", units=8, learning_rate=0.02)
    before = -model.log_likelihood(images).mean()
    model.fit(images, epochs=15, batch_size=8, verbose=0)
    after = -model.log_likelihood(images).mean()
    assert after < 0.5 * before
    # The loss Keras reports is the same exact mean NLL.
    assert model.evaluate(images, batch_size=32, verbose=0) == pytest.approx(after, rel=1e-4)


def test_steps_per_execution_trains_the_same_weights_bit_for_bit():
    images = _binary(64, seed=8)
    weights = []
    for steps in (1, 4):
        model = rnn.make_model(image_shape=SHAPE, cell="lstm", units=8, seed=2,
                               steps_per_execution=steps)
        model.fit(images, epochs=2, batch_size=8, shuffle=False, verbose=0)
        weights.append([np.asarray(w) for w in model.weights])
    for one_step, four_steps in zip(*weights):
        np.testing.assert_array_equal(one_step, four_steps)


def test_the_loss_is_keras_compute_loss_and_keras_default_step_trains_it():
    # RowRNN overrides compute_loss only: Keras' own train and test steps run it.
    assert "compute_loss" in vars(rnn.RowRNN)
    assert not {"train_step", "test_step"} & set(vars(rnn.RowRNN))
    model = rnn.make_model(image_shape=SHAPE, cell="gru", units=8, seed=3)
    images = _binary(5, seed=3)
    loss = model.compute_loss(images, y_pred=model(images))
    assert float(loss) == pytest.approx(-model.log_likelihood(images).mean(), rel=1e-5)
    with pytest.raises(ValueError, match="images only"):
        model.compute_loss(images, y=images, y_pred=model(images))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_and_samples_float32_images(policy, dtype_policy):
    images = np.tile(_binary(2, seed=5), (16, 1, 1, 1))
    with dtype_policy(policy):
        model = rnn.make_model(image_shape=SHAPE, cell="lstm", units=8, learning_rate=0.02)
        assert model.compute_dtype == policy.removeprefix("mixed_")
        losses_ = model.fit(images, epochs=5, batch_size=8, verbose=0).history["loss"]
        samples = model.sample(3, seed=0)
        completed = model.complete(images[:3], 2, seed=0)
        log_p = model.log_likelihood(images[:3])
    assert np.isfinite(losses_).all() and losses_[-1] < 0.8 * losses_[0]
    for drawn in (samples, completed):
        assert drawn.dtype == np.float32 and set(np.unique(drawn)) <= {0.0, 1.0}
    np.testing.assert_array_equal(completed[:, :2], images[:3, :2])
    assert np.isfinite(log_p).all() and (log_p < 0).all()
    assert keras.mixed_precision.global_policy().name == "float32"


def test_mixed_float16_scales_the_loss_so_the_step_keeps_its_size(sgd_step):
    # Under mixed_float16 Keras wraps the optimiser in a LossScaleOptimizer,
    # which divides every gradient by its loss scale (2**15 at first): the
    # loss must be multiplied by it, or every step is 2**15 times too short.
    images = _binary(16, seed=4)
    make = lambda: rnn.RowRNN(image_shape=SHAPE, cell="gru", units=8, seed=2)
    exact, mixed = (sgd_step(make, images, policy) for policy in ("float32", "mixed_float16"))
    assert np.linalg.norm(mixed) / np.linalg.norm(exact) == pytest.approx(1.0, abs=0.05)
    assert mixed @ exact / (np.linalg.norm(mixed) * np.linalg.norm(exact)) > 0.99


def test_inference_compiles_one_program_a_purpose_whatever_the_request_size():
    model = rnn.make_model(image_shape=SHAPE, cell="gru", units=8, seed=3)
    for num in (1, 7, 300):
        images = _binary(num, seed=num)
        assert model.logits(images).shape == images.shape
        assert model.log_likelihood(images).shape == (num,)
        assert model.sample(num, seed=0).shape == images.shape
        assert model.complete(images, num % SHAPE[0], temperature=0.5).shape == images.shape
    # logits, log_likelihood and sample (which complete shares)
    assert inference.compile_count(model) == 3


def test_the_first_samples_do_not_depend_on_how_many_are_drawn(model):
    # Chunk i of a request draws with fold_in(key, i), whatever the request's size.
    many = model.sample(1000, seed=4)
    np.testing.assert_array_equal(many[:10], model.sample(10, seed=4))
    chunk = inference.CHUNK
    assert not np.array_equal(many[:chunk], many[chunk:2 * chunk])   # keys differ
    images = _binary(300, seed=5)
    np.testing.assert_array_equal(model.complete(images, 2, seed=4)[:10],
                                  model.complete(images[:10], 2, seed=4))
    np.testing.assert_allclose(model.log_likelihood(images)[:10],
                               model.log_likelihood(images[:10]), rtol=1e-6)


SEED_ERROR = re.escape("`seed` must be None or an integer in [0, 4294967295]; got")


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "0"])
def test_every_seed_is_checked_the_same_way(seed):
    model = rnn.make_model(image_shape=SHAPE, cell="gru", units=4)
    calls = [lambda: rnn.RowRNN(image_shape=SHAPE, units=4, seed=seed),
             lambda: rnn.make_model(image_shape=SHAPE, units=4, seed=seed),
             lambda: model.sample(2, seed=seed),
             lambda: model.complete(_binary(2), 2, seed=seed),
             lambda: rnn.gradient_norm_by_distance(units=4, steps=3, seed=seed)]
    for call in calls:
        with pytest.raises(ValueError, match=SEED_ERROR):
            call()


def test_the_largest_seed_works():
    largest = 2**32 - 1
    model = rnn.make_model(image_shape=SHAPE, units=4, seed=largest)
    assert model.sample(2, seed=largest).shape == (2,) + SHAPE
    assert rnn.gradient_norm_by_distance(units=4, steps=3, seed=largest).shape == (3,)


def _next_global_random_values():
    """The next draw of Python's, NumPy's and Keras' global random generators."""
    return (random.random(), np.random.random(), np.asarray(keras.random.uniform((3,))))


@pytest.mark.parametrize("cell", rnn.CELLS)
def test_make_model_changes_no_global_random_state(cell):
    keras.utils.set_random_seed(7)
    expected = _next_global_random_values()
    keras.utils.set_random_seed(7)
    made = rnn.make_model(image_shape=SHAPE, cell=cell, units=8, seed=5)
    again = rnn.make_model(image_shape=SHAPE, cell=cell, units=8, seed=5)
    found = _next_global_random_values()
    assert found[:2] == expected[:2]
    np.testing.assert_array_equal(found[2], expected[2])
    # The seed alone fixes the weights (every variable, the seed states included).
    for first, second in zip(made.weights, again.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    other = rnn.make_model(image_shape=SHAPE, cell=cell, units=8, seed=6)
    assert not np.array_equal(np.asarray(other.recurrent.cell.kernel),
                              np.asarray(made.recurrent.cell.kernel))


def test_evaluate_and_validation_report_the_exact_mean_nll():
    train, held_out = _binary(20, seed=6), _binary(13, seed=7)
    model = rnn.make_model(image_shape=SHAPE, cell="gru", units=8, learning_rate=0.0)
    exact = -model.log_likelihood(held_out).mean()
    # Batches of 5, 5 and 3 images: the mean is over images, not over batches.
    assert model.evaluate(held_out, batch_size=5, verbose=0) == pytest.approx(
        exact, rel=1e-5)
    # A learning rate of 0 keeps the weights: the training loss is exact too.
    history = model.fit(train, validation_data=held_out, epochs=1, batch_size=8,
                        verbose=0).history
    assert history["loss"][0] == pytest.approx(-model.log_likelihood(train).mean(),
                                               rel=1e-5)
    assert history["val_loss"][0] == pytest.approx(exact, rel=1e-5)
    history = model.fit(train, validation_data=(held_out,), epochs=1, verbose=0).history
    assert history["val_loss"][0] == pytest.approx(exact, rel=1e-5)
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(train, validation_data=(held_out, held_out), verbose=0)
    with pytest.raises(ValueError, match="validation_data.*binary"):
        model.fit(train, validation_data=held_out * 0.5, verbose=0)
    with pytest.raises(ValueError, match="images only"):
        model.evaluate(held_out, held_out, verbose=0)


def test_training_resumes_from_a_saved_model_as_if_never_stopped(tmp_path):
    # Two epochs in one go equal one epoch, save, load and one more epoch:
    # the optimiser's moments and step count round-trip through the file.
    images = _binary(24, seed=8)
    options = {"batch_size": 8, "shuffle": False, "verbose": 0}
    straight = rnn.make_model(image_shape=SHAPE, cell="lstm", units=8, seed=2)
    straight.fit(images, epochs=2, **options)
    first = rnn.make_model(image_shape=SHAPE, cell="lstm", units=8, seed=2)
    first.fit(images, epochs=1, **options)
    first.save(tmp_path / "run.keras")
    resumed = keras.saving.load_model(tmp_path / "run.keras")
    for saved, loaded in zip(first.optimizer.variables, resumed.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(loaded), np.asarray(saved))
    resumed.fit(images, epochs=2, initial_epoch=1, **options)
    for a, b in zip(straight.trainable_variables, resumed.trainable_variables):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(first.trainable_variables[0]),
                           np.asarray(resumed.trainable_variables[0]))


def test_save_and_load_round_trip(model, tmp_path):
    model.fit(_binary(8, seed=9), epochs=1, batch_size=8, verbose=0)  # optimiser state
    path = tmp_path / "row_rnn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    images = _binary(3, seed=4)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.logits(images), model.logits(images), atol=1e-6)
    np.testing.assert_array_equal(loaded.sample(3, seed=5), model.sample(3, seed=5))
    assert loaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy() > 0
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(restored), np.asarray(saved))


def test_seed_none_draws_fresh_weights_reproducibly():
    keras.utils.set_random_seed(4)
    first = rnn.RowRNN(image_shape=SHAPE, units=8, seed=None)
    first.build()
    keras.utils.set_random_seed(4)
    again = rnn.RowRNN(image_shape=SHAPE, units=8, seed=None)
    again.build()
    other = rnn.RowRNN(image_shape=SHAPE, units=8, seed=None)
    other.build()
    kernels = [np.asarray(m.recurrent.cell.kernel) for m in (first, again, other)]
    np.testing.assert_array_equal(kernels[0], kernels[1])
    assert not np.array_equal(kernels[0], kernels[2])
    assert first.get_config()["seed"] is None
    # Without a sample seed, the model's own SeedGenerator advances.
    assert not np.array_equal(first.sample(4), first.sample(4))


@pytest.mark.parametrize("kwargs, match", [
    ({"cell": "transformer"}, "cell"),
    ({"units": 0}, "units"),
    ({"image_shape": (28, 28)}, "image_shape"),
    ({"image_shape": (28, 28, 0)}, "image_shape"),
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
])
def test_bad_constructor_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rnn.RowRNN(**kwargs)


def test_bad_call_arguments_raise(model):
    images = _binary(2)
    with pytest.raises(ValueError, match="binary"):
        model.log_likelihood(images * 0.5)
    with pytest.raises(ValueError, match="shape"):
        model.log_likelihood(np.zeros((2, 28, 28, 1), "float32"))
    with pytest.raises(ValueError, match="rows_given"):
        model.complete(images, SHAPE[0] + 1)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=0)
    with pytest.raises(ValueError, match="num"):
        model.sample(0)
    with pytest.raises(ValueError, match="images only"):
        model.fit(images, images)
    with pytest.raises(ValueError, match="`x` must be binary"):
        model.fit(images * 0.5)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=True)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=float("inf"))
    with pytest.raises(ValueError, match="seed"):
        model.sample(2, seed=-1)


def test_book_config_and_value_range():
    assert rnn.VALUE_RANGE == "binary"
    assert {"epochs", "batch_size", "learning_rate"} <= set(rnn.BOOK_CONFIG)
    model = rnn.make_model()
    assert model.image_shape == (28, 28, 1) and model.units == rnn.BOOK_CONFIG["units"]
    assert model.optimizer.clipnorm == rnn.BOOK_CONFIG["clipnorm"]


def test_gradient_norm_by_distance_matches_a_linear_closed_form():
    # A linear simple RNN with orthogonal recurrent weights of gain g:
    # d h_T / d x_t = (g Q)^(T-t) W, so the norm is g^(T-t) ||W||_F exactly.
    gain = 0.9
    norms = rnn.gradient_norm_by_distance("simple", units=6, steps=8, input_dim=3,
                                          activation="linear", recurrent_gain=gain)
    np.testing.assert_allclose(norms / norms[0], gain ** np.arange(8), rtol=1e-4)


def test_gradient_norms_vanish_and_explode():
    simple = rnn.gradient_norm_by_distance("simple", units=16, steps=30)
    assert simple[-1] < 1e-3 * simple[0]                          # vanishes
    relu = rnn.gradient_norm_by_distance("simple", units=16, steps=30,
                                         activation="relu", recurrent_gain=2.0)
    assert relu[-1] > 1e3 * relu[0]                               # explodes
    lstm = rnn.gradient_norm_by_distance("lstm", units=16, steps=30)
    remembering = rnn.gradient_norm_by_distance("lstm", units=16, steps=30,
                                                forget_bias=5.0)
    assert remembering[-1] / remembering[0] > 100 * lstm[-1] / lstm[0]
    with pytest.raises(ValueError, match="forget_bias"):
        rnn.gradient_norm_by_distance("gru", forget_bias=1.0)
    with pytest.raises(ValueError, match="seed"):
        rnn.gradient_norm_by_distance("gru", seed=None)


def test_raster_causal_mask_lets_each_pixel_read_exactly_the_pixels_before_it():
    mask = rnn.raster_causal_mask(3, 4)
    assert mask.shape == (12, 12) and mask.dtype == np.float32
    rows, columns = np.divmod(np.arange(12), 4)
    before = (rows[:, None] < rows[None, :]) | (
        (rows[:, None] == rows[None, :]) & (columns[:, None] < columns[None, :]))
    np.testing.assert_array_equal(mask, before)
    assert not mask[:, 0].any() and not np.diag(mask).any()
    np.testing.assert_array_equal(rnn.RowRNN(units=4).left_mask, rnn.raster_causal_mask(1, 28))
    with pytest.raises(ValueError, match="`width` must be an integer >= 1; got 0"):
        rnn.raster_causal_mask(2, 0)
