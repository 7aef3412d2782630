"""The original document's RNN (sections 3.3.3 and 4.3), ported faithfully.

Kept wrong on purpose so the book can run it and show three errors:

1. :func:`rnn_model` (section 4.3) reads a whole sequence of rows and returns
   *one* 28-vector: it has no per-step output, no teacher forcing and no
   sampling loop, so it cannot generate an image.
2. :func:`original_rnn_objective` (section 3.3.3) is
   ``sum_t E[log p_data(y_t)] - E[log p_data(y_t)]``: a term minus itself. It
   is zero for every choice of W, U, b, and so is its gradient.
3. :func:`original_rnn_output` (section 3.3.3) computes ``y_t = W^T h_t + b``
   with the *input* weights W and the *state* bias b: ``W^T h_t`` has the input's
   size, ``b`` the state's, and the sum is undefined unless the two happen to be
   equal.

The corrected model is :class:`companion.models.rnn.RowRNN`.
"""

import keras
import numpy as np


def rnn_model():
    """The listing of section 4.3, in Keras 3.

    The original (TensorFlow 2 Keras) passes ``input_shape=(None, 28)`` to the
    first layer; Keras 3 takes an `Input` instead, with the same meaning.

    ```
    model = tf.keras.Sequential()
    model.add(tf.keras.layers.SimpleRNN(128, activation='relu', input_shape=(None, 28)))
    model.add(tf.keras.layers.Dense(28, activation='sigmoid'))
    ```

    Returns:
        An uncompiled `keras.Sequential` mapping `(B, T, 28)` to `(B, 28)`.

    Example:

    >>> import numpy as np
    >>> rnn_model()(np.zeros((2, 28, 28), "float32")).shape
    (2, 28)
    """
    model = keras.Sequential()
    model.add(keras.Input(shape=(None, 28)))
    model.add(keras.layers.SimpleRNN(128, activation="relu"))
    model.add(keras.layers.Dense(28, activation="sigmoid"))
    return model


def original_rnn_step(x_t, h_prev, W, U, b, f=np.tanh):
    """The recurrence of section 3.3.3, ``h_t = f(W x_t + U h_{t-1} + b)``.

    This line of the original is correct (it is the Elman recurrence).

    Args:
        x_t: input, shape `(input_dim,)`.
        h_prev: previous state, shape `(units,)`.
        W: input weights, shape `(units, input_dim)`.
        U: recurrent weights, shape `(units, units)`.
        b: bias, shape `(units,)`.
        f: activation.

    Returns:
        The new state, shape `(units,)`.
    """
    return f(W @ x_t + U @ h_prev + b)


def original_rnn_output(h_t, W, b):
    """The output equation of section 3.3.3, ``y_t = W^T h_t + b``, verbatim.

    W and b are the recurrence's own input weights `(units, input_dim)` and
    bias `(units,)`, so ``W^T h_t`` has `input_dim` entries and `b` has `units`:
    numpy refuses to add them (a `ValueError`) unless ``units == input_dim``.
    The corrected output layer has its own parameters, ``y_t = V h_t + c``.

    Args:
        h_t: state, shape `(units,)`.
        W: the input weights of :func:`original_rnn_step`, `(units, input_dim)`.
        b: the recurrence's bias, `(units,)`.

    Returns:
        ``W.T @ h_t + b`` when the shapes allow it.

    Raises:
        ValueError: from numpy, when ``units != input_dim`` (the usual case).

    Example:

    >>> import numpy as np
    >>> W, b, h = np.ones((128, 28)), np.zeros(128), np.ones(128)
    >>> try:
    ...     original_rnn_output(h, W, b)
    ... except ValueError:
    ...     print("shapes (28,) and (128,) do not add")
    shapes (28,) and (128,) do not add
    """
    return W.T @ h_t + b


def original_rnn_objective(W, U, b, log_p_data):
    """The loss of section 3.3.3, computed exactly as written.

    Formula (the original):

    ```
    min_{W,U,b} L(W, U, b) = sum_{t=1}^T E_{y_t~p_data}[log p_data(y_t)]
                                       - E_{y_t~p_data}[log p_data(y_t)]
    ```

    Both terms are the same expectation of the *data's* log-density; neither
    contains W, U, b or any model output. Read with the sum over both terms,
    each summand is ``a_t - a_t = 0``. (Read with the sum over the first term
    only, the second term's t is unbound; either way no parameter appears.)

    Args:
        W, U, b: the RNN's parameters (accepted, as in ``L(W, U, b)``, and
            unused, as in the formula).
        log_p_data: `(N, T)` array of ``log p_data(y_t)`` at N samples of each
            of the T outputs; the expectations are means over N.

    Returns:
        The value of L, which is 0.0 for any input.

    Example:

    >>> import numpy as np
    >>> log_p = np.log(np.random.default_rng(0).random((5, 3)))
    >>> float(original_rnn_objective(None, None, None, log_p))
    0.0
    """
    del W, U, b  # the formula never reads them
    expectation = np.mean(log_p_data, axis=0)          # E[log p_data(y_t)], one per t
    return np.sum(expectation - expectation)
