"""Fixtures shared by the tests in this folder (the repository's own
``conftest.py`` sets up the session first)."""

import contextlib

import pytest

import companion  # noqa: F401  (selects the JAX backend first)
import keras  # noqa: E402


@pytest.fixture
def dtype_policy():
    """`with dtype_policy("mixed_float16"): ...` sets Keras' global dtype policy for
    the block; the policy is float32 again after the block and after the test.

    Yields a function that takes a policy name and returns a context manager;
    use it as often as a test needs, e.g. once per policy a test compares.
    """

    @contextlib.contextmanager
    def use(name):
        keras.mixed_precision.set_global_policy(name)
        try:
            yield name
        finally:
            keras.mixed_precision.set_global_policy("float32")

    try:
        yield use
    finally:
        keras.mixed_precision.set_global_policy("float32")
