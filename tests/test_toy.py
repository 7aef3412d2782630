"""Tests of companion.models.toy: MLP networks and the 1-D closed forms."""

import math
import random

import numpy as np
import pytest

import companion  # noqa: F401
import keras
from companion import data
from companion.models import toy

GRID = np.linspace(-12.0, 12.0, 24001)


def test_mlp_shapes_and_logits():
    generator = toy.make_mlp_generator(latent_dim=3, data_dim=2, width=8)
    discriminator = toy.make_mlp_discriminator(data_dim=2, width=8)
    assert generator.output_shape == (None, 2)
    assert discriminator.output_shape == (None, 1)
    # 3*8+8 + 8*8+8 + 8*2+2
    assert generator.count_params() == 122


def test_optimal_discriminator_closed_form():
    p = toy.gaussian_density(GRID, 0.0, 1.0)
    q = toy.gaussian_density(GRID, 1.0, 1.0)
    d_star = toy.optimal_discriminator(p, q)
    assert d_star[np.argmin(abs(GRID - 0.5))] == pytest.approx(0.5, abs=1e-3)
    # Log-odds of two unit-variance Gaussians are linear: log D/(1-D) = 1/2 - x.
    inside = abs(GRID) < 5
    log_odds = np.log(d_star[inside] / (1 - d_star[inside]))
    np.testing.assert_allclose(log_odds, 0.5 - GRID[inside], atol=1e-6)
    assert toy.optimal_discriminator(np.zeros(2), np.zeros(2)).tolist() == [0.5, 0.5]


@pytest.mark.parametrize("shift", [0.0, 0.5, 2.0, 8.0])
def test_value_at_optimum_is_minus_log4_plus_2_jsd(shift):
    p = toy.gaussian_density(GRID, 0.0, 1.0)
    q = toy.gaussian_density(GRID, shift, 0.7)
    jsd = toy.jensen_shannon(p, q, GRID)
    assert 0.0 <= jsd <= math.log(2) + 1e-9
    assert toy.value_at_optimum(p, q, GRID) == pytest.approx(
        -math.log(4) + 2 * jsd, abs=1e-6)


def test_jensen_shannon_limits():
    p = toy.gaussian_density(GRID, -6.0, 0.5)
    assert toy.jensen_shannon(p, p, GRID) == pytest.approx(0.0, abs=1e-9)
    far = toy.gaussian_density(GRID, 6.0, 0.5)
    assert toy.jensen_shannon(p, far, GRID) == pytest.approx(math.log(2), abs=1e-6)
    # Strictly between for overlapping densities.
    near = toy.gaussian_density(GRID, -5.0, 0.5)
    assert 0.05 < toy.jensen_shannon(p, near, GRID) < math.log(2) - 0.05


def test_toy_gan_learns_a_shifted_gaussian():
    real = data.gaussian_1d(2048, mean=3.0, std=0.5, seed=0)
    model = toy.make_model(data_dim=1, latent_dim=1, width=16, seed=0,
                           d_learning_rate=2e-3, g_learning_rate=2e-3)
    before = model.generate(2000, seed=1)
    model.fit(real, epochs=15, batch_size=128, verbose=0)
    after = model.generate(2000, seed=1)
    assert abs(after.mean() - 3.0) < 0.4 < abs(before.mean() - 3.0)
    # The discriminator is near 1/2 on the data once the generator matches it.
    assert 0.25 < model.discriminate(real[:500]).mean() < 0.75


