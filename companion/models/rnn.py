"""Row-by-row autoregressive image model with an exact likelihood.

An image of H rows is a sequence ``x_1, ..., x_H`` of rows of W pixels. The
chain rule of probability gives the exact factorisation

    p(x) = prod_t p(x_t | x_<t) = prod_t prod_j p(x_{t,j} | x_<t, x_{t,<j}),

and a recurrent network summarises the rows above in its state:
``h_t = f(W_x x_{t-1} + W_h h_{t-1} + b_h)``: the input at step t is the row
*above*, a zero row for ``t = 1``. Pixel j of row t gets the Bernoulli logit
``logit_{t,j} = (W_y h_t + b_y)_j + sum_{i<j} x_{t,i} A_{ij}``: the state carries the
rows above, and a strictly upper-triangular matrix ``A`` (the *left context*)
adds the pixels to the left in the same row, so every pixel is conditioned on
all pixels before it in raster order, as in PixelRNN (van den Oord et al.
2016). With ``left_context=False`` the pixels of a row are independent given
the state. Training feeds the true rows (teacher forcing, Williams and Zipser
1989); sampling feeds the model's own pixels back (ancestral sampling): one
recurrent step a row, then the row's pixels left to right.

The module also holds :func:`raster_causal_mask`, which pixel may read which in
raster order, and :func:`gradient_norm_by_distance`, the measurement of
how the gradient of the state with respect to earlier inputs decays (or
explodes) with the time distance (Bengio et al. 1994; Pascanu et al. 2013).

Example:

>>> from companion.models import rnn
>>> model = rnn.make_model(units=16)
>>> model.sample(2, seed=0).shape
(2, 28, 28, 1)
"""

import numbers

import jax
import jax.numpy as jnp
import keras
import numpy as np
from keras import ops

from companion import inference, losses
from companion._validation import (check_binary, check_choice, check_image_shape, check_images,
                                   check_int, check_seed, derived_seed)

VALUE_RANGE = "binary"
CELLS = ("simple", "gru", "lstm")
_LAYERS = {
    "simple": keras.layers.SimpleRNN,
    "gru": keras.layers.GRU,
    "lstm": keras.layers.LSTM,
}

# What the chapter trains with (book/04_rnn/row_models.ipynb).
BOOK_CONFIG = {"units": 128, "epochs": 8, "batch_size": 32, "learning_rate": 3e-3,
               "clipnorm": 1.0, "steps_per_execution": 16}
"""The configuration the row-model notebook trains each of the three cells with
on ``mnist10k``, sized so that the three train together in about a minute on two
CPU cores. ``steps_per_execution`` runs 16 of the short row-RNN steps in one
compiled call (the same steps, bit for bit), so ``fit``'s per-call overhead
does not slow training."""


LONG_CONFIG = {"units": 256, "epochs": 150, "batch_size": 32, "learning_rate": 2e-3,
               "clipnorm": 1.0, "steps_per_execution": 16, "seed": 0, "check_every": 5}
"""The configuration of the longer-trained checkpoint (:mod:`companion.pretrained`):
twice the book's units, a fresh binarisation of the training digits every epoch,
a cosine learning-rate decay over the whole run."""


def _recurrent_layer(cell, units, seed, return_sequences=True, activation=None,
                     recurrent_gain=1.0):
    options = {
        "return_sequences": return_sequences,
        "kernel_initializer": keras.initializers.GlorotUniform(seed=seed),
        "recurrent_initializer": keras.initializers.Orthogonal(
            gain=recurrent_gain, seed=derived_seed(seed, 1)),
        # The cell's dropout seed: given, so that making the layer draws nothing
        # from Python's global generator.
        "seed": derived_seed(seed, 3),
    }
    if activation is not None:
        options["activation"] = activation
    return _LAYERS[cell](units, **options)


def _cell_step(cell_layer, inputs, states):
    """One step of a Keras RNN cell; states and outputs as tuples, states kept
    in the dtype they came in (a scan's carry may not change dtype)."""
    output, new_states = cell_layer(inputs, list(states))
    if not isinstance(new_states, (list, tuple)):
        new_states = [new_states]
    return output, tuple(ops.cast(new, old.dtype) for new, old in zip(new_states, states))


