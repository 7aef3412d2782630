"""The original document's listings and formulas, ported faithfully to Keras 3.

They are kept *wrong on purpose*, so the book can run them and show each error
where the reader meets it (and the tests can pin those errors down). Never use
them to train anything: the corrected versions live in :mod:`companion.models`
and :mod:`companion.losses`.
"""

import importlib

_SUBMODULES = ("gan", "vae", "rnn")


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
