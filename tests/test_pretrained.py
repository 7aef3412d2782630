"""The shipped checkpoints: their records, their files and their results.

Training a checkpoint takes up to 30 minutes; evaluating one takes seconds.
So CI re-evaluates each shipped checkpoint and compares with its record, and
trains only one short epoch of :func:`companion.pretrained.pretrain` end to end.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from companion import checkpoint, cli, data, pretrained

ROOT = pathlib.Path(__file__).resolve().parent.parent
MEGABYTE = 1 << 20

# How far a re-evaluation on another machine may drift from the record: another
# CPU sums in another order and trains another reference classifier. Measured
# here under one thread (taskset -c 0, classifier retrained in an empty cache)
# against the records made with two, the largest changes over the three
# checkpoints were: NLL 0.0 nats, Fréchet distances and floors 3.7 %, KID 1.6,
# precision and recall 0.022, label entropy 0.004, confidences 0.009. The
# tolerances are about twice that.
RELATIVE = {"frechet": 0.08, "frechet_floor": 0.08}
ABSOLUTE = {"nll_nats": 0.05, "kid": 3.0, "kid_floor": 3.0, "kid_std": 1.0,
            "precision": 0.05, "precision_floor": 0.05, "recall": 0.05,
            "recall_floor": 0.05, "label_entropy": 0.01, "confidence": 0.02,
            "real_confidence": 0.02, "relative_confidence": 0.02}


BUDGET_MINUTES = {"gan": 30, "vae": 30, "rnn": 30, "diffusion": 90}


@pytest.mark.parametrize("name", pretrained.NAMES)
def test_record_describes_its_checkpoint(name):
    record = pretrained.card(name)
    assert record["name"] == name
    assert record["preset"] == pretrained.preset(name)  # the code's LONG_CONFIG
    assert record["overrides"] == []
    assert record["data"]["sha256"] == pretrained.sha256(data.MNIST10K_FILE)
    assert record["data"]["training_images"] + record["data"]["validation_images"] == 9000
    path = pretrained.FOLDER / f"{name}.keras"
    assert record["checkpoint"]["sha256"] == pretrained.sha256(path)
    assert record["checkpoint"]["bytes"] == path.stat().st_size <= 8 * MEGABYTE
    training = record["training"]
    assert training["seconds"] <= BUDGET_MINUTES[name] * 60
    assert training["epochs"] == record["preset"]["epochs"]
    assert training["selected_epoch"] in training["history"]["epoch"]
    assert len(training["history"]["loss"]) == training["epochs"]
    assert record["command"] == f"companion pretrain {name}"
    assert record["package"]["commit"] and record["machine"]["cores"] >= 1
    assert record["evaluation"]["settings"] == pretrained.EVALUATION


def test_all_checkpoints_together_fit_the_package_budget():
    total = sum(p.stat().st_size for p in pretrained.FOLDER.glob("*.keras"))
    assert total <= 25 * MEGABYTE


@pytest.mark.slow
@pytest.mark.parametrize("name", pretrained.NAMES)
def test_recorded_results_reproduce_from_the_checkpoint(name):
    recorded = pretrained.card(name)["evaluation"]
    again = pretrained.evaluate(name)
    assert again["settings"] == recorded["settings"]
    assert again["likelihood"] == recorded["likelihood"]
    if recorded["nll_nats"] is None:
        assert again["nll_nats"] is None
    else:
        assert again["nll_nats"] == pytest.approx(recorded["nll_nats"],
                                                  abs=ABSOLUTE["nll_nats"])
    _assert_same_quality(recorded["sample_quality"], again["sample_quality"])
    if name == "diffusion":
        _assert_same_quality(recorded["unconditional"], again["unconditional"])
        _assert_same_quality(recorded["guided"]["sample_quality"],
                             again["guided"]["sample_quality"])
        assert again["samples"] == recorded["samples"]
        assert again["agreement"] == pytest.approx(recorded["agreement"], abs=AGREEMENT)
        assert again["guided"]["agreement"] == pytest.approx(recorded["guided"]["agreement"],
                                                             abs=AGREEMENT)


AGREEMENT = 0.02  # the share of samples the classifier reads as their label


def _assert_same_quality(quality, now):
    assert set(now) == set(quality) == set(RELATIVE) | set(ABSOLUTE) - {"nll_nats"}
    for key in now:
        if key in RELATIVE:
            assert now[key] == pytest.approx(quality[key], rel=RELATIVE[key]), key
        else:
            assert now[key] == pytest.approx(quality[key], abs=ABSOLUTE[key]), key


def test_the_diffusion_sweeps_agree_with_the_evaluation():
    """The sweeps' default settings are the evaluation's samples: the same figures."""
    record = pretrained.card("diffusion")
    evaluation, sweeps = record["evaluation"], record["sweeps"]
    steps = {(row["sampler"], row["steps"]): row for row in sweeps["steps"]}
    assert sorted(steps) == sorted((sampler, count) for sampler, counts
                                   in pretrained.STEPS_SWEEP.items() for count in counts)
    assert steps[("euler", 20)]["frechet"] == pytest.approx(
        evaluation["sample_quality"]["frechet"], rel=1e-9)
    scales = {row["guidance"]: row for row in sweeps["guidance"]}
    assert tuple(scales) == pretrained.GUIDANCE_SWEEP
    assert scales[1.0]["agreement"] == evaluation["agreement"]
    assert scales[1.0]["frechet"] == pytest.approx(evaluation["sample_quality"]["frechet"],
                                                   rel=1e-9)
    guided = evaluation["guided"]
    assert scales[guided["guidance"]]["agreement"] == guided["agreement"]
    assert all(row["network_calls"] == row["steps"] * (2 if row["sampler"] == "heun" else 1)
               for row in sweeps["steps"])


@pytest.mark.slow
@pytest.mark.parametrize("name", pretrained.NAMES)
def test_checkpoint_loads_and_samples_in_a_fresh_process(name, tmp_path):
    script = ("import sys; from companion import pretrained; "
              "images = pretrained.load(sys.argv[1]).sample(4, seed=0); "
              "print(images.shape, float(images.min()) >= 0, float(images.max()) <= 1)")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT))
    child = subprocess.run([sys.executable, "-c", script, name], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stdout.split() == ["(4,", "28,", "28,", "1)", "True", "True"]


def test_a_checkpoint_whose_checksum_differs_is_refused(tmp_path):
    for suffix in (".keras", ".json"):
        shutil.copy(pretrained.FOLDER / f"rnn{suffix}", tmp_path)
    record = json.loads((tmp_path / "rnn.json").read_text())
    record["checkpoint"]["sha256"] = "0" * 64
    (tmp_path / "rnn.json").write_text(json.dumps(record))
    with pytest.raises(checkpoint.CheckpointError, match="stale or damaged.*pretrain rnn"):
        pretrained.load("rnn", folder=tmp_path)


def test_unknown_names_and_preset_entries_are_refused(tmp_path):
    with pytest.raises(ValueError, match="`name`.*'flow'"):
        pretrained.card("flow")
    with pytest.raises(ValueError, match="'widht' is not an entry of gan's LONG_CONFIG"):
        pretrained.pretrain("gan", out=tmp_path, epochs=1, widht=4)
    with pytest.raises(checkpoint.CheckpointError):
        pretrained.load("gan", folder=tmp_path)  # nothing there
    with pytest.raises(ValueError, match="`limit` must be"):
        pretrained.pretrain("rnn", out=tmp_path, epochs=1, limit=0)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="is not writable"):  # refused before training
        pretrained.pretrain("rnn", out=blocker / "checkpoints", epochs=1)
    assert list(tmp_path.iterdir()) == [blocker]


def test_pretrain_runs_end_to_end_on_one_short_epoch(tmp_path):
    record = pretrained.pretrain("gan", out=tmp_path, epochs=1, limit=64, verbose=0,
                                 width=4, latent_dim=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gan.json", "gan.keras"]
    assert record == checkpoint.read_json(tmp_path / "gan.json")
    assert record["overrides"] == ["epochs", "latent_dim", "width"]
    assert record["training"]["selected_epoch"] == 1
    assert record["data"]["training_images"] == 64
    assert record["evaluation"]["nll_nats"] is None
    assert record["evaluation"]["sample_quality"]["frechet"] > 0
    model = pretrained.load("gan", folder=tmp_path)
    weights = model.generator.trainable_weights + model.discriminator.trainable_weights
    assert record["evaluation"]["parameters"] == sum(int(np.prod(w.shape)) for w in weights)


@pytest.mark.slow
def test_pretrain_command_line_writes_both_files_and_reevaluates(tmp_path, capsys):
    assert cli.main(["pretrain", "rnn", "--out", str(tmp_path), "--epochs", "1",
                     "--limit", "32"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index("\n{") + 1:])
    record = pretrained.card("rnn", folder=tmp_path)
    assert summary["evaluation"] == record["evaluation"]
    assert record["command"] == "companion pretrain rnn --epochs 1 --limit 32"
    assert np.isfinite(record["evaluation"]["nll_nats"])
    assert cli.main(["pretrain", "rnn", "--out", str(tmp_path), "--evaluate-only"]) == 0
    again = pretrained.card("rnn", folder=tmp_path)
    assert again["training"] == record["training"]
    assert again["evaluation"]["nll_nats"] == pytest.approx(record["evaluation"]["nll_nats"])


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    """--stop-after saves the run; --resume ends where an uninterrupted run ends."""
    settings = dict(epochs=3, limit=64, verbose=0, units=8, check_every=1)
    assert pretrained.pretrain("rnn", out=tmp_path / "parts", stop_after=2, **settings) is None
    saved = checkpoint.read_json(tmp_path / "parts" / "rnn.resume" / "state.json")
    assert saved["epoch"] == 2 and saved["sessions"] == 1
    with pytest.raises(ValueError, match="run without --resume"):
        pretrained.pretrain("rnn", out=tmp_path / "parts", resume=True,
                            **dict(settings, units=16))
    resumed = pretrained.pretrain("rnn", out=tmp_path / "parts", resume=True, **settings)
    whole = pretrained.pretrain("rnn", out=tmp_path / "whole", **settings)
    assert resumed["training"]["sessions"] == 2 and whole["training"]["sessions"] == 1
    for key in ("loss", "validation", "epoch"):
        assert resumed["training"]["history"][key] == whole["training"]["history"][key]
    assert resumed["checkpoint"]["sha256"] != ""  # written, and the saved run removed
    assert not (tmp_path / "parts" / "rnn.resume").exists()
    assert resumed["evaluation"]["nll_nats"] == whole["evaluation"]["nll_nats"]


@pytest.mark.slow
def test_pretrain_diffusion_end_to_end_on_one_short_epoch(tmp_path, monkeypatch):
    # Two points of each sweep instead of fourteen: the sweeps' code, not their cost.
    monkeypatch.setattr(pretrained, "STEPS_SWEEP", {"euler": (2,), "heun": (2,)})
    monkeypatch.setattr(pretrained, "GUIDANCE_SWEEP", (1.0, 2.0))
    record = pretrained.pretrain("diffusion", out=tmp_path, epochs=1, limit=64, verbose=0,
                                 width=8)
    assert record["training"]["validation_metric"].startswith("Fréchet distance")
    evaluation = record["evaluation"]
    assert evaluation["nll_nats"] is None and 0 <= evaluation["agreement"] <= 1
    assert set(evaluation) >= {"unconditional", "guided", "samples"}
    assert [row["guidance"] for row in record["sweeps"]["guidance"]] == [1.0, 2.0]
    assert [(row["sampler"], row["steps"]) for row in record["sweeps"]["steps"]] == [
        ("euler", 2), ("heun", 2)]
    model = pretrained.load("diffusion", folder=tmp_path)
    assert evaluation["parameters"] == sum(int(np.prod(w.shape))
                                           for w in model.network.trainable_weights)
