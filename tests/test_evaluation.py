"""Tests of companion.evaluation: classifier, reference set, Fréchet and kernel
distances, precision and recall, scores, likelihoods."""

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
        evaluation._reference_sets.clear()
        yield evaluation.reference_classifier("mnist10k")
        evaluation._reference_sets.clear()


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
    evaluation._reference_sets.clear()
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
            classifier = evaluation._load_or_train("digits")
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


# Kernel distance ---------------------------------------------------------------------


def _kid_by_hand(a, b):
    """The unbiased MMD^2 of two whole sets, with explicit loops."""
    d, m, n = a.shape[1], len(a), len(b)

    def k(x, y):
        return (x @ y / d + 1.0) ** 3

    within_a = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j)
    within_b = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j)
    across = sum(k(x, y) for x in a for y in b)
    return within_a / (m * (m - 1)) + within_b / (n * (n - 1)) - 2 * across / (m * n)


def test_kernel_distance_written_out_in_one_dimension():
    a, b = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    # k(x, y) = (x y + 1)^3: k(0, 1) = 1, k(1, 2) = 27, k(0, 2) = 1, k(1, 1) = 8.
    expected = 2 * 1 / 2 + 2 * 27 / 2 - 2 * (1 + 1 + 8 + 27) / 4
    assert expected == 9.5
    assert evaluation.kernel_distance(a, b) == (9.5, 0.0)
    assert evaluation.kernel_distance(b, a) == (9.5, 0.0)


def test_kernel_distance_matches_the_double_sums_in_two_dimensions():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 2))
    b = rng.normal(1.0, 1.0, size=(12, 2))
    # Subsets as large as the sets are the whole sets (reordered): every subset agrees.
    mean, std = evaluation.kernel_distance(a, b, num_subsets=4)
    assert mean == pytest.approx(_kid_by_hand(a, b), rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)
    # Identical sets: the cross term keeps the diagonal k(x, x), so the value is below 0.
    m = len(a)
    gram = (a @ a.T / 2 + 1.0) ** 3
    off_diagonal = gram.sum() - np.trace(gram)
    identical = 2 * off_diagonal / (m * (m - 1)) - 2 * gram.sum() / m**2
    assert identical < 0
    assert evaluation.kernel_distance(a, a)[0] == pytest.approx(identical, rel=1e-12)


def test_kernel_distance_subsets_are_seeded_and_bounded_by_the_smaller_set():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 3))
    b = rng.normal(0.5, 1.0, size=(300, 3))
    first = evaluation.kernel_distance(a, b, num_subsets=5, subset_size=100, seed=7)
    assert first == evaluation.kernel_distance(a, b, num_subsets=5, subset_size=100, seed=7)
    assert first != evaluation.kernel_distance(a, b, num_subsets=5, subset_size=100, seed=8)
    assert first[1] > 0  # 40 of `b`'s 300 rows differ from subset to subset
    # One subset of 40 rows: the double sums over `a` and the chosen rows of `b`.
    chosen = np.random.default_rng(7)
    chosen.choice(40, 40, replace=False)  # the draw of `a`'s rows (all of them)
    rows = chosen.choice(300, 40, replace=False)
    assert evaluation.kernel_distance(a, b, num_subsets=1, subset_size=100, seed=7)[0] == \
        pytest.approx(_kid_by_hand(a, b[rows]), rel=1e-12)


def test_kernel_distance_is_unbiased():
    """Its mean over many pairs of small samples of one distribution is 0."""
    rng = np.random.default_rng(2)
    same = [evaluation.kernel_distance(rng.normal(size=(10, 4)), rng.normal(size=(10, 4)),
                                       num_subsets=1)[0] for _ in range(400)]
    shifted = [evaluation.kernel_distance(rng.normal(size=(10, 4)),
                                          rng.normal(0.5, 1.0, size=(10, 4)),
                                          num_subsets=1)[0] for _ in range(400)]
    standard_error = np.std(same) / math.sqrt(len(same))
    assert abs(np.mean(same)) < 3 * standard_error
    assert np.mean(shifted) > 10 * standard_error


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda a: evaluation.kernel_distance(a, a[:, :2]),
         r"`features_a` and `features_b` must have the same number of features.*got 3 and 2"),
        (lambda a: evaluation.kernel_distance(a[:1], a),
         r"`features_a` must be .* at least 2 rows; got shape \(1, 3\)"),
        (lambda a: evaluation.kernel_distance(a, a[0]), r"`features_b` .*got shape \(3,\)"),
        (lambda a: evaluation.kernel_distance(a, a * np.nan), r"`features_b` .*NaN"),
        (lambda a: evaluation.kernel_distance(a, a, num_subsets=0),
         r"`num_subsets` must be an integer >= 1; got 0"),
        (lambda a: evaluation.kernel_distance(a, a, subset_size=1),
         r"`subset_size` must be an integer >= 2; got 1"),
        (lambda a: evaluation.kernel_distance(a, a, seed=-1), r"`seed` must be None or"),
    ],
)
def test_kernel_distance_refuses_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call(np.ones((5, 3)))


