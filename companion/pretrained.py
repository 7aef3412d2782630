"""Longer-trained checkpoints of the book's models, shipped with their records.

Each chapter trains its model live, for about 90 seconds. The checkpoints
here show what the same methods reach with more compute: up to 30 minutes
on two CPU cores, with a preset of its own (each family's ``LONG_CONFIG``,
beside its ``BOOK_CONFIG``).

- :func:`load` returns a checkpoint's trained Keras model, after checking
  its SHA-256 against the record;
- :func:`card` returns its record: how it was trained (command, preset, data
  file, package version and commit, machine, seconds, epochs, the
  training and validation curves) and what it scores (:func:`evaluate`);
- :func:`pretrain` (``companion pretrain NAME``) trains one again and writes
  ``NAME.keras`` and ``NAME.json``.

Training sees the first 8,000 of ``mnist10k``'s 9,000 training images; the
last 1,000 are the validation images that choose the epoch to keep (the
GAN's Fréchet distance to them, the VAE's importance-weighted bound and the
RNN's exact likelihood on them). The 1,000 test digits are used only by
:func:`evaluate`. The VAE and the RNN see a fresh stochastic binarisation of
the training images every epoch (dynamic binarisation, a regulariser);
validation and test images keep the book's fixed binarisation (seed 0).

Example:

>>> from companion import pretrained
>>> pretrained.NAMES
('gan', 'vae', 'rnn')
>>> pretrained.card("rnn")["preset"] == pretrained.preset("rnn")
True
"""

import contextlib
import hashlib
import os
import pathlib
import platform
import subprocess
import time

import numpy as np

from companion import checkpoint, data, models
from companion._validation import check_choice, check_int

NAMES = models.FAMILIES
FOLDER = pathlib.Path(__file__).parent / "checkpoints"
DATASET = "mnist10k"
VALIDATION_IMAGES = 1000
VALIDATION_IMPORTANCE_SAMPLES = 20  # the VAE's validation bound: cheap, enough to rank epochs
EVALUATION = {"samples": 1000, "sample_seed": 0, "importance_samples": 200,
              "importance_seed": 0, "binarisation_seed": 0, "test_images": 1000}
"""The settings of every recorded evaluation (on the 1,000 ``mnist10k`` test digits)."""


def preset(name):
    """The `name` family's ``LONG_CONFIG`` (a copy): what :func:`pretrain` trains."""
    return dict(models.family(name, "name").module.LONG_CONFIG)


def card(name, folder=FOLDER):
    """The record of checkpoint `name`, a dict read from ``NAME.json``.

    Raises:
        ValueError: for an unknown `name`.
        companion.checkpoint.CheckpointError: if the record is missing or corrupt.
    """
    check_choice("name", name, NAMES)
    return checkpoint.read_json(pathlib.Path(folder) / f"{name}.json")


def load(name, folder=FOLDER):
    """The trained model of checkpoint `name`, its file checked against the record.

    Args:
        name: ``"gan"``, ``"vae"`` or ``"rnn"``.
        folder: where ``NAME.keras`` and ``NAME.json`` are (default: the
            package's own checkpoints).

    Returns:
        The Keras model (uncompiled), with ``sample(num, seed)``.

    Raises:
        ValueError: for an unknown `name`.
        companion.checkpoint.CheckpointError: if a file is missing, or the
            checkpoint's SHA-256 differs from the record's (a stale or
            damaged file).
    """
    record = card(name, folder)
    path = pathlib.Path(folder) / f"{name}.keras"
    found = sha256(checkpoint.verify(path))
    if found != record["checkpoint"]["sha256"]:
        raise checkpoint.CheckpointError(
            f"{str(path)!r} has SHA-256 {found[:12]}..., its record "
            f"{name}.json says {record['checkpoint']['sha256'][:12]}...: the file "
            f"is stale or damaged. Train it again with `companion pretrain {name}`, "
            "or restore both files from the same commit.")
    return checkpoint.load_model(path, compile=False)


