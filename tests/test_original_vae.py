"""Tests pinning the errors of the original's VAE listing (4.2) and objective (3.2.3)."""

import numpy as np
import pytest

from companion import data
from companion.original import vae as original

import keras  # noqa: E402  (after companion, which selects the JAX backend)


def test_encoder_is_a_plain_deterministic_64_vector():
    encoder = original.encoder_model()
    assert encoder.output_shape == (None, 64)
    trace = original.shape_trace(encoder)
    assert [shape for _, shape in trace] == [s for _, s in original.ENCODER_SHAPE_TRACE]
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    first, second = np.asarray(encoder(x)), np.asarray(encoder(x))
    np.testing.assert_array_equal(first, second)  # no sampling anywhere
    assert first.min() >= 0.0  # ReLU codes: never negative


def test_decoder_outputs_66_by_66():
    decoder = original.decoder_model()
    assert decoder.output_shape == (None, 66, 66, 1)
    assert [shape for _, shape in original.shape_trace(decoder)] == [
        s for _, s in original.DECODER_SHAPE_TRACE]


def test_encoder_and_decoder_cannot_be_connected():
    with pytest.raises(ValueError):
        original.connect()


def test_original_objective_ignores_log_p_data_and_decoder():
    codes = np.array([[1.0, 2.0], [0.0, -1.0]], "float32")
    a = float(original.original_vae_objective(np.array([-3.0, 5.0]), codes))
    b = float(original.original_vae_objective(np.array([100.0, -7.0]), codes))
    log_prior = -0.5 * (np.sum(codes ** 2, axis=1) + 2 * np.log(2 * np.pi))
    assert a == pytest.approx(b) == pytest.approx(log_prior.mean(), rel=1e-6)


def test_original_objective_gives_decoder_zero_gradient_and_codes_run_away():
    images, _ = data.load("digits", "train", value_range="binary")
    history = original.train_with_original_objective(images[:16], steps=12,
                                                     learning_rate=3e-3)
    assert history["decoder_grad_norm"] == [0.0] * 12
    assert min(history["encoder_grad_norm"]) > 0.0
    norms = history["code_norm"]
    assert np.isfinite(norms).all() and norms[-1] > 10 * norms[0]  # accelerating
    assert all(b > a for a, b in zip(norms, norms[1:]))
    objective = history["objective"]
    assert all(b < a for a, b in zip(objective, objective[1:]))  # decreasing, unbounded
