"""Companion package of *Deep Generative Models for Images*.

Every model, loss, metric and plot the book uses lives here, tested; the
notebooks only call it. Importing `companion` selects Keras' JAX backend
(``KERAS_BACKEND=jax``) unless you chose a backend yourself first.

Submodules are imported on first use, so ``import companion`` stays cheap:

>>> import companion
>>> images, labels = companion.data.load()  # the embedded MNIST digits
>>> images.shape
(9000, 28, 28, 1)
"""

import os
import sys

from companion._lazy import lazy_submodules

__version__ = "0.1.0"

_SUBMODULES = (
    "checkpoint",
    "cli",
    "comparison",
    "data",
    "distribute",
    "dynamics",
    "environment",
    "evaluation",
    "losses",
    "models",
    "original",
    "plotting",
    "training",
)


def _select_backend():
    """Choose JAX unless the user chose first; refuse a clash we cannot fix."""
    keras_module = sys.modules.get("keras")
    if keras_module is None:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        return
    try:
        active = keras_module.backend.backend()
    except AttributeError:  # a half-imported keras: nothing to check yet
        return
    chosen = os.environ.get("KERAS_BACKEND")
    if active != "jax" and chosen != active:
        raise ImportError(
            f"keras was already imported with the {active!r} backend, but the "
            "companion package runs on JAX. Restart the runtime (in Colab: "
            "Runtime > Restart session) and import companion before keras, or run "
            "`import os; os.environ['KERAS_BACKEND'] = 'jax'` first."
        )


def _enable_compilation_cache():
    """Keep compiled XLA programs on disk, so later processes skip compiling.

    Every notebook and test process compiles the same training steps again; JAX's
    persistent cache (in ``<cache root>/jax``, see :func:`companion.data.cache_dir`)
    turns the second compilation into a file read. Set ``COMPANION_JAX_CACHE=0``
    to turn it off, or ``JAX_COMPILATION_CACHE_DIR`` to put it elsewhere.
    """
    if os.environ.get("COMPANION_JAX_CACHE", "1").lower() in ("0", "off", "false", "no"):
        return
    from companion._paths import cache_root

    folder = os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache_root() / "jax"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    jax = sys.modules.get("jax")
    if jax is not None and not jax.config.jax_compilation_cache_dir:
        # jax read its environment before we set it: configure it directly.
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


_select_backend()
_enable_compilation_cache()

__getattr__, __dir__ = lazy_submodules(__name__, _SUBMODULES)
