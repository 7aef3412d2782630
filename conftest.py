"""Test session set-up for every pytest run in the repository (tests, the
package's doctests, nbval over the notebooks): keep every cache out of the
user's home.

Tests, doctests and the notebooks nbval runs (their kernels inherit this
process's environment) keep the reference classifier and JAX's compiled
programs in the repository's git-ignored ``.cache/`` folder unless
``COMPANION_CACHE_DIR`` already names one (``python3 tasks.py test`` sets it).
The session turns on the book's defaults, as the notebooks do, so a second
run reads compiled programs instead of compiling them again.
"""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent

os.environ.setdefault("COMPANION_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("KERAS_BACKEND", "jax")

import companion  # noqa: E402  (after the environment is set)

companion.environment.use_book_defaults()

import pytest  # noqa: E402

# The modules that build the book (`test_book.build_book`, once a process): on one
# worker together, so a parallel run builds it once.
BOOK_BUILDERS = {"test_book.py", "test_site.py", "test_colab.py"}


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``-n 2 --dist loadgroup``, as ``tasks.py test`` runs), keep
    each file's tests on one worker: a notebook's cells run in order in one kernel,
    and a module's fixtures (trained models) are made once."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        group = "book-build" if item.path.name in BOOK_BUILDERS else str(item.path)
        item.add_marker(pytest.mark.xdist_group(group))
