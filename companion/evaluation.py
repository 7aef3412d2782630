"""Evaluation of generative models: sample quality and likelihood.

Sample quality is measured in the feature space of a small *reference
classifier*, a CNN trained deterministically on the data set's training split
and cached on disk, so that every chapter reports the same numbers for the same
images. :func:`reference_set` builds, once per data set, a :class:`ReferenceSet`:
the classifier, the real test split's features, logits and confidence, and the
training split the real-vs-real floors are drawn from. Every metric reads it:

- :func:`frechet_distance`: the Fréchet distance of Heusel et al. (2017)
  between Gaussians fitted to the classifier's penultimate features. It is a
  classifier-based distance, **not** the Inception FID: its numbers are only
  comparable with other numbers from this module, never with published FIDs.
- :func:`kernel_distance`: the kernel distance (KID) of Bińkowski et al.
  (2018), an unbiased estimate of the squared MMD, in the same features.
- :func:`precision_recall`: the improved precision and recall of
  Kynkäänniemi et al. (2019), in the same features.
- :func:`classifier_scores`: mean confidence and label entropy (mode
  collapse shows as a label entropy well below 1).
- :func:`sample_quality`: all of them at once, next to the real-data values
  (the real-vs-real floors and the real confidence) that tell a reader what
  "good" means here.

Likelihoods: :func:`importance_weighted_bound` (Burda et al. 2016),
:func:`bits_per_dim`, and the :class:`IndependentBernoulli` baseline that
anchors every likelihood in the book.

Example:

>>> from companion import data, evaluation
>>> model, nll = evaluation.bernoulli_baseline("mnist10k")
>>> round(nll, 1)  # test nats per image of per-pixel marginals
205.7
"""

import math
import warnings
import zipfile

import numpy as np
from scipy.spatial.distance import cdist
from scipy.special import logsumexp, softmax
from scipy.stats import entropy

from companion import data
from companion.checkpoint import atomic_path
from companion._validation import (check_binary, check_choice, check_features,
                                   check_images, check_int, check_seed)

CLASSIFIER_VERSION = "v1"
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
NUM_FEATURES = 64

# Training recipe of the reference classifier, per data set: passes over the
# training split. Every pass shifts each image by up to _MAX_SHIFT pixels.
_EPOCHS = {"mnist10k": 12, "digits": 20, "mnist": 2, "fashion_mnist": 3}
_MAX_SHIFT = 2
_BATCH_SIZE = 64
_LEARNING_RATE = 2e-3
_TRAINING_SEED = 0
_PREDICT_BATCH = 256

# Defaults of the kernel distance and of precision and recall (see their docstrings).
KID_SUBSETS = 10
KID_SUBSET_SIZE = 500
NEIGHBOURS = 3

_CLASSIFIER_NAME = f"reference_classifier_{CLASSIFIER_VERSION}"

_reference_sets = {}  # (dataset, classifier path) -> ReferenceSet


# Reference classifier --------------------------------------------------------------


def reference_classifier(dataset="mnist10k"):
    """The reference digit classifier, trained on first use and cached.

    A small CNN (two strided 3x3 convolutions, a 64-unit feature layer, 10
    logits) trained deterministically (fixed initialiser seeds, a fixed
    shuffling and shifting of the data, no dropout) on the training split of
    `dataset`, with random shifts of up to 2 pixels: 12 passes over the
    9,000 ``mnist10k`` digits (about 15 s on two CPU cores, compilation
    included), 20 over the small ``digits`` set, 2 over the full ``mnist`` and
    3 over ``fashion_mnist``. The trained model is kept in
    memory (in :func:`reference_set`) and saved under
    :func:`companion.data.cache_dir` as
    ``reference_classifier_<dataset>_<version>.keras``, written atomically;
    later calls, in any process, load it.

    Args:
        dataset: ``"mnist10k"``, ``"digits"``, ``"mnist"`` or ``"fashion_mnist"``.

    Returns:
        A `keras.Model` mapping `(N, 28, 28, 1)` images in [0, 1] to 10 logits.

    Raises:
        ValueError: for an unknown `dataset`.

    Example:

    >>> model = reference_classifier("mnist10k")
    >>> model.output_shape
    (None, 10)
    """
    return reference_set(dataset).classifier


def classifier_path(dataset="mnist10k"):
    """Where :func:`reference_classifier` caches its model for `dataset`."""
    check_choice("dataset", dataset, data.NAMES)
    return data.cache_dir() / f"reference_classifier_{dataset}_{CLASSIFIER_VERSION}.keras"


