"""One table across the model families, on the same held-out digits.

:func:`compare` trains the book's GAN, VAE and row RNN for the same number of
epochs, fits the independent-Bernoulli baseline, and measures each on the
binarised test split:

- test negative log-likelihood in nats per image and bits per dimension:
  exact for the RNN and the baseline, the importance-weighted bound for the
  VAE (Burda et al. 2016; an upper bound on the NLL in expectation), none for
  the GAN, which defines no density;
- the sample-quality figures of :func:`companion.evaluation.sample_quality`
  (classifier Fréchet distance with its real-data floor, confidence relative
  to real digits, label entropy) on 1,000 samples for every family;
- the total training time and the time of one (compiled, steady-state) epoch,
  the time to draw 1,000 samples, and the trainable parameter count.

**What the sampling time measures.** Every neural sampler of the book runs as
one compiled JAX function (the GAN's generator and the VAE's decoder mapped
over batches, the row RNN's ``jax.lax.scan`` over rows with a loop over each
row's pixels inside), and :func:`time_sampling` times them all the same way:
the best of a few calls of ``sample(1000)`` after a first call of the same
size has compiled it. The figure is the cost of this implementation on this
machine: the number of network evaluations a sample needs (one for the GAN
and the VAE, one a row plus one a pixel for the row RNN) is the family's
property; the seconds also depend on network sizes and on the compiler.

Every number in the analysis chapter's comparison table comes from here.

Example:

>>> rows = compare(families=("bernoulli",), num_samples=100)
>>> rows[0]["family"], rows[0]["likelihood"]
('independent Bernoulli', 'exact')
"""

import time

import keras
import numpy as np

from companion import data, evaluation, models
from companion._validation import check_choice, check_int
from companion.training import EpochTimer

BASELINE = "bernoulli"
"""The independent-Bernoulli baseline's key: fitted in closed form, not a model family."""
FAMILIES = (BASELINE, *models.FAMILIES)
"""The table's rows: the baseline, then :data:`companion.models.FAMILIES`."""

_NAMES = {BASELINE: "independent Bernoulli",
          **{name: entry.title for name, entry in models.REGISTRY.items()},
          "diffusion": "flow matching (class-conditional)"}
_LIKELIHOOD = {BASELINE: "exact",
               **{name: entry.likelihood for name, entry in models.REGISTRY.items()},
               "diffusion": "none"}


def count_parameters(model, trainable_only=True):
    """Number of scalar parameters of a model.

    By default the *trainable* ones: for a GAN both networks' weights, for a
    VAE the encoder's and the decoder's. Batch normalisation's moving
    statistics and random-number states are not parameters a model learns by
    gradient descent; ``trainable_only=False`` counts them too (every
    variable of the model).

    Args:
        model: a `keras.Model`, or a fitted
            :class:`~companion.evaluation.IndependentBernoulli` (one
            probability a pixel).
        trainable_only: count only trainable weights.

    Returns:
        An int.

    Example:

    >>> count_parameters(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
    8
    """
    if isinstance(model, evaluation.IndependentBernoulli):
        return int(np.size(model._fitted()))
    weights = model.trainable_weights if trainable_only else model.weights
    return int(sum(np.prod(v.shape) for v in weights))


def time_sampling(model, num=1000, seed=0, repeats=3):
    """Seconds to draw `num` samples once the sampler is compiled.

    A first call of the same size compiles (or traces) the sampler; then
    `repeats` calls are timed and the fastest is reported, the steady-state
    cost a user pays for every further batch (the fastest, because
    interference from other work on the machine only ever adds time).

    Args:
        model: anything with ``sample(num, seed)``.
        num: samples to draw.
        seed: seed of the timed calls.
        repeats: timed calls (>= 1).

    Returns:
        ``(seconds, samples)``: the fastest call's time and its samples (the
        same for every call, drawn with `seed`).

    Example:

    >>> baseline, _ = evaluation.bernoulli_baseline()
    >>> seconds, samples = time_sampling(baseline, num=10)
    >>> samples.shape
    (10, 28, 28, 1)
    """
    num = check_int("num", num)
    model.sample(num, seed=seed + 1)
    best = None
    for _ in range(check_int("repeats", repeats)):
        start = time.perf_counter()
        samples = np.asarray(model.sample(num, seed=seed))
        seconds = time.perf_counter() - start
        best = seconds if best is None else min(best, seconds)
    return best, samples


