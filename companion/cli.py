"""The command line: train, sample and evaluate the book's models outside notebooks.

``python -m companion`` (or the ``companion`` console script) has four
subcommands. The work is done by the importable functions :func:`train`,
:func:`sample`, :func:`evaluate` and
:func:`companion.pretrained.pretrain`; :func:`main` only parses flags and
turns bad input into a one-line error with exit status 2.

```
companion train {gan,vae,rnn} --out DIR [--dataset mnist10k|digits|mnist|fashion_mnist|PATH]
                [--epochs N] [--batch-size B] [--seed S] [--size N] [--limit N]
                [--resume] [--distribute] [--verbose 0|1|2]
companion sample DIR --num N --out FILE.png|FILE.npy [--seed S]
companion evaluate DIR [--dataset ...] [--num N] [--limit N] [--importance-samples K]
companion pretrain {gan,vae,rnn,diffusion} [--out DIR] [--epochs N] [--limit N]
                   [--resume] [--stop-after N] [--evaluate-only]
```

``--size`` sets each family's one size knob, as
:data:`companion.models.REGISTRY` describes it: the GAN's ``width`` (base
channel count), the VAE's ``width`` (channels of the encoder's first
convolution), the RNN's ``units`` (recurrent units).

A run folder holds ``model.keras`` (model and optimiser state, rewritten
atomically after every epoch), ``history.json`` (per-epoch metrics; for the
VAE also ``kl_per_dimension``, each epoch's KL of every latent dimension),
``config.json`` (how it was trained), ``samples.png`` and ``samples.npy``
(64 samples, float32 in [0, 1]). Nothing is written before the first epoch
ends: a run that fails earlier leaves no checkpoint, and ``train`` reuses its folder.
The history is also stored inside ``model.keras`` (its metadata, see
:func:`companion.checkpoint.save_model`), so model and history change in one
rename: ``--resume`` counts the epochs the saved model has finished, even if
the run was killed after writing the model and before ``history.json``.

Printing the help or an argument error imports neither Keras nor a model
module (the sizes in ``--size``'s help are the registry's plain data), so
it takes a fraction of a second.

Example:

>>> import tempfile
>>> out = tempfile.mkdtemp() + "/run"
>>> result = train("rnn", epochs=1, size=8, limit=64, out=out, verbose=0)
>>> sorted(p.name for p in pathlib.Path(out).iterdir())
['config.json', 'history.json', 'model.keras', 'samples.npy', 'samples.png']
"""

import argparse
import contextlib
import functools
import json
import os
import pathlib
import sys
import tempfile

import numpy as np

from companion import checkpoint, data, models, plotting, pretrained
from companion._validation import check_choice, check_int

FAMILIES = models.FAMILIES
NUM_PREVIEW = 64
KL_IMAGES = 1000
"""Training images the VAE's per-dimension KL is measured on after each epoch."""
IMAGE_SHAPE = data.IMAGE_SHAPE
SAMPLE_SUFFIXES = (".png", ".npy")

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
CONFIG_FILE = "config.json"
CONFIG_KEYS = ("model", "dataset", "epochs", "batch_size", "seed", "size",
               "size_argument", "limit")
"""The keys every ``config.json`` holds (read back by ``--resume`` and ``evaluate``)."""


# Files -----------------------------------------------------------------------------


def read_run(run_dir):
    """The config and history of a run folder, after checking its checkpoint.

    Returns:
        ``(config, history)``; the history is the one saved with the model
        (:func:`read_history`).

    Raises:
        companion.checkpoint.CheckpointError: for a missing or corrupt file.
    """
    run = pathlib.Path(run_dir)
    if not run.is_dir():
        raise checkpoint.CheckpointError(
            f"No run folder at {str(run)!r}; train one with `companion train`.")
    if not (run / MODEL_FILE).exists():
        raise checkpoint.CheckpointError(
            f"{str(run)!r} holds no checkpoint: the file {MODEL_FILE} does not exist "
            "(a run that stopped before its first epoch ended writes none). Train it "
            "again without --resume.")
    return read_config(run), read_history(run)


def read_history(run_dir):
    """The history of the model in a run folder: the one saved inside ``model.keras``.

    :class:`EpochCheckpoint` stores the history in the model's archive and
    then copies it to ``history.json``; a run killed between the two leaves
    ``history.json`` an epoch behind, and the archive's copy is the truth. A
    checkpoint written without one (by an earlier version) falls back to
    ``history.json``.

    Raises:
        companion.checkpoint.CheckpointError: for a missing or corrupt file.
    """
    run = pathlib.Path(run_dir)
    metadata = checkpoint.read_metadata(run / MODEL_FILE)
    if isinstance(metadata, dict) and isinstance(metadata.get("history"), dict):
        return metadata["history"]
    return checkpoint.read_json(run / HISTORY_FILE)


