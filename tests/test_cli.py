"""companion.cli: every subcommand end to end, resume, and every bad input.

Training runs are tiny (one epoch of one batch of 32 digits, narrow networks)
and run in-process through :func:`companion.cli.main`; one test runs
``python -m companion`` in a subprocess to check the real exit status.
"""

import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from companion import checkpoint, cli, data, evaluation, models

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAST = ["--epochs", "1", "--limit", "32", "--batch-size", "32", "--verbose", "0"]
SIZE = {name: str(entry.tiny[entry.size_argument])
        for name, entry in models.REGISTRY.items()}
RUN_FILES = ["config.json", "history.json", "model.keras", "samples.npy",
             "samples.png"]


def run(capsys, *argv):
    """`companion argv...` in-process: (status, stdout, stderr)."""
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_bad_input(capsys, *argv, match):
    status, out, err = run(capsys, *argv)
    assert status == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("companion: error:"), err
    assert match in lines[0], lines[0]
    return lines[0]


def train_fast(capsys, family, out, *extra):
    status, stdout, err = run(capsys, "train", family, "--out", out, "--size",
                              SIZE[family], *FAST, *extra)
    assert status == 0, err
    return json.loads(stdout)


@pytest.mark.parametrize("family", cli.FAMILIES)
def test_train_sample_evaluate_end_to_end(family, tmp_path, capsys):
    out = tmp_path / "run"
    printed = train_fast(capsys, family, out)
    assert sorted(p.name for p in out.iterdir()) == RUN_FILES

    history = json.loads((out / "history.json").read_text())
    assert {len(values) for values in history.values()} == {1}
    scalars = {k: v for k, v in history.items() if not isinstance(v[0], list)}
    assert all(math.isfinite(v[0]) for v in scalars.values())
    assert printed["last_epoch"] == {k: v[-1] for k, v in scalars.items()}
    if family == "vae":  # per-dimension KL in the history, not in the progress bar
        latent_dim = models.REGISTRY["vae"].module.BOOK_CONFIG["latent_dim"]
        assert np.shape(history.pop("kl_per_dimension")) == (1, latent_dim)
        assert not [key for key in history if key.startswith("kl_dim")]
    assert not [v for v in history.values() if isinstance(v[0], list)]
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == family and config["dataset"] == "mnist10k"
    assert set(cli.CONFIG_KEYS) <= set(config)
    assert config["size"] == int(SIZE[family])
    assert config["size_argument"] == models.REGISTRY[family].size_argument

    previews = np.load(out / "samples.npy")
    assert previews.shape == (64, 28, 28, 1) and previews.dtype == np.float32
    assert previews.min() >= 0.0 and previews.max() <= 1.0
    model = checkpoint.load_model(out / "model.keras")
    np.testing.assert_allclose(model.sample(64, seed=0), previews, atol=1e-6)

    status, _, err = run(capsys, "sample", out, "--num", 5, "--out",
                         tmp_path / "a.npy", "--seed", 3)
    assert status == 0, err
    first = np.load(tmp_path / "a.npy")
    run(capsys, "sample", out, "--num", 5, "--out", tmp_path / "b.npy", "--seed", 3)
    run(capsys, "sample", out, "--num", 5, "--out", tmp_path / "c.npy", "--seed", 4)
    assert first.shape == (5, 28, 28, 1) and 0 <= first.min() <= first.max() <= 1
    np.testing.assert_array_equal(first, np.load(tmp_path / "b.npy"))
    assert not np.array_equal(first, np.load(tmp_path / "c.npy"))
    status, _, _ = run(capsys, "sample", out, "--num", 5, "--out", tmp_path / "s.png")
    assert status == 0 and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"

    status, stdout, err = run(capsys, "evaluate", out, "--num", 20, "--limit", 10,
                              "--importance-samples", 4)
    assert status == 0, err
    report = json.loads(stdout)
    assert report["model"] == family and report["epochs"] == 1
    quality = report["sample_quality"]
    assert set(quality) == {"confidence", "real_confidence", "relative_confidence",
                            "label_entropy", "frechet", "frechet_floor", "kid", "kid_std",
                            "kid_floor", "precision", "recall", "precision_floor",
                            "recall_floor"}
    assert quality["relative_confidence"] == pytest.approx(
        quality["confidence"] / quality["real_confidence"])
    if family == "gan":
        assert report["likelihood"] is None
        return
    likelihood = report["likelihood"]
    assert likelihood["test_images"] == 10
    assert likelihood["bits_per_dim"] == pytest.approx(
        likelihood["nll_nats"] / (784 * math.log(2)))
    # The figures are the model's and the baseline's own, on the first ten
    # binarised test digits (seed 0), computed here independently.
    test = data.load_images("mnist10k", "test", "binary", seed=0, limit=10)
    if family == "vae":
        log_p = model.log_likelihood(test, num_samples=4, seed=0)
    else:
        log_p = model.log_likelihood(test)
    assert likelihood["nll_nats"] == pytest.approx(-np.mean(log_p), rel=1e-5)
    baseline = evaluation.IndependentBernoulli().fit(
        data.load_images("mnist10k", "train", "binary", seed=0))
    assert likelihood["baseline_nll_nats"] == pytest.approx(
        -np.mean(baseline.log_likelihood(test)), rel=1e-6)