def _initial_states(cell_layer, batch, dtype):
    sizes = cell_layer.state_size
    sizes = sizes if isinstance(sizes, (list, tuple)) else [sizes]
    return tuple(jnp.zeros((batch, size), dtype) for size in sizes)


def raster_causal_mask(height, width):
    """Which pixel may read which, in raster order: ``mask[i, j] = 1`` iff ``i < j``.

    Number the pixels of a `height` x `width` image in raster order (row by
    row, left to right): pixel ``(r, c)`` is ``k = r * width + c``. An
    autoregressive model's logit of pixel `j` may depend on pixel `i` only if
    `i` comes strictly before `j`. Rows of the mask are the pixels read
    (inputs), columns the pixels predicted (outputs), so ``x @ (A * mask)``
    is causal for a flattened image `x`; `RowRNN`'s left context uses it on
    one row (``raster_causal_mask(1, width)``).

    Formula:

    ```
    mask[i, j] = 1 if i < j else 0,    i, j in 0 .. height * width - 1
    ```

    Args:
        height: rows of the image, >= 1.
        width: pixels a row, >= 1.

    Returns:
        float32 numpy array `(height * width, height * width)`, strictly upper
        triangular: column 0 (the first pixel) is all zeros.

    Raises:
        ValueError: if `height` or `width` is not a positive integer.

    Example:

    >>> raster_causal_mask(2, 2).astype(int).tolist()
    [[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    """
    pixels = check_int("height", height) * check_int("width", width)
    return np.triu(np.ones((pixels, pixels), "float32"), k=1)