def read_config(run_dir):
    """The ``config.json`` of a run folder, checked to hold every key of :data:`CONFIG_KEYS`.

    Raises:
        companion.checkpoint.CheckpointError: for a missing or corrupt file,
            or one without a key (written by another version, or edited).
    """
    path = pathlib.Path(run_dir) / CONFIG_FILE
    config = checkpoint.read_json(path)
    missing = [key for key in CONFIG_KEYS if key not in config] if isinstance(
        config, dict) else list(CONFIG_KEYS)
    if missing:
        raise checkpoint.CheckpointError(
            f"The run file {str(path)!r} lacks {', '.join(missing)}: it was not "
            "written by this version of `companion train`. Train the run again in "
            "a new folder.")
    return config


def save_samples(path, images):
    """Write images to a ``.png`` grid or a ``.npy`` array, atomically."""
    path = pathlib.Path(path)
    if path.suffix == ".npy":
        checkpoint.save_array(path, images.astype("float32"))
    else:
        plotting.save_png(path, images)


def __getattr__(name):
    # PEP 562: `EpochCheckpoint` subclasses a Keras class, so it is made on first
    # use; importing this module (for `companion --help`) must not import Keras.
    if name == "EpochCheckpoint":
        return _epoch_checkpoint_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"EpochCheckpoint"})


@functools.cache
def _epoch_checkpoint_class():
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        """After each epoch, rewrite a run folder's files atomically.

        ``config.json`` first, then ``model.keras`` with the history inside
        (the epoch's logs appended, and each recorder's ``history`` list after
        the lists of earlier sessions), then the same history as
        ``history.json``. The model and the history it belongs to change in
        one rename, so a run killed between two files resumes at the right
        epoch (:func:`read_history`). A run stopped before its first epoch
        ends has written nothing resumable, so ``train`` reuses its folder.

        Args:
            run: the run folder.
            config: the dict written to ``config.json``.
            history: the run's history so far (updated in place).
            recorders: ``{key: callback}`` of callbacks with a ``history`` list,
                listed *before* this one in ``fit``'s callbacks.
        """

        def __init__(self, run, config, history, recorders=None):
            super().__init__()
            self.run, self.config, self.history = pathlib.Path(run), config, history
            self.recorders = dict(recorders or {})
            self.earlier = {key: list(history.get(key, [])) for key in self.recorders}

        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                self.history.setdefault(key, []).append(float(value))
            for key, recorder in self.recorders.items():
                self.history[key] = self.earlier[key] + _plain(recorder.history)
            self.run.mkdir(parents=True, exist_ok=True)
            checkpoint.write_json(self.run / CONFIG_FILE, self.config)
            checkpoint.save_model(self.model, self.run / MODEL_FILE,
                                  metadata={"history": self.history})
            checkpoint.write_json(self.run / HISTORY_FILE, self.history)

    EpochCheckpoint.__qualname__ = "EpochCheckpoint"
    return EpochCheckpoint


def _plain(values):
    """Nested lists of floats, as JSON can hold them."""
    return np.asarray(values, dtype="float64").tolist()


def epochs_done(history):
    """Epochs a run's history records."""
    return max((len(values) for values in history.values()), default=0)


# Subcommands -----------------------------------------------------------------------


