"""Companion package of *Deep Generative Models for Images*.

Every model, loss, metric and plot the book uses lives here, tested; the
notebooks only call it. The package runs on Keras' JAX backend: importing
`companion` before `keras` selects it (``KERAS_BACKEND=jax``), and importing it
after another backend was chosen is an `ImportError` that says what to do.
Importing changes nothing else: the book's session defaults (JAX's persistent
compilation cache, the figure style) are opt-in, with
:func:`companion.environment.use_book_defaults`.

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
    "claims",
    "cli",
    "comparison",
    "data",
    "distribute",
    "dynamics",
    "environment",
    "evaluation",
    "exercises",
    "inference",
    "losses",
    "models",
    "original",
    "plotting",
    "pretrained",
    "training",
)

_FIX = (
    "The companion package runs on Keras' JAX backend only. Set the environment "
    "variable KERAS_BACKEND=jax before keras is imported (first line of a script or "
    "notebook: `import os; os.environ['KERAS_BACKEND'] = 'jax'`), or import companion "
    "before keras. In Colab or Jupyter, restart the runtime first (Colab: Runtime > "
    "Restart session): a backend cannot change once keras is imported."
)


def _select_backend():
    """Choose JAX unless keras or the user chose first; refuse any other backend."""
    keras_module = sys.modules.get("keras")
    if keras_module is not None:
        try:
            active = keras_module.backend.backend()
        except AttributeError:  # a half-imported keras: it reads the variable below
            active = None
        if active not in (None, "jax"):
            raise ImportError(f"keras was already imported with the {active!r} backend. {_FIX}")
    chosen = os.environ.setdefault("KERAS_BACKEND", "jax")
    if chosen != "jax":
        raise ImportError(f"KERAS_BACKEND is {chosen!r}. {_FIX}")


_select_backend()

__getattr__, __dir__ = lazy_submodules(__name__, _SUBMODULES)