def reference_accuracy(dataset="mnist10k"):
    """Held-out accuracy of the reference classifier on the test split.

    Args:
        dataset: ``"mnist10k"``, ``"digits"``, ``"mnist"`` or ``"fashion_mnist"``.

    Returns:
        A float in [0, 1].

    Example:

    >>> reference_accuracy("mnist10k") > 0.97
    True
    """
    reference = reference_set(dataset)
    return float(np.mean(reference.test_logits.argmax(axis=1) == reference.test_labels))


def _load_or_train(dataset):
    """The classifier cached on disk for `dataset`; trained and saved if there is none."""
    path = classifier_path(dataset)
    classifier = _load(path)
    if classifier is None:
        classifier = _train(dataset)
        with atomic_path(path) as temporary:
            classifier.save(temporary)
    return classifier


def _load(path):
    """The cached classifier, or None if `path` is missing or holds no such model."""
    import keras

    if not path.exists():
        return None
    try:
        classifier = keras.saving.load_model(path, compile=False)
    except (ValueError, TypeError, KeyError, zipfile.BadZipFile) as error:
        reason = f"it cannot be loaded ({type(error).__name__}: {error})"
    else:
        if classifier.name == _CLASSIFIER_NAME:
            return classifier
        reason = f"it holds the model {classifier.name!r}, not {_CLASSIFIER_NAME!r}"
    warnings.warn(f"Training the reference classifier again: the cache file {path} is "
                  f"incompatible, {reason}.", stacklevel=2)
    return None


def _build_classifier():
    import keras
    from keras import layers

    def init(seed):
        return keras.initializers.GlorotUniform(seed=seed)

    inputs = keras.Input(IMAGE_SHAPE, name="images")
    h = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu",
                      kernel_initializer=init(1), name="conv1")(inputs)
    h = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu",
                      kernel_initializer=init(2), name="conv2")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(NUM_FEATURES, activation="relu", kernel_initializer=init(3),
                     name="features")(h)
    logits = layers.Dense(NUM_CLASSES, kernel_initializer=init(4), name="logits")(h)
    return keras.Model(inputs, logits, name=_CLASSIFIER_NAME)