# Precision and recall ----------------------------------------------------------------


def test_precision_counts_an_outlier_outside_every_ball():
    # Five real points on a unit square's corners and centre: with k = 3 each
    # ball reaches past the centre; a point far away lies in none of them.
    real = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.5, 0.5]])
    fake = np.concatenate([real[:4] * 0.9 + 0.05, [[10.0, 10.0]]])
    precision, recall = evaluation.precision_recall(real, fake, k=3)
    assert precision == 4 / 5
    assert recall == 1.0  # the outlier's ball is huge: it covers every real point
    assert evaluation.precision_recall(real, real, k=3) == (1.0, 1.0)


def test_precision_recall_with_k_1_by_hand():
    real = np.array([[0.0], [1.0], [3.0]])  # radii 1, 1, 2 (nearest other point)
    fake = np.array([[0.5], [5.0], [5.5]])  # radii 4.5, 0.5, 0.5
    # 0.5 is inside the ball of 0; 5.0 lies on the boundary of 3's ball (inside);
    # 5.5 is outside. Every real point is within 4.5 of 0.5.
    assert evaluation.precision_recall(real, fake, k=1) == (2 / 3, 1.0)
    # The roles swap: precision of one is the recall of the other.
    assert evaluation.precision_recall(fake, real, k=1) == (1.0, 2 / 3)
    # A larger k grows every ball: 5.5 is within 3's second-neighbour radius 3.
    assert evaluation.precision_recall(real, fake, k=2) == (1.0, 1.0)


def test_precision_and_recall_separate_fidelity_from_diversity():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(400, 2))
    narrow = rng.normal(scale=0.3, size=(400, 2))  # realistic, but only the centre
    wide = rng.normal(scale=4.0, size=(400, 2))    # covers everything, mostly unrealistic
    precision_narrow, recall_narrow = evaluation.precision_recall(real, narrow)
    precision_wide, recall_wide = evaluation.precision_recall(real, wide)
    assert precision_narrow > 0.95 and recall_narrow < 0.5
    assert precision_wide < 0.5 and recall_wide > 0.95
    values = np.array([evaluation.precision_recall(real, wide, k=k) for k in (1, 3, 5)])
    assert (np.diff(values, axis=0) >= 0).all()  # larger balls: neither falls


def test_precision_recall_is_the_same_in_chunks(monkeypatch):
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(50, 3)), rng.normal(0.3, 1.0, size=(60, 3))
    whole = evaluation.precision_recall(real, fake)
    monkeypatch.setattr(evaluation, "_row_chunks", lambda rows, columns: [
        slice(start, start + 7) for start in range(0, rows, 7)])
    assert evaluation.precision_recall(real, fake) == whole


@pytest.mark.parametrize(
    "k, fake_rows, message",
    [
        (0, 5, r"`k` must be an integer >= 1; got 0"),
        (2.0, 5, r"`k` must be an integer >= 1; got 2.0"),
        (5, 5, r"`k` must be an integer in \[1, 4\].*\(6 real, 5 fake\).*got 5"),
        (6, 8, r"`k` must be an integer in \[1, 5\].*\(6 real, 8 fake\).*got 6"),
    ],
)
def test_precision_recall_refuses_a_bad_k(k, fake_rows, message):
    with pytest.raises(ValueError, match=message):
        evaluation.precision_recall(np.ones((6, 2)), np.ones((fake_rows, 2)), k=k)


def test_precision_recall_refuses_bad_features():
    with pytest.raises(ValueError, match=r"`real_features` and `fake_features` must have "
                                         r"the same number of features.*got 2 and 3"):
        evaluation.precision_recall(np.ones((6, 2)), np.ones((6, 3)))
    with pytest.raises(ValueError, match=r"`fake_features` must be a finite array.*ragged"):
        evaluation.precision_recall(np.ones((6, 2)), [[1.0, 2.0], [1.0]])


# Classifier scores and sample quality ------------------------------------------------


