"""Next-frame prediction for small videos: an LSTM that moves the last frame.

A video is a sequence of frames ``v_1, ..., v_T``. Each frame is flattened and
encoded by a dense layer, and an LSTM reads the codes one frame at a time: the
fully connected LSTM of Srivastava et al. (2015). Instead of drawing the next
frame pixel by pixel out of its state, a dense layer reads from the state two
softmax distributions over displacements, ``w^y`` over the vertical shifts
and ``w^x`` over the horizontal ones, ``-max_shift .. max_shift`` pixels each,
and the prediction is the current frame moved by that mixture of shifts: the
frame convolved with a normalised kernel ``w^y (w^x)^T`` computed for each
video at each step, as in the dynamic filters of De Brabandere et al. (2016)
and the CDNA model of Finn et al. (2016):

    e_t = relu(E vec(v_t) + a),   h_t, c_t = LSTM(e_t, h_{t-1}, c_{t-1}),
    (w^y_t, w^x_t) = softmax(D h_t + d)   (one softmax per axis),
    m_{t+1}[i, j] = sum_{dy, dx} w^y_t[dy] w^x_t[dx] v_t[i - dy, j - dx],
    p(v_{t+1} | v_<=t) = eps / 2 + (1 - eps) m_{t+1}.

Pixels shifted in from outside the frame are black. The floor ``eps`` keeps
every probability inside (0, 1), so the cross-entropy stays finite. The
network decides *where the content goes*; the content itself is copied, where
a dense readout of all 784 pixels would have to re-learn every digit at every
position. Every layer is dense: the recurrence is not convolutional, as a
ConvLSTM's is (Shi et al. 2015), which is much slower to train on a CPU.

Training is teacher forced (the true frames go in) with the per-pixel binary
cross-entropy on grey levels in [0, 1]; a *rollout* instead feeds each
predicted frame back as the next input, which is how the model extrapolates
the future. `constant_velocity` is the baseline a reader tries first: it moves
the last frame on at the velocity measured between the last two, bouncing the
digit's square off the borders as `companion.data.moving_digits` does.

Example:

>>> import numpy as np
>>> from companion.models import video
>>> model = video.make_model(units=8, code_size=8)
>>> model.rollout(np.zeros((2, 3, 28, 28, 1), "float32"), steps=4).shape
(2, 4, 28, 28, 1)
"""

import jax
import jax.numpy as jnp
import keras
import numpy as np
from keras import ops

from companion import inference
from companion.data import bounce
from companion._validation import check_images, check_int, check_seed, derived_seed

VALUE_RANGE = "unit"
FLOOR = 1e-4
"""``eps``: predicted probabilities lie in [eps / 2, 1 - eps / 2]."""

# What the chapter trains with (book/04_rnn/video.ipynb).
BOOK_CONFIG = {"units": 256, "code_size": 128, "max_shift": 3, "sequences": 1024,
               "frames": 20, "epochs": 10, "batch_size": 32,
               "learning_rate": 3e-3}


def _logit(probabilities):
    return ops.log(probabilities) - ops.log1p(-probabilities)


