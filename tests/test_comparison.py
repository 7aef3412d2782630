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


def test_count_parameters_counts_trainable_weights_unless_asked():
    # Batch normalisation: gamma and beta are trained, the moving mean and
    # variance are not.
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3),
                              keras.layers.BatchNormalization()])
    assert comparison.count_parameters(model) == (5 * 3 + 3) + 2 * 3
    assert comparison.count_parameters(model, trainable_only=False) == (5 * 3 + 3) + 4 * 3


def test_time_sampling_excludes_the_compiling_call_and_keeps_the_fastest():
    import time

    class Sampler:
        calls = []

        def sample(self, num, seed=None):
            self.calls.append(seed)
            time.sleep(0.3 if len(self.calls) == 1 else 0.01)  # the first call "compiles"
            return np.zeros((num, 28, 28, 1), "float32")

    sampler = Sampler()
    seconds, samples = comparison.time_sampling(sampler, num=4, seed=7, repeats=3)
    assert seconds < 0.2 and samples.shape == (4, 28, 28, 1)
    assert sampler.calls == [8, 7, 7, 7]  # a warm-up call, then the timed ones
    with pytest.raises(ValueError, match="repeats"):
        comparison.time_sampling(sampler, num=4, repeats=0)


def test_train_family_times_every_epoch():
    model, seconds, epoch_seconds = comparison.train_family("vae", 2, dataset="digits")
    assert len(epoch_seconds) == 2 and all(t > 0 for t in epoch_seconds)
    assert sum(epoch_seconds) <= seconds
    baseline, _, none = comparison.train_family("bernoulli", 1, dataset="digits")
    assert none == [] and comparison.count_parameters(baseline) == 784


def test_bernoulli_row_matches_the_baseline_and_unit_conversion():
    _, nll = evaluation.bernoulli_baseline()
    (row,) = comparison.compare(families=("bernoulli",), num_samples=50)
    assert row["likelihood"] == "exact"
    assert row["nll_nats"] == pytest.approx(nll)
    assert row["bits_per_dim"] == pytest.approx(nll / (784 * math.log(2)))
    assert row["frechet"] > row["frechet_floor"] >= 0
    assert 0 <= row["label_entropy"] <= 1
    assert row["parameters"] == 784


def test_gan_row_has_no_likelihood():
    from companion.models import gan

    model = gan.make_model(width=4, latent_dim=8)
    row = comparison.evaluate("gan", model, train_seconds=1.5, num_samples=20)
    assert row["nll_nats"] is None and row["bits_per_dim"] is None
    assert row["likelihood"] == "none"
    assert row["parameters"] == comparison.count_parameters(model) > 0
    assert row["sample_seconds"] > 0


def test_vae_heldout_log_likelihood_is_the_seeded_bound():
    from companion.models import vae

    model = vae.make_model(latent_dim=2, width=4)
    test = np.round(np.random.default_rng(0).random((6, 28, 28, 1))).astype("float32")
    log_p = comparison.heldout_log_likelihood("vae", model, test, iw_samples=4)
    assert log_p.shape == (6,) and np.all(log_p < 0)
    np.testing.assert_array_equal(log_p, model.log_likelihood(test, num_samples=4, seed=0))


def test_format_table_marks_missing_values_and_keeps_every_row():
    rows = [comparison.evaluate("bernoulli", evaluation.bernoulli_baseline()[0], 0.1,
                                num_samples=20)]
    rows.append(dict(rows[0], family="no density", nll_nats=None, bits_per_dim=None))
    table = comparison.format_table(rows).splitlines()
    assert len(table) == 4
    nll_column = [line.split("|")[3].strip() for line in table[2:]]
    assert nll_column[1] == "—" and nll_column[0] != "—"
    assert table[2].count("|") == table[0].count("|")
    # Headers say what the timings are; the floor sits beside the distance.
    for title in ("Fréchet | Fréchet floor", "training, total", "one epoch",
                  "sampling 20 images", "trainable parameters"):
        assert title in table[0]


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


def test_rows_follow_the_family_registry():
    from companion import models

    assert comparison.FAMILIES == ("bernoulli", *models.FAMILIES)
    for name, entry in models.REGISTRY.items():
        if entry.likelihood == "none":
            assert comparison.heldout_log_likelihood(name, None, None) is None


def test_checkpoint_rows_read_each_record_and_fill_the_main_table():
    from companion import pretrained

    rows = comparison.checkpoint_rows([pretrained.card(name) for name in pretrained.NAMES])
    assert [row["family"] for row in rows] == [comparison._NAMES[name]
                                              for name in pretrained.NAMES]
    for name, row in zip(pretrained.NAMES, rows):
        record = pretrained.card(name)
        quality = record["evaluation"]["sample_quality"]
        assert row["frechet"] == quality["frechet"] and row["kid"] == quality["kid"]
        assert row["nll_nats"] == record["evaluation"]["nll_nats"]
        assert row["train_seconds"] == record["training"]["seconds"]
    table = comparison.format_table(rows, comparison.CHECKPOINT_COLUMNS).splitlines()
    assert len(table) == 2 + len(rows)
    assert all(line.count("|") == len(comparison.CHECKPOINT_COLUMNS) + 1 for line in table)
    for title in ("KID", "precision", "recall", "label entropy", "sampling 1,000 images"):
        assert f"| {title} |" in table[0]
    assert table[2].split("|")[2].strip() == "—"  # the GAN: no likelihood
