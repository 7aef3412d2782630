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
('gan', 'vae', 'rnn', 'diffusion')
>>> pretrained.card("rnn")["preset"] == pretrained.preset("rnn")
True
"""

import contextlib
import hashlib
import importlib
import os
import pathlib
import platform
import shutil
import subprocess
import time

import numpy as np

from companion import checkpoint, data, models
from companion._validation import check_choice, check_int

NAMES = (*models.FAMILIES, "diffusion")
FOLDER = pathlib.Path(__file__).parent / "checkpoints"
DATASET = "mnist10k"
VALIDATION_IMAGES = 1000
VALIDATION_IMPORTANCE_SAMPLES = 20  # the VAE's validation bound: cheap, enough to rank epochs
EVALUATION = {"samples": 1000, "sample_seed": 0, "importance_samples": 200,
              "importance_seed": 0, "binarisation_seed": 0, "test_images": 1000}
"""The settings of every recorded evaluation (on the 1,000 ``mnist10k`` test digits)."""


def preset(name):
    """The `name` family's ``LONG_CONFIG`` (a copy): what :func:`pretrain` trains."""
    return dict(_module(name).LONG_CONFIG)


def _module(name):
    """The model module of checkpoint `name`, ``companion.models.NAME``."""
    return importlib.import_module(f"companion.models.{check_choice('name', name, NAMES)}")


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


def pretrain(name, out=FOLDER, epochs=None, limit=None, verbose=1, resume=False,
             stop_after=None, **overrides):
    """Train checkpoint `name` with its ``LONG_CONFIG``; write ``NAME.keras`` and ``NAME.json``.

    Each epoch is one ``fit`` pass over the training images (a fresh
    binarisation of them for the VAE and the RNN; grey levels in [-1, 1] and
    their labels for the GAN and the diffusion model), shuffled by a seed of
    the preset's seed and the epoch; every ``check_every`` epochs, and at the
    last, the validation score is measured and the weights of the best epoch
    so far are kept. A GAN preset with ``ema_momentum`` samples, validates
    and ships the moving average of the generator's weights
    (:class:`companion.training.WeightAverage`); a model whose builder
    takes ``ema_momentum`` (the diffusion model) keeps its own average. The model saved is the best one, without optimiser
    state; the record holds both curves and the evaluation on the test
    digits (:func:`evaluate`).

    **Resuming.** At every validation check the run's state (the model with
    its optimiser, the best weights, the curves, the seconds spent) is saved
    in ``out/NAME.resume/``. With ``resume=True`` a run continues from there:
    the same epochs follow with the same shuffles and noise, so an
    interrupted run ends where an uninterrupted one would (on the same
    machine). The folder is removed when the checkpoint is written.

    Args:
        name: ``"gan"``, ``"vae"``, ``"rnn"`` or ``"diffusion"``.
        out: the folder to write (default: the package's checkpoints).
        epochs: override the preset's epochs (a smoke test's 1).
        limit: train on the first `limit` training images only (smoke tests).
        verbose: 1 shows Keras' progress bar and a line an epoch; 0 is quiet.
        resume: continue the run saved in ``out/NAME.resume/`` (an error if
            it was started with another preset); without it a saved run is
            started again.
        stop_after: train at most this many epochs in this call, save the
            run's state and return None (a run spread over sessions); None
            trains to the end.
        **overrides: other preset entries to change (a smoke test's small
            network); the record says which.

    Returns:
        The record (a dict), also written to ``out/NAME.json``; None when
        `stop_after` stopped the run first.

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
    if stop_after is not None:
        check_int("stop_after", stop_after)
    out = checkpoint.check_writable(out)  # before half an hour of training, not after
    grey, labels = data.load(DATASET, "train")
    size = len(grey) - VALIDATION_IMAGES
    train = (grey[:size][:limit], labels[:size][:limit])
    validation = _validation_images(name, grey[size:])
    run = _Run(out / f"{name}.resume", config, resume)
    done = _train(name, config, train, validation, verbose, run, stop_after)
    if not done:
        return None
    final, history, selected = done
    record = _evaluated({
        "name": name,
        "command": _command(name, epochs, limit, overrides),
        "preset": config,
        "overrides": sorted([*overrides, *([] if epochs is None else ["epochs"])]),
        "data": {"dataset": DATASET, "file": data.MNIST10K_FILE.name,
                 "sha256": sha256(data.MNIST10K_FILE),
                 "training_images": len(train[0]),
                 "validation_images": VALIDATION_IMAGES},
        "package": _package(),
        "machine": _machine(),
        "training": {"seconds": run.seconds(), "sessions": run.sessions,
                     "machines": run.machines,
                     "epochs": config["epochs"], "selected_epoch": selected,
                     "validation_metric": _SCORE[name], "history": history},
    }, final)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.keras"  # the model first, then the record that names its checksum
    checkpoint.save_model(final, path)
    record["checkpoint"] = {"file": path.name, "bytes": path.stat().st_size,
                            "sha256": sha256(path)}
    checkpoint.write_json(out / f"{name}.json", record)
    run.remove()
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


class _Run:
    """A training run's saved state in `folder`: where it stands, to resume it."""

    def __init__(self, folder, config, resume):
        self.folder, self.config = pathlib.Path(folder), config
        self.saved = None
        self.sessions, self._before, self._started = 1, 0.0, time.perf_counter()
        self.machines = [_machine()]  # one a session: a run may move
        if resume and (self.folder / "state.json").exists():
            self.saved = checkpoint.read_json(self.folder / "state.json")
            if self.saved["preset"] != config:
                raise ValueError(
                    f"The run saved in {str(self.folder)!r} has preset "
                    f"{self.saved['preset']}, not {config}: run without --resume to "
                    "start again, or with the same preset to continue it.")
            self.sessions = self.saved["sessions"] + 1
            self._before = self.saved["seconds"]
            self.machines = self.saved["machines"] + self.machines

    def seconds(self):
        """Seconds of training over every session of the run so far."""
        return round(self._before + time.perf_counter() - self._started, 1)

    def restore(self):
        """``(model, history, best)`` as saved; None to start afresh."""
        if self.saved is None:
            return None
        model = checkpoint.load_model(self.folder / "model.keras")
        # A .keras file does not keep the noise generators' states: set every variable.
        for variable, value in zip(model.variables, _arrays(self.folder / "variables.npz")):
            variable.assign(value)
        best = (self.saved["best_epoch"], self.saved["best_score"],
                _arrays(self.folder / "best.npz"))
        return model, self.saved["history"], best

    def save(self, model, history, best):
        self.folder.mkdir(parents=True, exist_ok=True)
        checkpoint.save_model(model, self.folder / "model.keras")
        _save_arrays(self.folder / "variables.npz", [v.numpy() for v in model.variables])
        _save_arrays(self.folder / "best.npz", best[2])
        checkpoint.write_json(self.folder / "state.json", {
            "preset": self.config, "epoch": history["epoch"][-1], "history": history,
            "best_epoch": best[0], "best_score": best[1], "seconds": self.seconds(),
            "sessions": self.sessions, "machines": self.machines})

    def remove(self):
        shutil.rmtree(self.folder, ignore_errors=True)


