"""Atomic checkpoints: a run's files are either the old version or the new one.

Every file of a training run (``model.keras``, ``history.json``,
``config.json``, samples) is written to a temporary file in the same folder
and then renamed over its destination with :func:`os.replace`, which POSIX
and Windows perform atomically within one file system. A run interrupted
while saving (Ctrl-C, a killed job, a full disk) therefore leaves the
previous checkpoint intact, never a truncated one; a stale temporary file
(``.NAME.<pid>.<random>.tmp...``) is all that can remain.

Loading is strict: a missing or unreadable checkpoint raises
:class:`CheckpointError` with the path and what to do, not a stack trace
from the zip reader.

Two files cannot be renamed at once, so what must change together with the
model goes inside its archive: :func:`save_model` stores an optional JSON
`metadata` dict as one more member of the ``.keras`` file (Keras ignores it),
and :func:`read_metadata` reads it back. The command line keeps a run's
history there, so the history always describes the saved model, even when a
run is killed between two files. Image files are written by
:mod:`companion.plotting` (with :func:`atomic_path`).

Example:

>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_json(folder / "history.json", {"loss": [1.5, 1.2]})
>>> read_json(folder / "history.json")
{'loss': [1.5, 1.2]}
"""

import contextlib
import json
import os
import pathlib
import tempfile
import uuid
import zipfile


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated or not what it should be."""


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it to `path` on success.

    The temporary file keeps `path`'s suffix (Keras insists on ``.keras``)
    and lives in the same folder, so the final :func:`os.replace` never
    crosses file systems. If the body raises (including
    `KeyboardInterrupt`), the temporary file is removed and `path` is left
    exactly as it was.

    Args:
        path: the destination file.

    Yields:
        A `pathlib.Path` to write to.

    Example:

    >>> import tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(target) as temporary:
    ...     _ = temporary.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = pathlib.Path(path)
    temporary = path.with_name(
        f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def check_writable(folder, name="out"):
    """Raise `ValueError` unless files can be created in `folder` (or, if it
    does not exist yet, in its nearest existing parent), by creating one."""
    folder = pathlib.Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"`{name}`={str(folder)!r} is not writable: "
                         f"{str(existing)!r} is a file, not a folder.")
    try:
        handle, probe = tempfile.mkstemp(prefix=".companion-probe-", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(f"`{name}`={str(folder)!r} is not writable "
                         f"({error.strerror or error}).") from error
    return folder


METADATA_MEMBER = "companion.json"
"""The member of a ``.keras`` archive that holds :func:`save_model`'s `metadata`."""


def save_model(model, path, metadata=None):
    """Save a Keras model to `path` (a ``.keras`` file) atomically.

    Args:
        model: a `keras.Model`.
        path: destination ending in ``.keras``.
        metadata: optional JSON-ready dict stored inside the archive (as
            :data:`METADATA_MEMBER`) and replaced in the same rename as the
            model; :func:`read_metadata` reads it.

    Raises:
        ValueError: if `path` does not end in ``.keras``.
    """
    path = pathlib.Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"`path` must end in .keras; got {str(path)!r}.")
    text = None if metadata is None else json.dumps(metadata, sort_keys=True)
    with atomic_path(path) as temporary:
        model.save(temporary)
        if text is not None:
            with zipfile.ZipFile(temporary, "a") as archive:
                archive.writestr(METADATA_MEMBER, text)


def read_metadata(path):
    """The `metadata` dict :func:`save_model` stored in a checkpoint, or None.

    Args:
        path: a ``.keras`` file.

    Returns:
        The dict, or None for an archive saved without one.

    Raises:
        CheckpointError: if `path` is missing or corrupt (:func:`verify`).
    """
    path = verify(path)
    with zipfile.ZipFile(path) as archive:
        if METADATA_MEMBER not in archive.namelist():
            return None
        text = archive.read(METADATA_MEMBER).decode("utf-8")
    try:
        return json.loads(text)
    except ValueError as error:
        raise CheckpointError(f"The checkpoint {str(path)!r} is corrupt (invalid "
                              f"{METADATA_MEMBER}: {error}).") from error


def load_model(path, compile=True):
    """Load a model saved by :func:`save_model`, with clear errors.

    The book's model classes are registered on import of their modules; this
    function imports every one of them first
    (:func:`companion.models.register_all`), so any companion model loads,
    in a fresh process too.

    Args:
        path: a ``.keras`` file.
        compile: restore the optimiser and its state (needed to resume).

    Returns:
        The `keras.Model`.

    Raises:
        CheckpointError: if `path` is missing, is not a Keras archive
            (e.g. truncated), or fails to deserialise.
    """
    import keras

    from companion import models

    models.register_all()

    path = verify(path)
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointError(
            f"The checkpoint {str(path)!r} could not be loaded "
            f"({type(error).__name__}: {first_line}). It may be corrupt or come "
            "from another version of the companion package.") from error


def verify(path):
    """Check, without loading it, that `path` is a complete ``.keras`` archive.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        CheckpointError: if the file is missing, truncated or damaged (a zip
            member fails its CRC check).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"No checkpoint at {str(path)!r}: the file does not exist. Train first "
            "(`companion train ... --out DIR`) or check the folder name.")
    damaged = None
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            damaged = str(error)
    else:
        damaged = "not a zip archive"
    if damaged is not None:
        raise CheckpointError(
            f"The checkpoint {str(path)!r} is corrupt (not a complete .keras "
            "archive; was it truncated or overwritten?). Delete the folder and train "
            "again.")
    return path


def write_json(path, value):
    """Write `value` as indented JSON to `path`, atomically."""
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def read_json(path):
    """Read a JSON file written by :func:`write_json`.

    Raises:
        CheckpointError: if the file is missing or not valid JSON.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"Missing run file {str(path)!r}.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(
            f"The run file {str(path)!r} is corrupt (invalid JSON: {error}).") from error


def save_array(path, array):
    """Save a numpy array to a ``.npy`` file atomically."""
    import numpy as np

    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.save(handle, array)