def test_resume_counts_epochs_on_and_restores_the_optimiser(tmp_path, capsys):
    out = tmp_path / "run"
    train_fast(capsys, "rnn", out, "--seed", 5, "--batch-size", 16)
    after_one = checkpoint.load_model(out / "model.keras")
    assert int(after_one.optimizer.iterations) == 2  # 32 images, batch 16
    status, stdout, err = run(capsys, "train", "rnn", "--out", out, "--resume",
                              "--epochs", 2, "--verbose", 0)
    assert status == 0, err
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 2 and json.loads(stdout)["epochs"] == 2
    after_two = checkpoint.load_model(out / "model.keras")
    assert int(after_two.optimizer.iterations) == 4  # Adam's state carried on
    config = json.loads((out / "config.json").read_text())
    assert (config["seed"], config["batch_size"], config["epochs"]) == (5, 16, 2)
    moved = [np.abs(a - b).max() for a, b in
             zip(after_one.get_weights(), after_two.get_weights())]
    assert max(moved) > 0

    assert_bad_input(capsys, "train", "rnn", "--out", out, "--resume", "--epochs", 2,
                     match="has 2 epochs already")
    assert_bad_input(capsys, "train", "rnn", "--out", out, "--resume", "--epochs", 3,
                     "--size", 16, match="size=8")
    assert_bad_input(capsys, "train", "vae", "--out", out, "--resume", "--epochs", 3,
                     match="holds a 'rnn' model")
    assert_bad_input(capsys, "train", "rnn", "--out", out, "--epochs", 3,
                     match="already holds a run")


@pytest.mark.parametrize("family", ["rnn", "gan"])
def test_a_run_killed_between_model_and_history_resumes_at_the_saved_epoch(
        family, tmp_path, capsys, monkeypatch):
    # Killed after epoch 2's model.keras and before its history.json: the files
    # disagree, and --resume must train exactly the one epoch left (a GAN trained
    # past its total would stand at learning rate 0).
    out = tmp_path / "run"
    write_json, histories = checkpoint.write_json, []

    def killed_before_the_second_history(path, value):
        if pathlib.Path(path).name == cli.HISTORY_FILE:
            histories.append(path)
            if len(histories) == 2:
                raise KeyboardInterrupt("killed after epoch 2's model.keras")
        return write_json(path, value)

    monkeypatch.setattr(checkpoint, "write_json", killed_before_the_second_history)
    with pytest.raises(KeyboardInterrupt):
        run(capsys, "train", family, "--out", out, "--size", SIZE[family], "--epochs", 3,
            "--limit", 32, "--batch-size", 16, "--verbose", 0)
    monkeypatch.undo()
    stale = json.loads((out / "history.json").read_text())
    assert {len(values) for values in stale.values()} == {1}  # one epoch behind
    assert int(checkpoint.load_model(out / "model.keras").optimizer.iterations) == 4

    status, stdout, err = run(capsys, "train", family, "--out", out, "--resume",
                              "--epochs", 3, "--verbose", 0)
    assert status == 0, err
    history = json.loads((out / "history.json").read_text())
    assert {len(values) for values in history.values()} == {3}
    assert {key: values[0] for key, values in history.items()} == {
        key: values[0] for key, values in stale.items()}
    last = checkpoint.load_model(out / "model.keras")
    assert int(last.optimizer.iterations) == 6  # 3 epochs of 2 steps, not 4 epochs
    assert cli.read_history(out) == history
    assert json.loads(stdout)["epochs"] == 3


