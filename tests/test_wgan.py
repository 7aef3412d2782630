"""Tests of companion.models.wgan: WGAN-GP."""

import random

import numpy as np
import pytest

from companion import data, losses  # first: selects the JAX backend
from companion.models import toy, wgan

import keras  # noqa: E402


def test_wgan_step_trains_both_networks():
    model = wgan.make_toy_model(width=8)
    points, _ = data.ring_of_gaussians(128)
    before_g = [keras.ops.convert_to_numpy(v) for v in model.generator.trainable_variables]
    before_d = [keras.ops.convert_to_numpy(v) for v in model.discriminator.trainable_variables]
    history = model.fit(points, epochs=1, batch_size=64, verbose=0)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    for before, net in ((before_g, model.generator), (before_d, model.discriminator)):
        assert any(not np.allclose(b, keras.ops.convert_to_numpy(v))
                   for b, v in zip(before, net.trainable_variables))


def _linear_wgan(gp_weight, learning_rate):
    """G(z) = b (constant), f(x) = a . x + c: every gradient has a closed form.

    The critic's input gradient is `a` everywhere, so the penalty is
    (|a| - 1)^2 whatever the interpolation draws.
    """
    z = keras.Input((2,))
    zero = keras.layers.Lambda(lambda t: t * 0.0)(z)
    generator = keras.Model(z, keras.layers.Dense(2, name="g_dense")(zero))
    x = keras.Input((2,))
    critic = keras.Model(x, keras.layers.Dense(1, name="d_dense")(x))
    generator.set_weights([np.zeros((2, 2), "float32"), np.array([1.0, -1.0], "float32")])
    critic.set_weights([np.array([[0.6], [0.3]], "float32"), np.array([0.1], "float32")])
    model = wgan.WGANGP(generator, critic, latent_dim=2, gp_weight=gp_weight, seed=0)
    model.compile(d_optimizer=keras.optimizers.SGD(learning_rate),
                  g_optimizer=keras.optimizers.SGD(learning_rate))
    return model


def test_wgan_losses_and_gradients_match_a_hand_computation():
    rate, weight = 0.1, 10.0
    model = _linear_wgan(weight, rate)
    real = np.array([[0.0, 1.0], [2.0, 0.5], [-1.0, 1.0], [1.0, -2.0]], "float32")
    history = model.fit(real, epochs=1, batch_size=4, shuffle=False, verbose=0).history
    a, c, b = np.array([0.6, 0.3]), 0.1, np.array([1.0, -1.0])
    norm = np.linalg.norm(a)
    penalty = (norm - 1.0) ** 2
    d_loss = (a @ b + c) - np.mean(real @ a + c) + weight * penalty
    assert history["penalty"][0] == pytest.approx(penalty, rel=1e-5)
    assert history["d_loss"][0] == pytest.approx(d_loss, rel=1e-5)
    assert history["g_loss"][0] == pytest.approx(-(a @ b + c), rel=1e-5)
    # d/da: b - mean(x) + weight * 2 (|a| - 1) a / |a|; d/dc: 0; d/db of -f(b): -a.
    grad_a = b - real.mean(axis=0) + weight * 2 * (norm - 1.0) * a / norm
    new_a, new_c = model.discriminator.get_weights()
    np.testing.assert_allclose(new_a[:, 0], a - rate * grad_a, rtol=1e-5)
    assert float(new_c[0]) == pytest.approx(c, abs=1e-7)
    np.testing.assert_allclose(model.generator.get_weights()[1], b + rate * a, rtol=1e-5)


def _dropout_critic():
    x = keras.Input((2,))
    h = keras.layers.Dense(8, activation="leaky_relu", name="d_dense_0")(x)
    h = keras.layers.Dropout(0.5, name="d_dropout")(h)
    return keras.Model(x, keras.layers.Dense(1, name="d_logit")(h))


def test_penalty_is_the_losses_module_penalty():
    model = wgan.make_toy_model(width=8, seed=1)
    critic = model.discriminator
    rng = np.random.default_rng(0)
    real, fake = (rng.normal(size=(6, 2)).astype("float32") for _ in range(2))
    key = keras.random.SeedGenerator(3).next()
    trainable = [v.value for v in critic.trainable_variables]
    state = [v.value for v in critic.non_trainable_variables]
    penalty, _ = model._gradient_penalty(trainable, state, real, fake, key, training=True)

    def critic_fn(x):
        return critic.stateless_call(trainable, state, x, training=True)[0]

    expected = losses.gradient_penalty(critic_fn, real, fake, seed=key)
    assert float(penalty) == pytest.approx(float(expected), rel=1e-6)


def _batch_normalised_critic():
    x = keras.Input((2,))
    h = keras.layers.Dense(8, activation="leaky_relu", name="d_dense_0")(x)
    h = keras.layers.BatchNormalization(name="d_norm")(h)
    return keras.Model(x, keras.layers.Dense(1, name="d_logit")(h))