def test_classifier_scores_measure_label_entropy(classifier, test_images):
    images, labels = test_images
    real = evaluation.classifier_scores(images)
    assert sorted(real) == ["confidence", "label_entropy"]
    assert real["label_entropy"] > 0.99
    assert 0.5 < real["confidence"] <= 1.0
    predicted = np.asarray(classifier.predict(images, verbose=0)).argmax(axis=1)
    one_class = images[predicted == 3]
    assert evaluation.classifier_scores(one_class)["label_entropy"] == 0.0
    two_classes = np.concatenate([images[predicted == 3][:30], images[predicted == 5][:30]])
    assert evaluation.classifier_scores(two_classes)["label_entropy"] == pytest.approx(
        math.log(2) / math.log(10))


def test_sample_quality_of_real_images(classifier, test_images):
    images = test_images[0]
    quality = evaluation.sample_quality(images)
    assert sorted(quality) == ["confidence", "frechet", "frechet_floor", "kid", "kid_floor",
                               "kid_std", "label_entropy", "precision", "precision_floor",
                               "real_confidence", "recall", "recall_floor",
                               "relative_confidence"]
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


def test_the_reference_set_is_built_once_and_every_metric_reads_it(classifier, test_images,
                                                                   monkeypatch):
    images = test_images[0]
    reference = evaluation.reference_set("mnist10k")
    assert evaluation.reference_set("mnist10k") is reference
    assert evaluation.reference_classifier("mnist10k") is reference.classifier
    assert reference.test_features.shape == (1000, 64)
    assert reference.train_images.shape == (9000, 28, 28, 1)
    predicted = []  # every image the classifier reads from now on
    original = reference.features_and_logits
    monkeypatch.setattr(reference, "features_and_logits",
                        lambda x: predicted.append(len(x)) or original(x))

    def no_loading(*args, **kwargs):
        raise AssertionError("the reference set should not load data again")

    monkeypatch.setattr(data, "load", no_loading)
    monkeypatch.setattr(evaluation, "_load_or_train", no_loading)
    first = evaluation.sample_quality(images[:200], seed=5)
    assert predicted == [200, 200]  # the samples, then the floor's 200 training digits
    assert evaluation.sample_quality(images[:200], seed=5) == first
    assert predicted == [200, 200, 200]  # the floor is computed once
    assert first["real_confidence"] == reference.real_confidence
    assert evaluation.classifier_scores(images[:50]) == reference.classifier_scores(images[:50])


def test_sample_quality_floors_and_new_figures_match_the_feature_functions(classifier,
                                                                           test_images):
    images = test_images[0][:300]
    reference = evaluation.reference_set("mnist10k")
    quality = evaluation.sample_quality(images, seed=2)
    features = evaluation.classifier_features(images)
    assert (quality["kid"], quality["kid_std"]) == evaluation.kernel_distance(
        features, reference.test_features, seed=2)
    assert (quality["kid"], quality["kid_std"]) == reference.kernel_distance(images, seed=2)
    assert (quality["precision"], quality["recall"]) == evaluation.precision_recall(
        reference.test_features, features, k=3)
    assert (quality["precision"], quality["recall"]) == reference.precision_recall(images)
    train = data.load("mnist10k", "train")[0]
    chosen = np.sort(np.random.default_rng(2).choice(len(train), 300, replace=False))
    floor_features = evaluation.classifier_features(train[chosen])
    assert quality["kid_floor"] == evaluation.kernel_distance(
        floor_features, reference.test_features, seed=2)[0]
    assert (quality["precision_floor"], quality["recall_floor"]) == \
        evaluation.precision_recall(reference.test_features, floor_features, k=3)
    # Real training digits: kernel distance about 0, most points in the other manifold.
    assert abs(quality["kid_floor"]) < 2.0
    assert quality["precision_floor"] > 0.7 and quality["recall_floor"] > 0.7
    # Two images: the fewest sample_quality accepts; precision and recall use k = 1.
    two = evaluation.sample_quality(images[:2])
    assert (two["precision"], two["recall"]) == evaluation.precision_recall(
        reference.test_features, evaluation.classifier_features(images[:2]), k=1)
    assert all(type(v) is float for v in two.values())


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
    collapsed_quality = evaluation.sample_quality(collapsed)
    assert collapsed_quality["label_entropy"] == 0.0
    # Noise: far in kernel distance, and the blurred features miss most of the data.
    noisy_quality = evaluation.sample_quality(noisy)
    assert noisy_quality["kid"] > real["kid_floor"] + 5 * noisy_quality["kid_std"]
    assert noisy_quality["recall"] < real["recall_floor"] - 0.1
    # One real digit a thousand times: realistic (precision 1), but it covers at most
    # itself (its ball has radius 0).
    assert collapsed_quality["precision"] == 1.0
    assert collapsed_quality["recall"] <= 1 / len(images)


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
