"""Tests of companion.models.wgan: WGAN-GP and the minibatch-std discriminator."""

import numpy as np
import pytest

from companion import data  # first: selects the JAX backend
from companion.models import toy, wgan

import keras  # noqa: E402


def test_minibatch_std_feature_is_the_mean_feature_std():
    h = np.random.default_rng(0).normal(size=(16, 5)).astype("float32")
    out = np.asarray(wgan.MinibatchStdDev()(h))
    assert out.shape == (16, 6)
    np.testing.assert_allclose(out[:, :5], h)
    np.testing.assert_allclose(out[:, 5], np.mean(np.std(h, axis=0)), rtol=1e-4)


def test_minibatch_std_separates_collapsed_from_diverse_batches():
    discriminator = wgan.make_minibatch_discriminator(2, 8)
    layer = discriminator.get_layer("d_minibatch_std")
    probe = keras.Model(discriminator.input, layer.output)
    same = np.ones((32, 2), "float32")
    diverse = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    assert np.asarray(probe(same))[0, -1] == pytest.approx(1e-4, rel=1e-3)
    assert np.asarray(probe(diverse))[0, -1] > 1e-3


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


@pytest.mark.parametrize("maker", [wgan.make_toy_model, wgan.make_minibatch_model])
def test_save_load_round_trip_after_training(maker, tmp_path):
    model = maker(width=8)
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