def train_family(family, epochs, dataset="mnist10k", seed=0):
    """Build one family's book model with its `make_model` and train it.

    Each family trains with its chapter's ``make_model`` and ``BOOK_CONFIG``
    (batch size, learning rates, sizes), for `epochs` passes over the same
    training split, built by :func:`companion.models.build`: the GAN's
    learning rates follow the chapter's cosine decay to zero, sized to these
    `epochs`; the others use constant rates, as in their chapters.

    Args:
        family: ``"bernoulli"``, ``"gan"``, ``"vae"`` or ``"rnn"``.
        epochs: passes over the training split (ignored by the baseline, which
            is fitted in closed form).
        dataset: the data set name.
        seed: seed of the initialisation, the training noise and binarisation.

    Returns:
        ``(model, seconds, epoch_seconds)``: the trained model, the wall time
        of ``fit`` (compilation included; of the closed-form fit for the
        baseline) and the list of each epoch's wall time (empty for the
        baseline). The first epoch includes the compilation of the training
        step; the last is the steady-state cost of an epoch.

    Raises:
        ValueError: for an unknown `family` or `epochs` < 1.
    """
    check_choice("family", family, FAMILIES)
    epochs = check_int("epochs", epochs)
    if family == BASELINE:
        start = time.perf_counter()
        model, _ = evaluation.bernoulli_baseline(dataset, seed=seed)
        return model, time.perf_counter() - start, []
    module = models.family(family).module
    train, _ = data.load(dataset, "train", value_range=module.VALUE_RANGE, seed=seed)
    keras.utils.set_random_seed(seed)
    batch_size = module.BOOK_CONFIG["batch_size"]
    model = models.build(family, len(train), epochs, batch_size, seed=seed)
    timer = EpochTimer()
    start = time.perf_counter()
    model.fit(train, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[timer])
    return model, time.perf_counter() - start, timer.seconds


def heldout_log_likelihood(family, model, test_binary, iw_samples=200, seed=0):
    """Per-image test log-likelihood in nats, or None for the GAN.

    Exact for the baseline and the RNN; for the VAE the importance-weighted
    estimate with `iw_samples` samples, a lower bound in expectation.
    """
    check_choice("family", family, FAMILIES)
    if _LIKELIHOOD[family] == "none":
        return None
    if family == "vae":
        return np.asarray(model.log_likelihood(test_binary, num_samples=iw_samples,
                                               seed=seed))
    return np.asarray(model.log_likelihood(test_binary))


def evaluate(family, model, train_seconds, dataset="mnist10k", num_samples=1000,
             iw_samples=200, seed=0, epoch_seconds=None):
    """One row of the comparison table for a trained model.

    Args:
        family: the family's key (see :data:`FAMILIES`).
        model: the trained model.
        train_seconds: its total training wall time.
        dataset: the data set name.
        num_samples: samples drawn for the timing and the quality figures.
        iw_samples: importance samples of the VAE's bound.
        seed: seed of the samples, the bound and the binarisation.
        epoch_seconds: the wall time of each training epoch, if known.

    Returns:
        A dict with keys ``family``, ``likelihood`` ("exact", "IWAE bound" or
        "none"), ``nll_nats`` and ``bits_per_dim`` (None for the GAN),
        ``frechet``, ``frechet_floor`` (the floor for samples of this kind:
        binary samples are compared with binarised real digits),
        ``relative_confidence``, ``label_entropy``, ``train_seconds``,
        ``epochs`` and ``epoch_seconds`` (the last epoch's time; None if
        unknown), ``num_samples``, ``sample_seconds`` and ``parameters``
        (trainable).
    """
    test, _ = data.load(dataset, "test", value_range="binary", seed=seed)
    log_likelihood = heldout_log_likelihood(family, model, test, iw_samples, seed)
    nll = None if log_likelihood is None else float(-np.mean(log_likelihood))
    sample_seconds, samples = time_sampling(model, num_samples, seed)
    quality = evaluation.sample_quality(samples, dataset, seed=seed)
    return {
        "family": _NAMES[family],
        "likelihood": _LIKELIHOOD[family],
        "nll_nats": nll,
        "bits_per_dim": None if nll is None else evaluation.bits_per_dim(nll),
        "frechet": quality["frechet"],
        "frechet_floor": quality["frechet_floor"],
        "relative_confidence": quality["relative_confidence"],
        "label_entropy": quality["label_entropy"],
        **{key: quality[key] for key in _NEW_METRICS},
        "train_seconds": float(train_seconds),
        "epochs": len(epoch_seconds) if epoch_seconds else None,
        "epoch_seconds": float(epoch_seconds[-1]) if epoch_seconds else None,
        "num_samples": int(num_samples),
        "sample_seconds": float(sample_seconds),
        "parameters": count_parameters(model),
    }