@keras.saving.register_keras_serializable(package="companion")
class RowRNN(keras.Model):
    """Autoregressive model of binary images, one row a time step.

    ``p(x) = prod_t prod_j Bernoulli(x_{t,j}; sigmoid(logit_{t,j}))`` with logits
    ``l_t = W_y h_t + b_y + x_t A``: ``h_t`` is computed from the rows above row t
    only, and ``A`` is strictly upper triangular (``A_ij = 0`` unless i < j),
    so ``logit_{t,j}`` reads only the pixels left of j in row t. `call` returns
    these logits under teacher forcing; `fit(images)` minimises the mean of
    :func:`companion.losses.autoregressive_nll`, the exact negative
    log-likelihood in nats (:meth:`compute_loss`), and `evaluate(images)`
    returns that mean. Clip gradients with the optimiser, e.g.
    ``compile(optimizer=keras.optimizers.Adam(clipnorm=1.0))``. Under a mixed
    precision policy the network runs in float16 or bfloat16 and the logits,
    the likelihood and the samples are float32.

    Args:
        image_shape: `(height, width, channels)` of the images; a row of
            ``width * channels`` pixels is one time step.
        cell: ``"simple"`` (Elman), ``"gru"`` (Cho et al. 2014) or ``"lstm"``
            (Hochreiter and Schmidhuber 1997).
        units: size of the recurrent state.
        seed: int seed of the weight initialisers and of the sampler's
            `SeedGenerator`, or None for fresh seeds (reproducible after
            `keras.utils.set_random_seed`).
        left_context: add the term ``x_t A`` (True) or treat the pixels of a
            row as independent given the state (False, ``A = 0``).
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Raises:
        ValueError: for an unknown `cell`, a bad `units` or `image_shape`, or
            a `seed` that is not None or an integer in [0, 2**32 - 1].

    Example:

    >>> import numpy as np
    >>> model = RowRNN(cell="gru", units=8)
    >>> images = np.zeros((2, 28, 28, 1), "float32")
    >>> model(images).shape
    (2, 28, 28, 1)
    """

    def __init__(self, image_shape=(28, 28, 1), cell="lstm", units=128, seed=0,
                 left_context=True, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = check_image_shape(image_shape)
        self.cell_type = check_choice("cell", cell, CELLS)
        self.units = check_int("units", units)
        self.seed = check_seed(seed)
        height, width, channels = self.image_shape
        self.row_size = width * channels
        self.recurrent = _recurrent_layer(self.cell_type, self.units, self.seed)
        self.readout = keras.layers.Dense(
            self.row_size,
            kernel_initializer=keras.initializers.GlorotUniform(
                seed=derived_seed(self.seed, 2)),
            name="readout",
        )
        self.left_context = bool(left_context)
        # Mask of A: entry (i, j) may be non-zero only for i < j (one row of pixels).
        self.left_mask = raster_causal_mask(1, self.row_size)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def build(self, input_shape=None):
        rows = (None, self.image_shape[0], self.row_size)
        self.recurrent.build(rows)
        self.readout.build((None, self.image_shape[0], self.units))
        if self.left_context:
            self.left_kernel = self.add_weight(
                shape=(self.row_size, self.row_size), initializer="zeros",
                name="left_kernel")
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.update(image_shape=self.image_shape, cell=self.cell_type,
                      units=self.units, seed=self.seed, left_context=self.left_context)
        return config

    # Teacher forcing and the exact likelihood ------------------------------------

    def _rows(self, images):
        return ops.reshape(images, (-1, self.image_shape[0], self.row_size))

    def call(self, images, training=False):
        """Logits of every pixel given the pixels before it (teacher forcing).

        Args:
            images: `(B, H, W, C)` binary images.

        Returns:
            Logits of shape `(B, H, W, C)`; the logit of a pixel depends only
            on the pixels before it in raster order.
        """
        rows = self._rows(ops.convert_to_tensor(images, self.compute_dtype))
        # Row t's input is the true row t - 1 (a zero row for t = 1).
        above = ops.pad(rows[:, :-1], ((0, 0), (1, 0), (0, 0)))
        states = self.recurrent(above, training=training)   # h_t: the rows above t
        logits = self.readout(states) + self._left_terms(rows)
        # float32 whatever the policy: the likelihood sums 784 pixels' terms.
        return ops.cast(ops.reshape(logits, (-1,) + self.image_shape), "float32")

    def _left_terms(self, rows):
        """``x_t A`` for every row: each pixel's logit gets the pixels left of it."""
        if not self.left_context:
            return 0.0
        return ops.matmul(rows, self.left_kernel * self.left_mask)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        """The batch's mean exact negative log-likelihood, in nats an image.

        Keras' own train step differentiates it (and scales it under a
        ``mixed_float16`` policy); `evaluate` and validation report it. The
        targets are the images themselves: `y` and `sample_weight` must be None.
        """
        if y is not None or sample_weight is not None:
            raise ValueError("RowRNN's data must be images only, without targets "
                             "or sample weights: the targets are the images.")
        nll = losses.autoregressive_nll(self._rows(x), self._rows(y_pred))
        return ops.mean(nll)

    def _check_data(self, name, x, *extra):
        """Check `x`; `extra` (targets, sample weights) must all be None."""
        if any(item is not None for item in extra):
            raise ValueError(f"RowRNN takes images only (`{name}` without targets or "
                             f"sample weights): the targets are the images themselves.")
        return check_binary(x, name, shape=self.image_shape)

    def fit(self, x=None, y=None, validation_data=None, **kwargs):
        """Train on binary images `(N, H, W, C)`; `y` must stay None.

        `validation_data`, if given, holds such images only (or `(images,)`);
        `fit` and `evaluate` report the mean exact NLL in nats an image.
        """
        x = self._check_data("x", x, y)
        if validation_data is not None:
            validation_data = self._check_data(
                "validation_data", *keras.utils.unpack_x_y_sample_weight(validation_data))
        return super().fit(x, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        """Mean exact NLL of binary images `(N, H, W, C)`, in nats an image."""
        return super().evaluate(self._check_data("x", x, y), **kwargs)

    # Compiled inference ---------------------------------------------------------------

    def _variables(self):
        if not self.built:
            self.build()
        return self.trainable_variables + self.non_trainable_variables

    def logits(self, images):
        """Teacher-forced logits as a float32 numpy array, `(N, H, W, C)`.

        Computed by one compiled program (:mod:`companion.inference`) in
        fixed-size chunks, whatever the number of images.
        """
        images = check_images(images, "images", shape=self.image_shape)
        if not len(images):
            return np.zeros(images.shape, "float32")
        run = inference.compiled(self, "logits", self.call, self._variables())
        return inference.in_chunks(run, len(images), (images,))

    def _log_likelihood(self, images):
        """``log p(x)`` of each image: minus the summed Bernoulli terms of its logits."""
        logits = self.call(images)
        return -losses.autoregressive_nll(self._rows(images), self._rows(logits))

    def log_likelihood(self, images):
        """Exact per-example log p(x) in nats.

        Formula:

        ```
        log p(x) = sum_t log p(x_t | x_<t) = -autoregressive_nll(x, call(x))
        ```

        Args:
            images: binary images `(N, H, W, C)` in {0, 1}.

        Returns:
            float numpy array `(N,)`, each <= 0.

        Raises:
            ValueError: for a wrong shape or values outside {0, 1}.

        Example:

        >>> import numpy as np
        >>> model = RowRNN(units=8)
        >>> model.log_likelihood(np.zeros((3, 28, 28, 1), "float32")).shape
        (3,)
        """
        images = check_binary(images, shape=self.image_shape)
        if not len(images):
            return np.zeros((0,), "float64")
        run = inference.compiled(self, "log_likelihood", self._log_likelihood,
                                 self._variables())
        return inference.in_chunks(run, len(images), (images,)).astype("float64")

    # Ancestral sampling -----------------------------------------------------------

    def _sample_rows(self, key, given, rows_given, temperature):
        """Draw the rows in raster order; rows before `rows_given` are copied.

        Args:
            key: a JAX random key.
            given: `(B, H, row_size)` rows to keep (only the first `rows_given`).
            rows_given: number of rows copied from `given`.
            temperature: tau > 0, divides every logit.

        Returns:
            `(B, H, row_size)` float32 rows of pixels in {0, 1}.
        """
        cell = self.recurrent.cell
        batch, height = given.shape[0], self.image_shape[0]
        dtype = self.compute_dtype   # the network's: float16 or bfloat16 if mixed

        def next_row(carry, inputs):
            row_above, states = carry
            t, row_key, given_row = inputs
            # One recurrent step reads the row above: h_t = f(x_{t-1}, h_{t-1}).
            output, states = _cell_step(cell, row_above, states)
            # Its pixels, left to right, from sigmoid((W_y h_t + b_y + x_t A) / tau).
            row = self._draw_row(self.readout(output), row_key, temperature)
            # When completing an image, the given row replaces the drawn one.
            row = jnp.where(t < rows_given, given_row, row.astype(dtype))
            return (row, states), row

        start = (jnp.zeros((batch, self.row_size), dtype),   # x_0 = 0
                 _initial_states(cell, batch, dtype))        # h_0 = 0
        inputs = (jnp.arange(height), jax.random.split(key, height),
                  jnp.swapaxes(given.astype(dtype), 0, 1))
        _, rows = jax.lax.scan(next_row, start, inputs)      # (H, B, row_size)
        return jnp.swapaxes(rows, 0, 1).astype("float32")

    def _draw_row(self, state_logits, key, temperature):
        """Draw one row, pixel j from ``sigmoid((s_j + sum_{i<j} x_i A_ij) / tau)``.

        ``s = W_y h_t + b_y`` is `state_logits`. Pixel j needs the pixels left of
        it, so a `fori_loop` draws them in order, in float32 whatever the policy.
        """
        state_logits = state_logits.astype("float32")
        uniforms = jax.random.uniform(key, state_logits.shape)
        if not self.left_context:   # the pixels are independent given h_t
            return (uniforms < jax.nn.sigmoid(state_logits / temperature)).astype("float32")

        def draw_pixel(j, row):
            # Pixels >= j are still 0 and A is strictly upper triangular, so
            # the logit of pixel j reads the pixels drawn before it only.
            logits = (state_logits + self._left_terms(row)) / temperature
            pixel = uniforms[:, j] < jax.nn.sigmoid(logits[:, j])
            return row.at[:, j].set(pixel.astype(row.dtype))

        return jax.lax.fori_loop(0, self.row_size, draw_pixel,
                                 jnp.zeros_like(state_logits))

    def _generate(self, given_rows, rows_given, seed, temperature):
        """`_sample_rows` compiled once, run on fixed-size chunks of `given_rows`."""
        if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
                or not temperature > 0 or not np.isfinite(temperature)):
            raise ValueError(f"`temperature` must be a finite number > 0; got "
                             f"{temperature!r}.")
        key = inference.seed_key(self.seed_generator, check_seed(seed))
        run = inference.compiled(self, "sample", self._sample_rows, self._variables())
        rows_given, temperature = np.int32(rows_given), np.float32(temperature)
        rows = inference.in_chunks(
            lambda given, chunk_key: run(chunk_key, given, rows_given, temperature),
            len(given_rows), (given_rows,), key=key)
        return rows.reshape((-1,) + self.image_shape)

    def sample(self, num, seed=None, temperature=1.0):
        """Draw images row by row from the model (ancestral sampling).

        Each pixel is drawn from ``Bernoulli(sigmoid(logit_{t,j} / tau))`` given the
        pixels drawn before it: a `jax.lax.scan` over rows (one recurrent step
        each) with a loop over the row's pixels inside, compiled once and run on
        chunks of :data:`companion.inference.CHUNK` images, so the first images
        of ``sample(1000, seed=s)`` are ``sample(10, seed=s)``.

        Args:
            num: number of images.
            seed: int in [0, 2**32 - 1] for reproducible samples, or None to
                advance the model's own seed generator.
            temperature: tau > 0; tau < 1 sharpens, tau > 1 flattens each pixel's
                distribution (tau = 1 samples the model itself).

        Returns:
            float32 numpy array `(num, H, W, C)` with values in {0, 1}.

        Raises:
            ValueError: for a bad `num`, `seed` or `temperature`.

        Example:

        >>> model = RowRNN(units=8)
        >>> bool((model.sample(2, seed=1) == model.sample(2, seed=1)).all())
        True
        """
        num = check_int("num", num)
        zeros = np.zeros((num, self.image_shape[0], self.row_size), "float32")
        return self._generate(zeros, 0, seed, temperature)

    def complete(self, images, rows_given, seed=None, temperature=1.0):
        """Keep the first `rows_given` rows and sample the rest from the model.

        The given rows are fed through the network exactly as in training, then
        the remaining rows are drawn from ``p(x_t | x_<t)``.

        Args:
            images: binary images `(N, H, W, C)`; only their first `rows_given`
                rows are read.
            rows_given: number of rows to keep, 0 <= rows_given <= H.
            seed: int in [0, 2**32 - 1] for reproducible completions, or None.
            temperature: tau > 0, as in :meth:`sample`.

        Returns:
            float32 numpy array `(N, H, W, C)` whose first `rows_given` rows equal
            the input's exactly.

        Raises:
            ValueError: for a bad shape, non-binary values or `rows_given`
                outside [0, H].

        Example:

        >>> import numpy as np
        >>> model = RowRNN(units=8)
        >>> top = np.ones((1, 28, 28, 1), "float32")
        >>> bool((model.complete(top, 14, seed=0)[:, :14] == 1).all())
        True
        """
        images = check_binary(images, shape=self.image_shape)
        rows_given = check_int("rows_given", rows_given, minimum=0)
        if rows_given > self.image_shape[0]:
            raise ValueError(f"`rows_given` must be <= the image height "
                             f"{self.image_shape[0]}; got {rows_given}.")
        rows = images.reshape((len(images), self.image_shape[0], self.row_size))
        if not len(rows):
            return images
        return self._generate(rows, rows_given, seed, temperature)


def make_model(image_shape=(28, 28, 1), cell="lstm", units=BOOK_CONFIG["units"],
               seed=0, learning_rate=BOOK_CONFIG["learning_rate"],
               clipnorm=BOOK_CONFIG["clipnorm"],
               steps_per_execution=BOOK_CONFIG["steps_per_execution"], **kwargs):
    """The book's RowRNN, compiled with Adam and gradient clipping.

    Args:
        image_shape: `(height, width, channels)`.
        cell: ``"simple"``, ``"gru"`` or ``"lstm"``.
        units: size of the recurrent state.
        seed: int seed of the initialisers and the sampler, or None. The
            weights come from it alone: no global random state is read or
            changed (with None, fresh seeds are drawn from Python's generator).
        learning_rate: Adam's step size.
        clipnorm: rescale each gradient to this norm at most (None: no clipping).
        steps_per_execution: training steps a compiled call of ``fit``.
        **kwargs: passed to :class:`RowRNN`.

    Returns:
        A compiled :class:`RowRNN`, ready for ``fit(binary_images)``.

    Example:

    >>> model = make_model(cell="gru", units=8)
    >>> model.cell_type
    'gru'
    """
    model = RowRNN(image_shape=image_shape, cell=cell, units=units, seed=seed,
                   **kwargs)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
                  steps_per_execution=steps_per_execution)
    return model


