"""A layer and an initialiser the book's models use in place of Keras' own, for speed.

:class:`Conv2DTranspose` is Keras' ``Conv2DTranspose`` (same weights, same
forward pass, bit for bit) whose *gradients* are computed as those of the
convolution it transposes. The map is linear in its input ``x``: it is
``C(w)^T x``, the transpose of the strided convolution ``C(w)`` that takes the
layer's output shape to its input shape. Hence, for an upstream gradient ``g``,

```
dL/dx = C(w) g                      (a strided convolution of g)
dL/dw = d/dw <x, C(w) g>            (that convolution's kernel gradient)
```

JAX differentiates ``jax.lax.conv_transpose`` instead through its
input-dilated form, and XLA's CPU kernel gradient of an input-dilated
convolution is slow: on 2 cores the VAE decoder's first stride-2 layer (64
images, 7x7x32 -> 14x14x32) took 16 ms forward and backward against 4 ms this
way. The Performance appendix has the table.

:class:`GlorotUniform` is Keras' Glorot-uniform initialiser drawn with NumPy:
the same distribution, ``U(-limit, limit)`` with ``limit = sqrt(6 / (fan_in +
fan_out))``, but no XLA program is compiled for each weight shape (Keras'
draws cost about 0.2 s of compilation per shape on 2 cores, 2.5 s for the VAE).

Example:

>>> import numpy as np, keras
>>> from companion.layers import Conv2DTranspose
>>> ours = Conv2DTranspose(2, 4, strides=2, padding="same")
>>> theirs = keras.layers.Conv2DTranspose(2, 4, strides=2, padding="same")
>>> x = np.random.default_rng(0).normal(size=(1, 7, 7, 3)).astype("float32")
>>> _ = ours(x), theirs(x)
>>> theirs.set_weights(ours.get_weights())
>>> bool(np.array_equal(ours(x), theirs(x)))
True
"""

import functools
import math

import jax
import keras
import numpy as np
from keras import ops


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_transpose(x, kernel, strides, padding):
    """Keras' ``ops.conv_transpose`` (channels last), differentiated as a convolution's
    transpose.

    Args:
        x: inputs `(B, H, W, C)`.
        kernel: `(kh, kw, F, C)`, Keras' transposed-convolution layout.
        strides: a pair of ints.
        padding: ``"same"`` or ``"valid"``.

    Returns:
        `(B, H', W', F)`, equal to ``ops.conv_transpose(x, kernel, strides, padding)``.
    """
    return ops.conv_transpose(x, kernel, strides=strides, padding=padding)


def _forward(x, kernel, strides, padding):
    return conv_transpose(x, kernel, strides, padding), (x, kernel)


def _backward(strides, padding, saved, grad):
    x, kernel = saved

    def transposed(kernel):  # the convolution this layer is the transpose of
        return ops.conv(grad, kernel, strides=strides, padding=padding)

    grad_x, pullback = jax.vjp(transposed, kernel)
    (grad_kernel,) = pullback(x)
    return grad_x, grad_kernel


conv_transpose.defvjp(_forward, _backward)


@keras.saving.register_keras_serializable(package="companion")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """``keras.layers.Conv2DTranspose`` with the gradients of ``conv_transpose`` above.

    Takes Keras' arguments; channels last, no dilation and no output padding
    (what the book's generators and decoders use).

    Raises:
        ValueError: for ``data_format="channels_first"``, a dilation rate
            other than 1 or an ``output_padding``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        unsupported = {"data_format": (self.data_format, "channels_last"),
                       "dilation_rate": (self.dilation_rate, (1, 1)),
                       "output_padding": (self.output_padding, None)}
        for name, (value, allowed) in unsupported.items():
            if value != allowed:
                raise ValueError(f"companion.layers.Conv2DTranspose supports only "
                                 f"`{name}={allowed!r}`; got {value!r}. Use "
                                 f"keras.layers.Conv2DTranspose for other settings.")

    def call(self, inputs):
        kernel = ops.convert_to_tensor(self.kernel)  # the value, as custom_vjp needs arrays
        outputs = conv_transpose(inputs, kernel, tuple(self.strides), self.padding)
        if self.use_bias:
            outputs = outputs + self.bias
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


@keras.saving.register_keras_serializable(package="companion")
class GlorotUniform(keras.initializers.GlorotUniform):
    """Keras' Glorot-uniform initialiser, drawn by NumPy's generator.

    Formula (Glorot and Bengio 2010), with the fans Keras computes (a
    convolution kernel's receptive field times its input or output channels):

    ```
    W ~ U(-limit, limit),    limit = sqrt(6 / (fan_in + fan_out))
    ```

    Args:
        seed: an int gives the same weights on every call and machine; None
            draws fresh ones.

    Example:

    >>> weights = GlorotUniform(seed=0)((20, 30))
    >>> bool(abs(weights).max() <= (6 / 50) ** 0.5)
    True
    """

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = _fans(shape)
        limit = math.sqrt(6.0 / max(2.0, fan_in + fan_out))
        values = np.random.default_rng(self._init_seed).uniform(-limit, limit, shape)
        return ops.convert_to_tensor(values.astype(keras.backend.standardize_dtype(dtype)))


def _fans(shape):
    """Keras' ``(fan_in, fan_out)``: a kernel `(..., inputs, outputs)` times its
    receptive field (the product of the leading dimensions)."""
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field