def _train(dataset):
    import keras

    images, labels = data.load(dataset, "train")
    rng = np.random.default_rng(_TRAINING_SEED)
    order = np.concatenate(
        [rng.permutation(len(images)) for _ in range(_EPOCHS[dataset])]
    )
    shifted = _random_shifts(images[order], rng)
    model = _build_classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(_LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # One pass over the pre-shuffled epochs: no global random state involved.
    model.fit(shifted, labels[order], batch_size=_BATCH_SIZE, epochs=1,
              shuffle=False, verbose=0)
    return model


def _random_shifts(images, rng):
    """Shift every image by a random (dy, dx) in [-_MAX_SHIFT, _MAX_SHIFT]^2."""
    s = _MAX_SHIFT
    padded = np.pad(images, ((0, 0), (s, s), (s, s), (0, 0)))
    offsets = rng.integers(0, 2 * s + 1, size=(len(images), 2))
    out = np.empty_like(images)
    height, width = images.shape[1:3]
    for dy in range(2 * s + 1):
        for dx in range(2 * s + 1):
            chosen = np.flatnonzero((offsets[:, 0] == dy) & (offsets[:, 1] == dx))
            out[chosen] = padded[chosen, dy:dy + height, dx:dx + width]
    return out


# The reference set -----------------------------------------------------------------


def reference_set(dataset="mnist10k"):
    """The :class:`ReferenceSet` of `dataset`, built on first use and kept in memory.

    One object per data set and classifier file (a new cache folder,
    ``$COMPANION_CACHE_DIR``, gets its own), so the classifier is loaded and
    the real data scored once per process.

    Args:
        dataset: ``"mnist10k"``, ``"digits"``, ``"mnist"`` or ``"fashion_mnist"``.

    Returns:
        A :class:`ReferenceSet`.

    Raises:
        ValueError: for an unknown `dataset`.

    Example:

    >>> reference_set("mnist10k") is reference_set("mnist10k")
    True
    """
    key = (dataset, str(classifier_path(dataset)))
    if key not in _reference_sets:
        _reference_sets[key] = ReferenceSet(dataset)
    return _reference_sets[key]


class ReferenceSet:
    """The reference classifier and the real digits that every sample metric compares with.

    Built once (use :func:`reference_set`, which keeps it): the classifier
    (loaded, or trained and cached, see :func:`reference_classifier`), the
    features, logits and mean confidence of the real test split, and the
    training split, from which :meth:`floor` draws the real-vs-real
    references. The module's functions are thin wrappers around its methods.

    Args:
        dataset: ``"mnist10k"``, ``"digits"``, ``"mnist"`` or ``"fashion_mnist"``.

    Attributes:
        dataset: the data set's name.
        classifier: the reference classifier, a `keras.Model` (images to 10 logits).
        test_features: float32 `(M, 64)`, the test split's penultimate features.
        test_logits: float32 `(M, 10)`, its logits.
        test_labels: int32 `(M,)`, its labels.
        real_confidence: the classifier's mean confidence on the test split.
        train_images: float32 `(N, 28, 28, 1)` in [0, 1], the training split.

    Example:

    >>> reference = reference_set("mnist10k")
    >>> reference.test_features.shape, reference.train_images.shape
    ((1000, 64), (9000, 28, 28, 1))
    >>> kid, kid_std = reference.kernel_distance(reference.train_images[:1000])
    >>> abs(kid) < 1  # real digits: about 0 (noisy or broken digits score tens)
    True
    """

    def __init__(self, dataset="mnist10k"):
        import keras

        check_choice("dataset", dataset, data.NAMES)
        self.dataset = dataset
        self.classifier = _load_or_train(dataset)
        self._both = keras.Model(  # images -> (features, logits)
            self.classifier.inputs,
            [self.classifier.get_layer("features").output, self.classifier.outputs[0]],
        )
        test, self.test_labels = data.load(dataset, "test")
        self.test_features, self.test_logits = self.features_and_logits(test)
        self.real_confidence = _confidence(self.test_logits)
        self.train_images, _ = data.load(dataset, "train")
        self._floors = {}  # (num, value_range, seed) -> floor figures

    def features_and_logits(self, images):
        """Penultimate features `(N, 64)` and logits `(N, 10)` of `images`, float32."""
        images = check_images(images, shape=IMAGE_SHAPE)
        features, logits = [], []
        for start in range(0, len(images), _PREDICT_BATCH):
            chunk = images[start:start + _PREDICT_BATCH]
            # Pad to a fixed batch so the predict function compiles once.
            padded = np.zeros((_PREDICT_BATCH,) + IMAGE_SHAPE, "float32")
            padded[:len(chunk)] = chunk
            f, l = self._both.predict_on_batch(padded)
            features.append(np.asarray(f)[:len(chunk)])
            logits.append(np.asarray(l)[:len(chunk)])
        if not features:
            return (np.zeros((0, NUM_FEATURES), "float32"),
                    np.zeros((0, NUM_CLASSES), "float32"))
        return np.concatenate(features), np.concatenate(logits)

    def classifier_features(self, images):
        """:func:`classifier_features` of `images`."""
        return self.features_and_logits(images)[0]

    def class_probabilities(self, images):
        """:func:`class_probabilities` of `images`."""
        logits = self.features_and_logits(images)[1]
        return softmax(np.asarray(logits, "float64"), axis=1)

    def classifier_scores(self, images):
        """:func:`classifier_scores` of `images`."""
        if len(check_images(images, shape=IMAGE_SHAPE)) < 1:
            raise ValueError("`images` needs at least 1 image; got 0.")
        logits = self.features_and_logits(images)[1]
        return {"confidence": _confidence(logits), "label_entropy": _label_entropy(logits)}

    def frechet_distance(self, images_a, images_b):
        """:func:`frechet_distance` between `images_a` and `images_b`."""
        for name, images in (("images_a", images_a), ("images_b", images_b)):
            if len(check_images(images, name=name, shape=IMAGE_SHAPE)) < 2:
                raise ValueError(f"`{name}` needs at least 2 images; got {len(images)}.")
        return _frechet_from_features(self.classifier_features(images_a),
                                      self.classifier_features(images_b))

    def kernel_distance(self, images, num_subsets=KID_SUBSETS,
                        subset_size=KID_SUBSET_SIZE, seed=0):
        """:func:`kernel_distance` from `images` (N >= 2) to the test split: `(mean, std)`."""
        return kernel_distance(self._sample_features(images), self.test_features,
                               num_subsets, subset_size, seed)

    def precision_recall(self, images, k=NEIGHBOURS):
        """:func:`precision_recall` of `images` (N > k) against the test split."""
        return precision_recall(self.test_features, self._sample_features(images), k)

    def floor(self, num, value_range="unit", seed=0):
        """The figures of `num` real training images: what a perfect generator scores.

        ``min(num, train size)`` training images are chosen with `seed` (and
        binarised with `seed` if `value_range` is ``"binary"``) and compared
        with the test split like samples: the Fréchet distance, the kernel
        distance (seeded with `seed`) and precision and recall with
        ``k = min(3, num - 1)``. Computed once for each `num`, `value_range`
        and `seed`.

        Returns:
            ``{"frechet_floor", "kid_floor", "precision_floor", "recall_floor"}``,
            python floats.

        Example:

        >>> sorted(reference_set("mnist10k").floor(100))
        ['frechet_floor', 'kid_floor', 'precision_floor', 'recall_floor']
        """
        num = check_int("num", num, minimum=2)
        check_choice("value_range", value_range, ("unit", "binary"))
        key = (num, value_range, check_seed(seed))
        if key in self._floors:
            return dict(self._floors[key])
        train = self.train_images
        if value_range == "binary":
            train, _ = data.load(self.dataset, "train", value_range="binary", seed=seed)
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(len(train), min(num, len(train)), replace=False))
        figures = self._against_test(self.classifier_features(train[chosen]), seed)
        floor = {f"{name}_floor": figures[name]
                 for name in ("frechet", "kid", "precision", "recall")}
        if seed is not None:  # seed None draws new real images every call
            self._floors[key] = floor
        return dict(floor)

    def sample_quality(self, images, seed=0, value_range=None):
        """:func:`sample_quality` of `images`."""
        images = check_images(images, shape=IMAGE_SHAPE)
        if len(images) < 2:
            raise ValueError(f"`images` needs at least 2 images; got {len(images)}.")
        if value_range is None:
            value_range = "binary" if np.isin(images, (0.0, 1.0)).all() else "unit"
        check_choice("value_range", value_range, ("unit", "binary"))
        features, logits = self.features_and_logits(images)
        confidence = _confidence(logits)
        return {
            "confidence": confidence,
            "real_confidence": self.real_confidence,
            "relative_confidence": confidence / self.real_confidence,
            "label_entropy": _label_entropy(logits),
            **self._against_test(features, seed),
            **self.floor(len(images), value_range, seed),
        }

    def _against_test(self, features, seed):
        """Fréchet, kernel distance and precision and recall of `features` to the test split."""
        kid, kid_std = kernel_distance(features, self.test_features, seed=seed)
        k = min(NEIGHBOURS, len(features) - 1)
        precision, recall = precision_recall(self.test_features, features, k=k)
        return {"frechet": _frechet_from_features(features, self.test_features),
                "kid": kid, "kid_std": kid_std, "precision": precision, "recall": recall}

    def _sample_features(self, images):
        if len(check_images(images, shape=IMAGE_SHAPE)) < 2:
            raise ValueError(f"`images` needs at least 2 images; got {len(images)}.")
        return self.classifier_features(images)


