"""Tests of companion.evaluation: classifier, Fréchet distance, scores, likelihoods."""

import itertools
import math

import numpy as np
import pytest
import scipy.linalg
from scipy import stats

from companion import data, evaluation


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """Train the reference classifier once, in a fresh cache folder."""
    folder = tmp_path_factory.mktemp("companion_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMPANION_CACHE_DIR", str(folder))
        evaluation._classifiers.clear()
        evaluation._real_statistics.clear()
        yield evaluation.reference_classifier("mnist10k")
        evaluation._classifiers.clear()
        evaluation._real_statistics.clear()


@pytest.fixture(scope="module")
def test_images():
    return data.load("mnist10k", "test")


# Reference classifier --------------------------------------------------------------


def test_classifier_is_accurate_on_held_out_digits(classifier, test_images):
    images, labels = test_images
    accuracy = evaluation.reference_accuracy("mnist10k")
    assert accuracy >= 0.97
    predicted = np.asarray(classifier.predict(images, verbose=0)).argmax(axis=1)
    assert accuracy == pytest.approx(np.mean(predicted == labels))
    assert classifier.output_shape == (None, 10)


def test_classifier_is_cached_on_disk_and_reloaded(classifier, test_images, monkeypatch):
    path = evaluation.classifier_path("mnist10k")
    assert path.exists() and "mnist10k" in path.name and evaluation.CLASSIFIER_VERSION in path.name
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left
    before = np.asarray(classifier.predict(test_images[0], verbose=0))

    def no_training(dataset):
        raise AssertionError("the cached classifier should have been loaded")

    monkeypatch.setattr(evaluation, "_train", no_training)
    evaluation._classifiers.clear()
    reloaded = evaluation.reference_classifier("mnist10k")
    assert reloaded is not classifier
    np.testing.assert_array_equal(np.asarray(reloaded.predict(test_images[0], verbose=0)),
                                  before)
    assert evaluation.reference_classifier("mnist10k") is reloaded  # in memory now


def test_an_incompatible_cache_file_is_retrained_with_a_warning(tmp_path, monkeypatch):
    import keras

    path = tmp_path / "reference_classifier.keras"
    monkeypatch.setattr(evaluation, "classifier_path", lambda dataset="mnist10k": path)
    trained = []

    def fake_training(dataset):  # an untrained classifier of the right kind, quickly
        trained.append(dataset)
        return evaluation._build_classifier()

    monkeypatch.setattr(evaluation, "_train", fake_training)
    foreign = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)], name="other")
    for write in (lambda: path.write_bytes(b"truncated"), lambda: foreign.save(path)):
        write()
        with pytest.warns(UserWarning, match="incompatible"):
            classifier = evaluation._load_or_train("digits")[0]
        evaluation._classifiers.pop(("digits", str(path)))
        assert classifier.name == evaluation._CLASSIFIER_NAME
        assert keras.saving.load_model(path).name == evaluation._CLASSIFIER_NAME  # rewritten
    assert trained == ["digits", "digits"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary files


def test_other_errors_while_loading_the_cache_are_not_swallowed(tmp_path, monkeypatch):
    import keras

    path = tmp_path / "reference_classifier.keras"
    path.write_bytes(b"anything")

    def unreadable(*args, **kwargs):
        raise PermissionError("no access")

    monkeypatch.setattr(keras.saving, "load_model", unreadable)
    with pytest.raises(PermissionError, match="no access"):
        evaluation._load(path)


def test_classifier_features_shape_and_determinism(classifier, test_images):
    images = test_images[0][:300]
    features = evaluation.classifier_features(images)
    assert features.shape == (300, 64) and features.dtype == np.float32
    # Batching (predicting in padded chunks) does not change a row.
    np.testing.assert_allclose(evaluation.classifier_features(images[7:8]), features[7:8],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 28, 28)), r"shape"),
        (np.zeros((4, 32, 32, 1)), r"\(4, 32, 32, 1\)"),
        (np.full((4, 28, 28, 1), 2.0), r"\[0, 1\]"),
    ],
)
def test_bad_images_raise(classifier, bad, message):
    for call in (evaluation.classifier_features, evaluation.classifier_scores,
                 evaluation.sample_quality):
        with pytest.raises(ValueError, match=message):
            call(bad)


def test_unknown_dataset_raises():
    with pytest.raises(ValueError, match="dataset"):
        evaluation.reference_classifier("cifar")


# Fréchet distance -------------------------------------------------------------------


def test_frechet_properties(classifier, test_images):
    images = test_images[0]
    assert evaluation.frechet_distance(images, images) < 1e-6
    rng = np.random.default_rng(0)
    distances = []
    for noise in (0.05, 0.15, 0.3):
        noisy = np.clip(images + noise * rng.normal(size=images.shape), 0, 1)
        distances.append(evaluation.frechet_distance(images, noisy))
    assert 0 < distances[0] < distances[1] < distances[2]
    train = data.load("mnist10k", "train")[0]
    forward = evaluation.frechet_distance(images, train)
    assert forward == pytest.approx(evaluation.frechet_distance(train, images), rel=1e-6)
    assert forward < distances[2]
    with pytest.raises(ValueError, match="at least 2"):
        evaluation.frechet_distance(images[:1], images)


