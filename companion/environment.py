"""What the book runs on: backend, devices and library versions.

Example:

>>> from companion import environment
>>> environment.describe()["backend"]
'jax'
"""

import platform


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


def in_colab():
    """True inside Google Colab."""
    import sys

    return "google.colab" in sys.modules
