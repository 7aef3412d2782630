"""companion.checkpoint: atomic writes survive interruptions; bad files fail clearly."""

import ast
import json
import os
import pathlib
import subprocess
import sys
import zipfile

from companion import checkpoint  # selects the JAX backend before keras loads
import keras
import numpy as np
import pytest

from companion.checkpoint import CheckpointError


ROOT = pathlib.Path(__file__).resolve().parents[1]


def _tiny_model(seed):
    """A small regression model after one training step (its optimiser has state)."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    x = np.arange(12, dtype="float32").reshape(4, 3)
    model.fit(x, x[:, :2], batch_size=4, epochs=1, verbose=0)
    return model


def _values(variables):
    return [np.array(v.value) for v in variables]


def _interrupt_zip_writes(monkeypatch, after=1):
    """Make Keras' saver die (as on Ctrl-C) when it starts its second zip entry."""
    original_open, original_writestr = zipfile.ZipFile.open, zipfile.ZipFile.writestr
    calls = []

    def count(name):
        calls.append(name)
        if len(calls) > after:
            raise KeyboardInterrupt("simulated interruption while saving")

    def open_(self, name, mode="r", *args, **kwargs):
        if mode == "w":
            count(name)
        return original_open(self, name, mode, *args, **kwargs)

    def writestr(self, name, *args, **kwargs):
        count(name)
        return original_writestr(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", open_)
    monkeypatch.setattr(zipfile.ZipFile, "writestr", writestr)
    return calls


def test_save_and_load_round_trip_gives_identical_outputs(tmp_path):
    model = _tiny_model(0)
    path = tmp_path / "model.keras"
    checkpoint.save_model(model, path)
    loaded = checkpoint.load_model(path)
    x = np.arange(12, dtype="float32").reshape(4, 3)
    np.testing.assert_array_equal(model.predict(x, verbose=0),
                                  loaded.predict(x, verbose=0))
    assert int(loaded.optimizer.iterations) == 1
    saved, restored = _values(model.optimizer.variables), _values(
        loaded.optimizer.variables)
    assert len(saved) == len(restored) > 2  # iterations, rate, Adam's moments
    for a, b in zip(saved, restored):
        np.testing.assert_array_equal(a, b)
    assert any(np.abs(a).max() > 0 for a in saved[2:])  # moments after a step
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_interrupted_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    old = _tiny_model(0)
    checkpoint.save_model(old, path)
    before = path.read_bytes()
    new = _tiny_model(1)
    calls = _interrupt_zip_writes(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_model(new, path)
    monkeypatch.undo()
    assert len(calls) == 2  # the saver really was stopped half-way
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]  # no temp left
    restored = checkpoint.load_model(path)
    for a, b in zip(restored.get_weights(), old.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_same_interruption_corrupts_a_plain_save(tmp_path, monkeypatch):
    # The control experiment: without the temporary file, the checkpoint is lost.
    path = tmp_path / "model.keras"
    _tiny_model(0).save(path)
    _interrupt_zip_writes(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        _tiny_model(1).save(path)
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="corrupt|could not be loaded"):
        checkpoint.load_model(path)


def test_missing_checkpoint_error_names_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist") as error:
        checkpoint.load_model(tmp_path / "model.keras")
    assert str(tmp_path) in str(error.value)


def test_truncated_checkpoint_is_reported_as_corrupt(tmp_path):
    path = tmp_path / "model.keras"
    checkpoint.save_model(_tiny_model(0), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load_model(path)


def test_foreign_zip_is_reported_as_unloadable(tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a model")
    with pytest.raises(CheckpointError, match="could not be loaded"):
        checkpoint.load_model(path)


def test_save_model_requires_keras_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"\.keras"):
        checkpoint.save_model(_tiny_model(0), tmp_path / "model.h5")


def test_atomic_path_keeps_old_content_when_the_body_fails(tmp_path):
    path = tmp_path / "a.json"
    checkpoint.write_json(path, {"epoch": 1})
    with pytest.raises(RuntimeError):
        with checkpoint.atomic_path(path) as temporary:
            temporary.write_text('{"epo')  # half-written
            raise RuntimeError("disk full")
    assert checkpoint.read_json(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_json_round_trip_and_corrupt_json(tmp_path):
    path = tmp_path / "history.json"
    value = {"loss": [2.5, 1.25], "nested": {"a": None}}
    checkpoint.write_json(path, value)
    assert checkpoint.read_json(path) == value
    assert json.loads(path.read_text()) == value
    path.write_text('{"loss": [2.5,')
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.read_json(path)
    with pytest.raises(CheckpointError, match="Missing"):
        checkpoint.read_json(tmp_path / "nothing.json")


def test_save_array(tmp_path):
    images = np.linspace(0, 1, 4 * 28 * 28, dtype="float32").reshape(4, 28, 28, 1)
    checkpoint.save_array(tmp_path / "x.npy", images)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), images)
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]


def test_metadata_is_saved_inside_the_archive_with_the_model(tmp_path):
    path = tmp_path / "model.keras"
    model = _tiny_model(0)
    checkpoint.save_model(model, path)
    assert checkpoint.read_metadata(path) is None
    metadata = {"history": {"loss": [2.5, 1.25]}}
    checkpoint.save_model(model, path, metadata=metadata)
    assert checkpoint.read_metadata(path) == metadata
    assert checkpoint.METADATA_MEMBER in zipfile.ZipFile(path).namelist()
    loaded = checkpoint.load_model(path)  # Keras ignores the extra member
    x = np.arange(12, dtype="float32").reshape(4, 3)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.read_metadata(tmp_path / "other.keras")


def test_an_interrupted_save_keeps_the_old_model_and_metadata_together(tmp_path,
                                                                        monkeypatch):
    path = tmp_path / "model.keras"
    checkpoint.save_model(_tiny_model(0), path, metadata={"epochs": 1})
    before = path.read_bytes()
    original_writestr, written = zipfile.ZipFile.writestr, []

    def writestr(self, name, *args, **kwargs):  # killed once the new model is written
        written.append(getattr(name, "filename", name))
        if written[-1] == checkpoint.METADATA_MEMBER:
            raise KeyboardInterrupt("simulated interruption before the metadata")
        return original_writestr(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", writestr)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_model(_tiny_model(1), path, metadata={"epochs": 2})
    monkeypatch.undo()
    assert "model.weights.h5" in written  # Keras had saved the new weights
    assert path.read_bytes() == before and checkpoint.read_metadata(path) == {"epochs": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_damaged_member_fails_its_crc_check(tmp_path):
    path = tmp_path / "model.keras"
    checkpoint.save_model(_tiny_model(0), path)
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.compress_size)
    data = bytearray(path.read_bytes())
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[middle] ^= 0xFF  # one flipped byte inside the weights, sizes unchanged
    path.write_bytes(bytes(data))
    assert zipfile.is_zipfile(path)
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.verify(path)


def _images(value_range):
    from companion import data

    return data.load_images("digits", "train", value_range, limit=8)


def _points():
    return np.random.default_rng(0).normal(size=(16, 2)).astype("float32")


def _videos():
    from companion import data

    return data.moving_digits(4, frames=3, dataset="digits")


def _build(name):
    """A tiny model of every saveable class, and data for one training step."""
    from companion.models import gan, rnn, toy, vae, video, wgan

    return {
        "GAN": lambda: (gan.make_model(width=4, latent_dim=8), _images("symmetric")),
        "WGANGP": lambda: (wgan.make_toy_model(width=8), _points()),
        "MinibatchStdDev": lambda: (toy.make_model(data_dim=2, latent_dim=2, width=8,
                                                   minibatch_std=True), _points()),
        "Pack": lambda: (toy.make_model(data_dim=2, latent_dim=2, width=8, pack=2),
                         _points()),
        "VAE": lambda: (vae.make_model(latent_dim=2, width=4), _images("binary")),
        "RowRNN": lambda: (rnn.make_model(units=4), _images("binary")),
        "NextFramePredictor": lambda: (video.make_model(units=8, code_size=8),
                                       _videos()),
    }[name]()


_LOAD_IN_A_FRESH_PROCESS = """
import sys
import numpy as np
from companion import checkpoint

model = checkpoint.load_model(sys.argv[1])

def classes(layer):
    found = {type(layer).__name__}
    for child in getattr(layer, "layers", []):
        found |= classes(child)
    return found

arrays = [np.array(v.value) for v in model.weights + model.optimizer.variables]
np.savez(sys.argv[2], *arrays)
print(" ".join(sorted(classes(model))))
"""


@pytest.mark.parametrize("name", ["GAN", "WGANGP", "MinibatchStdDev", "Pack", "VAE",
                                  "RowRNN", "NextFramePredictor"])
@pytest.mark.slow
def test_every_saveable_class_loads_in_a_fresh_process(name, tmp_path):
    model, training_data = _build(name)
    model.fit(training_data, batch_size=len(training_data), epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    checkpoint.save_model(model, path)
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT))
    child = subprocess.run(
        [sys.executable, "-c", _LOAD_IN_A_FRESH_PROCESS, str(path),
         str(tmp_path / "arrays.npz")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    assert name in child.stdout.split()
    with np.load(tmp_path / "arrays.npz") as loaded:
        restored = [loaded[f"arr_{i}"] for i in range(len(loaded.files))]
    saved = _values(model.weights + model.optimizer.variables)
    assert len(restored) == len(saved)
    assert int(model.optimizer.iterations) >= 1
    for a, b in zip(saved, restored):  # weights and optimiser state after a step
        np.testing.assert_array_equal(a, b)


# Imports between the package's modules ---------------------------------------------

PACKAGE = ROOT / "companion"


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph():
    """``{module: set of companion modules it imports}``, from the source's `ast`:
    every ``import`` and ``from ... import`` at any depth (module level and
    inside functions), absolute or relative; ``from companion import data``
    names the module ``companion.data``. Dynamic imports (`importlib`) are not seen."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}

    def resolve(name):  # the longest prefix of `name` that is a module
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            edges |= {resolve(t) for t in targets if t.split(".")[0] == "companion"}
        graph[name] = edges - {name, ""}
    return graph


def cycles(graph):
    """Every strongly connected group of two or more modules (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(frozenset(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_sees_imports_at_every_depth():
    graph = import_graph()
    assert "companion.checkpoint" in graph["companion.plotting"]  # the atomic writer
    assert "companion.models" in graph["companion.checkpoint"]  # inside load_model
    assert {"companion.data", "companion.checkpoint"} <= graph["companion.cli"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        frozenset({"a", "b", "c"})]


def test_no_two_companion_modules_import_each_other():
    graph = import_graph()
    assert "companion.plotting" not in graph["companion.checkpoint"]
    assert [sorted(group) for group in cycles(graph)] == []
