"""The original document's VAE listing (section 4.2) and objective (3.2.3), ported.

Wrong on purpose, so the book can run them and show their errors; the
corrected networks are :func:`companion.models.vae.make_encoder` and
:func:`companion.models.vae.make_decoder`, the corrected objective is
:func:`companion.losses.vae_loss`. The port keeps every layer and argument of
the listing. Only what Keras 3 requires changed: ``tf.keras`` became
``keras`` and ``InputLayer(input_shape=...)`` became ``keras.Input(shape=...)``.

The errors it contains:

1. It is a plain autoencoder: the encoder returns one 64-vector (ReLU, so
   never negative), with no mean, no variance and no sampling; nothing makes
   the codes follow a prior you could sample from.
2. The encoder's output ``(None, 64)`` and the decoder's input
   ``(None, 7, 7, 1)`` (49 numbers) cannot be connected.
3. The decoder turns 7x7 into **66x66** (three upsamplings, two unpadded
   transposed convolutions that add 2 pixels each, one unpadded convolution
   that removes 2): not the 28x28 it would have to reconstruct.
4. The objective of 3.2.3,

   ``L(E, D) = E_x[log p_data(x)] - E_{z~q_E(z|x)}[log p_data(x)]
   + beta E_{z~q_E(z)}[log p_z(z)]``,

   contains the decoder nowhere: its first two terms are the same number
   (``log p_data(x)`` does not depend on ``z``) and cancel, and the third,
   *minimised*, pushes the codes to where the prior density is lowest, i.e.
   to infinity. The decoder's gradient is exactly zero; the codes run away.

Example:

>>> from companion.original import vae as original
>>> original.decoder_model().output_shape
(None, 66, 66, 1)
"""

import math

import keras
import numpy as np
from keras import ops

from companion._validation import check_int

DECODER_SHAPE_TRACE = (
    ("InputLayer", (None, 7, 7, 1)),
    ("UpSampling2D", (None, 14, 14, 1)),
    ("Conv2DTranspose 3x3 valid", (None, 16, 16, 64)),
    ("UpSampling2D", (None, 32, 32, 64)),
    ("Conv2DTranspose 3x3 valid", (None, 34, 34, 32)),
    ("UpSampling2D", (None, 68, 68, 32)),
    ("Conv2D 3x3 valid", (None, 66, 66, 1)),
)
"""The decoder's output shape after each layer (checked by the tests)."""

ENCODER_SHAPE_TRACE = (
    ("InputLayer", (None, 28, 28, 1)),
    ("Conv2D 3x3 valid", (None, 26, 26, 32)),
    ("MaxPooling2D", (None, 13, 13, 32)),
    ("Conv2D 3x3 valid", (None, 11, 11, 64)),
    ("MaxPooling2D", (None, 5, 5, 64)),
    ("Flatten", (None, 1600)),
    ("Dense relu", (None, 64)),
)
"""The encoder's output shape after each layer (checked by the tests)."""


def encoder_model():
    """The listing's encoder: a deterministic map from 28x28x1 images to 64 numbers.

    Returns:
        The `keras.Sequential` model, output `(None, 64)`.
    """
    model = keras.Sequential()
    model.add(keras.Input(shape=(28, 28, 1)))
    model.add(keras.layers.Conv2D(32, (3, 3), activation='relu'))
    model.add(keras.layers.MaxPooling2D((2, 2)))
    model.add(keras.layers.Conv2D(64, (3, 3), activation='relu'))
    model.add(keras.layers.MaxPooling2D((2, 2)))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(64, activation='relu'))
    return model


def decoder_model():
    """The listing's decoder: 7x7x1 inputs to 66x66x1 outputs.

    Returns:
        The `keras.Sequential` model, output `(None, 66, 66, 1)`.
    """
    model = keras.Sequential()
    model.add(keras.Input(shape=(7, 7, 1)))
    model.add(keras.layers.UpSampling2D())
    model.add(keras.layers.Conv2DTranspose(64, (3, 3), activation='relu'))
    model.add(keras.layers.UpSampling2D())
    model.add(keras.layers.Conv2DTranspose(32, (3, 3), activation='relu'))
    model.add(keras.layers.UpSampling2D())
    model.add(keras.layers.Conv2D(1, (3, 3), activation='sigmoid'))
    return model


def shape_trace(model):
    """``(layer class, output shape)`` of each layer of a sequential model.

    Example:

    >>> [shape for _, shape in shape_trace(decoder_model())][-1]
    (None, 66, 66, 1)
    """
    rows = [("InputLayer", tuple(model.inputs[0].shape))]
    rows += [(type(layer).__name__, tuple(layer.output.shape)) for layer in model.layers]
    return rows


def connect(encoder=None, decoder=None):
    """Try to chain the listing's encoder and decoder, as a VAE would.

    Raises:
        ValueError: always for the listing's networks: Keras refuses to feed
            the encoder's `(None, 64)` codes to a decoder expecting
            `(None, 7, 7, 1)`.
    """
    encoder = encoder or encoder_model()
    decoder = decoder or decoder_model()
    images = keras.Input((28, 28, 1))
    return keras.Model(images, decoder(encoder(images)))