# Metrics on features ---------------------------------------------------------------


def _frechet_from_features(features_a, features_b):
    mean_a, cov_a = _gaussian_fit(features_a)
    mean_b, cov_b = _gaussian_fit(features_b)
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    trace_root = np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None)))
    distance = (
        np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b)
        - 2.0 * trace_root
    )
    return float(max(distance, 0.0))


def _gaussian_fit(features):
    features = np.asarray(features, dtype="float64")
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def _psd_sqrt(matrix):
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def kernel_distance(features_a, features_b, num_subsets=KID_SUBSETS,
                    subset_size=KID_SUBSET_SIZE, seed=0):
    """Kernel distance (KID) between two feature sets (Bińkowski et al. 2018).

    An unbiased estimate of the squared maximum mean discrepancy with the
    cubic polynomial kernel, on `num_subsets` pairs of random subsets of
    ``m = min(N, M, subset_size)`` rows of each set (drawn without
    replacement, with `seed`):

    Formula:

    ```
    k(x, y) = (x . y / d + 1)^3,   d = feature dimension
    KID     = sum_{i != j} k(a_i, a_j) / (m (m - 1))
            + sum_{i != j} k(b_i, b_j) / (m (m - 1))
            - 2 sum_{i, j} k(a_i, b_j) / m^2
    ```

    Unlike the Fréchet distance it is unbiased: for two samples of one
    distribution its expected value is 0 whatever m (it can come out
    slightly negative), so it is fair to small sample sets. The defaults
    (10 subsets of at most 500) suit the book's sets of 1,000 samples
    against 1,000 test digits: subsets of half of each set differ from one
    another, so the standard deviation shows how much the figure moves
    between sets of 500 (published KIDs use 100 subsets of 1,000 from
    larger sets). In :func:`sample_quality` it is computed in the reference
    classifier's features: comparable with this module's numbers only,
    not with Inception KIDs.

    Args:
        features_a: `(N, d)`, N >= 2.
        features_b: `(M, d)`, M >= 2.
        num_subsets: number of subset pairs, >= 1.
        subset_size: the largest m, >= 2.
        seed: seed of the subsets.

    Returns:
        ``(mean, std)``: python floats, the mean and the (population)
        standard deviation of the estimate over the subsets.

    Raises:
        ValueError: for features that are not a finite `(rows, d)` array with
            at least 2 rows, different `d`, or a bad count or seed.

    Example:

    >>> a = np.array([[0.0], [1.0]])
    >>> b = np.array([[1.0], [2.0]])
    >>> kernel_distance(a, b)  # (2 * 1 + 2 * 27) / 2 - 2 * (1 + 1 + 8 + 27) / 4
    (9.5, 0.0)
    """
    a, b = _check_feature_pair("features_a", features_a, "features_b", features_b, 2)
    num_subsets = check_int("num_subsets", num_subsets)
    subset_size = check_int("subset_size", subset_size, minimum=2)
    rng = np.random.default_rng(check_seed(seed))
    m = min(len(a), len(b), subset_size)
    estimates = []
    for _ in range(num_subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        k_xx, k_yy, k_xy = (_cubic_kernel(u, v) for u, v in ((x, x), (y, y), (x, y)))
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        estimates.append(within - 2.0 * k_xy.sum() / m**2)
    return float(np.mean(estimates)), float(np.std(estimates))


def _cubic_kernel(x, y):
    k = x @ y.T / x.shape[1] + 1.0
    return k * k * k


def precision_recall(real_features, fake_features, k=NEIGHBOURS):
    """Improved precision and recall of generated features (Kynkäänniemi et al. 2019).

    Each set spans a *manifold*: the union of balls around its points, each
    reaching the point's k-th nearest neighbour in the same set. Precision is
    the fraction of generated points inside the real manifold (are the
    samples realistic?), recall the fraction of real points inside the
    generated manifold (is all of the data covered?):

    Formula:

    ```
    r_k(x, S)   = || x - (k-th nearest neighbour of x in S, x itself excluded) ||
    in(y, S)    = 1 if || y - x || <= r_k(x, S) for some x in S, else 0
    precision   = mean_{y in fake} in(y, real)
    recall      = mean_{x in real} in(x, fake)
    ```

    A generator that makes only realistic but few kinds of digits has high
    precision and low recall; one that scatters blurred digits everywhere
    the reverse. k = 3 is the paper's choice; it computes them in VGG-16
    features of 50,000 images, :func:`sample_quality` in the reference
    classifier's features of 1,000, so compare the values only within this
    book. Distances are computed in float64, in chunks of rows.

    Args:
        real_features: `(M, d)` features of real images.
        fake_features: `(N, d)` features of generated images.
        k: the neighbour that sets each ball's radius, 1 <= k < min(M, N).

    Returns:
        ``(precision, recall)``: python floats in [0, 1].

    Raises:
        ValueError: for features that are not a finite `(rows, d)` array,
            different `d`, or a `k` out of range.

    Example:

    >>> real = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> fake = np.array([[0.5], [1.5], [2.5], [9.0]])  # 9 lies outside every ball
    >>> precision_recall(real, fake, k=1)
    (0.75, 1.0)
    """
    real, fake = _check_feature_pair("real_features", real_features,
                                     "fake_features", fake_features, 2)
    k = check_int("k", k)
    if k >= min(len(real), len(fake)):
        raise ValueError(
            f"`k` must be an integer in [1, {min(len(real), len(fake)) - 1}]: smaller than "
            f"the number of rows of each set ({len(real)} real, {len(fake)} fake), as "
            f"each point's k-th neighbour is another point of its set; got {k}."
        )
    precision = np.mean(_inside(fake, real, _knn_radii(real, k)))
    recall = np.mean(_inside(real, fake, _knn_radii(fake, k)))
    return float(precision), float(recall)


def _check_feature_pair(name_a, features_a, name_b, features_b, minimum):
    a = check_features(features_a, name_a, minimum)
    b = check_features(features_b, name_b, minimum)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"`{name_a}` and `{name_b}` must have the same number of "
                         f"features (columns); got {a.shape[1]} and {b.shape[1]}.")
    return a, b