# Gradient flow through time ------------------------------------------------------


def gradient_norm_by_distance(cell="simple", units=64, steps=40, seed=0,
                              input_dim=28, batch=8, activation=None,
                              recurrent_gain=1.0, forget_bias=None):
    """Measure ``||d h_T / d x_t||`` against the time distance ``T - t``.

    A freshly initialised recurrent layer (Keras defaults: Glorot input
    weights, orthogonal recurrent weights scaled by `recurrent_gain`) reads
    standard-normal input sequences; the Jacobian of its last state with
    respect to each input is computed exactly with `jax.jacrev`.

    Formula:

    ```
    d h_T / d x_t = (prod_{k=t+1}^{T} d h_k / d h_{k-1}) d h_t / d x_t
    norm[d]       = mean over sequences of ||d h_T / d x_{T-d}||_F
    ```

    The product of T - t state Jacobians shrinks or grows geometrically unless
    its factors have norm close to 1 (Bengio et al. 1994; Pascanu et al. 2013).

    Args:
        cell: ``"simple"``, ``"gru"`` or ``"lstm"``.
        units: state size.
        steps: sequence length T.
        seed: int seed of the weights and the inputs, in [0, 2**32 - 1].
        input_dim: size of one input vector.
        batch: number of sequences averaged.
        activation: the cell's activation (None: the Keras default, tanh);
            the original document's listing uses ``"relu"``.
        recurrent_gain: scale of the orthogonal recurrent initialiser.
        forget_bias: for ``"lstm"``, set the forget gate's bias to this value
            (Keras initialises it to 1).

    Returns:
        float numpy array `(steps,)`: entry d is the mean norm at distance d.

    Raises:
        ValueError: for an unknown `cell`, bad sizes or a bad `seed`.

    Example:

    >>> norms = gradient_norm_by_distance("simple", units=16, steps=10)
    >>> norms.shape, bool(norms[0] > norms[-1])
    ((10,), True)
    """
    check_choice("cell", cell, CELLS)
    for name, value in (("units", units), ("steps", steps), ("input_dim", input_dim),
                        ("batch", batch)):
        check_int(name, value)
    if check_seed(seed) is None:
        raise ValueError("`seed` must be an integer in [0, 4294967295]; got None.")
    layer = _recurrent_layer(cell, units, seed, return_sequences=False,
                             activation=activation, recurrent_gain=recurrent_gain)
    layer.build((None, steps, input_dim))
    if forget_bias is not None:
        if cell != "lstm":
            raise ValueError(f"`forget_bias` applies to cell='lstm' only; got "
                             f"cell={cell!r}.")
        bias = np.array(layer.cell.bias.numpy())
        bias[units:2 * units] = forget_bias
        layer.cell.bias.assign(bias)
    values = [v.value for v in layer.trainable_variables]
    fixed = [v.value for v in layer.non_trainable_variables]
    inputs = jax.random.normal(jax.random.PRNGKey(seed), (batch, steps, input_dim))

    def last_state(trainable, sequence):
        output, _ = layer.stateless_call(trainable, fixed, sequence[None])
        return output[0]

    jacobian = jax.vmap(jax.jacrev(last_state, argnums=1), in_axes=(None, 0))
    per_step = jacobian(values, inputs)                    # (batch, units, T, in)
    norms = jnp.sqrt(jnp.sum(per_step ** 2, axis=(1, 3)))  # (batch, T)
    return np.asarray(jnp.mean(norms, axis=0)[::-1], dtype="float64")