def _save_arrays(path, arrays):
    with checkpoint.atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, *arrays)


def _arrays(path):
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def _train(name, config, train, validation, verbose, run, stop_after=None):
    """Train epoch by epoch; return the best model (no optimiser state), the history
    and the selected epoch, or None when `stop_after` epochs were trained first."""
    import keras

    restored = run.restore()
    if restored is None:
        keras.utils.set_random_seed(config["seed"])
        model = _build(name, config, len(train[0]))
        history, best = {"epoch": [], "loss": [], "seconds": [], "validation": []}, None
    else:
        model, history, best = restored
    average = None
    if config.get("ema_momentum") and "ema_momentum" not in _ARGUMENTS[name]:
        # A model that does not average its own weights (the GAN): average the generator's.
        from companion.training import WeightAverage

        average = WeightAverage(model.generator, config["ema_momentum"])
    first = history["epoch"][-1] if history["epoch"] else 0
    for epoch in range(first, config["epochs"]):
        if stop_after is not None and epoch - first >= stop_after:
            return None
        keras.utils.set_random_seed(int(np.random.SeedSequence(
            [config["seed"], epoch]).generate_state(1)[0]))  # this epoch's shuffle
        logs = model.fit(*_epoch_data(name, train, config["seed"], epoch),
                         batch_size=config["batch_size"], shuffle=True,
                         initial_epoch=epoch, epochs=epoch + 1, verbose=verbose,
                         callbacks=[] if average is None else [average]).history
        history["loss"].append(float(logs[_LOSS[name]][-1]))
        history["seconds"].append(run.seconds())
        if (epoch + 1) % config["check_every"] and epoch + 1 < config["epochs"]:
            continue
        with contextlib.nullcontext() if average is None else average.applied():
            score = _validation_score(name, model, validation)
            if best is None or score < best[1]:
                best = (epoch + 1, score, model.get_weights())
        history["epoch"].append(epoch + 1)
        history["validation"].append(score)
        run.save(model, history, best)
        if verbose:
            print(f"epoch {epoch + 1}: validation {_SCORE[name]} {score:.3f} "
                  f"(best {best[1]:.3f} at epoch {best[0]}), "
                  f"{history['seconds'][-1]:.0f} s", flush=True)
    final = _build(name, config, len(train[0]))  # without optimiser state
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
    seconds, _ = comparison.time_sampling(_Labelled(model) if record["name"] == "diffusion"
                                          else model, num=1000)
    record["sampling"] = {
        "seconds_per_1000": seconds,
        "machine": _machine(),
        "note": "timed once where the record was written; not compared in tests"}
    if record["name"] == "diffusion":
        record["sweeps"] = sweeps(model)
    return record