def _check_videos(videos, frame_shape, name="videos", minimum_frames=1):
    try:
        array = np.asarray(videos, dtype="float32")
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{name}` must be a numeric array of shape (N, T, "
                         f"{', '.join(map(str, frame_shape))}); could not read the "
                         f"{type(videos).__name__} given as one ({error}).") from None
    if array.ndim != 5 or tuple(array.shape[2:]) != tuple(frame_shape):
        raise ValueError(
            f"`{name}` must have shape (N, T, {', '.join(map(str, frame_shape))}); "
            f"got shape {array.shape}."
        )
    if array.shape[1] < minimum_frames:
        raise ValueError(f"`{name}` needs at least {minimum_frames} frames; got "
                         f"{array.shape[1]}.")
    check_images(array.reshape((-1,) + tuple(frame_shape)), name)
    return array


@keras.saving.register_keras_serializable(package="companion")
class NextFramePredictor(keras.Model):
    """LSTM over frame codes that predicts each frame by moving the one before it.

    `call(videos)` takes `(B, T, H, W, C)` frames in [0, 1] and returns the
    logits of frames 2..T, shape `(B, T - 1, H, W, C)`, each computed from the
    frames before it only. `fit(videos)` minimises the mean per-pixel binary
    cross-entropy of these predictions. Under a mixed precision policy the
    network runs in float16 or bfloat16, and the move of the frame, the logits
    and the loss stay in float32 (``1 - eps / 2`` is 1 in half precision).

    Args:
        frame_shape: `(height, width, channels)` of one frame.
        units: size of the LSTM state.
        code_size: size of each frame's code.
        max_shift: largest displacement, in pixels along each axis, that one
            step can move the content (``2 max_shift + 1`` shifts an axis).
        seed: int seed of the weight initialisers, in [0, 2**32 - 1], or None
            for fresh seeds (reproducible after `keras.utils.set_random_seed`).
        **kwargs: passed to `keras.Model`.

    Raises:
        ValueError: for bad sizes or a bad `seed`.

    Example:

    >>> import numpy as np
    >>> model = NextFramePredictor(units=8, code_size=8)
    >>> model(np.zeros((2, 5, 28, 28, 1), "float32")).shape
    (2, 4, 28, 28, 1)
    """

    def __init__(self, frame_shape=(28, 28, 1), units=256, code_size=128, max_shift=3,
                 seed=0, **kwargs):
        super().__init__(**kwargs)
        frame_shape = tuple(frame_shape)
        if len(frame_shape) != 3:
            raise ValueError(f"`frame_shape` must be (height, width, channels); got "
                             f"{frame_shape!r}.")
        self.frame_shape = tuple(check_int("frame_shape", s) for s in frame_shape)
        self.units = check_int("units", units)
        self.code_size = check_int("code_size", code_size)
        self.max_shift = check_int("max_shift", max_shift, minimum=0)
        self.seed = check_seed(seed)
        self.pixels = int(np.prod(self.frame_shape))
        shifts = range(-self.max_shift, self.max_shift + 1)
        # shift_matrices[axis][k] moves content by shifts[k] pixels along `axis`.
        self.shift_matrices = tuple(
            np.stack([np.eye(size, k=-shift, dtype="float32") for shift in shifts])
            for size in self.frame_shape[:2])
        self.encoder = keras.layers.Dense(
            self.code_size, activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=self._seed(0)))
        self.recurrent = keras.layers.LSTM(
            self.units, return_sequences=True,
            kernel_initializer=keras.initializers.GlorotUniform(seed=self._seed(1)),
            recurrent_initializer=keras.initializers.Orthogonal(seed=self._seed(2)),
            seed=self._seed(4),   # dropout's: given, so nothing global is drawn
        )
        self.readout = keras.layers.Dense(
            2 * len(shifts),
            kernel_initializer=keras.initializers.GlorotUniform(seed=self._seed(3)),
            name="shift_logits")

    def _seed(self, offset):
        """The seed of one initialiser: ``seed + offset`` (modulo 2**32), or None (fresh)."""
        return derived_seed(self.seed, offset)

    def build(self, input_shape=None):
        self.encoder.build((None, self.pixels))
        self.recurrent.build((None, None, self.code_size))
        self.readout.build((None, self.units))
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.update(frame_shape=self.frame_shape, units=self.units,
                      code_size=self.code_size, max_shift=self.max_shift,
                      seed=self.seed)
        return config

    def _move(self, frames, shift_logits):
        """``eps/2 + (1 - eps) * (frames moved by the mixture of shifts)``.

        The mixture is separable: a softmax over vertical shifts times a
        softmax over horizontal ones, so moving a frame is two small matrix
        products, ``S_y(w_y) v S_x(w_x)^T``, with banded matrices
        ``S(w)[i, i'] = w_{i - i'}``.

        Args:
            frames: `(N, H, W, C)`.
            shift_logits: `(N, 2 (2 max_shift + 1))`: the vertical shifts'
                logits, then the horizontal shifts'.

        Returns:
            `(N, H, W, C)` float32 probabilities of the next frames' pixels.
        """
        frames = ops.cast(frames, "float32")
        shift_logits = ops.cast(shift_logits, "float32")
        side = 2 * self.max_shift + 1
        rows = ops.einsum("nk,kab->nab", ops.softmax(shift_logits[:, :side], axis=-1),
                          self.shift_matrices[0])
        columns = ops.einsum("nk,kab->nab", ops.softmax(shift_logits[:, side:], axis=-1),
                             self.shift_matrices[1])
        moved = ops.einsum("nab,nbcz,ndc->nadz", rows, frames, columns)
        return FLOOR / 2 + (1.0 - FLOOR) * moved

    def call(self, videos, training=False):
        """Logits of frames 2..T, each from the true frames before it (teacher forcing)."""
        videos = ops.convert_to_tensor(videos, "float32")
        steps = ops.shape(videos)[1] - 1
        flat = ops.reshape(videos[:, :-1], (-1, steps, self.pixels))
        states = self.recurrent(self.encoder(flat), training=training)
        shift_logits = ops.reshape(self.readout(states), (-1, self.readout.units))
        moved = self._move(ops.reshape(videos[:, :-1], (-1,) + self.frame_shape),
                           shift_logits)
        return _logit(ops.reshape(moved, (-1, steps) + self.frame_shape))

    def _scan(self, inputs, known):
        """Predicted frames after each input; inputs from index `known` on are
        replaced by the model's own previous prediction (its pixel probabilities).

        Frames are float32; the LSTM's state is in the network's dtype (float16
        or bfloat16 under mixed precision), as a scan's carry keeps its dtype.
        """
        cell = self.recurrent.cell
        inputs = inputs.astype("float32")
        batch, steps = inputs.shape[0], inputs.shape[1]
        zeros = jnp.zeros((batch, self.units), self.compute_dtype)

        def step(carry, step_inputs):
            predicted, h, c = carry
            t, given = step_inputs
            frame = jnp.where(t < known, given, predicted)
            code = self.encoder(jnp.reshape(frame, (batch, self.pixels)))
            output, (h, c) = cell(code, [h, c])
            predicted = self._move(frame, self.readout(output))
            return (predicted, h.astype(zeros.dtype), c.astype(zeros.dtype)), predicted

        start = jnp.zeros((batch,) + self.frame_shape, inputs.dtype)
        _, frames = jax.lax.scan(step, (start, zeros, zeros),
                                 (jnp.arange(steps), jnp.swapaxes(inputs, 0, 1)))
        return jnp.swapaxes(frames, 0, 1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        """Mean per-pixel binary cross-entropy of the predicted frames, in nats.

        The targets are the videos' own later frames: `y` and `sample_weight`
        must be None (`fit`, `evaluate` and validation data hold videos only).
        """
        if y is not None or sample_weight is not None:
            raise ValueError("NextFramePredictor's data must be videos only, without "
                             "targets or sample weights: the targets are the "
                             "videos' later frames.")
        targets = ops.convert_to_tensor(x, y_pred.dtype)[:, 1:]
        return ops.mean(ops.softplus(y_pred) - targets * y_pred)

    def _check_data(self, name, x, *extra):
        """Check `x`; `extra` (targets, sample weights) must all be None."""
        if any(item is not None for item in extra):
            raise ValueError(f"NextFramePredictor takes videos only (`{name}` without "
                             f"targets or sample weights): the targets are the "
                             f"videos' later frames.")
        return _check_videos(x, self.frame_shape, name, minimum_frames=2)

    def evaluate(self, x=None, y=None, **kwargs):
        """Mean per-pixel cross-entropy of the one-step predictions, in nats.

        `x` holds videos `(N, T, H, W, C)` in [0, 1], T >= 2; `y` must stay None.
        """
        return super().evaluate(self._check_data("x", x, y), **kwargs)

    def fit(self, x=None, y=None, validation_data=None, **kwargs):
        """Train on videos `(N, T, H, W, C)` in [0, 1], T >= 2; `y` must stay None.

        `validation_data`, if given, holds such videos only (or `(videos,)`).
        """
        x = self._check_data("x", x, y)
        if validation_data is not None:
            validation_data = self._check_data(
                "validation_data", *keras.utils.unpack_x_y_sample_weight(validation_data))
        return super().fit(x, validation_data=validation_data, **kwargs)

    def _variables(self):
        if not self.built:
            self.build()
        return self.trainable_variables + self.non_trainable_variables

    def predict_next(self, videos):
        """One-step predictions: the probability of every pixel of frames 2..T.

        One compiled program (:mod:`companion.inference`) for each video length
        T, run on fixed-size chunks of videos.

        Args:
            videos: `(N, T, H, W, C)` in [0, 1], T >= 2.

        Returns:
            float32 numpy array `(N, T - 1, H, W, C)` in [0, 1]; entry t is
            ``p(v_{t+2} | v_1..v_{t+1})``, computed from true frames.
        """
        videos = _check_videos(videos, self.frame_shape, minimum_frames=2)
        if not len(videos):
            return np.zeros((0, videos.shape[1] - 1) + self.frame_shape, "float32")
        run = inference.compiled(self, "predict_next",
                                 lambda batch: jax.nn.sigmoid(self.call(batch)),
                                 self._variables())
        return inference.in_chunks(run, len(videos), (videos,))

    def rollout(self, context, steps):
        """Extrapolate `steps` future frames from `context` frames.

        The context frames are read as in training; then each predicted frame
        (its pixel probabilities, the model's mean prediction) is fed back as
        the next input. One compiled `jax.lax.scan` for each total length
        ``T_c + steps``, run on fixed-size chunks of videos.

        Args:
            context: `(N, T_c, H, W, C)` frames in [0, 1], T_c >= 1.
            steps: number of future frames, >= 1.

        Returns:
            float32 numpy array `(N, steps, H, W, C)` in [0, 1].

        Raises:
            ValueError: for a bad shape, range or `steps`.

        Example:

        >>> import numpy as np
        >>> model = NextFramePredictor(units=8, code_size=8)
        >>> model.rollout(np.zeros((1, 2, 28, 28, 1), "float32"), steps=3).shape
        (1, 3, 28, 28, 1)
        """
        context = _check_videos(context, self.frame_shape, "context")
        steps = check_int("steps", steps)
        batch, known = context.shape[:2]
        if not batch:
            return np.zeros((0, steps) + self.frame_shape, "float32")
        # The context, then steps - 1 empty frames the scan fills with its own.
        padded = np.concatenate(
            [context, np.zeros((batch, steps - 1) + self.frame_shape, "float32")], axis=1)
        run = inference.compiled(self, "rollout", self._scan, self._variables())
        frames = inference.in_chunks(lambda chunk: run(chunk, np.int32(known)), batch,
                                     (padded,))
        return frames[:, known - 1:]


def make_model(frame_shape=(28, 28, 1), units=BOOK_CONFIG["units"],
               code_size=BOOK_CONFIG["code_size"], max_shift=BOOK_CONFIG["max_shift"],
               seed=0, learning_rate=BOOK_CONFIG["learning_rate"], clipnorm=1.0,
               **kwargs):
    """The book's next-frame predictor, compiled with Adam and gradient clipping.

    Args:
        frame_shape, units, code_size, max_shift, seed: see
            :class:`NextFramePredictor` (`seed` None: fresh seeds).
        learning_rate: Adam's step size.
        clipnorm: rescale each gradient to this norm at most.
        **kwargs: passed to :class:`NextFramePredictor`.

    Returns:
        A compiled :class:`NextFramePredictor`, ready for ``fit(videos)``.

    Example:

    >>> make_model(units=8, code_size=8).units
    8
    """
    model = NextFramePredictor(frame_shape=frame_shape, units=units,
                               code_size=code_size, max_shift=max_shift, seed=seed,
                               **kwargs)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm))
    return model


# The baseline a reader thinks of first for moving digits: keep moving at the
# last velocity seen, and bounce off the borders as the digits do.

def constant_velocity(context, steps, object_size=14, max_shift=3):
    """Extrapolate each video by moving its last frame on at its last velocity.

    The velocity is the integer shift that best maps the next-to-last context
    frame onto the last one; the content is a square of side `object_size` (the
    digit's square in `companion.data.moving_digits`) placed around the last
    frame's ink, and the square moves on at that velocity, bouncing off the
    borders by the data's rule. Nothing is learned, and only the context is
    read: never the true velocity. With one context frame there is no motion to
    measure, and every predicted frame is a copy of it.

    Formula (``S_d`` moves a frame by ``d = (d_y, d_x)`` pixels, black coming in;
    ``s = max_shift``; ``T`` is the last context frame)::

        d = argmin_{|d_y|, |d_x| <= s} sum_{i,j} (S_d v_{T-1} - v_T)[i, j]^2
            (ties: the smallest move),
        p_T = top-left corner of the square centred on v_T's centre of mass,
              moved the least to hold the ink and lie in the frame,
        p_{T+k} = p_{T+k-1} + d_{T+k-1}, reflected at 0 and at the frame's
              size - object_size, and d changes sign along an axis where it is,
        vhat_{T+k} = S_{p_{T+k} - p_T} v_T.

    Args:
        context: `(N, T_c, H, W, C)` frames in [0, 1], T_c >= 1.
        steps: number of future frames, >= 1.
        object_size: side of the square that bounces, at most `min(H, W)`.
        max_shift: largest velocity, in pixels a frame along each axis, that
            the search considers (>= 0).

    Returns:
        float32 numpy array `(N, steps, H, W, C)` in [0, 1].

    Raises:
        ValueError: for a bad shape or range of `context`, or a bad `steps`,
            `object_size` or `max_shift`.

    Example:

    >>> import numpy as np
    >>> context = np.zeros((1, 2, 8, 8, 1), "float32")
    >>> context[0, 0, 1, 1] = context[0, 1, 1, 2] = 1.0   # one pixel moving right
    >>> future = constant_velocity(context, steps=8, object_size=1)
    >>> [int(np.argmax(frame[1, :, 0])) for frame in future[0]]   # bounces at 7
    [3, 4, 5, 6, 7, 6, 5, 4]
    """
    context = _check_videos(context, _frame_shape(context), "context")
    steps = check_int("steps", steps)
    max_shift = check_int("max_shift", max_shift, minimum=0)
    height, width = context.shape[2:4]
    object_size = check_int("object_size", object_size)
    if object_size > min(height, width):
        raise ValueError(f"`object_size` must be at most the frame's smaller side, "
                         f"{min(height, width)}; got {object_size}.")
    last = context[:, -1]
    if context.shape[1] == 1:
        velocity = np.zeros((len(context), 2), int)
    else:
        velocity = _displacement(context[:, -2], last, max_shift)
    start = _square_around_ink(last, object_size)
    room = np.array([height, width]) - object_size
    position = start
    future = np.zeros((len(context), steps) + context.shape[2:], "float32")
    for k in range(steps):
        position, velocity = bounce(position + velocity, velocity, room)
        for n, (dy, dx) in enumerate(position - start):
            future[n, k] = _shifted(last[n], dy, dx)
    return future


def ink_ratio(predictions, truth):
    """How much of the true frames' ink a prediction keeps in place, per frame.

    Formula:

    ```
    ink_ratio[n, t] = sum_{i,j} vhat_{n,t}[i, j]^2 / sum_{i,j} v_{n,t}[i, j]^2
    ```

    A prediction that moves the digit cleanly keeps its ink and scores 1; a
    blend of shifted copies spreads the same total brightness over more
    pixels, each fainter, and the sum of squares falls (two half-bright copies
    score 1/2). The book calls a predicted frame *sharp* at 0.8 or more and
    *smeared* below 0.7.

    Args:
        predictions: `(N, T, H, W, C)` predicted frames in [0, 1].
        truth: the true frames, the same shape, each with some ink.

    Returns:
        float64 numpy array `(N, T)`.

    Raises:
        ValueError: if the shapes differ.

    Example:

    >>> import numpy as np
    >>> truth = np.zeros((1, 1, 4, 4, 1)); truth[0, 0, 1, 1] = 1.0
    >>> blend = np.zeros_like(truth); blend[0, 0, 1, 1:3] = 0.5   # two half copies
    >>> ink_ratio(truth, truth).tolist(), ink_ratio(blend, truth).tolist()
    ([[1.0]], [[0.5]])
    """
    predictions, truth = np.asarray(predictions, "float64"), np.asarray(truth, "float64")
    if predictions.shape != truth.shape or predictions.ndim != 5:
        raise ValueError("`predictions` and `truth` must both have shape (N, T, H, W, C); "
                         f"got {predictions.shape} and {truth.shape}.")
    return (np.sum(predictions ** 2, axis=(2, 3, 4))
            / np.sum(truth ** 2, axis=(2, 3, 4)))

def _frame_shape(videos):
    """`videos`' frame shape `(H, W, C)` if it has rank 5, else a placeholder for errors."""
    try:
        shape = np.shape(videos)
    except ValueError:   # ragged
        shape = ()
    return tuple(shape[2:]) if len(shape) == 5 else ("H", "W", "C")


def _shifted(frames, dy, dx):
    """`frames` `(..., H, W, C)` moved down by `dy` and right by `dx` pixels, black coming in."""
    moved = np.zeros_like(frames)
    height, width = frames.shape[-3:-1]
    if abs(dy) < height and abs(dx) < width:
        moved[..., max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0), :] = (
            frames[..., max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0), :])
    return moved


def _displacement(previous, last, max_shift):
    """`(N, 2)` integer shifts that best map each `previous` frame onto `last`."""
    span = range(-max_shift, max_shift + 1)
    shifts = sorted(((dy, dx) for dy in span for dx in span),
                    key=lambda shift: abs(shift[0]) + abs(shift[1]))  # ties: smallest
    errors = np.stack([np.sum((_shifted(previous, dy, dx) - last) ** 2, axis=(1, 2, 3))
                       for dy, dx in shifts], axis=1)
    return np.array(shifts)[np.argmin(errors, axis=1)]


def _square_around_ink(frames, size):
    """`(N, 2)` top-left corners of the squares of side `size` around each frame's
    ink: centred on its centre of mass, moved the least to hold the ink's bounding
    box (where it fits) and to lie in the frame. A frame without ink gives (0, 0)."""
    ink = frames.sum(axis=-1)
    corners = []
    for axis in (2, 1):   # summing out the columns gives the rows' profile
        profile = ink.sum(axis=axis)
        length = profile.shape[1]
        mass = profile.sum(axis=1)
        centre = (profile @ np.arange(length)) / np.where(mass > 0, mass, 1)
        inked = profile > 0
        first = np.argmax(inked, axis=1)
        last = length - 1 - np.argmax(inked[:, ::-1], axis=1)
        corner = np.round(centre - (size - 1) / 2).astype(int)
        corner = np.minimum(np.maximum(corner, last - size + 1), first)
        corners.append(np.where(mass > 0, np.clip(corner, 0, length - size), 0))
    return np.stack(corners, axis=1)