def learning_rates_at(model, step):
    """Each optimiser's learning rate at optimiser step `step`."""
    optimizer = model.optimizer
    rates = []
    for each in getattr(optimizer, "optimizers", [optimizer]):
        each.iterations.assign(step)
        rates.append(float(each.learning_rate))
    return rates


def trainable(model):
    return [np.array(v.value) for v in model.trainable_variables]


@pytest.mark.parametrize("family", cli.FAMILIES)
def test_resume_past_the_first_run_keeps_training(family, tmp_path, capsys):
    # Two steps an epoch; a GAN's cosine schedule, sized to the first run,
    # would stand at learning rate 0 for the whole resumed run.
    out = tmp_path / "run"
    train_fast(capsys, family, out, "--batch-size", 16)
    first = checkpoint.load_model(out / "model.keras")
    status, _, err = run(capsys, "train", family, "--out", out, "--resume",
                         "--epochs", 3, "--verbose", 0)
    assert status == 0, err
    last = checkpoint.load_model(out / "model.keras")
    assert int(last.optimizer.iterations) == 6
    history = json.loads((out / "history.json").read_text())
    assert {len(values) for values in history.values()} == {3}
    assert min(learning_rates_at(last, 2)) > 0  # the first resumed step
    assert all(np.abs(a - b).max() > 0 for a, b in
               zip(trainable(first), trainable(last)))


def test_a_run_that_fails_in_its_first_epoch_can_be_trained_again(
        tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"

    def crash(model, path, metadata=None):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_model", crash)
    assert_bad_input(capsys, "train", "rnn", "--out", out, "--size", SIZE["rnn"],
                     *FAST, match="disk full")
    monkeypatch.undo()
    assert not (out / "model.keras").exists()
    assert_bad_input(capsys, "train", "rnn", "--out", out, "--resume", "--epochs", 2,
                     match="does not exist")
    train_fast(capsys, "rnn", out)
    assert sorted(p.name for p in out.iterdir()) == RUN_FILES


@pytest.mark.parametrize("key", ["dataset", "size"])
def test_config_without_a_key_is_a_one_line_error(key, tmp_path, capsys):
    out = tmp_path / "run"
    train_fast(capsys, "rnn", out)
    config = json.loads((out / "config.json").read_text())
    del config[key]
    (out / "config.json").write_text(json.dumps(config))
    for argv in (["evaluate", out, "--num", 2],
                 ["train", "rnn", "--out", out, "--resume", "--epochs", 2]):
        assert_bad_input(capsys, *argv, match=f"lacks {key}")


def test_corrupt_or_missing_checkpoint_gives_a_clear_error(tmp_path, capsys):
    out = tmp_path / "run"
    train_fast(capsys, "rnn", out)
    model_file = out / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:1000])
    history = (out / "history.json").read_text()
    for argv in (["sample", out, "--num", 2, "--out", tmp_path / "x.npy"],
                 ["evaluate", out],
                 ["train", "rnn", "--out", out, "--resume", "--epochs", 2]):
        assert_bad_input(capsys, *argv, match="is corrupt")
    assert (out / "history.json").read_text() == history
    assert not (tmp_path / "x.npy").exists()
    model_file.unlink()
    assert_bad_input(capsys, "sample", out, "--num", 2, "--out", tmp_path / "x.npy",
                     match="does not exist")
    assert_bad_input(capsys, "evaluate", tmp_path / "nowhere",
                     match="Missing run file")