STEPS_SWEEP = {"euler": (2, 5, 10, 20, 50), "heun": (2, 5, 10)}
GUIDANCE_SWEEP = (0.0, 1.0, 1.5, 2.0, 3.0, 4.0)


class _Labelled:
    """The diffusion model's ``sample(num, seed)`` as it is evaluated: digits in turn,
    guidance 1 (for :func:`companion.comparison.time_sampling`)."""

    def __init__(self, model):
        self.model = model

    def sample(self, num, seed=None):
        return evaluated_samples("diffusion", self.model, num, seed)


def evaluated_samples(name, model, num, seed=0):
    """`num` samples of checkpoint `name`'s kind as :func:`evaluate` scores them.

    ``model.sample(num, seed)`` for every family but the class-conditional
    diffusion model, whose samples are the digits 0, 1, ..., 9, 0, 1, ... in
    turn from the conditional model (guidance 1, the default steps).
    """
    if name != "diffusion":
        return model.sample(num, seed=seed)
    return model.sample(num, seed=seed, labels=np.arange(num) % 10, guidance=1.0)


def guided_quality(model, guidance, steps, sampler="euler"):
    """Quality of the diffusion model's 1,000 labelled samples (100 a digit).

    Returns:
        ``{"guidance", "steps", "sampler", "agreement", "sample_quality"}``:
        `agreement` is how often the reference classifier reads a sample as
        its requested label (:func:`companion.evaluation.label_agreement`).
    """
    from companion import evaluation

    labels = np.arange(EVALUATION["samples"]) % 10
    samples = model.sample(len(labels), seed=EVALUATION["sample_seed"], labels=labels,
                           guidance=guidance, steps=steps, sampler=sampler)
    return {"guidance": guidance, "steps": steps, "sampler": sampler,
            "agreement": evaluation.label_agreement(samples, labels, DATASET),
            "sample_quality": evaluation.sample_quality(samples, dataset=DATASET)}


def sweeps(model):
    """The diffusion model's quality and cost against its sampling settings.

    - ``steps``: for each sampler and number of steps (:data:`STEPS_SWEEP`),
      the Fréchet distance of the 1,000 evaluated samples (100 of each digit,
      guidance 1, seed 0) and the seconds they took (timed once, after a
      compiling call); for Euler also the seconds of 1,000 guided samples;
    - ``guidance``: for each scale of :data:`GUIDANCE_SWEEP` at the default
      steps, :func:`guided_quality`'s agreement, Fréchet distance, label
      entropy, precision and recall.
    """
    from companion import evaluation
    from companion.models import diffusion

    labels = np.arange(EVALUATION["samples"]) % 10

    def timed(steps, sampler, guidance):
        def draw(num, seed):
            return model.sample(num, seed=seed, labels=labels[:num], guidance=guidance,
                                steps=steps, sampler=sampler)
        draw(diffusion._CHUNK, 1)  # compiles
        started = time.perf_counter()
        samples = draw(len(labels), EVALUATION["sample_seed"])
        return samples, round(time.perf_counter() - started, 2)

    steps_rows = []
    for sampler, counts in STEPS_SWEEP.items():
        for steps in counts:
            samples, seconds = timed(steps, sampler, 1.0)
            row = {"sampler": sampler, "steps": steps,
                   "network_calls": steps * (2 if sampler == "heun" else 1),
                   "frechet": evaluation.sample_quality(samples, dataset=DATASET)["frechet"],
                   "seconds_per_1000": seconds}
            if sampler == "euler":
                row["guided_seconds_per_1000"] = timed(steps, sampler,
                                                       diffusion.DEFAULT_GUIDANCE)[1]
            steps_rows.append(row)
    guidance_rows = []
    for guidance in GUIDANCE_SWEEP:
        result = guided_quality(model, guidance, diffusion.DEFAULT_STEPS)
        quality = result["sample_quality"]
        guidance_rows.append({"guidance": guidance, "agreement": result["agreement"],
                              **{key: quality[key] for key in (
                                  "frechet", "label_entropy", "precision", "recall")}})
    return {"samples": EVALUATION["samples"], "seed": EVALUATION["sample_seed"],
            "steps": steps_rows, "guidance": guidance_rows,
            "note": "seconds timed once where the record was written; not compared in tests"}