def train(model, out, dataset=None, epochs=None, batch_size=None, seed=None,
          size=None, resume=False, distribute=False, limit=None, verbose=1):
    """Train a model family on a data set and write a run folder.

    Everything is checked before anything is written: an unknown family or
    data set, a count below 1, an unwritable `out`, a run that is already
    there (without `resume`) or images of the wrong shape raise
    `ValueError` and leave the disk untouched. The run's files appear when
    its first epoch ends; a folder without ``model.keras`` (a run that failed
    earlier) is reused.

    Args:
        model: ``"gan"``, ``"vae"`` or ``"rnn"``.
        out: the run folder (created).
        dataset: see :func:`companion.data.load_images`; None: ``"mnist10k"``
            for a new run, the run's own data set with `resume`.
        epochs: total number of epochs (default: the family's
            ``BOOK_CONFIG``). With `resume`, training continues from the
            epochs already done up to this total; a learning-rate schedule
            sized to the first run is stretched to the new total.
        batch_size: default: the family's ``BOOK_CONFIG`` (with `resume`:
            the run's).
        seed: seed of the weights, the training noise, the data order, the
            binarisation and the preview samples (>= 0; default 0, with
            `resume` the run's).
        size: the family's size knob, ``REGISTRY[model].size_argument`` of
            :data:`companion.models.REGISTRY` (the GAN's and the VAE's
            ``width``, the RNN's ``units``); default: the family's ``BOOK_CONFIG``.
        resume: continue the run in `out` from its checkpoint.
        distribute: train data-parallel over all devices
            (:mod:`companion.distribute`).
        limit: train on the first `limit` images only (quick tries).
        verbose: Keras' `fit` verbosity (1: progress bars).

    Returns:
        A dict: ``history`` (every epoch so far), ``config``, ``out``.

    Raises:
        ValueError: for bad input (see above).
        companion.checkpoint.CheckpointError: with `resume`, for a missing or
            corrupt checkpoint or run file.
    """
    family = models.family(model, "model")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("size", size)):
        if value is not None:  # before the family's module (and Keras) is imported
            check_int(name, value)
    if seed is not None:
        check_int("seed", seed, minimum=0)
    import keras

    run = pathlib.Path(out)
    if resume:
        config, history = read_run(run)
        _check_resumable(config, model, dataset, size, limit)
        dataset, size, limit = config["dataset"], config["size"], config["limit"]
        seed = config["seed"] if seed is None else seed
        batch_size = config["batch_size"] if batch_size is None else batch_size
    else:
        if (run / MODEL_FILE).exists():
            raise ValueError(f"`out`={str(run)!r} already holds a run; pass --resume "
                             "to continue it, or choose another folder.")
        history = {}
        dataset = "mnist10k" if dataset is None else dataset
        seed = 0 if seed is None else seed
    seed = check_int("seed", seed, minimum=0)
    done = epochs_done(history)
    defaults = family.module.BOOK_CONFIG
    epochs = check_int("epochs", defaults["epochs"] if epochs is None else epochs)
    if epochs <= done:
        raise ValueError(f"`epochs` is the total to reach; {str(run)!r} has "
                         f"{done} epochs already, so ask for more than {done}; "
                         f"got {epochs}.")
    batch_size = check_int("batch_size", defaults["batch_size"] if batch_size is None
                           else batch_size)
    size = check_int("size", family.default_size if size is None else size)
    checkpoint.check_writable(run)
    images = data.load_images(dataset, "train", family.module.VALUE_RANGE, seed, limit)
    if len(images) < 1:
        raise ValueError(f"`dataset`={dataset!r} holds no training images.")
    images, scope, devices = _placement(images, batch_size, distribute)
    config = {
        "model": model, "dataset": str(dataset), "epochs": epochs,
        "batch_size": batch_size, "seed": seed, "size": size,
        "size_argument": family.size_argument, "limit": limit,
        "distribute": bool(distribute), "devices": devices,
        "value_range": family.module.VALUE_RANGE, "image_shape": list(IMAGE_SHAPE),
    }
    with scope:  # the model's variables must be made inside it
        if resume:
            network = checkpoint.load_model(run / MODEL_FILE)
            if family.decays:  # stretch the decay sized to the first run
                family.module.resize_schedule(network, family.module.decay_steps_for(
                    len(images), epochs, batch_size))
        else:
            network = models.build(model, len(images), epochs, batch_size, seed=seed,
                                   **{family.size_argument: size})
        recorders = _recorders(model, family.module, images)
        keras.utils.set_random_seed(seed + done)  # the data order of each epoch
        saver = _epoch_checkpoint_class()(run, config, history, recorders)
        network.fit(images, epochs=epochs, initial_epoch=done, batch_size=batch_size,
                    shuffle=True, verbose=verbose,
                    callbacks=[*recorders.values(), saver])
    previews = network.sample(NUM_PREVIEW, seed=seed)
    save_samples(run / "samples.npy", previews)
    save_samples(run / "samples.png", previews)
    return {"history": history, "config": config, "out": str(run)}


def _recorders(model, module, images):
    """Callbacks whose ``history`` goes into ``history.json``, by key."""
    if model == "vae":
        return {"kl_per_dimension": module.KLPerDimension(images[:KL_IMAGES], every=1)}
    return {}


