"""Tests of companion.models.wgan: WGAN-GP and the minibatch-std discriminator."""

import numpy as np
import pytest

from companion import data  # first: selects the JAX backend
from companion.models import wgan

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


def test_wgan_step_trains_both_networks_and_tracks_penalty():
    model = wgan.make_toy_model(width=8)
    points, _ = data.ring_of_gaussians(128)
    before_g = [np.array(v) for v in model.generator.trainable_variables]
    before_d = [np.array(v) for v in model.discriminator.trainable_variables]
    history = model.fit(points, epochs=1, batch_size=64, verbose=0)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert history.history["penalty"][-1] >= 0
    for before, net in ((before_g, model.generator), (before_d, model.discriminator)):
        assert any(not np.allclose(b, np.array(v))
                   for b, v in zip(before, net.trainable_variables))


def test_wgan_losses_match_their_formulas():
    model = wgan.make_toy_model(width=8, gp_weight=0.0)
    points, _ = data.ring_of_gaussians(64)
    z = model.noise(64, seed=1)
    import jax
    (d_loss, g_loss), aux = model._wasserstein_losses(
        [v.value for v in model.generator.trainable_variables],
        [v.value for v in model.discriminator.trainable_variables],
        {"g_rest": [], "d_rest": []}, points, z, jax.random.key_data(jax.random.key(0)))
    real_scores, fake_scores = np.asarray(aux[0]), np.asarray(aux[1])
    assert float(d_loss) == pytest.approx(fake_scores.mean() - real_scores.mean(), rel=1e-5)
    assert float(g_loss) == pytest.approx(-fake_scores.mean(), rel=1e-5)


def test_negative_gp_weight_raises():
    with pytest.raises(ValueError, match="gp_weight"):
        wgan.make_toy_model(width=8, gp_weight=-1.0)


@pytest.mark.parametrize("maker", [wgan.make_toy_model, wgan.make_minibatch_model])
def test_save_load_round_trip(maker, tmp_path):
    model = maker(width=8)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.generate(5, seed=0), model.generate(5, seed=0),
                               rtol=1e-6)
    assert type(loaded) is type(model)
