"""Where the package keeps its caches (no side effects at import)."""

import os
import pathlib


def cache_root():
    """``$COMPANION_CACHE_DIR`` if set, else ``~/.cache/companion`` (not created)."""
    default = pathlib.Path.home() / ".cache" / "companion"
    return pathlib.Path(os.environ.get("COMPANION_CACHE_DIR", default))