def _check_resumable(config, model, dataset, size, limit):
    if config["model"] != model:
        raise ValueError(f"--resume: the run holds a {config['model']!r} model, "
                         f"not {model!r}.")
    given = {"dataset": None if dataset is None else str(dataset), "size": size,
             "limit": limit}
    for key, value in given.items():
        if value is not None and value != config[key]:
            raise ValueError(f"--resume: the run was trained with {key}="
                             f"{config[key]!r}; got {value!r}. Leave it out.")


def _placement(images, batch_size, distribute):
    if not distribute:
        return images, contextlib.nullcontext(), 1
    from companion import distribute as distribute_lib

    distribution = distribute_lib.data_parallel()
    devices = distribute_lib.device_count(distribution)
    distribute_lib.check_batch_size(batch_size, devices)
    images = distribute_lib.trim_to_devices(distribute_lib.process_shard(images),
                                            devices)
    return images, distribution.scope(), devices


def sample(run_dir, num, out, seed=0):
    """Draw `num` images from a trained run and save them.

    Args:
        run_dir: a folder written by :func:`train`.
        num: number of images (>= 1).
        out: a ``.png`` file (one grid) or a ``.npy`` file (float32
            `(num, 28, 28, 1)` in [0, 1]).
        seed: makes the samples reproducible.

    Returns:
        The images, float32 `(num, 28, 28, 1)` in [0, 1].

    Raises:
        ValueError: for a bad `num` or `out`;
            companion.checkpoint.CheckpointError for a missing or corrupt run.
    """
    num = check_int("num", num)
    seed = check_int("seed", seed, minimum=0)
    out = pathlib.Path(out)
    check_choice("out's suffix", out.suffix, SAMPLE_SUFFIXES)
    checkpoint.check_writable(out.parent)
    model = checkpoint.load_model(pathlib.Path(run_dir) / MODEL_FILE, compile=False)
    images = model.sample(num, seed=seed)
    save_samples(out, images)
    return images


def evaluate(run_dir, dataset=None, num=1000, limit=None, importance_samples=100,
             seed=0):
    """Sample quality and, for the VAE and the RNN, test log-likelihoods.

    Args:
        run_dir: a folder written by :func:`train`.
        dataset: the data set to compare with (default: the run's).
        num: samples drawn for :func:`companion.evaluation.sample_quality`.
        limit: use only the first `limit` test images for likelihoods.
        importance_samples: ``k`` of the VAE's importance-weighted bound.
        seed: seed of the model's randomness only: its samples and the VAE's
            importance samples. The data are fixed whatever the seed: the
            likelihoods are on the book's fixed stochastic binarisation
            (:func:`companion.data.load`'s default, seed 0) and the Fréchet
            floor on the real subset seed 0 chooses, so runs evaluated with
            different seeds are compared on the same images.

    Returns:
        A JSON-ready dict: ``model``, ``dataset``, ``epochs``,
        ``sample_quality`` (the dict of
        :func:`companion.evaluation.sample_quality`, or None for a data set
        without a reference classifier) and ``likelihood`` (None for the
        GAN, which has none, and for a ``.npy`` data set, which has no test
        split: then ``likelihood_note`` says so): test negative log-likelihood in nats per image
        and bits per dimension, how it was computed, and the independent-
        Bernoulli baseline on the same images.

    Raises:
        ValueError: for bad input; companion.checkpoint.CheckpointError for a
            missing or corrupt run.
    """
    from companion import evaluation

    num = check_int("num", num, minimum=2)
    importance_samples = check_int("importance_samples", importance_samples)
    run = pathlib.Path(run_dir)
    config = read_config(run)
    history = read_history(run)
    dataset = config["dataset"] if dataset is None else dataset
    if limit is not None:
        check_int("limit", limit)
    model = checkpoint.load_model(run / MODEL_FILE, compile=False)
    report = {"model": config["model"], "dataset": str(dataset),
              "epochs": epochs_done(history),
              "sample_quality": None, "likelihood": None}
    if dataset in data.NAMES:
        report["sample_quality"] = evaluation.sample_quality(
            model.sample(num, seed=seed), dataset=dataset)  # the floor's subset: seed 0
    has_density = models.family(config["model"], "model").likelihood != "none"
    if has_density and str(dataset).endswith(".npy"):
        report["likelihood_note"] = (f"{dataset} holds training images only; give a "
                                     ".npz with x_test or a named data set for "
                                     "test likelihoods.")
    elif has_density:
        # The fixed binarisation (data's default seed, 0), whatever `seed` is.
        test = data.load_images(dataset, "test", "binary", limit=limit)
        train_images = data.load_images(dataset, "train", "binary")
        report["likelihood"] = _likelihood(model, config["model"], test,
                                           train_images, importance_samples, seed)
    return report