def test_evaluate_seed_changes_the_samples_not_the_test_images(tmp_path, capsys):
    # The likelihoods are on the fixed binarisation (seed 0) whatever --seed is;
    # --seed draws the model's samples. The RNN's likelihood is exact, so it
    # must not move at all.
    out = tmp_path / "run"
    train_fast(capsys, "rnn", out)
    reports = {}
    for seed in (0, 7):
        status, stdout, err = run(capsys, "evaluate", out, "--num", 20, "--limit", 10,
                                  "--seed", seed)
        assert status == 0, err
        reports[seed] = json.loads(stdout)
    first, other = reports[0]["likelihood"], reports[7]["likelihood"]
    assert set(other) == set(first) and other["method"] == first["method"]
    for key in ("test_images", "nll_nats", "bits_per_dim", "baseline_nll_nats"):
        assert other[key] == pytest.approx(first[key], rel=1e-6), key
    model = checkpoint.load_model(out / "model.keras", compile=False)
    test = data.load_images("mnist10k", "test", "binary", seed=0, limit=10)
    assert reports[7]["likelihood"]["nll_nats"] == pytest.approx(
        -np.mean(model.log_likelihood(test)), rel=1e-5)
    first, other = reports[0]["sample_quality"], reports[7]["sample_quality"]
    assert other["frechet_floor"] == pytest.approx(first["frechet_floor"], rel=1e-6)
    assert other["frechet"] != first["frechet"]  # different samples


def test_own_images_from_a_npy_file(tmp_path, capsys):
    from companion import data

    digits, _ = data.load("digits", "test")
    file = tmp_path / "mine.npy"
    np.save(file, np.round(digits[:40, :, :, 0] * 255).astype("uint8"))  # (N, 28, 28)
    out = tmp_path / "run"
    train_fast(capsys, "rnn", out, "--dataset", file)
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == str(file)
    status, stdout, err = run(capsys, "evaluate", out, "--num", 10)
    assert status == 0, err
    report = json.loads(stdout)
    assert report["sample_quality"] is None and report["likelihood"] is None
    assert "training images only" in report["likelihood_note"]


BAD_TRAIN = [
    (["train", "foo"], "`model` must be one of 'gan', 'vae', 'rnn'; got 'foo'"),
    (["train", "gan", "--dataset", "nope"], "`dataset` must be one of"),
    (["train", "gan", "--epochs", 0], "`epochs` must be an integer >= 1; got 0"),
    (["train", "gan", "--epochs", -3], "`epochs` must be an integer >= 1"),
    (["train", "vae", "--batch-size", 0], "`batch_size` must be an integer >= 1"),
    (["train", "rnn", "--size", 0], "`size` must be an integer >= 1"),
    (["train", "rnn", "--limit", 0], "`limit` must be an integer >= 1"),
    (["train", "rnn", "--seed", -1], "`seed` must be an integer >= 0"),
    (["train", "rnn", "--epochs", "two"], "invalid int value: 'two'"),
]


@pytest.mark.parametrize("argv, match", BAD_TRAIN)
def test_bad_training_input_writes_nothing(argv, match, tmp_path, capsys):
    out = tmp_path / "run"
    assert_bad_input(capsys, *argv, "--out", out, match=match)
    assert not out.exists()


def test_missing_required_flag_is_one_line(capsys):
    assert_bad_input(capsys, "train", "gan", match="required: --out")
    assert_bad_input(capsys, "sample", "somewhere", "--num", 2,
                     match="required: --out")


@pytest.mark.parametrize("shape, match", [
    ((10, 32, 32), "must have shape (N, 28, 28, 1); got shape (10, 32, 32, 1)"),
    ((10, 28, 28, 3), "got shape (10, 28, 28, 3)"),
])
def test_images_of_the_wrong_shape(shape, match, tmp_path, capsys):
    file = tmp_path / "images.npy"
    np.save(file, np.zeros(shape, "uint8"))
    out = tmp_path / "run"
    assert_bad_input(capsys, "train", "rnn", "--dataset", file, "--out", out,
                     match=match)
    assert not out.exists()


def test_images_out_of_range(tmp_path, capsys):
    file = tmp_path / "images.npy"
    np.save(file, np.full((4, 28, 28), 3.0, "float32"))
    assert_bad_input(capsys, "train", "vae", "--dataset", file, "--out",
                     tmp_path / "run", match="values must lie in [0, 1]")