def test_critic_state_that_depends_on_the_input_leaves_the_penalty_as_aux():
    # Batch normalisation's moving statistics depend on the interpolates the
    # penalty differentiates through: they must leave `jax.grad` as its
    # auxiliary output, not through a closure (which would leak a tracer).
    model = wgan.WGANGP(toy.make_mlp_generator(2, 2, 8, seed=0), _batch_normalised_critic(),
                        latent_dim=2, seed=0)
    model.compile(steps_per_execution=1)
    moving_mean = model.discriminator.get_layer("d_norm").moving_mean
    history = model.fit(np.ones((8, 2), "float32"), batch_size=8, epochs=1,
                        verbose=0).history
    assert all(np.isfinite(v).all() for v in history.values())
    assert not np.allclose(np.array(moving_mean), 0.0)


def test_stateful_critic_keeps_its_state_between_calls_and_steps():
    model = wgan.WGANGP(toy.make_mlp_generator(2, 2, 8), _dropout_critic(),
                        latent_dim=2, seed=0)
    model.compile()
    seed = model.discriminator.non_trainable_variables[0]
    start = np.array(seed)
    model.fit(np.zeros((16, 2), "float32"), batch_size=8, epochs=1, verbose=0)
    # Four dropout draws a step (G's batch judged for G's loss, then real,
    # generated and interpolated for the critic's), none lost: 2 steps, 8 draws.
    np.testing.assert_array_equal(np.array(seed) - start, [0, 8])


def test_generator_loss_option_and_discriminate_are_refused():
    generator, critic = toy.make_mlp_generator(2, 2, 8), toy.make_mlp_discriminator(2, 8)
    with pytest.raises(ValueError, match="generator_loss"):
        wgan.WGANGP(generator, critic, latent_dim=2, generator_loss="saturating")
    model = wgan.make_toy_model(width=8)
    with pytest.raises(TypeError, match="score"):
        model.discriminate(np.zeros((3, 2), "float32"))
    x = np.random.default_rng(0).normal(size=(3, 2)).astype("float32")
    np.testing.assert_allclose(model.score(x), np.asarray(model.discriminator(x))[:, 0],
                               rtol=1e-6)


def test_evaluate_reports_the_critic_losses_without_training():
    model = _linear_wgan(10.0, 0.1)
    real = np.array([[0.0, 1.0], [2.0, 0.5]], "float32")
    before = [np.array(v) for v in model.trainable_variables]
    logs = model.evaluate(real, batch_size=2, verbose=0, return_dict=True)
    a, b = np.array([0.6, 0.3]), np.array([1.0, -1.0])
    assert logs["d_real"] == pytest.approx(np.mean(real @ a + 0.1), rel=1e-5)
    assert logs["d_fake"] == pytest.approx(a @ b + 0.1, rel=1e-5)
    assert logs["penalty"] == pytest.approx((np.linalg.norm(a) - 1) ** 2, rel=1e-5)
    for old, new in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(old, np.array(new))


def test_negative_gp_weight_raises():
    with pytest.raises(ValueError, match="gp_weight"):
        wgan.make_toy_model(width=8, gp_weight=-1.0)


def test_save_load_round_trip_after_training(tmp_path):
    model = wgan.make_toy_model(width=8)
    points, _ = data.ring_of_gaussians(64)
    model.fit(points, epochs=1, batch_size=32, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded.generate(5, seed=0), model.generate(5, seed=0),
                               rtol=1e-6)
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for old, new in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.array(old), np.array(new))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_finite_falling_critic_loss(policy, dtype_policy):
    with dtype_policy(policy):
        model = wgan.make_toy_model(width=16, seed=0)
        points, _ = data.ring_of_gaussians(512, seed=0)
        history = model.fit(points, epochs=4, batch_size=128, shuffle=False,
                            verbose=0).history
        generated = model.generate(5, seed=0)
    assert all(np.isfinite(v).all() for v in history.values())
    assert history["d_loss"][-1] < history["d_loss"][0]
    assert generated.dtype == np.float32 and generated.shape == (5, 2)


def test_mixed_float16_takes_full_size_steps(dtype_policy):
    # SGD: an unscaled float16 loss would make every step 2**15 times too
    # small. The loss scale starts too large for the penalty's second-order
    # gradient, so the first steps are skipped while it halves.
    with dtype_policy("mixed_float16"):
        model = _linear_wgan(10.0, 0.1)
        real = np.array([[0.0, 1.0], [2.0, 0.5], [-1.0, 1.0], [1.0, -2.0]], "float32")
        model.fit(real, epochs=10, batch_size=4, shuffle=False, verbose=0)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    moved = model.discriminator.get_weights()[0][:, 0] - np.array([0.6, 0.3])
    assert np.abs(moved).max() > 0.1


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_bad_seeds_raise_value_errors_naming_the_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        wgan.make_toy_model(width=8, seed=seed)
    with pytest.raises(ValueError, match="seed"):
        wgan.WGANGP(toy.make_mlp_generator(2, 2, 8), toy.make_mlp_discriminator(2, 8),
                    latent_dim=2, seed=seed)


def test_make_toy_model_changes_no_global_random_state():
    def draws():
        return random.random(), float(np.random.random()), float(keras.random.uniform(()))

    keras.utils.set_random_seed(1)
    expected = draws()
    keras.utils.set_random_seed(1)
    first = wgan.make_toy_model(width=8, seed=3)
    assert draws() == expected
    second = wgan.make_toy_model(width=8, seed=3)
    for a, b in zip(first.variables, second.variables):
        np.testing.assert_array_equal(np.array(a), np.array(b))