def _likelihood(model, family, test, train_images, importance_samples, seed):
    from companion import evaluation

    if family == "vae":
        log_p = model.log_likelihood(test, num_samples=importance_samples, seed=seed)
        method = f"importance-weighted bound, k={importance_samples}"
    else:
        log_p = model.log_likelihood(test)
        method = "exact (chain rule over rows)"
    baseline = evaluation.IndependentBernoulli().fit(train_images)
    nll = float(-np.mean(log_p))
    baseline_nll = float(-np.mean(baseline.log_likelihood(test)))
    return {"test_images": int(len(test)), "method": method, "nll_nats": nll,
            "bits_per_dim": evaluation.bits_per_dim(nll, IMAGE_SHAPE),
            "baseline_nll_nats": baseline_nll,
            "baseline_bits_per_dim": evaluation.bits_per_dim(baseline_nll, IMAGE_SHAPE)}


# Command line ----------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line (no usage dump), status 2."""

    def error(self, message):
        self.exit(2, f"companion: error: {message}\n")


def build_parser():
    """The `argparse` parser of ``python -m companion``."""
    parser = _Parser(prog="companion", description=(
        "Train, sample and evaluate the book's generative models."))
    commands = parser.add_subparsers(dest="command", required=True,
                                     metavar="{train,sample,evaluate,pretrain}")

    train_parser = commands.add_parser(
        "train", help="train a model and write a run folder",
        description="Train a model family; writes DIR/model.keras (rewritten after "
                    "every epoch), history.json, config.json, samples.png and "
                    "samples.npy (64 samples in [0, 1]).")
    train_parser.add_argument("model", metavar="{" + ",".join(FAMILIES) + "}",
                              help="model family")
    train_parser.add_argument("--out", required=True, metavar="DIR",
                              help="run folder (created)")
    _add_dataset(train_parser, None)
    train_parser.add_argument("--epochs", type=int, metavar="N",
                              help="total epochs (default: the book's)")
    train_parser.add_argument("--batch-size", type=int, metavar="B",
                              help="default: the book's")
    train_parser.add_argument("--seed", type=int, metavar="S",
                              help="default 0 (with --resume: the run's)")
    train_parser.add_argument("--size", type=int, metavar="N", help=size_help())
    train_parser.add_argument("--limit", type=int, metavar="N",
                              help="train on the first N images only")
    train_parser.add_argument("--resume", action="store_true",
                              help="continue the run in DIR up to --epochs in total")
    train_parser.add_argument(
        "--distribute", action="store_true",
        help="data-parallel over all devices (keras.distribution.DataParallel); "
             "the batch size must be a multiple of the device count")
    train_parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                              help="1: progress bars (default), 2: a line an epoch")

    sample_parser = commands.add_parser("sample", help="draw images from a run")
    sample_parser.add_argument("run", metavar="DIR")
    sample_parser.add_argument("--num", type=int, required=True, metavar="N")
    sample_parser.add_argument("--out", required=True, metavar="FILE.png|FILE.npy")
    sample_parser.add_argument("--seed", type=int, default=0, metavar="S")

    evaluate_parser = commands.add_parser(
        "evaluate", help="print sample quality and likelihoods as JSON")
    evaluate_parser.add_argument("run", metavar="DIR")
    _add_dataset(evaluate_parser, None, "default: the run's")
    evaluate_parser.add_argument("--num", type=int, default=1000, metavar="N",
                                 help="samples for the quality metrics")
    evaluate_parser.add_argument("--limit", type=int, metavar="N",
                                 help="test images for the likelihood (default: all)")
    evaluate_parser.add_argument("--importance-samples", type=int, default=100,
                                 metavar="K", help="the VAE's IWAE samples")
    evaluate_parser.add_argument(
        "--seed", type=int, default=0, metavar="S",
        help="seeds the samples and the importance samples (default 0); the test "
             "images are the fixed binarisation, whatever the seed")
    pretrain_parser = commands.add_parser(
        "pretrain", help="train a shipped checkpoint again (companion.pretrained)",
        description="Train checkpoint NAME with its family's LONG_CONFIG on the first "
                    "8,000 mnist10k training digits, keep the epoch with the best "
                    "score on the other 1,000, evaluate it on the test digits and "
                    "write DIR/NAME.keras and DIR/NAME.json (its record).")
    pretrain_parser.add_argument("name", metavar="{" + ",".join(pretrained.NAMES) + "}",
                                 help="the checkpoint")
    pretrain_parser.add_argument("--out", metavar="DIR", default="pretrained",
                                 help="folder to write (default: ./pretrained; the "
                                      "package's own: companion/checkpoints)")
    pretrain_parser.add_argument("--epochs", type=int, metavar="N",
                                 help="default: the preset's (a quick try: 1)")
    pretrain_parser.add_argument("--limit", type=int, metavar="N",
                                 help="train on the first N images only")
    pretrain_parser.add_argument(
        "--resume", action="store_true",
        help="continue the run saved in DIR/NAME.resume/ (saved at every validation "
             "check) instead of starting again")
    pretrain_parser.add_argument(
        "--stop-after", type=int, metavar="N",
        help="train at most N epochs now, save the run and stop (continue later "
             "with --resume)")
    pretrain_parser.add_argument(
        "--evaluate-only", action="store_true",
        help="do not train: evaluate the checkpoint in DIR again and rewrite its "
             "record's results")
    return parser


