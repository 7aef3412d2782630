"""companion.distribute: data-parallel training over two forced CPU devices.

The two-device test runs in a subprocess, because XLA reads
``--xla_force_host_platform_device_count`` once, when JAX starts. It trains
one epoch of a small RowRNN twice from the same initial weights and the same
data order, on one device and data-parallel on two, and requires

    max |w_parallel - w_single| <= TOLERANCE = 1e-5

over every weight, while training itself moved the weights by more than
``100 * TOLERANCE``: the only difference is the order of floating-point
summation in the split batch (measured here: about 1e-7).
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from companion import distribute

TOLERANCE = 1e-5
ROOT = pathlib.Path(__file__).resolve().parents[1]

TWO_DEVICE_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import companion  # selects JAX before keras is imported
    import jax, keras, numpy as np
    from companion import cli, data, distribute
    from companion.models import rnn

    images, _ = data.load("digits", "train", value_range="binary")
    images = images[:128]

    def train(distribution):
        with distribution.scope() if distribution else open(os.devnull):
            model = rnn.make_model(units=16, seed=0)
            initial = [np.array(v) for v in model.trainable_variables]
            model.fit(images, epochs=1, batch_size=32, shuffle=False, verbose=0)
        trained = [np.array(v) for v in model.trainable_variables]
        return model, initial, trained

    _, initial_1, single = train(None)
    distribution = distribute.data_parallel()
    model, initial_2, parallel = train(distribution)
    result = {
        "devices": len(jax.devices()),
        "mesh_devices": distribute.device_count(distribution),
        "variable_devices": len(model.trainable_variables[0].value.sharding.device_set),
        "same_start": all(np.array_equal(a, b) for a, b in zip(initial_1, initial_2)),
        "max_difference": max(float(np.abs(a - b).max())
                              for a, b in zip(single, parallel)),
        "max_update": max(float(np.abs(a - b).max())
                          for a, b in zip(single, initial_1)),
    }
    run = cli.train("rnn", sys.argv[1], epochs=1, batch_size=32, size=8,
                    limit=63, distribute=True, verbose=0)
    result["cli_devices"] = run["config"]["devices"]
    result["cli_epochs"] = len(run["history"]["loss"])
    resumed = cli.train("rnn", sys.argv[1], epochs=2, resume=True, distribute=True,
                        verbose=0)
    result["resumed_epochs"] = len(resumed["history"]["loss"])
    try:
        cli.train("rnn", sys.argv[1] + "-odd", batch_size=33, size=8, limit=64,
                  distribute=True, verbose=0)
    except ValueError as error:
        result["odd_batch_error"] = str(error)
    print("RESULT " + json.dumps(result))
""")


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two_devices")
    script = folder / "two_devices.py"
    script.write_text(TWO_DEVICE_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT))
    completed = subprocess.run(
        [sys.executable, str(script), str(folder / "run")], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    line = next(l for l in completed.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), folder / "run"


@pytest.mark.slow
def test_one_epoch_data_parallel_matches_single_device(two_devices):
    result, _ = two_devices
    assert result["devices"] == 2 and result["mesh_devices"] == 2
    assert result["variable_devices"] == 2  # weights replicated on both devices
    assert result["same_start"]
    assert result["max_update"] > 100 * TOLERANCE  # training really moved them
    assert result["max_difference"] <= TOLERANCE


@pytest.mark.slow
def test_cli_distribute_trains_over_both_devices(two_devices):
    result, run = two_devices
    assert result["cli_devices"] == 2 and result["cli_epochs"] == 1
    assert result["resumed_epochs"] == 2  # --resume --distribute continues
    config = json.loads((run / "config.json").read_text())
    assert config["distribute"] is True and config["devices"] == 2
    assert (run / "model.keras").is_file()
    assert "multiple of the 2 devices" in result["odd_batch_error"]
    assert not (run.parent / "run-odd").exists()  # refused before writing


def test_data_parallel_uses_every_local_device():
    import jax

    distribution = distribute.data_parallel()
    assert distribute.device_count(distribution) == len(jax.devices())
    with pytest.raises(ValueError, match="at least one device"):
        distribute.data_parallel(devices=[])


def test_check_batch_size():
    assert distribute.check_batch_size(64, 4) == 64
    with pytest.raises(ValueError, match="multiple of the 4 devices.*Try 32"):
        distribute.check_batch_size(34, 4)
    with pytest.raises(ValueError, match="batch_size"):
        distribute.check_batch_size(0, 1)


def test_trim_to_devices_keeps_the_largest_multiple():
    images = np.arange(11)
    assert distribute.trim_to_devices(images, 4).tolist() == list(range(8))
    assert distribute.trim_to_devices(images, 1).tolist() == list(range(11))
    with pytest.raises(ValueError, match="at least 4 images"):
        distribute.trim_to_devices(images[:3], 4)


def test_process_shard_is_identity_on_one_host():
    images = np.arange(5)
    assert distribute.process_shard(images) is images