def compare(families=FAMILIES, epochs=5, dataset="mnist10k", num_samples=1000,
            iw_samples=200, seed=0):
    """Train (or fit) each family and return its row of the comparison table.

    Every family gets the same number of `epochs` over the same training
    split: an equal-budget comparison, not each model at its best.

    Args:
        families: keys from :data:`FAMILIES`, in the table's order.
        epochs: training epochs of every neural model.
        dataset: the data set name.
        num_samples: samples drawn for timing and quality (1,000 in the book).
        iw_samples: importance samples of the VAE's bound.
        seed: one seed for everything.

    Returns:
        A list of dicts, one a family (see :func:`evaluate`).

    Raises:
        ValueError: for an unknown family or a bad count.
    """
    for family in families:
        check_choice("family", family, FAMILIES)
    rows = []
    for family in families:
        model, seconds, epoch_seconds = train_family(family, epochs, dataset, seed)
        rows.append(evaluate(family, model, seconds, dataset, num_samples, iw_samples,
                             seed, epoch_seconds=epoch_seconds))
    return rows


_NEW_METRICS = ("kid", "kid_floor", "precision", "precision_floor", "recall",
                "recall_floor")


def checkpoint_rows(records):
    """Rows of the shipped checkpoints, from their records (:mod:`companion.pretrained`).

    Every figure is the record's: its evaluation on the 1,000 test digits
    (which CI reproduces from the checkpoint), its training time and epochs,
    and its sampling time (measured once where the record was written).

    Args:
        records: the checkpoints' records, in the table's order, e.g.
            ``[pretrained.card(name) for name in pretrained.NAMES]``.

    Returns:
        A list of dicts with the keys of :func:`evaluate`'s rows (no
        ``epoch_seconds``: a checkpoint's epochs are not timed one by one)
        and ``selected_epoch``.
    """
    rows = []
    for record in records:
        name = record["name"]
        result = record["evaluation"]
        quality, nll = result["sample_quality"], result["nll_nats"]
        rows.append({
            "family": _NAMES[name], "likelihood": _LIKELIHOOD[name], "nll_nats": nll,
            "bits_per_dim": None if nll is None else evaluation.bits_per_dim(nll),
            **{key: quality[key] for key in ("frechet", "frechet_floor",
                                             "relative_confidence", "label_entropy",
                                             *_NEW_METRICS)},
            "train_seconds": record["training"]["seconds"],
            "epochs": record["training"]["epochs"],
            "selected_epoch": record["training"]["selected_epoch"],
            "epoch_seconds": None, "num_samples": result["settings"]["samples"],
            "sample_seconds": record["sampling"]["seconds_per_1000"],
            "parameters": result["parameters"]})
    return rows


CHECKPOINT_COLUMNS = (
    ("family", "model", "{}"),
    ("nll_nats", "test NLL (nats)", "{:.1f}"),
    ("bits_per_dim", "bits/dim", "{:.4f}"),
    ("frechet", "Fréchet", "{:.2f}"),
    ("frechet_floor", "Fréchet floor", "{:.2f}"),
    ("kid", "KID", "{:.3f}"),
    ("precision", "precision", "{:.2f}"),
    ("recall", "recall", "{:.2f}"),
    ("label_entropy", "label entropy", "{:.3f}"),
    ("relative_confidence", "rel. confidence", "{:.2f}"),
    ("train_seconds", "training", "{:.0f} s"),
    ("sample_seconds", "sampling {num} images", "{:.2f} s"),
    ("parameters", "trainable parameters", "{:,}"),
)
"""The main table's columns (trained models): every metric, likelihood and cost."""

_SIDE_ROWS = (
    ("test NLL (nats)", "nll_nats", None, "{:.1f}"),
    ("Fréchet distance", "frechet", "frechet_floor", "{:.2f}"),
    ("KID", "kid", "kid_floor", "{:.3f}"),
    ("precision", "precision", "precision_floor", "{:.2f}"),
    ("recall", "recall", "recall_floor", "{:.2f}"),
    ("label entropy", "label_entropy", None, "{:.3f}"),
    ("relative confidence", "relative_confidence", None, "{:.2f}"),
)