def _row_chunks(num_rows, num_columns):
    """Slices of rows whose distance matrix to `num_columns` points stays about 32 MB."""
    step = max(1, 2**22 // max(num_columns, 1))
    return [slice(start, start + step) for start in range(0, num_rows, step)]


def _knn_radii(points, k):
    """Squared distance of each point to its k-th nearest other point."""
    radii = np.empty(len(points))
    for rows in _row_chunks(len(points), len(points)):
        distances = cdist(points[rows], points, "sqeuclidean")
        radii[rows] = np.partition(distances, k, axis=1)[:, k]  # column 0: the point itself
    return radii


def _inside(points, centres, radii):
    """Whether each point lies in the ball of squared radius `radii[j]` around some centre j."""
    inside = np.empty(len(points), bool)
    for rows in _row_chunks(len(points), len(centres)):
        inside[rows] = (cdist(points[rows], centres, "sqeuclidean") <= radii).any(axis=1)
    return inside


def _confidence(logits):
    probabilities = softmax(np.asarray(logits, dtype="float64"), axis=1)
    return float(probabilities.max(axis=1).mean())


def _label_entropy(logits):
    counts = np.bincount(np.argmax(logits, axis=1), minlength=NUM_CLASSES)
    return float(entropy(counts) / math.log(NUM_CLASSES))


# Metrics on images -----------------------------------------------------------------


def classifier_features(images, dataset="mnist10k"):
    """Penultimate-layer features of the reference classifier.

    Args:
        images: `(N, 28, 28, 1)` in [0, 1].
        dataset: which reference classifier to use.

    Returns:
        float32 numpy array `(N, 64)`.

    Raises:
        ValueError: for images of the wrong shape or range.

    Example:

    >>> images, _ = data.load("mnist10k", "test")
    >>> classifier_features(images[:5]).shape
    (5, 64)
    """
    return reference_set(dataset).classifier_features(images)


def frechet_distance(images_a, images_b, dataset="mnist10k"):
    """Fréchet distance between two image sets in the reference classifier's features.

    Gaussians are fitted to the penultimate features of both sets, and the
    Fréchet (Wasserstein-2) distance between them is (Heusel et al. 2017):

    Formula:

    ```
    d = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)
    ```

    The matrix square roots are taken from symmetric eigendecompositions in
    float64 (negative round-off eigenvalues clipped to 0), which is stable
    for singular covariances; the result is clipped at 0.

    This is a *classifier-based* distance in the 64 features of the book's
    small reference CNN, not the Inception FID: its values are comparable
    across this book's chapters, never with FIDs published for other
    networks. It is biased upwards for small sets; compare sets of equal size
    and quote the real-vs-real floor (:func:`sample_quality` does both).

    Args:
        images_a: `(N, 28, 28, 1)` in [0, 1], N >= 2.
        images_b: `(M, 28, 28, 1)` in [0, 1], M >= 2.
        dataset: which reference classifier to use.

    Returns:
        A float >= 0.

    Raises:
        ValueError: for images of the wrong shape or range, or fewer than 2.

    Example:

    >>> test, _ = data.load("mnist10k", "test")
    >>> frechet_distance(test, test) < 1e-6
    True
    """
    return reference_set(dataset).frechet_distance(images_a, images_b)


def classifier_scores(images, dataset="mnist10k"):
    """Mean confidence and label entropy of images under the reference classifier.

    Formula:

    ```
    confidence    = mean_n max_k softmax(logits_n)_k
    label_entropy = H(r) / log 10,  r_k = fraction of images predicted as class k
    ```

    The label entropy is the normalised entropy of the predicted labels: 1
    when all ten digits are predicted equally often, 0 when every image is
    predicted as the same digit, so mode collapse shows as a number. (It is
    not the "coverage" of Naeem et al. 2020, a nearest-neighbour measure in
    feature space.) Confidence is high for images the classifier finds
    clearly digit-like; compare it with the real data's (``sample_quality``).

    Args:
        images: `(N, 28, 28, 1)` in [0, 1], N >= 1.
        dataset: which reference classifier to use.

    Returns:
        ``{"confidence": float, "label_entropy": float}``.

    Raises:
        ValueError: for images of the wrong shape or range, or none.

    Example:

    >>> test, _ = data.load("mnist10k", "test")
    >>> scores = classifier_scores(test)
    >>> scores["label_entropy"] > 0.99
    True
    """
    return reference_set(dataset).classifier_scores(images)


def label_agreement(images, labels, dataset="mnist10k"):
    """How often the reference classifier reads each image as the label it was drawn for.

    Formula: ``mean_n [argmax_k softmax(logits_n)_k == labels_n]``, for the
    samples of a class-conditional model (such as guided flow matching).

    Args:
        images: `(N, 28, 28, 1)` in [0, 1].
        labels: the `N` requested labels, integers in [0, 10).
        dataset: which reference classifier to use.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: for images of the wrong shape or range, or labels of
            another length.

    Example:

    >>> test, labels = data.load("mnist10k", "test")
    >>> label_agreement(test[:200], labels[:200]) > 0.9
    True
    """
    labels = np.asarray(labels)
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"`labels` must be {len(images)} integers, one an image; got "
                         f"shape {labels.shape}, dtype {labels.dtype}.")
    predicted = class_probabilities(images, dataset).argmax(axis=1)
    return float(np.mean(predicted == labels))


