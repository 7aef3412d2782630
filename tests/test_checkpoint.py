"""companion.checkpoint: atomic writes survive interruptions; bad files fail clearly."""

import json
import zipfile

from companion import checkpoint  # selects the JAX backend before keras loads
import keras
import numpy as np
import pytest
from PIL import Image

from companion.checkpoint import CheckpointError


def _tiny_model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


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


def test_save_array_and_png(tmp_path):
    images = np.linspace(0, 1, 4 * 28 * 28, dtype="float32").reshape(4, 28, 28, 1)
    checkpoint.save_array(tmp_path / "x.npy", images)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), images)
    checkpoint.save_png(tmp_path / "x.png", images, columns=2, scale=2)
    with Image.open(tmp_path / "x.png") as picture:
        # 2x2 tiles of 28 px with 1-px borders, doubled: (2 * 29 + 1) * 2.
        assert picture.size == (118, 118) and picture.mode == "L"
        pixels = np.asarray(picture)
    assert pixels.min() == 0 and pixels.max() == 255


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