def side_by_side(results):
    """Evaluations of models of one family as one Markdown table, a column each.

    Args:
        results: an ordered dict, column title -> a result of
            :func:`companion.pretrained.evaluate` (the same settings for all).

    Returns:
        A Markdown table: a row a figure, a column a model, and a last column
        with the real digits' figure (the floor) where there is one.

    Example:

    >>> quality = {"frechet": 9.0, "frechet_floor": 2.5, "kid": 0.1, "kid_floor": 0.0,
    ...            "precision": 0.7, "precision_floor": 0.8, "recall": 0.6,
    ...            "recall_floor": 0.8, "label_entropy": 0.99, "relative_confidence": 0.9}
    >>> table = side_by_side({"a": {"nll_nats": None, "sample_quality": quality}})
    >>> table.splitlines()[2]
    '| Fréchet distance | 9.00 | 2.50 |'
    """
    names = list(results)
    lines = ["| figure (1,000 samples) | " + " | ".join(names) + " | real digits (floor) |",
             "|---|" + "---|" * (len(names) + 1)]
    for label, key, floor, form in _SIDE_ROWS:
        values = [result["nll_nats"] if key == "nll_nats" else result["sample_quality"][key]
                  for result in results.values()]
        if all(value is None for value in values):
            continue
        real = results[names[0]]["sample_quality"][floor] if floor else None
        cells = ["—" if value is None else form.format(value) for value in values]
        cells.append("" if real is None else form.format(real))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


_COLUMNS = (
    ("family", "model", "{}"),
    ("likelihood", "log-likelihood", "{}"),
    ("nll_nats", "test NLL (nats)", "{:.1f}"),
    ("bits_per_dim", "bits/dim", "{:.4f}"),
    ("frechet", "Fréchet", "{:.2f}"),
    ("frechet_floor", "Fréchet floor", "{:.2f}"),
    ("relative_confidence", "rel. confidence", "{:.2f}"),
    ("label_entropy", "label entropy", "{:.3f}"),
    ("train_seconds", "training, total", "{:.1f} s"),
    ("epoch_seconds", "one epoch", "{:.1f} s"),
    ("sample_seconds", "sampling {num} images", "{:.2f} s"),
    ("parameters", "trainable parameters", "{:,}"),
)


def format_table(rows, columns=_COLUMNS):
    """The rows as a Markdown table; a missing value (the GAN's NLL) is "—".

    Timings are printed as ``12.3 s`` (the form the notebook tests mask, as
    they vary between runs); every other figure is rounded. "training, total"
    is the whole ``fit`` (compilation included), "one epoch" the last epoch
    (compiled, steady state), "sampling N images" one call of
    ``sample(N)`` after compilation (:func:`time_sampling`).

    Example:

    >>> print(format_table([{"family": "x", "likelihood": "none", "nll_nats": None,
    ...     "bits_per_dim": None, "frechet": 1.0, "frechet_floor": 0.5,
    ...     "relative_confidence": 0.5, "label_entropy": 1.0, "train_seconds": 2.0,
    ...     "epoch_seconds": 1.0, "num_samples": 10, "sample_seconds": 0.1,
    ...     "parameters": 1234}]).splitlines()[2])
    | x | none | — | — | 1.00 | 0.50 | 0.50 | 1.000 | 2.0 s | 1.0 s | 0.10 s | 1,234 |
    """
    counts = {row.get("num_samples") for row in rows} - {None}
    num = f"{counts.pop():,}" if len(counts) == 1 else "N"
    header = "| " + " | ".join(title.format(num=num) for _, title, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    lines = [header, rule]
    for row in rows:
        cells = ["—" if row.get(key) is None else form.format(row[key])
                 for key, _, form in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sharpness(images):
    """Mean squared difference between neighbouring pixels, per image.

    A simple measure of edges: a binary digit has many sharp 0-to-1 steps, a
    blurred image (an average of several images, or a VAE decoder's Bernoulli
    means) has fewer and smaller ones.

    Formula:

    ```
    s(x) = mean_{i,j} [(x_{i+1,j} - x_{i,j})^2 + (x_{i,j+1} - x_{i,j})^2] / 2
    ```

    Args:
        images: `(N, H, W, C)` images in [0, 1].

    Returns:
        float64 numpy array `(N,)`.

    Example:

    >>> stripes = np.zeros((1, 4, 4, 1)); stripes[:, :, ::2] = 1.0
    >>> sharpness(stripes).tolist()  # all horizontal steps are 1, vertical 0
    [0.5]
    """
    from companion._validation import check_images

    x = check_images(images).astype("float64")
    down = np.square(np.diff(x, axis=1)).mean(axis=(1, 2, 3))
    right = np.square(np.diff(x, axis=2)).mean(axis=(1, 2, 3))
    return (down + right) / 2