def class_probabilities(images, dataset="mnist10k"):
    """The reference classifier's probabilities of the ten classes, per image.

    Formula: ``softmax(logits_n)``, the classifier that every sample-quality
    figure of the book uses. Pages that count how many samples the classifier
    reads *with confidence* (top probability >= 0.9) start from this.

    Args:
        images: `(N, 28, 28, 1)` in [0, 1].
        dataset: which reference classifier to use.

    Returns:
        float64 numpy array `(N, 10)`; each row sums to 1.

    Raises:
        ValueError: for images of the wrong shape or range.

    Example:

    >>> test, labels = data.load("mnist10k", "test")
    >>> probabilities = class_probabilities(test[:100])
    >>> bool((probabilities.argmax(axis=1) == labels[:100]).mean() > 0.9)
    True
    """
    return reference_set(dataset).class_probabilities(images)


def sample_quality(images, dataset="mnist10k", seed=0, value_range=None):
    """Every sample-quality figure of the book, with its real-data reference.

    All chapters report their models' samples with this function, so that
    their figures are comparable. Each distance is measured from `images` to
    the real test split, in the reference classifier's features, and comes
    with its *floor*: the same figure for ``min(N, train size)`` real
    training images (:meth:`ReferenceSet.floor`), what a perfect generator
    would score with this many samples.

    Args:
        images: generated `(N, 28, 28, 1)` images in [0, 1], N >= 2.
        dataset: the data set the model was trained on.
        seed: chooses the real training subset of the floors (and its
            binarisation) and the subsets of the kernel distance.
        value_range: what `images` are: ``"unit"`` (grey levels) or
            ``"binary"`` (pixels drawn from a model of binarised digits, such
            as the row RNN's samples). With ``"binary"`` the floor's real
            images are binarised too, so it shows what a perfect model *of
            binary images* would score. None (the default): ``"binary"`` if
            every value is 0 or 1, else ``"unit"``.

    Returns:
        A dict of python floats:

        - ``confidence``, ``label_entropy``: :func:`classifier_scores` of
          `images` (label entropy: 1 = all ten digits equally often, 0 = one
          digit only);
        - ``real_confidence``: the confidence on the real test split;
        - ``relative_confidence``: ``confidence / real_confidence``;
        - ``frechet``: :func:`frechet_distance` from `images` to the test split;
        - ``kid``, ``kid_std``: :func:`kernel_distance` from `images` to the
          test split (10 subsets of ``min(N, 500)``, seeded with `seed`), its
          mean and standard deviation over the subsets;
        - ``precision``, ``recall``: :func:`precision_recall` of `images`
          against the test split, with ``k = min(3, N - 1)``;
        - ``frechet_floor``, ``kid_floor``, ``precision_floor``,
          ``recall_floor``: the same figures for the real training subset.

    Raises:
        ValueError: for images of the wrong shape or range, or fewer than 2.

    Example:

    >>> test, _ = data.load("mnist10k", "test")
    >>> quality = sample_quality(test[:100])
    >>> sorted(quality)  # doctest: +NORMALIZE_WHITESPACE
    ['confidence', 'frechet', 'frechet_floor', 'kid', 'kid_floor', 'kid_std',
     'label_entropy', 'precision', 'precision_floor', 'real_confidence', 'recall',
     'recall_floor', 'relative_confidence']
    """
    return reference_set(dataset).sample_quality(images, seed, value_range)