def sha256(path):
    """The SHA-256 of a file, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Training --------------------------------------------------------------------------


def pretrain(name, out=FOLDER, epochs=None, limit=None, verbose=1, **overrides):
    """Train checkpoint `name` with its ``LONG_CONFIG``; write ``NAME.keras`` and ``NAME.json``.

    Each epoch is one ``fit`` pass over the training images (a fresh
    binarisation of them for the VAE and the RNN); every ``check_every``
    epochs, and at the last, the validation score is measured and the
    weights of the best epoch so far are kept. A preset with
    ``ema_momentum`` (the GAN's) samples, validates and ships the moving
    average of the generator's weights
    (:class:`companion.training.WeightAverage`). The model saved is the best
    one, without optimiser state; the record holds both curves and the
    evaluation on the test digits (:func:`evaluate`).

    Args:
        name: ``"gan"``, ``"vae"`` or ``"rnn"``.
        out: the folder to write (default: the package's checkpoints).
        epochs: override the preset's epochs (a smoke test's 1).
        limit: train on the first `limit` training images only (smoke tests).
        verbose: 1 shows Keras' progress bar and a line an epoch; 0 is quiet.
        **overrides: other preset entries to change (a smoke test's small
            network); the record says which.

    Returns:
        The record (a dict), also written to ``out/NAME.json``.

    Example (one short epoch of a tiny network):

    >>> import tempfile
    >>> record = pretrain("rnn", out=tempfile.mkdtemp(), epochs=1, limit=64,
    ...                   verbose=0, units=8)
    >>> record["training"]["epochs"], record["preset"]["units"]
    (1, 8)
    """
    config = _preset_with(name, epochs, overrides)
    if limit is not None:
        check_int("limit", limit)
    out = checkpoint.check_writable(out)  # before half an hour of training, not after
    grey = data.load_images(DATASET, "train", "unit")
    train_grey = grey[:len(grey) - VALIDATION_IMAGES][:limit]
    validation = _validation_images(name, grey[len(grey) - VALIDATION_IMAGES:])
    started = time.perf_counter()
    final, history, selected = _train(name, config, train_grey, validation, verbose)
    record = _evaluated({
        "name": name,
        "command": _command(name, epochs, limit, overrides),
        "preset": config,
        "overrides": sorted([*overrides, *([] if epochs is None else ["epochs"])]),
        "data": {"dataset": DATASET, "file": data.MNIST10K_FILE.name,
                 "sha256": sha256(data.MNIST10K_FILE),
                 "training_images": len(train_grey),
                 "validation_images": VALIDATION_IMAGES},
        "package": _package(),
        "machine": _machine(),
        "training": {"seconds": round(time.perf_counter() - started, 1),
                     "epochs": config["epochs"], "selected_epoch": selected,
                     "validation_metric": _SCORE[name], "history": history},
    }, final)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.keras"  # the model first, then the record that names its checksum
    checkpoint.save_model(final, path)
    record["checkpoint"] = {"file": path.name, "bytes": path.stat().st_size,
                            "sha256": sha256(path)}
    checkpoint.write_json(out / f"{name}.json", record)
    return record


def _preset_with(name, epochs, overrides):
    check_choice("name", name, NAMES)
    config = preset(name)
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not an entry of {name}'s LONG_CONFIG; "
                         f"allowed: {sorted(config)}.")
    config.update(overrides, **({} if epochs is None else {"epochs": epochs}))
    config["epochs"] = check_int("epochs", config["epochs"])
    return config


def _train(name, config, train_grey, validation, verbose):
    """Train epoch by epoch; return the best model (no optimiser state), the history
    and the selected epoch."""
    import keras

    keras.utils.set_random_seed(config["seed"])
    model = _build(name, config, len(train_grey))
    average = None
    if config.get("ema_momentum"):
        from companion.training import WeightAverage

        average = WeightAverage(model.generator, config["ema_momentum"])
    history, best = {"epoch": [], "loss": [], "seconds": [], "validation": []}, None
    started = time.perf_counter()
    for epoch in range(config["epochs"]):
        images = _epoch_images(name, train_grey, config["seed"], epoch)
        logs = model.fit(images, batch_size=config["batch_size"], shuffle=True,
                         initial_epoch=epoch, epochs=epoch + 1, verbose=verbose,
                         callbacks=[] if average is None else [average]).history
        history["loss"].append(float(logs[_LOSS[name]][-1]))
        history["seconds"].append(round(time.perf_counter() - started, 1))
        if (epoch + 1) % config["check_every"] and epoch + 1 < config["epochs"]:
            continue
        with contextlib.nullcontext() if average is None else average.applied():
            score = _validation_score(name, model, validation)
            if best is None or score < best[1]:
                best = (epoch + 1, score, model.get_weights())
        history["epoch"].append(epoch + 1)
        history["validation"].append(score)
        if verbose:
            print(f"epoch {epoch + 1}: validation {_SCORE[name]} {score:.3f} "
                  f"(best {best[1]:.3f} at epoch {best[0]}), "
                  f"{history['seconds'][-1]:.0f} s", flush=True)
    final = _build(name, config, len(train_grey))  # without optimiser state
    final.set_weights(best[2])
    return final, history, best[0]


def reevaluate(name, folder=FOLDER):
    """Evaluate checkpoint `name` again and rewrite its record's results.

    ``companion pretrain NAME --evaluate-only``: after a change to the
    evaluation (a new metric), the checkpoint need not be trained again.
    The record keeps its training provenance; ``evaluation.package`` says
    which code evaluated it.

    Returns:
        The updated record.
    """
    record = _evaluated(card(name, folder), load(name, folder))
    checkpoint.write_json(pathlib.Path(folder) / f"{name}.json", record)
    return record


def _evaluated(record, model):
    """`record` with the results of `model`: evaluation and sampling time."""
    from companion import comparison

    record["evaluation"] = dict(evaluate(record["name"], model), package=_package())
    seconds, _ = comparison.time_sampling(model, num=1000)
    record["sampling"] = {
        "seconds_per_1000": seconds,
        "machine": _machine(),
        "note": "timed once where the record was written; not compared in tests"}
    return record


def _command(name, epochs, limit, overrides):
    """The command that trains this model (where the files go, --out, does not change it)."""
    words = ["companion", "pretrain", name]
    for flag, value in (("--epochs", epochs), ("--limit", limit)):
        if value is not None:
            words += [flag, str(value)]
    if overrides:  # not a command-line option: the Python call made it
        words += [f"({key}={value!r})" for key, value in sorted(overrides.items())]
    return " ".join(words)


_LOSS = {"gan": "g_loss", "vae": "loss", "rnn": "loss"}
_SCORE = {"gan": "Fréchet distance", "vae": "IWAE NLL (nats)", "rnn": "NLL (nats)"}


def _build(name, config, num_examples):
    import keras

    family = models.family(name, "name")
    arguments = {key: config[key] for key in _ARGUMENTS[name]}
    steps = config["epochs"] * -(-num_examples // config["batch_size"])  # the whole run
    if name == "gan":
        arguments["decay_steps"] = steps
    else:
        arguments["learning_rate"] = keras.optimizers.schedules.CosineDecay(
            config["learning_rate"], steps)
    return family.module.make_model(seed=config["seed"], **arguments)


_ARGUMENTS = {
    "gan": ("width", "latent_dim", "kernel_size", "dropout", "d_learning_rate",
            "g_learning_rate", "beta_1"),
    "vae": ("width", "latent_dim"),
    "rnn": ("units", "clipnorm", "steps_per_execution"),
}


def _validation_images(name, grey):
    if name == "gan":
        return grey
    return data._to_range(grey, "binary", EVALUATION["binarisation_seed"])


def _epoch_images(name, grey, seed, epoch):
    if name == "gan":
        return grey * 2.0 - 1.0
    rng = np.random.default_rng([seed, epoch])
    return (rng.random(grey.shape) < grey).astype("float32")


def _validation_score(name, model, images):
    from companion import evaluation

    if name == "gan":
        samples = model.sample(len(images), seed=EVALUATION["sample_seed"])
        return evaluation.frechet_distance(samples, images)
    if name == "vae":
        log_p = model.log_likelihood(images, num_samples=VALIDATION_IMPORTANCE_SAMPLES,
                                     seed=EVALUATION["importance_seed"])
    else:
        log_p = model.log_likelihood(images)
    return float(-np.mean(log_p))


# Evaluation ------------------------------------------------------------------------


def evaluate(name, model=None):
    """What checkpoint `name` scores on the test digits, with :data:`EVALUATION`'s settings.

    Sample quality (:func:`companion.evaluation.sample_quality` of 1,000
    samples, seed 0) for every family; for the VAE and the RNN also the
    negative log-likelihood of the 1,000 test digits in their fixed
    binarisation (seed 0), in nats: the importance-weighted bound with
    k = 200 for the VAE, exact for the RNN.

    Args:
        name: ``"gan"``, ``"vae"`` or ``"rnn"``.
        model: the model to evaluate (default: :func:`load` of `name`).

    Returns:
        A JSON-ready dict: ``settings``, ``parameters`` (trainable, as the
        comparison table counts them), ``sample_quality``, ``nll_nats``
        (None for the GAN), ``likelihood`` (how it was computed).
    """
    from companion import comparison, evaluation

    check_choice("name", name, NAMES)
    model = load(name) if model is None else model
    samples = model.sample(EVALUATION["samples"], seed=EVALUATION["sample_seed"])
    report = {"settings": dict(EVALUATION),
              "parameters": comparison.count_parameters(model),
              "sample_quality": evaluation.sample_quality(samples, dataset=DATASET),
              "nll_nats": None, "likelihood": None}
    if name != "gan":
        test = data.load_images(DATASET, "test", "binary",
                                seed=EVALUATION["binarisation_seed"])
        if name == "vae":
            k = EVALUATION["importance_samples"]
            log_p = model.log_likelihood(test, num_samples=k,
                                         seed=EVALUATION["importance_seed"])
            report["likelihood"] = f"importance-weighted bound, k={k}"
        else:
            log_p = model.log_likelihood(test)
            report["likelihood"] = "exact (chain rule over rows)"
        report["nll_nats"] = float(-np.mean(log_p))
    return report


# Provenance ------------------------------------------------------------------------


def _package():
    import companion

    root = pathlib.Path(__file__).resolve().parent.parent
    commit, dirty = None, None
    if (root / ".git").exists():
        def git(*arguments):
            return subprocess.run(["git", "-C", str(root), *arguments], check=True,
                                  capture_output=True, text=True).stdout.strip()
        try:
            commit = git("rev-parse", "HEAD")
            dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".",
                             ":!companion/checkpoints"))  # not the records being written
        except (OSError, subprocess.CalledProcessError):
            pass
    import jax
    import keras

    return {"version": companion.__version__, "commit": commit,
            "uncommitted_changes": dirty, "keras": keras.__version__,
            "jax": jax.__version__, "python": platform.python_version()}


def _machine():
    import jax

    device = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    return {"device": device.platform, "device_kind": device.device_kind,
            "cpu": cpu, "cores": cores, "system": platform.system()}