def test_frechet_formula_in_one_dimension():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 2.0, size=(500, 1))
    b = rng.normal(-0.5, 0.7, size=(400, 1))
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert evaluation._frechet_from_features(a, b) == pytest.approx(expected, rel=1e-9)


def test_frechet_matches_sqrtm_and_is_rotation_invariant():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(250, 6)) @ rng.normal(size=(6, 6)) + 0.5
    mean_a, cov_a = a.mean(0), np.cov(a, rowvar=False)
    mean_b, cov_b = b.mean(0), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    expected = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)
    assert evaluation._frechet_from_features(a, b) == pytest.approx(expected, rel=1e-6)
    rotation = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    assert evaluation._frechet_from_features(a @ rotation, b @ rotation) == pytest.approx(
        expected, rel=1e-6)


def test_frechet_is_stable_for_singular_covariances():
    rng = np.random.default_rng(2)
    a = np.zeros((50, 8))
    a[:, :2] = rng.normal(size=(50, 2))  # rank 2 out of 8
    assert evaluation._frechet_from_features(a, a) == pytest.approx(0.0, abs=1e-9)
    shifted = evaluation._frechet_from_features(a, a + 1.0)
    assert shifted == pytest.approx(8.0, rel=1e-6)


# Classifier scores and sample quality ------------------------------------------------


def test_classifier_scores_measure_coverage(classifier, test_images):
    images, labels = test_images
    real = evaluation.classifier_scores(images)
    assert real["coverage"] > 0.99
    assert 0.5 < real["confidence"] <= 1.0
    predicted = np.asarray(classifier.predict(images, verbose=0)).argmax(axis=1)
    one_class = images[predicted == 3]
    assert evaluation.classifier_scores(one_class)["coverage"] == 0.0
    two_classes = np.concatenate([images[predicted == 3][:30], images[predicted == 5][:30]])
    assert evaluation.classifier_scores(two_classes)["coverage"] == pytest.approx(
        math.log(2) / math.log(10))


def test_sample_quality_of_real_images(classifier, test_images):
    images = test_images[0]
    quality = evaluation.sample_quality(images)
    assert sorted(quality) == ["confidence", "coverage", "frechet", "frechet_floor",
                               "real_confidence", "relative_confidence"]
    assert all(type(v) is float for v in quality.values())
    assert quality["frechet"] < 1e-6 and quality["relative_confidence"] == pytest.approx(1.0)
    assert quality["frechet_floor"] > 0
    small = evaluation.sample_quality(images[:100], seed=3)
    assert small == evaluation.sample_quality(images[:100], seed=3)
    assert small["relative_confidence"] == pytest.approx(
        small["confidence"] / small["real_confidence"])
    assert small["real_confidence"] == quality["real_confidence"]
    assert small["frechet_floor"] > quality["frechet_floor"]  # fewer samples, more bias
    # More images than the training split: the floor uses all of it.
    train = data.load("mnist10k", "train")[0]
    many = np.concatenate([images] * 10)
    assert evaluation.sample_quality(many)["frechet_floor"] == pytest.approx(
        evaluation.frechet_distance(train, images), rel=1e-9)


def test_binary_floor_uses_binarised_real_images(classifier, test_images):
    images = test_images[0]
    grey = evaluation.sample_quality(images, seed=0)
    binary = evaluation.sample_quality(images, seed=0, value_range="binary")
    subset = data.load("mnist10k", "train", value_range="binary", seed=0)[0]
    chosen = np.sort(np.random.default_rng(0).choice(len(subset), len(images), replace=False))
    assert binary["frechet_floor"] == pytest.approx(
        evaluation.frechet_distance(subset[chosen], images), rel=1e-9)
    # Binary images are farther from the grey test digits than grey ones.
    assert binary["frechet_floor"] > 1.3 * grey["frechet_floor"]
    assert binary["frechet"] == grey["frechet"]  # the samples' own figure is unchanged
    # By default the floor follows the images: binary samples get the binary floor.
    assert evaluation.sample_quality(subset[:1000])["frechet_floor"] == pytest.approx(
        binary["frechet_floor"])
    with pytest.raises(ValueError, match="value_range.*'symmetric'"):
        evaluation.sample_quality(images, value_range="symmetric")


def test_sample_quality_ranks_blurred_and_collapsed_samples_worse(classifier, test_images):
    images = test_images[0]
    rng = np.random.default_rng(0)
    noisy = np.clip(images + 0.3 * rng.normal(size=images.shape), 0, 1)
    collapsed = np.repeat(images[:1], len(images), axis=0)
    real = evaluation.sample_quality(images)
    assert evaluation.sample_quality(noisy)["frechet"] > real["frechet_floor"]
    assert evaluation.sample_quality(collapsed)["coverage"] == 0.0


