"""Tests of companion.comparison: the cross-family table."""

import math

import numpy as np
import pytest

from companion import comparison, evaluation  # first: selects the JAX backend

import keras  # noqa: E402


def test_count_parameters_closed_form():
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3),
                              keras.layers.Dense(2)])
    assert comparison.count_parameters(model) == (5 * 3 + 3) + (3 * 2 + 2)
    baseline, _ = evaluation.bernoulli_baseline()
    assert comparison.count_parameters(baseline) == 28 * 28


def test_bernoulli_row_matches_the_baseline_and_unit_conversion():
    _, nll = evaluation.bernoulli_baseline()
    (row,) = comparison.compare(families=("bernoulli",), num_samples=50)
    assert row["likelihood"] == "exact"
    assert row["nll_nats"] == pytest.approx(nll)
    assert row["bits_per_dim"] == pytest.approx(nll / (784 * math.log(2)))
    assert row["frechet"] > row["frechet_floor"] >= 0
    assert 0 <= row["coverage"] <= 1
    assert row["parameters"] == 784


def test_gan_row_has_no_likelihood():
    from companion.models import gan

    model = gan.make_model(width=4, latent_dim=8)
    row = comparison.evaluate("gan", model, train_seconds=1.5, num_samples=20)
    assert row["nll_nats"] is None and row["bits_per_dim"] is None
    assert row["likelihood"] == "none"
    assert row["parameters"] == comparison.count_parameters(model) > 0
    assert row["sample_seconds"] > 0


def test_vae_bound_is_reported_as_a_positive_nll():
    from companion.models import vae

    model = vae.make_model(latent_dim=2, width=4)
    test = np.round(np.random.default_rng(0).random((6, 28, 28, 1))).astype("float32")
    log_p = comparison.heldout_log_likelihood("vae", model, test, iw_samples=4)
    assert log_p.shape == (6,) and np.all(log_p < 0)


def test_format_table_marks_missing_values_and_keeps_every_row():
    rows = [comparison.evaluate("bernoulli", evaluation.bernoulli_baseline()[0], 0.1,
                                num_samples=20)]
    rows.append(dict(rows[0], family="no density", nll_nats=None, bits_per_dim=None))
    table = comparison.format_table(rows).splitlines()
    assert len(table) == 4
    assert "—" in table[3] and "—" not in table[2]
    assert table[2].count("|") == table[0].count("|")


def test_bad_family_raises():
    with pytest.raises(ValueError, match="family"):
        comparison.compare(families=("flow",))
    with pytest.raises(ValueError, match="epochs"):
        comparison.train_family("gan", 0)


def test_sharpness_drops_when_images_are_averaged():
    from companion import data

    digits, labels = data.load("digits", "test", value_range="binary")
    sevens = digits[labels == 7][:8]
    average = sevens.mean(axis=0, keepdims=True)
    assert comparison.sharpness(average)[0] < comparison.sharpness(sevens).mean()
    assert comparison.sharpness(np.full((2, 28, 28, 1), 0.5)).tolist() == [0.0, 0.0]