# Likelihood ----------------------------------------------------------------------


def importance_weighted_bound(log_weights):
    """Importance-weighted lower bound on log p(x) (Burda et al. 2016).

    With ``k`` samples ``z_i ~ q(z|x)`` and log-weights
    ``log w_i = log p(x, z_i) - log q(z_i|x)``:

    Formula:

    ```
    L_k = log (1/k) sum_i w_i = logsumexp(log w) - log k
    ```

    computed stably. ``E[L_1]`` is the ELBO; ``E[L_k]`` grows with k towards
    log p(x).

    Args:
        log_weights: array-like `(..., k)`, k >= 1 (numpy or a backend tensor).

    Returns:
        float64 numpy array of shape ``log_weights.shape[:-1]``.

    Raises:
        ValueError: for a scalar or an empty last axis.

    Example:

    >>> import numpy as np
    >>> log_w = np.log(np.array([[1.0, 3.0]]))
    >>> importance_weighted_bound(log_w).round(4).tolist()  # log 2
    [0.6931]
    """
    log_weights = np.asarray(log_weights, dtype="float64")
    if log_weights.ndim < 1 or log_weights.shape[-1] < 1:
        raise ValueError(
            "`log_weights` must have shape (..., k) with k >= 1 samples on the "
            f"last axis; got shape {log_weights.shape}."
        )
    return logsumexp(log_weights, axis=-1) - math.log(log_weights.shape[-1])