def original_vae_objective(log_p_data, codes, beta=1.0):
    """The objective of the original's section 3.2.3, as written (to minimise).

    Formula:

    ```
    L(E, D) = E_x[log p_data(x)] - E_{z~q_E(z|x)}[log p_data(x)]
              + beta * E_{z~q_E(z)}[log p_z(z)]
    ```

    with ``p_z = N(0, I)`` and the codes ``z = E(x)`` of a batch standing in
    for the samples of ``q_E``. ``log p_data(x)``, the data's true density, is
    unknown in practice; any stand-in values give the same result, because
    the first two terms are the same expectation of a function of ``x``
    alone and cancel. The decoder appears nowhere, so its gradient is
    exactly zero; minimising the last term makes ``log p_z(z)`` as small as
    possible, i.e. sends ``||z||`` to infinity (it is unbounded below).

    Args:
        log_p_data: `(B,)` values standing for ``log p_data(x)``.
        codes: `(B, D)` encoder outputs ``z = E(x)``.
        beta: the weight the original calls "balancing".

    Returns:
        A scalar tensor: ``beta * mean(log N(z; 0, I))`` (plus an exact zero).

    Example:

    >>> import numpy as np
    >>> z = np.array([[0.0], [3.0]], "float32")
    >>> round(float(original_vae_objective(np.array([-5.0, 2.0]), z)), 4)
    -3.1689
    """
    log_p_data = ops.convert_to_tensor(log_p_data, "float32")
    codes = ops.convert_to_tensor(codes, "float32")
    expected_log_data = ops.mean(log_p_data)
    # E_{z~q(z|x)}[log p_data(x)]: the integrand ignores z, so the expectation
    # over z is the same number as the first term.
    expected_over_codes = ops.mean(
        ops.mean(ops.broadcast_to(log_p_data[:, None], ops.shape(codes)), axis=1))
    log_prior = -0.5 * ops.sum(ops.square(codes) + math.log(2 * math.pi), axis=1)
    return expected_log_data - expected_over_codes + beta * ops.mean(log_prior)


def train_with_original_objective(images, steps=20, learning_rate=1e-3, beta=1.0,
                                  seed=0):
    """Gradient descent on :func:`original_vae_objective` with the listing's networks.

    The objective is minimised jointly over the encoder's and the decoder's
    weights, as 3.2.3 writes ``min_{E, D}``. The decoder's output is not
    needed by the objective (and could not be compared with the images: it
    is 66x66), so it receives no gradient at all.

    Args:
        images: `(B, 28, 28, 1)` images.
        steps: gradient steps (>= 1).
        learning_rate: step size of plain gradient descent.
        beta: the objective's weight.
        seed: seed of the weights' initialisation.

    Returns:
        A dict of lists (one entry a step) with keys ``objective``, ``code_norm`` (mean
        ``||z||`` over the batch), ``encoder_grad_norm`` and
        ``decoder_grad_norm`` (global gradient norms).

    Example:

    >>> import numpy as np
    >>> history = train_with_original_objective(np.ones((2, 28, 28, 1), "float32"),
    ...                                         steps=2)
    >>> history["decoder_grad_norm"]
    [0.0, 0.0]
    """
    import jax

    steps = check_int("steps", steps)
    keras.utils.set_random_seed(seed)
    encoder, decoder = encoder_model(), decoder_model()
    x = np.asarray(images, dtype="float32")
    # Stand-in for the unknowable log p_data(x): it cancels whatever it is.
    log_p_data = np.asarray(-x.reshape(len(x), -1).sum(axis=1), "float32")

    def objective(encoder_weights, decoder_weights):
        codes, _ = encoder.stateless_call(encoder_weights, [], x)
        return original_vae_objective(log_p_data, codes, beta), codes

    step = jax.jit(jax.value_and_grad(objective, argnums=(0, 1), has_aux=True))
    encoder_weights = [v.value for v in encoder.trainable_variables]
    decoder_weights = [v.value for v in decoder.trainable_variables]
    history = {"objective": [], "code_norm": [], "encoder_grad_norm": [],
               "decoder_grad_norm": []}
    for _ in range(steps):
        (value, codes), (encoder_grads, decoder_grads) = step(encoder_weights,
                                                              decoder_weights)
        history["objective"].append(float(value))
        history["code_norm"].append(float(np.linalg.norm(codes, axis=1).mean()))
        history["encoder_grad_norm"].append(_global_norm(encoder_grads))
        history["decoder_grad_norm"].append(_global_norm(decoder_grads))
        encoder_weights = [w - learning_rate * g
                           for w, g in zip(encoder_weights, encoder_grads)]
        decoder_weights = [w - learning_rate * g
                           for w, g in zip(decoder_weights, decoder_grads)]
    return history


def _global_norm(grads):
    return float(math.sqrt(sum(float(np.sum(np.square(g))) for g in grads)))