def test_unwritable_output(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("in the way")
    assert_bad_input(capsys, "train", "rnn", "--out", a_file / "run",
                     match="is a file, not a folder")
    assert_bad_input(capsys, "train", "rnn", "--out", a_file,
                     match="is a file, not a folder")
    assert a_file.read_text() == "in the way"
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert_bad_input(capsys, "train", "rnn", "--out", locked / "run",
                         match="not writable")
        assert list(locked.iterdir()) == []


def test_bad_sample_input(tmp_path, capsys):
    assert_bad_input(capsys, "sample", tmp_path, "--num", 0, "--out",
                     tmp_path / "x.png", match="`num` must be an integer >= 1")
    assert_bad_input(capsys, "sample", tmp_path, "--num", 2, "--out",
                     tmp_path / "x.jpg", match="'.png', '.npy'; got '.jpg'")
    assert_bad_input(capsys, "evaluate", tmp_path, "--num", 1,
                     match="`num` must be an integer >= 2")
    assert list(tmp_path.iterdir()) == []


def test_help_documents_the_size_knob_of_every_family(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name, entry in models.REGISTRY.items():
        default = entry.module.BOOK_CONFIG[entry.size_argument]
        assert (f"{name}: {entry.size_argument}, {entry.size_meaning} "
                f"(default {default})") in text
    for phrase in ("--size", "--distribute", "--resume"):
        assert phrase in text


def test_python_dash_m_companion_exit_status(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    completed = subprocess.run(
        [sys.executable, "-m", "companion", "train", "gan", "--dataset", "nope",
         "--out", str(tmp_path / "run")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith("companion: error: `dataset` must be one of")
    assert not (tmp_path / "run").exists()


def test_the_registry_default_sizes_are_the_model_modules_book_sizes():
    # The help reads the registry's plain data; the modules' BOOK_CONFIG decides.
    for entry in models.REGISTRY.values():
        assert entry.default_size == entry.module.BOOK_CONFIG[entry.size_argument]


def _companion_imports(*argv):
    """``python -X importtime -m companion argv...``: status, stdout, the other
    lines of stderr, and the name of every module the process imported."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "companion", *map(str, argv)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    imported, messages = set(), []
    for line in completed.stderr.splitlines():
        if line.startswith("import time:"):
            imported.add(line.rsplit("|", 1)[-1].strip())
        else:
            messages.append(line)
    return completed.returncode, completed.stdout, messages, imported


def _heavy(imported):
    return sorted(name for name in imported
                  if name.split(".")[0] in ("keras", "jax", "jaxlib", "tensorflow"))


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["evaluate", "--help"]])
def test_help_imports_neither_keras_nor_jax(argv):
    status, stdout, messages, imported = _companion_imports(*argv)
    assert status == 0 and messages == [], messages
    assert "usage: companion" in stdout
    assert "companion.cli" in imported  # the probe sees the package's imports
    assert _heavy(imported) == []
    if argv[0] == "train":
        text = " ".join(stdout.split())
        for name, entry in models.REGISTRY.items():
            assert f"{name}: {entry.size_argument}" in text
            assert f"(default {entry.default_size})" in text


@pytest.mark.parametrize("argv, match", [
    (["train", "rnn", "--epochs", "two"], "invalid int value: 'two'"),
    (["train", "rnn"], "required: --out"),
    (["train", "foo", "--out", "{tmp}"], "`model` must be one of"),
    (["train", "gan", "--epochs", "0", "--out", "{tmp}"], "`epochs` must be an integer"),
    (["sample", "{tmp}", "--num", "2"], "required: --out"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_argument_errors_are_one_line_without_importing_keras(argv, match, tmp_path):
    folder = tmp_path / "run"
    status, stdout, messages, imported = _companion_imports(
        *[str(folder) if a == "{tmp}" else a for a in argv])
    assert status == 2 and stdout == ""
    assert len(messages) == 1 and messages[0].startswith("companion: error:"), messages
    assert match in messages[0]
    assert _heavy(imported) == []
    assert not folder.exists()