def _command(name, epochs, limit, overrides):
    """The command that trains this model (where the files go, --out, does not change it)."""
    words = ["companion", "pretrain", name]
    for flag, value in (("--epochs", epochs), ("--limit", limit)):
        if value is not None:
            words += [flag, str(value)]
    if overrides:  # not a command-line option: the Python call made it
        words += [f"({key}={value!r})" for key, value in sorted(overrides.items())]
    return " ".join(words)


_LOSS = {"gan": "g_loss", "vae": "loss", "rnn": "loss", "diffusion": "loss"}
_SCORE = {"gan": "Fréchet distance", "vae": "IWAE NLL (nats)", "rnn": "NLL (nats)",
          "diffusion": "Fréchet distance (unconditional samples)"}


def _build(name, config, num_examples):
    import keras

    arguments = {key: config[key] for key in _ARGUMENTS[name]}
    steps = config["epochs"] * -(-num_examples // config["batch_size"])  # the whole run
    if name == "gan":
        arguments["decay_steps"] = steps
    else:
        arguments["learning_rate"] = keras.optimizers.schedules.CosineDecay(
            config["learning_rate"], steps)
    return _module(name).make_model(seed=config["seed"], **arguments)


_ARGUMENTS = {
    "gan": ("width", "latent_dim", "kernel_size", "dropout", "d_learning_rate",
            "g_learning_rate", "beta_1"),
    "vae": ("width", "latent_dim"),
    "rnn": ("units", "clipnorm", "steps_per_execution"),
    "diffusion": ("width", "label_dropout", "ema_momentum"),
}


def _validation_images(name, grey):
    if name in _GREY:
        return grey
    return data._to_range(grey, "binary", EVALUATION["binarisation_seed"])


_GREY = ("gan", "diffusion")  # trained on grey levels in [-1, 1], validated by samples


def _epoch_data(name, train, seed, epoch):
    """``fit``'s arguments for one epoch: the images (and the diffusion model's labels)."""
    grey, labels = train
    if name == "diffusion":
        return grey * 2.0 - 1.0, labels
    if name == "gan":
        return (grey * 2.0 - 1.0,)
    rng = np.random.default_rng([seed, epoch])
    return ((rng.random(grey.shape) < grey).astype("float32"),)


def _validation_score(name, model, images):
    from companion import evaluation

    if name in _GREY:
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

    The diffusion model is class-conditional: its samples are 100 of each
    digit requested from the conditional model (guidance 1), the way a
    class-conditional model draws digits (the test digits are about equally
    frequent). Its report also
    has ``agreement`` (how often the reference classifier reads the
    requested digit), ``unconditional`` (the quality of 1,000 samples
    without a label) and ``guided`` (:func:`guided_quality` at the default
    guidance scale). It has no likelihood here.

    Args:
        name: ``"gan"``, ``"vae"``, ``"rnn"`` or ``"diffusion"``.
        model: the model to evaluate (default: :func:`load` of `name`).

    Returns:
        A JSON-ready dict: ``settings``, ``parameters`` (trainable, as the
        comparison table counts them), ``sample_quality``, ``nll_nats``
        (None for the GAN and the diffusion model), ``likelihood`` (how it
        was computed), and the diffusion model's keys above.
    """
    from companion import comparison, evaluation

    check_choice("name", name, NAMES)
    model = load(name) if model is None else model
    report = {"settings": dict(EVALUATION), "parameters": comparison.count_parameters(model),
              "nll_nats": None, "likelihood": None}
    if name == "diffusion":
        from companion.models import diffusion

        conditional = guided_quality(model, 1.0, diffusion.DEFAULT_STEPS)
        report.update(
            sample_quality=conditional["sample_quality"],
            samples=("100 of each digit, guidance 1 (the conditional model), "
                     f"{diffusion.DEFAULT_STEPS} Euler steps"),
            agreement=conditional["agreement"],
            unconditional=evaluation.sample_quality(
                model.sample(EVALUATION["samples"], seed=EVALUATION["sample_seed"]),
                dataset=DATASET),
            guided=guided_quality(model, diffusion.DEFAULT_GUIDANCE, diffusion.DEFAULT_STEPS))
        return report
    samples = model.sample(EVALUATION["samples"], seed=EVALUATION["sample_seed"])
    report["sample_quality"] = evaluation.sample_quality(samples, dataset=DATASET)
    if name not in _GREY:
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