def size_help():
    """``--size``'s help: each family's size argument, what it counts and its default.

    Read from :data:`companion.models.REGISTRY`'s plain data: no model module
    (and so no Keras) is imported.
    """
    knobs = "; ".join(
        f"{name}: {entry.size_argument}, {entry.size_meaning} (default "
        f"{entry.default_size})" for name, entry in models.REGISTRY.items())
    return f"the network's size, the family's make_model argument: {knobs}"


def _add_dataset(parser, default, note=None):
    parser.add_argument(
        "--dataset", default=default, metavar="mnist10k|digits|mnist|fashion_mnist|PATH",
        help=note or "a named set or a .npy/.npz file of 28x28 images "
                     "(default: mnist10k)")


def run_command(arguments):
    """Run parsed arguments; return what the subcommand prints (or None)."""
    if arguments.command == "train":
        result = train(arguments.model, arguments.out, dataset=arguments.dataset,
                       epochs=arguments.epochs, batch_size=arguments.batch_size,
                       seed=arguments.seed, size=arguments.size,
                       resume=arguments.resume, distribute=arguments.distribute,
                       limit=arguments.limit, verbose=arguments.verbose)
        last = {key: values[-1] for key, values in result["history"].items()
                if not isinstance(values[-1], list)}
        return json.dumps({"out": result["out"], "epochs": result["config"]["epochs"],
                           "last_epoch": last}, sort_keys=True)
    if arguments.command == "pretrain":
        if arguments.evaluate_only:
            record = pretrained.reevaluate(arguments.name, folder=arguments.out)
        else:
            record = pretrained.pretrain(arguments.name, out=arguments.out,
                                         epochs=arguments.epochs, limit=arguments.limit,
                                         resume=arguments.resume,
                                         stop_after=arguments.stop_after)
            if record is None:
                return (f"stopped after {arguments.stop_after} epochs; continue with "
                        f"`companion pretrain {arguments.name} --out {arguments.out} "
                        "--resume`")
        return json.dumps({"out": arguments.out, "training": {
            key: record["training"][key] for key in ("seconds", "epochs",
                                                     "selected_epoch")},
            "evaluation": record["evaluation"]}, indent=2, sort_keys=True)
    if arguments.command == "sample":
        images = sample(arguments.run, arguments.num, arguments.out,
                        seed=arguments.seed)
        return f"wrote {len(images)} samples to {arguments.out}"
    report = evaluate(arguments.run, dataset=arguments.dataset, num=arguments.num,
                      limit=arguments.limit,
                      importance_samples=arguments.importance_samples,
                      seed=arguments.seed)
    return json.dumps(report, indent=2, sort_keys=True)


def main(argv=None):
    """Entry point of ``python -m companion``; returns the exit status.

    Bad input (a `ValueError`, a missing or corrupt checkpoint, an
    unreadable file) prints ``companion: error: ...`` on one line of stderr
    and returns 2. Set ``COMPANION_DEBUG=1`` to see the traceback instead.
    """
    arguments = build_parser().parse_args(argv)
    try:
        output = run_command(arguments)
    except (ValueError, OSError) as error:
        if os.environ.get("COMPANION_DEBUG"):
            raise
        message = " ".join(str(error).split())
        print(f"companion: error: {message}", file=sys.stderr)
        return 2
    if output:
        print(output)
    return 0
