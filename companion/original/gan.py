"""The original document's GAN listing (section 4.1), ported faithfully to Keras 3.

Wrong on purpose, so the book can run it and show its errors; the corrected
networks are :func:`companion.models.gan.make_generator` and
:func:`companion.models.gan.make_discriminator`. The port keeps every layer,
argument and ``assert`` of the listing. Only what Keras 3 requires changed:
``tf.keras`` became ``keras``; ``input_shape=`` on the first layer became a
``keras.Input`` (Keras 3 deprecates the argument); ``LeakyReLU()`` gets the
slope 0.3 it had by default in TensorFlow 2's Keras (Keras 3's default is 0.2).

The errors it contains:

1. The generator asserts ``(None, 7, 7, 64)`` after a stride-2 transposed
   convolution, which doubles 7x7 to 14x14: the assert fails
   (``AssertionError``) and the function never returns.
2. Its last layer (stride 2 again, 3 filters) makes 28x28x3 colour images,
   but the listing asserts 7x7x3, and the digits are 28x28 with one channel.
3. The discriminator takes ``input_shape=[7, 7, 3]``: it can accept neither
   the generator's real output (28x28x3) nor the data (28x28x1).
4. No loss, optimiser or training loop is given at all.

Example:

>>> from companion.original import gan as original
>>> try:
...     original.generator_model(summary=False)
... except AssertionError:
...     print("the listing's generator fails")
the listing's generator fails
"""

import keras

ASSERTED_GENERATOR_SHAPES = (
    ("Reshape", (None, 7, 7, 256)),
    ("Conv2DTranspose (stride 1)", (None, 7, 7, 128)),
    ("Conv2DTranspose (stride 2)", (None, 7, 7, 64)),
    ("Conv2DTranspose (stride 2, tanh)", (None, 7, 7, 3)),
)
"""The four shapes the listing's generator asserts, in order."""


def generator_model(asserts=True, summary=True):
    """The listing's generator. With ``asserts=True`` (as written) it raises.

    Args:
        asserts: keep the listing's ``assert`` statements. ``False`` builds the
            network the layers really make, to inspect its shapes.
        summary: call ``model.summary()`` as the listing does.

    Returns:
        The `keras.Sequential` model (only reachable with ``asserts=False``).

    Raises:
        AssertionError: with ``asserts=True``, at the third assert: the
            stride-2 layer outputs ``(None, 14, 14, 64)``, not ``(None, 7, 7, 64)``.
    """
    model = keras.Sequential()
    model.add(keras.Input(shape=(100,)))
    model.add(keras.layers.Dense(7*7*256, use_bias=False))
    model.add(keras.layers.BatchNormalization())
    model.add(keras.layers.LeakyReLU(negative_slope=0.3))

    model.add(keras.layers.Reshape((7, 7, 256)))
    _check(asserts, model.output_shape == (None, 7, 7, 256))

    model.add(keras.layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding='same', use_bias=False))
    _check(asserts, model.output_shape == (None, 7, 7, 128))
    model.add(keras.layers.BatchNormalization())
    model.add(keras.layers.LeakyReLU(negative_slope=0.3))

    model.add(keras.layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding='same', use_bias=False))
    _check(asserts, model.output_shape == (None, 7, 7, 64))
    model.add(keras.layers.BatchNormalization())
    model.add(keras.layers.LeakyReLU(negative_slope=0.3))

    model.add(keras.layers.Conv2DTranspose(3, (5, 5), strides=(2, 2), padding='same', use_bias=False, activation='tanh'))
    _check(asserts, model.output_shape == (None, 7, 7, 3))

    if summary:
        model.summary()
    return model


def discriminator_model(summary=True):
    """The listing's discriminator: built for 7x7x3 inputs, so it rejects the data.

    Args:
        summary: call ``model.summary()`` as the listing does.

    Returns:
        The `keras.Sequential` model. Calling it on 28x28x1 digits (or on the
        generator's 28x28x3 output) raises a ``ValueError`` about the input shape.
    """
    model = keras.Sequential()
    model.add(keras.Input(shape=[7, 7, 3]))
    model.add(keras.layers.Conv2D(64, (5, 5), strides=(2, 2), padding='same'))
    model.add(keras.layers.LeakyReLU(negative_slope=0.3))
    model.add(keras.layers.Dropout(0.3))

    model.add(keras.layers.Conv2D(128, (5, 5), strides=(2, 2), padding='same'))
    model.add(keras.layers.LeakyReLU(negative_slope=0.3))
    model.add(keras.layers.Dropout(0.3))

    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(1))
    assert model.output_shape == (None, 1)

    if summary:
        model.summary()
    return model


def _check(enabled, condition):
    if enabled:
        assert condition