def test_toy_fit_rejects_wrong_dimension():
    model = toy.make_model(data_dim=2, latent_dim=2, width=4)
    with pytest.raises(ValueError, match="shape"):
        model.fit(np.zeros((8, 1), "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="finite"):
        model.fit(np.full((8, 2), np.nan, "float32"), epochs=1, verbose=0)


def test_affine_generator_samples_match_its_closed_form_gaussian():
    generator = toy.make_mlp_generator(latent_dim=2, data_dim=1, depth=0)
    generator.set_weights([np.array([[0.6], [0.8]], "float32"),
                           np.array([-2.0], "float32")])
    assert toy.affine_gaussian(generator) == pytest.approx((-2.0, 1.0))
    z = np.random.default_rng(0).normal(size=(20000, 2)).astype("float32")
    samples = np.asarray(generator(z))[:, 0]
    assert samples.mean() == pytest.approx(-2.0, abs=0.03)
    assert samples.std() == pytest.approx(1.0, abs=0.03)
    with pytest.raises(ValueError, match="affine"):
        toy.affine_gaussian(toy.make_mlp_generator(2, 1, width=4))


def test_affine_generator_covariance_is_kernel_transpose_times_kernel():
    generator = toy.make_mlp_generator(latent_dim=3, data_dim=2, depth=0)
    kernel = np.array([[1.0, 0.5], [0.0, 2.0], [-1.0, 0.3]], "float32")  # (latent, data)
    generator.set_weights([kernel, np.zeros(2, "float32")])
    z = np.random.default_rng(1).normal(size=(200000, 3)).astype("float32")
    samples = np.asarray(generator(z))
    np.testing.assert_allclose(np.cov(samples.T), kernel.T @ kernel, atol=0.03)


# Packing (PacGAN) and the remedies' switch in make_model -----------------------


def test_pack_concatenates_consecutive_examples_and_unpack_repeats():
    x = np.arange(12, dtype="float32").reshape(6, 2)
    packed = np.asarray(toy.Pack(3)(x))
    assert packed.tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    logits = np.array([[1.0], [-2.0]], "float32")
    assert np.asarray(toy.Unpack(3)(logits)).ravel().tolist() == [1, 1, 1, -2, -2, -2]
    with pytest.raises(ValueError, match="multiple of pack=4"):
        toy.Pack(4)(x)
    with pytest.raises(ValueError, match="pack"):
        toy.Pack(0)


def test_packed_discriminator_gives_one_logit_a_pack():
    discriminator = toy.make_packed_discriminator(2, pack=4, width=8)
    # Only the first layer is wider than the plain discriminator's: 4 * 2 inputs.
    plain = toy.make_mlp_discriminator(2, width=8)
    assert discriminator.count_params() - plain.count_params() == (4 - 1) * 2 * 8
    x = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")
    logits = np.asarray(discriminator(x))
    assert logits.shape == (8, 1)
    assert np.all(logits[:4] == logits[0]) and np.all(logits[4:] == logits[4])
    # The pack's logit depends on every member of the pack.
    changed = x.copy()
    changed[3] += 1.0
    assert not np.allclose(np.asarray(discriminator(changed))[0], logits[0])


def test_packed_discriminator_round_trips_through_keras_format(tmp_path):
    discriminator = toy.make_packed_discriminator(2, pack=2, width=8)
    path = tmp_path / "packed.keras"
    discriminator.save(path)
    loaded = keras.saving.load_model(path)
    x = np.ones((4, 2), "float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(discriminator(x)))


def test_make_model_switches_only_the_discriminator():
    plain = toy.make_model(data_dim=2, latent_dim=4, width=8, seed=0)
    packed = toy.make_model(data_dim=2, latent_dim=4, width=8, seed=0, pack=4)
    minibatch = toy.make_model(data_dim=2, latent_dim=4, width=8, seed=0,
                               minibatch_std=True)
    assert "d_pack" in [layer.name for layer in packed.discriminator.layers]
    assert "d_minibatch_std" in [layer.name for layer in minibatch.discriminator.layers]
    for model in (packed, minibatch):
        # Same seed, same generator: identical samples before training.
        np.testing.assert_allclose(model.generate(5, seed=1), plain.generate(5, seed=1))
        assert model.generator.count_params() == plain.generator.count_params()
    with pytest.raises(ValueError, match="one remedy"):
        toy.make_model(data_dim=2, pack=2, minibatch_std=True)
    with pytest.raises(ValueError, match="decay_to"):
        toy.make_model(data_dim=2, decay_steps=10, decay_to=2.0)


def test_packed_gan_trains_and_decays_its_learning_rates():
    points, _ = data.ring_of_gaussians(512, seed=0)
    model = toy.make_model(data_dim=2, latent_dim=2, width=8, pack=4, decay_steps=8,
                           decay_to=0.1, steps_per_execution=4)
    history = model.fit(points, epochs=2, batch_size=128, verbose=0).history
    assert len(history["d_loss"]) == 2 and np.isfinite(history["d_loss"]).all()
    # After the 8 decay steps both learning rates have reached decay_to of their start.
    assert float(model.d_optimizer.learning_rate) == pytest.approx(1e-4, rel=1e-3)
    assert float(model.g_optimizer.learning_rate) == pytest.approx(1e-4, rel=1e-3)


# Minibatch standard deviation --------------------------------------------------


def test_minibatch_std_feature_is_the_mean_feature_std():
    h = np.random.default_rng(0).normal(size=(16, 5)).astype("float32")
    out = np.asarray(toy.MinibatchStdDev()(h))
    assert out.shape == (16, 6)
    np.testing.assert_allclose(out[:, :5], h)
    np.testing.assert_allclose(out[:, 5], np.mean(np.std(h, axis=0)), rtol=1e-4)


def test_minibatch_std_separates_collapsed_from_diverse_batches():
    discriminator = toy.make_minibatch_discriminator(2, 8)
    layer = discriminator.get_layer("d_minibatch_std")
    probe = keras.Model(discriminator.input, layer.output)
    same = np.ones((32, 2), "float32")
    diverse = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    assert np.asarray(probe(same))[0, -1] == pytest.approx(1e-4, rel=1e-3)
    assert np.asarray(probe(diverse))[0, -1] > 1e-3


def test_minibatch_gan_round_trips_after_training(tmp_path):
    model = toy.make_model(data_dim=2, latent_dim=2, width=8, minibatch_std=True)
    points, _ = data.ring_of_gaussians(64)
    model.fit(points, epochs=1, batch_size=32, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    layer = loaded.discriminator.get_layer("d_minibatch_std")
    assert isinstance(layer, toy.MinibatchStdDev)
    np.testing.assert_allclose(loaded.generate(5, seed=0), model.generate(5, seed=0),
                               rtol=1e-6)
    for old, new in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.array(old), np.array(new))


# Seeds ----------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"pack": 2}, {"minibatch_std": True}])
def test_make_model_changes_no_global_random_state(options):
    def draws():
        return random.random(), float(np.random.random()), float(keras.random.uniform(()))

    keras.utils.set_random_seed(1)
    expected = draws()
    keras.utils.set_random_seed(1)
    first = toy.make_model(data_dim=2, latent_dim=2, width=8, seed=3, **options)
    assert draws() == expected
    second = toy.make_model(data_dim=2, latent_dim=2, width=8, seed=3, **options)
    for a, b in zip(first.variables, second.variables):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    other = toy.make_model(data_dim=2, latent_dim=2, width=8, seed=4, **options)
    assert not np.allclose(first.discriminator.get_weights()[0],
                           other.discriminator.get_weights()[0])


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_bad_seeds_raise_value_errors_naming_the_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        toy.make_model(data_dim=2, width=8, seed=seed)
    with pytest.raises(ValueError, match="seed"):
        toy.make_mlp_generator(2, 2, 8, seed=seed)


def test_modules_import_one_way():
    # toy builds on gan, wgan on both; neither gan nor toy imports wgan.
    import pathlib

    root = pathlib.Path(toy.__file__).parent
    imports = {name: [line for line in (root / f"{name}.py").read_text().splitlines()
                      if line.strip().startswith(("import ", "from "))]
               for name in ("gan", "toy", "wgan")}
    assert imports["gan"] and not any("toy" in line or "wgan" in line
                                      for line in imports["gan"])
    assert not any("wgan" in line for line in imports["toy"])