# Likelihood -----------------------------------------------------------------------------


def test_importance_weighted_bound_is_stable_log_mean_exp():
    log_w = np.log(np.array([[1.0, 3.0], [2.0, 2.0]]))
    np.testing.assert_allclose(evaluation.importance_weighted_bound(log_w),
                               [math.log(2.0), math.log(2.0)])
    huge = np.array([[-1e4, -1e4 + math.log(3.0)]])
    np.testing.assert_allclose(evaluation.importance_weighted_bound(huge),
                               [-1e4 + math.log(2.0)])
    assert evaluation.importance_weighted_bound(np.zeros((2, 3, 5))).shape == (2, 3)
    with pytest.raises(ValueError, match=r"\(3, 0\)"):
        evaluation.importance_weighted_bound(np.zeros((3, 0)))


def test_importance_weighted_bound_grows_with_k_towards_log_evidence():
    # Prior N(0, 1), p(x|z) = N(z, 1): p(x) = N(0, 2), posterior N(x/2, 1/2).
    # The proposal q(z|x) = N(x/2 + 0.6, 1) is deliberately wrong.
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, math.sqrt(2.0), size=(400, 1))
    log_px = stats.norm(0, math.sqrt(2.0)).logpdf(x[:, 0])
    q = stats.norm(x / 2 + 0.6, 1.0)
    bounds = {}
    for k in (1, 2, 5, 50):
        z = q.rvs(size=(400, k), random_state=rng)
        log_w = (stats.norm(z, 1.0).logpdf(x) + stats.norm(0, 1).logpdf(z)
                 - q.logpdf(z))
        bounds[k] = np.mean(evaluation.importance_weighted_bound(log_w) - log_px)
    elbo_gap = -(math.log(math.sqrt(0.5)) + (1 + 0.36) / (2 * 0.5) - 0.5)  # -KL(q||post)
    assert bounds[1] == pytest.approx(elbo_gap, abs=0.1)
    assert bounds[1] < bounds[2] < bounds[5] < bounds[50] < 0.01
    assert bounds[50] > -0.05


def test_bits_per_dim():
    assert evaluation.bits_per_dim(784 * math.log(2)) == pytest.approx(1.0)
    np.testing.assert_allclose(
        evaluation.bits_per_dim(np.array([64 * math.log(2), 0.0]), image_shape=(8, 8, 1)),
        [1.0, 0.0])


def test_independent_bernoulli_laplace_smoothing_and_normalisation():
    images = np.array([[[[1], [0]], [[1], [1]]],
                       [[[1], [0]], [[0], [1]]]], "float32")  # 2 images of 2x2
    model = evaluation.IndependentBernoulli().fit(images)
    np.testing.assert_allclose(model.probabilities[..., 0], [[3 / 4, 1 / 4], [2 / 4, 3 / 4]])
    every = np.array(list(itertools.product([0.0, 1.0], repeat=4)), "float32")
    log_p = model.log_likelihood(every.reshape(16, 2, 2, 1))
    assert np.exp(log_p).sum() == pytest.approx(1.0)
    assert model.log_likelihood(images)[0] == pytest.approx(
        math.log(3 / 4 * 3 / 4 * 2 / 4 * 3 / 4))


def test_independent_bernoulli_sample_contract_and_errors():
    train = data.load("digits", "train", value_range="binary")[0]
    model = evaluation.IndependentBernoulli().fit(train)
    samples = model.sample(4000, seed=0)
    assert samples.shape == (4000, 28, 28, 1) and samples.dtype == np.float32
    assert set(np.unique(samples)) <= {0.0, 1.0}
    np.testing.assert_array_equal(samples, model.sample(4000, seed=0))
    assert np.abs(samples.mean(0) - model.probabilities).max() < 0.04
    with pytest.raises(ValueError, match="binary"):
        model.log_likelihood(np.full((1, 28, 28, 1), 0.5, "float32"))
    with pytest.raises(ValueError, match="not fitted"):
        evaluation.IndependentBernoulli().sample(1)


def test_bernoulli_baseline_anchors_the_likelihoods():
    model, test_nll = evaluation.bernoulli_baseline("digits")
    train = data.load("digits", "train", value_range="binary")[0]
    train_nll = -model.log_likelihood(train).mean()
    assert 0 < train_nll < test_nll < 784 * math.log(2)  # beats coin flips
    assert 0 < evaluation.bits_per_dim(test_nll) < 1


def test_class_probabilities_are_the_softmax_behind_the_confidence():
    test, _ = data.load("mnist10k", "test")
    probabilities = evaluation.class_probabilities(test[:200])
    assert probabilities.shape == (200, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-9)
    scores = evaluation.classifier_scores(test[:200])
    assert probabilities.max(axis=1).mean() == pytest.approx(scores["confidence"], abs=1e-9)
