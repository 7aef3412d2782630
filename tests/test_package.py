"""Importing companion: backend selection, the clash error, the version."""

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _python(code, **env_changes):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT)


def test_import_selects_jax_when_nothing_was_chosen():
    result = _python("import os, companion, keras; "
                     "print(os.environ['KERAS_BACKEND'], keras.backend.backend())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["jax", "jax"]


def test_a_backend_the_user_chose_is_respected():
    result = _python("import companion, keras; print(keras.backend.backend())",
                     KERAS_BACKEND="numpy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numpy"


def test_keras_already_imported_with_another_backend_is_a_clear_error():
    # Colab's situation: keras imported (with TensorFlow there, numpy here) before
    # anybody asked for JAX.
    code = ("import os; os.environ['KERAS_BACKEND'] = 'numpy'; import keras; "
            "del os.environ['KERAS_BACKEND']; import companion")
    result = _python(code)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "Restart" in result.stderr and "KERAS_BACKEND" in result.stderr


def test_version_is_the_packages_and_submodules_load_lazily():
    result = _python("import sys, companion; print(companion.__version__); "
                     "print('companion.losses' in sys.modules); "
                     "companion.data; print('companion.data' in sys.modules)")
    assert result.returncode == 0, result.stderr
    version, lazy, loaded = result.stdout.split()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert (lazy, loaded) == ("False", "True")


def test_unknown_attribute_is_an_attribute_error():
    import companion
    import pytest

    with pytest.raises(AttributeError, match="no_such_thing"):
        companion.no_such_thing