def bits_per_dim(nll_nats, image_shape=IMAGE_SHAPE):
    """Convert a negative log-likelihood per image from nats to bits per dimension.

    Formula:

    ```
    bits/dim = nll / (prod(image_shape) * ln 2)
    ```

    Args:
        nll_nats: per-image NLL in nats, a number or an array.
        image_shape: shape of one image, `(28, 28, 1)` by default.

    Returns:
        A float for a number, else a float64 numpy array.

    Example:

    >>> round(bits_per_dim(784 * math.log(2)), 6)
    1.0
    """
    dims = int(np.prod(image_shape))
    if dims < 1:
        raise ValueError(f"`image_shape` must have positive size; got {image_shape}.")
    result = np.asarray(nll_nats, dtype="float64") / (dims * math.log(2.0))
    return float(result) if result.ndim == 0 else result


class IndependentBernoulli:
    """Independent Bernoulli pixels: the simplest likelihood baseline.

    Each pixel is an independent Bernoulli variable whose probability is its
    frequency in the training split, with Laplace smoothing, so no test pixel
    gets probability 0:

    Formula:

    ```
    p_j = (count_j + 1) / (N + 2)
    log p(x) = sum_j x_j log p_j + (1 - x_j) log(1 - p_j)
    ```

    Any model that learns something about digit shapes must beat its test
    log-likelihood.

    Example:

    >>> train, _ = data.load("digits", "train", value_range="binary")
    >>> model = IndependentBernoulli().fit(train)
    >>> model.sample(2, seed=0).shape
    (2, 28, 28, 1)
    """

    def __init__(self):
        self.probabilities = None

    def fit(self, binary_images):
        """Fit per-pixel marginals to `(N, H, W, C)` images in {0, 1}; return self."""
        images = check_binary(binary_images, "binary_images")
        if len(images) < 1:
            raise ValueError("`binary_images` needs at least 1 image; got 0.")
        counts = images.sum(axis=0, dtype="float64")
        self.probabilities = (counts + 1.0) / (len(images) + 2.0)
        return self

    def log_likelihood(self, x):
        """Per-image log p(x) in nats, float64 `(N,)`, for `x` in {0, 1}."""
        probabilities = self._fitted()
        x = check_binary(x, "x", shape=probabilities.shape).astype("float64")
        terms = x * np.log(probabilities) + (1.0 - x) * np.log1p(-probabilities)
        return terms.reshape(len(x), -1).sum(axis=1)

    def sample(self, num, seed=None):
        """Draw `num` images, float32 `(num, H, W, C)` in {0, 1}."""
        num = check_int("num", num)
        probabilities = self._fitted()
        rng = np.random.default_rng(seed)
        draws = rng.random((num,) + probabilities.shape) < probabilities
        return draws.astype("float32")

    def _fitted(self):
        if self.probabilities is None:
            raise ValueError("This IndependentBernoulli is not fitted; call fit() first.")
        return self.probabilities



def bernoulli_baseline(dataset="mnist10k", seed=0):
    """Fit :class:`IndependentBernoulli` on the binarised training split.

    Args:
        dataset: ``"mnist10k"``, ``"digits"``, ``"mnist"`` or ``"fashion_mnist"``.
        seed: seed of the binarisation of both splits.

    Returns:
        ``(model, test_nll)``: the fitted model and its mean negative
        log-likelihood on the binarised test split, in nats per image.

    Example:

    >>> model, nll = bernoulli_baseline("mnist10k")
    >>> round(bits_per_dim(nll), 3)
    0.379
    """
    train, _ = data.load(dataset, "train", value_range="binary", seed=seed)
    test, _ = data.load(dataset, "test", value_range="binary", seed=seed)
    model = IndependentBernoulli().fit(train)
    return model, float(-np.mean(model.log_likelihood(test)))
