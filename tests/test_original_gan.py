"""Tests pinning the errors of the original document's GAN listing (section 4.1)."""

import numpy as np
import pytest

import companion  # noqa: F401
from companion.original import gan as original


def test_generator_as_written_fails_its_own_assert():
    with pytest.raises(AssertionError):
        original.generator_model(summary=False)


def test_generator_really_makes_28x28x3_and_the_third_assert_is_wrong():
    model = original.generator_model(asserts=False, summary=False)
    assert model.output_shape == (None, 28, 28, 3)
    transposed = [layer.output.shape for layer in model.layers
                  if type(layer).__name__ == "Conv2DTranspose"]
    assert [tuple(s) for s in transposed] == [
        (None, 7, 7, 128), (None, 14, 14, 64), (None, 28, 28, 3)]
    asserted = [shape for _, shape in original.ASSERTED_GENERATOR_SHAPES]
    assert asserted[1] == (None, 7, 7, 128)  # the only convolution assert that holds
    assert asserted[2] != tuple(transposed[1])


def test_discriminator_expects_7x7x3_and_rejects_the_data_and_the_generator():
    discriminator = original.discriminator_model(summary=False)
    assert discriminator.input_shape == (None, 7, 7, 3)
    assert discriminator.output_shape == (None, 1)
    with pytest.raises(ValueError, match="expected axis -1"):
        discriminator(np.zeros((2, 28, 28, 1), "float32"))
    generator = original.generator_model(asserts=False, summary=False)
    with pytest.raises(ValueError):
        discriminator(generator(np.zeros((2, 100), "float32")))
