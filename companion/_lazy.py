"""Import a package's submodules on first attribute access (PEP 562)."""

import importlib
import sys


def lazy_submodules(package, names):
    """Return ``(__getattr__, __dir__)`` for `package` that import `names` lazily.

    Example (in a package's ``__init__.py``):

    ``__getattr__, __dir__ = lazy_submodules(__name__, ("gan", "vae"))``
    """
    names = tuple(names)

    def __getattr__(name):
        if name in names:
            module = importlib.import_module(f"{package}.{name}")
            setattr(sys.modules[package], name, module)
            return module
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
