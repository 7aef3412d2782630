"""Importing companion: backend selection, the clash errors, no global state, the version."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _python(code, **env_changes):
    inherited = ("KERAS_BACKEND", "JAX_COMPILATION_CACHE_DIR", "COMPANION_JAX_CACHE",
                 "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT)


def test_import_selects_jax_and_changes_no_global_state():
    # The compilation cache and the figure style are opt-in (use_book_defaults).
    code = ("import os, jax, matplotlib; state = lambda: (jax.config.jax_compilation_cache_dir, "
            "jax.config.jax_persistent_cache_min_compile_time_secs, dict(matplotlib.rcParams)); "
            "before = state(); import companion, keras; "
            "from companion import data, environment, models, plotting, training; "
            "print(os.environ['KERAS_BACKEND'], keras.backend.backend(), before == state())")
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["jax", "jax", "True"]


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow"])
def test_another_backend_in_the_environment_is_a_clear_import_error(backend):
    # Checked before keras is imported, so torch and tensorflow need not be installed.
    result = _python("import companion", KERAS_BACKEND=backend)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("ImportError: KERAS_BACKEND is " + repr(backend))
    assert "KERAS_BACKEND=jax before keras is imported" in message
    assert "Restart session" in message


def test_keras_already_imported_with_another_backend_is_a_clear_error():
    # Colab's situation: keras imported (with TensorFlow there, numpy here) before
    # anybody asked for JAX; setting the variable afterwards changes nothing.
    code = ("import os; os.environ['KERAS_BACKEND'] = 'numpy'; import keras; "
            "os.environ['KERAS_BACKEND'] = 'jax'; import companion")
    result = _python(code)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("ImportError: keras was already imported with the 'numpy' backend")
    assert "Restart session" in message and "KERAS_BACKEND=jax" in message


def test_keras_imported_with_jax_first_is_accepted():
    result = _python("import os; os.environ['KERAS_BACKEND'] = 'jax'; import keras; "
                     "import companion; print(keras.backend.backend())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "jax"


def test_use_book_defaults_turns_on_the_cache_and_style_idempotently(tmp_path):
    code = ("import jax, matplotlib, companion; from companion import environment; "
            "first = environment.use_book_defaults(); "
            "print(first == environment.use_book_defaults()); "
            "print(jax.config.jax_compilation_cache_dir); "
            "print(jax.config.jax_persistent_cache_min_compile_time_secs); "
            "print(matplotlib.rcParams['figure.dpi'])")
    result = _python(code, COMPANION_CACHE_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", str(tmp_path / "jax"), "0", "100.0"]


def test_use_book_defaults_leaves_the_cache_off_when_asked(tmp_path):
    code = ("import jax, companion; from companion import environment; "
            "print(environment.use_book_defaults()['jax_compilation_cache_dir']); "
            "print(jax.config.jax_compilation_cache_dir)")
    result = _python(code, COMPANION_CACHE_DIR=str(tmp_path), COMPANION_JAX_CACHE="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "None"]


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

    with pytest.raises(AttributeError, match="no_such_thing"):
        companion.no_such_thing


def test_minimum_constraints_are_pyprojects_minimums():
    # `python3 tasks.py test` runs the quick tests at these versions in .venv-min.
    import tasks

    pins = (ROOT / "constraints-min.txt").read_text()
    assert pins == tasks.minimum_constraints(), "run `python3 tasks.py constraints`"
    assert "keras==3.15\n" in pins  # keras.optimizers.MultiOptimizer
    assert "numpy==2.0\n" in pins  # np.trapezoid
