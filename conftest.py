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
