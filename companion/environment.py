"""What the book runs on, and the book's opt-in session defaults.

Importing `companion` changes no global state. :func:`use_book_defaults`
turns on, explicitly, what the book's notebooks want (its bootstrap cell calls
it); :func:`describe` reports the backend, devices and versions.

Example:

>>> from companion import environment
>>> environment.describe()["backend"]
'jax'
"""

import os
import platform

from companion._paths import cache_root

_OFF = ("0", "off", "false", "no")


def use_book_defaults():
    """Turn on the book's session defaults; calling it again changes nothing.

    1. JAX's persistent compilation cache: compiled XLA programs are kept on
       disk and a later process reads them instead of compiling again (every
       notebook and test process compiles the same training steps). The
       folder is ``$JAX_COMPILATION_CACHE_DIR`` if set, else
       ``<cache root>/jax`` (the cache root is ``$COMPANION_CACHE_DIR``, else
       ``~/.cache/companion``); every program is cached, however quickly it
       compiled, unless ``$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` says
       otherwise. ``COMPANION_JAX_CACHE=0`` leaves the cache off.
    2. The figure style of :data:`companion.plotting.STYLE` in matplotlib's
       ``rcParams``.

    Call it before the first computation (the book's bootstrap cell does,
    right after ``import companion``): JAX reads the cache settings when it
    compiles its first program.

    Returns:
        dict: ``"jax_compilation_cache_dir"`` (the folder, or None when off)
        and the ``rcParams`` it set.

    Example:

    >>> from companion import environment
    >>> settings = environment.use_book_defaults()
    >>> settings["figure.dpi"]
    100
    >>> environment.use_book_defaults() == settings
    True
    """
    settings = {"jax_compilation_cache_dir": _enable_compilation_cache()}
    settings.update(_apply_figure_style())
    return settings


def _enable_compilation_cache():
    if os.environ.get("COMPANION_JAX_CACHE", "1").lower() in _OFF:
        return None
    import jax

    folder = jax.config.jax_compilation_cache_dir or str(cache_root() / "jax")
    jax.config.update("jax_compilation_cache_dir", folder)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    return folder


def _apply_figure_style():
    import matplotlib

    from companion.plotting import STYLE

    matplotlib.rcParams.update(STYLE)
    return dict(STYLE)


def describe():
    """Return a dict: Keras backend, JAX devices, versions, Python, machine."""
    import jax
    import keras

    import companion

    devices = jax.devices()
    return {
        "backend": keras.backend.backend(),
        "devices": [f"{d.platform}:{d.id}" for d in devices],
        "device_kind": devices[0].device_kind,
        "keras": keras.__version__,
        "jax": jax.__version__,
        "companion": companion.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
