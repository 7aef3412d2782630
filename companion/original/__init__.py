"""The original document's listings and formulas, ported faithfully to Keras 3.

They are kept *wrong on purpose*, so the book can run them and show each error
where the reader meets it (and the tests can pin those errors down). Never use
them to train anything: the corrected versions live in :mod:`companion.models`
and :mod:`companion.losses`.
"""

from companion._lazy import lazy_submodules

_SUBMODULES = ("gan", "vae", "rnn")

__getattr__, __dir__ = lazy_submodules(__name__, _SUBMODULES)
