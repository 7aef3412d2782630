"""Evaluation of generative models: sample quality and likelihood.

Sample quality is measured in the feature space of a small *reference
classifier*, a CNN trained deterministically on the data set's training split
and cached on disk, so that every chapter reports the same numbers for the same
images:

- :func:`frechet_distance`: the Fréchet distance of Heusel et al. (2017)
  between Gaussians fitted to the classifier's penultimate features. It is a
  classifier-based distance, **not** the Inception FID: its numbers are only
  comparable with other numbers from this module, never with published FIDs.
- :func:`classifier_scores`: mean confidence and class coverage (mode collapse
  shows as coverage well below 1).
- :func:`sample_quality`: all of them at once, next to the real-data values
  (the real-vs-real Fréchet floor and the real confidence) that tell a reader
  what "good" means here.

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
from scipy.special import logsumexp, softmax
from scipy.stats import entropy

from companion import data
from companion.checkpoint import atomic_path
from companion._validation import check_binary, check_choice, check_images, check_int

CLASSIFIER_VERSION = "v1"
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10

# Training recipe of the reference classifier, per data set: passes over the
# training split. Every pass shifts each image by up to _MAX_SHIFT pixels.
_EPOCHS = {"mnist10k": 12, "digits": 20, "mnist": 2, "fashion_mnist": 3}
_MAX_SHIFT = 2
_BATCH_SIZE = 64
_LEARNING_RATE = 2e-3
_TRAINING_SEED = 0
_PREDICT_BATCH = 256

_CLASSIFIER_NAME = f"reference_classifier_{CLASSIFIER_VERSION}"

_classifiers = {}  # (dataset, path) -> (classifier, features-and-logits model)
_real_statistics = {}  # (dataset, path) -> dict of the test split's features etc.


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
    memory and saved under :func:`companion.data.cache_dir` as
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
    return _load_or_train(dataset)[0]


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
    stats = _real_stats(dataset)
    return float(np.mean(stats["predicted"] == stats["labels"]))


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
    return _features_and_logits(images, dataset)[0]


def _load_or_train(dataset):
    path = classifier_path(dataset)
    key = (dataset, str(path))
    if key not in _classifiers:
        classifier = _load(path)
        if classifier is None:
            classifier = _train(dataset)
            with atomic_path(path) as temporary:
                classifier.save(temporary)
        _classifiers[key] = (classifier, _with_features(classifier))
    return _classifiers[key]


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
    h = layers.Dense(64, activation="relu", kernel_initializer=init(3),
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


def _with_features(classifier):
    import keras

    return keras.Model(
        classifier.inputs,
        [classifier.get_layer("features").output, classifier.outputs[0]],
    )


def _features_and_logits(images, dataset):
    check_choice("dataset", dataset, data.NAMES)
    images = check_images(images, shape=IMAGE_SHAPE)
    both = _load_or_train(dataset)[1]
    features, logits = [], []
    for start in range(0, len(images), _PREDICT_BATCH):
        chunk = images[start:start + _PREDICT_BATCH]
        # Pad to a fixed batch so the predict function compiles once.
        padded = np.zeros((_PREDICT_BATCH,) + IMAGE_SHAPE, "float32")
        padded[:len(chunk)] = chunk
        f, l = both.predict_on_batch(padded)
        features.append(np.asarray(f)[:len(chunk)])
        logits.append(np.asarray(l)[:len(chunk)])
    if not features:
        return np.zeros((0, 64), "float32"), np.zeros((0, NUM_CLASSES), "float32")
    return np.concatenate(features), np.concatenate(logits)


def _real_stats(dataset):
    check_choice("dataset", dataset, data.NAMES)
    key = (dataset, str(classifier_path(dataset)))
    if key not in _real_statistics:
        images, labels = data.load(dataset, "test")
        features, logits = _features_and_logits(images, dataset)
        _real_statistics[key] = {
            "features": features,
            "labels": labels,
            "predicted": logits.argmax(axis=1),
            "confidence": _confidence(logits),
        }
    return _real_statistics[key]


# Sample quality ------------------------------------------------------------------


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
    for name, images in (("images_a", images_a), ("images_b", images_b)):
        if len(check_images(images, name=name, shape=IMAGE_SHAPE)) < 2:
            raise ValueError(f"`{name}` needs at least 2 images; got {len(images)}.")
    features_a = classifier_features(images_a, dataset)
    features_b = classifier_features(images_b, dataset)
    return _frechet_from_features(features_a, features_b)


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


def classifier_scores(images, dataset="mnist10k"):
    """Mean confidence and class coverage of images under the reference classifier.

    Formula:

    ```
    confidence = mean_n max_k softmax(logits_n)_k
    coverage   = H(r) / log 10,  r_k = fraction of images predicted as class k
    ```

    Coverage is 1 when all ten classes are predicted equally often and 0 when
    every image is predicted as the same class: mode collapse shows as a
    number. Confidence is high for images the classifier finds clearly
    digit-like; compare it with the real data's (``sample_quality``).

    Args:
        images: `(N, 28, 28, 1)` in [0, 1], N >= 1.
        dataset: which reference classifier to use.

    Returns:
        ``{"confidence": float, "coverage": float}``.

    Raises:
        ValueError: for images of the wrong shape or range, or none.

    Example:

    >>> test, _ = data.load("mnist10k", "test")
    >>> scores = classifier_scores(test)
    >>> scores["coverage"] > 0.99
    True
    """
    if len(check_images(images, shape=IMAGE_SHAPE)) < 1:
        raise ValueError("`images` needs at least 1 image; got 0.")
    logits = _features_and_logits(images, dataset)[1]
    return {"confidence": _confidence(logits), "coverage": _coverage(logits)}


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
    return softmax(np.asarray(_features_and_logits(images, dataset)[1], "float64"), axis=1)


def _confidence(logits):
    probabilities = softmax(np.asarray(logits, dtype="float64"), axis=1)
    return float(probabilities.max(axis=1).mean())


def _coverage(logits):
    counts = np.bincount(np.argmax(logits, axis=1), minlength=NUM_CLASSES)
    return float(entropy(counts) / math.log(NUM_CLASSES))


def sample_quality(images, dataset="mnist10k", seed=0, value_range=None):
    """Every sample-quality figure of the book, with its real-data reference.

    All chapters report their models' samples with this function, so that
    their figures are comparable.

    Args:
        images: generated `(N, 28, 28, 1)` images in [0, 1], N >= 2.
        dataset: the data set the model was trained on.
        seed: chooses the real training subset of the Fréchet floor (and
            its binarisation).
        value_range: what `images` are: ``"unit"`` (grey levels) or
            ``"binary"`` (pixels drawn from a model of binarised digits, such
            as the row RNN's samples). With ``"binary"`` the floor's real
            images are binarised too, so it shows what a perfect model *of
            binary images* would score. None (the default): ``"binary"`` if
            every value is 0 or 1, else ``"unit"``.

    Returns:
        A dict of python floats:

        - ``confidence``, ``coverage``: :func:`classifier_scores` of `images`;
        - ``real_confidence``: the confidence on the real test split;
        - ``relative_confidence``: ``confidence / real_confidence``;
        - ``frechet``: :func:`frechet_distance` from `images` to the test split;
        - ``frechet_floor``: the same for ``min(N, train size)`` real training
          images chosen with `seed` (binarised with `seed` if `value_range`
          is ``"binary"``): what a perfect generator would score with this
          many samples.

    Raises:
        ValueError: for images of the wrong shape or range, or fewer than 2.

    Example:

    >>> test, _ = data.load("mnist10k", "test")
    >>> quality = sample_quality(test[:100])
    >>> sorted(quality)
    ['confidence', 'coverage', 'frechet', 'frechet_floor', 'real_confidence', 'relative_confidence']
    """
    images = check_images(images, shape=IMAGE_SHAPE)
    if len(images) < 2:
        raise ValueError(f"`images` needs at least 2 images; got {len(images)}.")
    if value_range is None:
        value_range = "binary" if np.isin(images, (0.0, 1.0)).all() else "unit"
    check_choice("value_range", value_range, ("unit", "binary"))
    real = _real_stats(dataset)
    features, logits = _features_and_logits(images, dataset)
    train, _ = data.load(dataset, "train", value_range=value_range, seed=seed)
    rng = np.random.default_rng(seed)
    subset = train[np.sort(rng.choice(len(train), min(len(images), len(train)),
                                      replace=False))]
    confidence = _confidence(logits)
    return {
        "confidence": confidence,
        "real_confidence": real["confidence"],
        "relative_confidence": confidence / real["confidence"],
        "coverage": _coverage(logits),
        "frechet": _frechet_from_features(features, real["features"]),
        "frechet_floor": _frechet_from_features(
            classifier_features(subset, dataset), real["features"]
        ),
    }


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
