"""Flow matching: a class-conditional U-Net that carries noise onto digits along straight lines.

A *Gaussian path* mixes data ``x`` and noise ``eps ~ N(0, I)``; flow matching
(Lipman et al. 2023) with the straight-line path of rectified flow (Liu et
al. 2023) uses, for a time ``t`` from 0 (noise) to 1 (data),

```
x_t = t * x + (1 - t) * eps                      (:func:`interpolate`)
v   = dx_t/dt = x - eps                          (the velocity target)
loss = E_{x, eps, t} || v_theta(x_t, t) - (x - eps) ||^2
```

The minimiser is ``v*(x_t, t) = E[x - eps | x_t]``, and integrating
``dx/dt = v*(x, t)`` from ``x_0 ~ N(0, I)`` at ``t = 0`` to ``t = 1`` carries
the noise distribution onto the data distribution. Predicting the velocity,
the noise (DDPM, Ho et al. 2020) or the clean data are linear
re-parameterisations of one another at each ``t``
(:func:`to_data_and_noise`, :func:`velocity_from_noise`,
:func:`velocity_from_data`).

**Classifier-free guidance** (Ho and Salimans 2022). One network learns both
``v(x, t, y)`` and ``v(x, t, none)``: during training the label is replaced by
the "no label" token (:data:`NO_LABEL` of the network, index ``num_classes``)
with probability ``label_dropout``. Sampling with guidance scale ``w`` follows

```
v_w = v(x, t, none) + w * (v(x, t, y) - v(x, t, none))
```

(``w = 1``: the conditional model; ``w > 1``: an extrapolation that trades
diversity for agreement with the label). Both predictions come from one
network call on a doubled batch.

This module holds

- :func:`make_unet`, the image network: time and label embeddings, residual
  blocks at 14x14 and 7x7, strided down- and transposed up-sampling;
  :func:`make_mlp_network`, the same inputs and output for 2-D points;
- :class:`FlowMatching`, trained with ``fit((images, labels))`` on
  :func:`companion.losses.flow_matching_loss`, keeping an exponential moving
  average of the weights (``average``) that :meth:`FlowMatching.sample` uses,
  with Euler or Heun integration compiled to one JAX function;
- the path's algebra and the exact velocity of a mixture of Gaussians
  (:func:`mixture_velocity`), which the theory page checks the losses against;
- DDPM's noise schedule, the variances ``delta_t`` and their cumulative
  products ``lambda_t`` (:func:`ddpm_schedule`), and the weights ``nu_t`` that
  make its simple loss a reweighted ELBO (:func:`ddpm_elbo_weights`);
- :func:`make_model` and :data:`BOOK_CONFIG`.

Images are in [-1, 1] for training (:data:`VALUE_RANGE`); ``sample`` returns
[0, 1] like every family.

Example:

>>> from companion.models import diffusion
>>> model = diffusion.make_model(width=8)
>>> model.sample(3, seed=0, labels=[0, 1, 2], steps=2).shape
(3, 28, 28, 1)
"""

import itertools
import math
import numbers

import jax
import keras
import numpy as np
from keras import ops

from companion import losses
from companion.layers import Conv2DTranspose, GlorotUniform
from companion.models._saving import config_with_networks, from_config_with_networks
from companion._validation import (check_choice, check_int, check_non_negative, check_seed,
                                   derived_seed)

VALUE_RANGE = "symmetric"
NUM_CLASSES = 10
SAMPLERS = ("euler", "heun")

BOOK_CONFIG = {
    "width": 24,  # channels at 14x14; 7x7 has twice as many
    "epochs": 3,
    "batch_size": 64,
    "learning_rate": 2e-3,  # Adam's
    "label_dropout": 0.1,  # how often a label is replaced by "no label"
    "ema_momentum": 0.999,
}
"""The configuration the flow-matching notebook trains."""

LONG_CONFIG = {
    "width": 24,
    "epochs": 250,
    "batch_size": 64,
    "learning_rate": 1e-3,  # Adam's, with a cosine decay to 0 over the run
    "label_dropout": 0.1,
    "ema_momentum": 0.999,
    "seed": 0,
    "check_every": 10,  # epochs between validation Fréchet distances
}
"""The configuration of the shipped checkpoint (:mod:`companion.pretrained`): the
book's network, trained longer, with a cosine learning-rate decay over the run;
validated and sampled with the moving average of its weights."""

DEFAULT_STEPS = 20
DEFAULT_GUIDANCE = 2.0
_CHUNK = 250  # samples a compiled call integrates at once


# The network -----------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="companion")
class SinusoidalEmbedding(keras.layers.Layer):
    """Features of a time ``t`` in [0, 1]: sines and cosines of geometric frequencies.

    ```
    f_k = exp(k * log(max_frequency) / (dim/2 - 1)),  k = 0 .. dim/2 - 1
    embedding(t) = [sin(2 pi f_k t) ..., cos(2 pi f_k t) ...]
    ```

    Args:
        dim: an even number of features.
        max_frequency: the highest frequency, in cycles over [0, 1].

    Example:

    >>> SinusoidalEmbedding(4)(np.zeros(2, "float32")).shape
    (2, 4)
    """

    def __init__(self, dim, max_frequency=1000.0, **kwargs):
        super().__init__(**kwargs)
        self.dim = check_int("dim", dim, minimum=4)
        if self.dim % 2:
            raise ValueError(f"`dim` must be even; got {dim!r}.")
        self.max_frequency = float(max_frequency)

    def call(self, t):
        half = self.dim // 2
        frequencies = ops.exp(ops.arange(half, dtype="float32")
                              * (math.log(self.max_frequency) / (half - 1)))
        angles = 2 * math.pi * ops.cast(t, "float32")[:, None] * frequencies[None, :]
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim,
                "max_frequency": self.max_frequency}


def _seeds(seed):
    """An endless stream of kernel seeds from `seed` (None: unseeded): the children
    ``SeedSequence(seed).spawn(...)`` would give, made one at a time."""
    if seed is None:
        yield from itertools.repeat(None)
    seed = check_seed(seed)
    for index in itertools.count():
        yield int(np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1)[0])


def _conditioning(t, label, num_classes, dim, seeds):
    """The embedding of time and label, shared by every block: ``swish(MLP(t) + E[y])``."""
    time = SinusoidalEmbedding(dim, name="time_features")(t)
    time = keras.layers.Dense(dim, activation="swish", name="time_dense_1",
                              kernel_initializer=GlorotUniform(next(seeds)))(time)
    time = keras.layers.Dense(dim, name="time_dense_2",
                              kernel_initializer=GlorotUniform(next(seeds)))(time)
    label = keras.layers.Embedding(num_classes + 1, dim, name="label_embedding",
                                   embeddings_initializer=keras.initializers.RandomNormal(
                                       stddev=1.0, seed=next(seeds)))(label)
    return keras.layers.Activation("swish", name="conditioning")(
        keras.layers.Add(name="time_plus_label")([time, label]))


def _residual_block(x, conditioning, channels, name, seeds):
    """``x + conv(swish(norm(conv(swish(norm(x))) + dense(c))))`` at one resolution."""
    def conv(h, suffix):
        return keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_{suffix}",
                                   kernel_initializer=GlorotUniform(next(seeds)))(h)

    h = keras.layers.Activation("swish")(
        keras.layers.GroupNormalization(8, name=f"{name}_norm_1")(x))
    h = conv(h, "conv_1")
    shift = keras.layers.Dense(channels, name=f"{name}_conditioning",
                               kernel_initializer=GlorotUniform(next(seeds)))(conditioning)
    h = keras.layers.Add()([h, keras.layers.Reshape((1, 1, channels))(shift)])
    h = keras.layers.Activation("swish")(
        keras.layers.GroupNormalization(8, name=f"{name}_norm_2")(h))
    h = conv(h, "conv_2")
    if x.shape[-1] != channels:
        x = keras.layers.Conv2D(channels, 1, name=f"{name}_skip",
                                kernel_initializer=GlorotUniform(next(seeds)))(x)
    return keras.layers.Add(name=name)([x, h])


def _space_to_depth(x):
    """`(B, H, W, C)` -> `(B, H/2, W/2, 4C)`: each 2x2 patch becomes one pixel's channels."""
    height, breadth, channels = x.shape[1:]
    x = keras.layers.Reshape((height // 2, 2, breadth // 2, 2, channels))(x)
    x = keras.layers.Permute((1, 3, 2, 4, 5))(x)
    return keras.layers.Reshape((height // 2, breadth // 2, 4 * channels))(x)


def _depth_to_space(x, image_shape):
    """The inverse of :func:`_space_to_depth`, back to `image_shape`."""
    height, breadth, channels = image_shape
    x = keras.layers.Reshape((height // 2, breadth // 2, 2, 2, channels))(x)
    x = keras.layers.Permute((1, 3, 2, 4, 5))(x)
    return keras.layers.Reshape(image_shape)(x)


def make_unet(image_shape=(28, 28, 1), width=BOOK_CONFIG["width"], num_classes=NUM_CLASSES, seed=None,
              name="unet"):
    """The velocity network ``v(x_t, t, y)`` for images: a small U-Net.

    ```
    28x28xC --2x2 patches--> 14x14x4C --conv--> 14x14xw --res--> ------ skip --+
      --conv, stride 2--> 7x7x2w --res--res-->                                  |
      --transposed conv, stride 2--> 14x14xw ++ concat --res--> 14x14xw <-------+
      --conv--> 14x14x4C --patches back--> 28x28xC
    ```

    Every residual block adds a projection of the conditioning
    ``swish(MLP(sinusoids(t)) + E[y])``, where ``E`` embeds the
    ``num_classes`` labels and a "no label" token (index ``num_classes``).
    No convolution runs at 28x28: each 2x2 patch of pixels becomes one
    pixel with 4C channels (and back at the end), so the width is spent at
    14x14 and 7x7, where a convolution costs a quarter and a sixteenth of
    one at 28x28. The last convolution starts at zero, so the untrained
    network predicts ``v = 0``.

    Args:
        image_shape: `(H, W, C)`, H and W divisible by 4.
        width: channels at half resolution (>= 8, a multiple of 8: the group
            normalisation has 8 groups).
        num_classes: number of labels (the "no label" token is one more).
        seed: an int makes the initial weights deterministic; None draws them.
        name: the model's name.

    Returns:
        A functional `keras.Model` from ``[x (B, H, W, C), t (B,), label (B,)]``
        to a velocity `(B, H, W, C)`.

    Example:

    >>> network = make_unet(width=8)
    >>> network.output_shape
    (None, 28, 28, 1)
    """
    width = check_int("width", width, minimum=8)
    if width % 8:
        raise ValueError(f"`width` must be a multiple of 8; got {width!r}.")
    num_classes = check_int("num_classes", num_classes)
    height, breadth, channels = image_shape
    if height % 4 or breadth % 4:
        raise ValueError(f"`image_shape` must have H and W divisible by 4; got {image_shape}.")
    seeds = _seeds(seed)
    x = keras.Input(image_shape, name="x")
    t = keras.Input((), name="t")
    label = keras.Input((), dtype="int32", name="label")
    conditioning = _conditioning(t, label, num_classes, 4 * width, seeds)

    def conv(h, filters, name, strides=1, initializer=None):
        return keras.layers.Conv2D(
            filters, 3, strides=strides, padding="same", name=name,
            kernel_initializer=initializer or GlorotUniform(next(seeds)))(h)

    def up(h, filters, name):
        return Conv2DTranspose(filters, 4, strides=2, padding="same", name=name,
                               kernel_initializer=GlorotUniform(next(seeds)))(h)

    half = conv(_space_to_depth(x), width, "stem")  # 14x14, each pixel a 2x2 patch
    half = _residual_block(half, conditioning, width, "block_14_in", seeds)
    quarter = conv(half, 2 * width, "down", strides=2)
    quarter = _residual_block(quarter, conditioning, 2 * width, "block_7_a", seeds)
    quarter = _residual_block(quarter, conditioning, 2 * width, "block_7_b", seeds)
    h = keras.layers.Concatenate()([up(quarter, width, "up"), half])
    h = _residual_block(h, conditioning, width, "block_14_out", seeds)
    h = keras.layers.Activation("swish")(h)
    velocity = _depth_to_space(conv(h, 4 * channels, "velocity", initializer="zeros"),
                               image_shape)
    return keras.Model([x, t, label], velocity, name=name)


def make_mlp_network(data_dim=2, units=128, depth=3, num_classes=NUM_CLASSES, seed=None,
                     name="mlp"):
    """The velocity network ``v(x_t, t, y)`` for points: an MLP on ``[x, conditioning]``.

    Args:
        data_dim: size of a point.
        units: width of the hidden layers.
        depth: number of hidden layers.
        num_classes: number of labels (plus the "no label" token).
        seed: an int makes the initial weights deterministic.
        name: the model's name.

    Returns:
        A functional `keras.Model` from ``[x (B, data_dim), t (B,), label (B,)]``
        to a velocity `(B, data_dim)`.

    Example:

    >>> make_mlp_network(units=16).output_shape
    (None, 2)
    """
    data_dim, units = check_int("data_dim", data_dim), check_int("units", units)
    depth, num_classes = check_int("depth", depth), check_int("num_classes", num_classes)
    seeds = _seeds(seed)
    x = keras.Input((data_dim,), name="x")
    t = keras.Input((), name="t")
    label = keras.Input((), dtype="int32", name="label")
    h = keras.layers.Concatenate()(
        [x, _conditioning(t, label, num_classes, 32, seeds)])
    for index in range(depth):
        h = keras.layers.Dense(units, activation="swish", name=f"hidden_{index + 1}",
                               kernel_initializer=GlorotUniform(next(seeds)))(h)
    velocity = keras.layers.Dense(data_dim, name="velocity",
                                  kernel_initializer="zeros")(h)
    return keras.Model([x, t, label], velocity, name=name)


# The model -------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="companion")
class FlowMatching(keras.Model):
    """A velocity network trained by flow matching, sampled by integrating its ODE.

    Training (``fit((x, labels))``, data in [-1, 1] for images): each step draws
    ``eps ~ N(0, I)``, ``t ~ U(0, 1)``, replaces each label by the "no label"
    token with probability `label_dropout`, and takes one optimiser step on

    ```
    loss = mean || network(t x + (1 - t) eps, t, y) - (x - eps) ||^2
    ```

    (:func:`companion.losses.flow_matching_loss`), then updates the moving
    average of the weights held by ``average`` (a copy of the network):

    ```
    average <- d * average + (1 - d) * weights,  d = min(momentum, (1 + n) / (10 + n))
    ```

    after ``n`` steps (the warm-up lets a short run's average follow its weights).

    **Sampling** integrates ``dx/dt = v_w(x, t, y)`` with the averaged
    weights from ``x ~ N(0, I)`` at ``t = 0`` to ``t = 1`` in `steps` equal
    steps (Euler: one network call a step; Heun: two), compiled to one JAX
    function for each number of steps, sampler and use of guidance.

    Args:
        network: a `keras.Model` from ``[x, t, label]`` to a velocity shaped like `x`.
        average: a copy of `network` (same architecture) that holds the moving
            average; None makes one from `network`'s weights.
        num_classes: number of labels; the "no label" token is `num_classes`.
        label_dropout: probability, in [0, 1], of training a step's example
            without its label.
        ema_momentum: the average's momentum, in [0, 1).
        seed: the seed of the training and sampling noise.

    Example:

    >>> network = make_mlp_network(units=16, seed=0)
    >>> model = FlowMatching(network, seed=0)
    >>> model.compile(optimizer="adam")
    >>> points = np.zeros((64, 2), "float32"); labels = np.zeros(64, "int32")
    >>> history = model.fit((points, labels), epochs=1, verbose=0)
    >>> sorted(history.history)
    ['loss']
    """

    def __init__(self, network, average=None, num_classes=NUM_CLASSES, label_dropout=0.1,
                 ema_momentum=0.999, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes)
        self.label_dropout = _check_unit("label_dropout", label_dropout, closed=True)
        self.ema_momentum = _check_unit("ema_momentum", ema_momentum, closed=False)
        self.seed = check_seed(seed)
        self._check_network(network)
        self.training_seed_generator = keras.random.SeedGenerator(
            seed, name="training_noise")
        self.seed_generator = keras.random.SeedGenerator(
            None if seed is None else derived_seed(self.seed, 1), name="sampling_noise")
        self.average_steps = keras.Variable(0.0, trainable=False, name="average_steps")
        self.network = network
        if average is None:
            average = keras.models.clone_model(network)
            average.set_weights(network.get_weights())
        average.trainable = False
        self.average = average
        # The average's variables (layer by layer) are the network's in the order
        # of `network.variables`; `train_step` holds them trainable ones first.
        held = [*network.trainable_variables, *network.non_trainable_variables]
        self._held_index = [next(i for i, v in enumerate(held) if v is variable)
                            for variable in network.variables]
        self._loss_tracker = keras.metrics.Mean(name="loss")
        self._samplers = {}
        self._check_variable_order()
        self.built = True

    def _check_network(self, network):
        shapes = [tuple(shape) for shape in network.input_shape]
        if len(shapes) != 3 or shapes[1] != (None,) or shapes[2] != (None,):
            raise ValueError("`network` must take [x, t, label] with t and label of shape "
                             f"(B,); it takes {network.input_shape}.")
        if tuple(network.output_shape) != shapes[0]:
            raise ValueError("`network` must return a velocity shaped like x, "
                             f"{shapes[0]}; it returns {network.output_shape}.")

    def _check_variable_order(self):
        # `train_step` cuts the variable lists by position: Keras lists the
        # model's own variables (the step count, then the two seeds' states)
        # first, then its layers' in the order they were assigned.
        own = [self.average_steps, self.training_seed_generator.state,
               self.seed_generator.state]
        expected = (self.network.trainable_variables,
                    own + self.network.non_trainable_variables + self.average.variables)
        found = (self.trainable_variables, self.non_trainable_variables)
        if any(len(a) != len(b) or any(u is not v for u, v in zip(a, b))
               for a, b in zip(expected, found)):
            raise RuntimeError("FlowMatching expects its variables in the order: "
                               "step count, seeds, network, average.")

    @property
    def data_shape(self):
        """Shape of one example, e.g. `(28, 28, 1)`."""
        return tuple(self.network.output_shape[1:])

    @property
    def metrics(self):
        return [self._loss_tracker]

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    # Training

    def fit(self, x=None, y=None, **kwargs):
        """``fit((data, labels))``: `data` `(N, *data_shape)`, integer `labels` `(N,)`."""
        x, y = self._check_data(x, y)
        return super().fit(x, y, **kwargs)

    def _check_data(self, x, y):
        if y is None and isinstance(x, (tuple, list)) and len(x) == 2:
            x, y = x
        if y is None:
            raise ValueError("`fit` needs labels: pass `(data, labels)`; with no labels "
                             "to give, pass labels of the 'no label' token, "
                             f"np.full(len(data), {self.num_classes}).")
        x, y = np.asarray(x, "float32"), np.asarray(y)
        if x.shape[1:] != self.data_shape or not np.isfinite(x).all():
            raise ValueError(f"`x` must be finite with shape (N, "
                             f"{', '.join(map(str, self.data_shape))}); got {x.shape}.")
        if y.shape != x.shape[:1] or not np.issubdtype(y.dtype, np.integer) \
                or y.min(initial=0) < 0 or y.max(initial=0) > self.num_classes:
            raise ValueError(f"`labels` must be {len(x)} integers in [0, "
                             f"{self.num_classes}]; got shape {y.shape}, dtype {y.dtype}.")
        return x, y.astype("int32")

    def train_step(self, state, data):
        """One flow-matching step and one update of the average: `fit`'s JAX training step."""
        trainable, non_trainable, optimizer_variables, metric_variables = state
        x, labels = data
        steps, training_seed, sampling_seed = non_trainable[:3]
        size = 3 + len(self.network.non_trainable_variables)
        network_state, average = non_trainable[3:size], non_trainable[size:]

        noise, t, labels, training_seed = self._draw(training_seed, x, labels)
        x_t = interpolate(x, noise, t)
        target = x - noise

        def loss_of(weights):
            velocity, state = self.network.stateless_call(
                weights, network_state, [x_t, t, labels], training=True)
            return losses.flow_matching_loss(target, velocity), state

        (loss, network_state), grads = jax.value_and_grad(loss_of, has_aux=True)(trainable)
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, grads, trainable)

        decay = ops.minimum(self.ema_momentum, (1.0 + steps) / (10.0 + steps))
        held = [*trainable, *network_state]
        average = [decay * a + (1.0 - decay) * held[i]
                   for a, i in zip(average, self._held_index)]
        tracker = self._loss_tracker
        metric_variables = tracker.stateless_update_state(metric_variables, loss)
        logs = {"loss": tracker.stateless_result(metric_variables)}
        non_trainable = [steps + 1.0, training_seed, sampling_seed, *network_state, *average]
        return logs, (trainable, non_trainable, optimizer_variables, metric_variables)

    def test_step(self, state, data):
        raise NotImplementedError(
            "FlowMatching has no validation loss (its loss depends on the noise and the "
            "times drawn): do not pass `validation_data` to `fit` nor call `evaluate`; "
            "measure samples instead (companion.pretrained.evaluate, or "
            "companion.evaluation.sample_quality of model.sample(...)).")

    def _draw(self, seed_state, x, labels):
        """Noise, times and labels (some dropped) of a batch, and the seed's next state."""
        generator = self.training_seed_generator
        batch = ops.shape(x)[0]
        with keras.StatelessScope(state_mapping=[(generator.state, seed_state)]) as scope:
            noise = keras.random.normal(ops.shape(x), seed=generator)
            t = keras.random.uniform((batch,), seed=generator)
            dropped = keras.random.uniform((batch,), seed=generator) < self.label_dropout
            seed_state = scope.get_current_value(generator.state)
        labels = ops.where(dropped, self.num_classes, labels)
        return noise, t, labels, seed_state

    # Sampling

    def velocity(self, x, t, labels=None, guidance=1.0):
        """The averaged network's (guided) velocity at points `x`, times `t` (arrays)."""
        x = self._check_noise(x, "x")
        t = ops.convert_to_tensor(np.broadcast_to(np.asarray(t, "float32"), x.shape[:1]))
        labels = self._check_labels(labels, x.shape[0])
        return np.asarray(self._guided_velocity(self._average_values(), x, t, labels,
                                                check_non_negative("guidance", guidance)))

    def _check_noise(self, x, name):
        x = np.asarray(x, "float32")
        if x.shape[1:] != self.data_shape or not len(x):
            raise ValueError(f"`{name}` must have shape (N, "
                             f"{', '.join(map(str, self.data_shape))}), N >= 1; got {x.shape}.")
        return x

    def _average_values(self):
        return [v.value for v in self.average.variables]

    def _guided_velocity(self, values, x, t, labels, guidance):
        """``v(none) + guidance * (v(y) - v(none))``; one call on a doubled batch.

        Without labels, the unconditional velocity ``v(none)``; with a
        guidance of exactly 1, the conditional ``v(y)`` (one call, no doubling).
        """
        def network(x, t, labels):
            velocity, _ = self.average.stateless_call([], values, [x, t, labels])
            return velocity

        none = ops.full_like(t, self.num_classes, dtype="int32")
        if labels is None:
            return network(x, t, none)
        if isinstance(guidance, float) and guidance == 1.0:
            return network(x, t, labels)
        both = network(ops.concatenate([x, x]), ops.concatenate([t, t]),
                       ops.concatenate([labels, none]))
        conditional, unconditional = ops.split(both, 2)
        return unconditional + guidance * (conditional - unconditional)

    def trajectory(self, noise, labels=None, guidance=DEFAULT_GUIDANCE,
                   steps=DEFAULT_STEPS, sampler="euler"):
        """The states of the integration from `noise` (t = 0): `(steps + 1, *noise.shape)`."""
        noise = self._check_noise(noise, "noise")
        return self._integrate(noise, labels, guidance, steps, sampler, keep_states=True)

    def _integrate(self, noise, labels, guidance, steps, sampler, keep_states):
        labels = self._check_labels(labels, len(noise))
        guidance = check_non_negative("guidance", guidance)
        mode = "none" if labels is None else "conditional" if guidance == 1.0 else "guided"
        run = self._sampler(check_int("steps", steps),
                            check_choice("sampler", sampler, SAMPLERS), mode, keep_states)
        guidance = np.float32(guidance)
        values = self._average_values()
        if keep_states:
            return np.asarray(run(values, noise, labels, guidance))
        # Chunks of a few hundred keep each convolution's data in the CPU's caches.
        return np.concatenate([
            np.asarray(run(values, noise[i:i + _CHUNK],
                           None if labels is None else labels[i:i + _CHUNK], guidance))
            for i in range(0, len(noise), _CHUNK)])

    def _sampler(self, steps, sampler, mode, keep_states):
        """The compiled integration: ``(values, noise, labels, guidance) -> states``.

        `mode` is ``"none"`` (unconditional), ``"conditional"`` (guidance 1:
        one network call a step) or ``"guided"`` (a doubled batch).
        """
        key = (steps, sampler, mode, keep_states)
        if key not in self._samplers:
            def run(values, x, labels, guidance):
                def velocity(x, t):
                    t = ops.full((ops.shape(x)[0],), t, dtype="float32")
                    return self._guided_velocity(
                        values, x, t, None if mode == "none" else labels,
                        1.0 if mode == "conditional" else guidance)

                def step(x, i):
                    t, dt = i / steps, 1.0 / steps
                    v = velocity(x, t)
                    if sampler == "heun":
                        v = 0.5 * (v + velocity(x + dt * v, t + dt))
                    x = x + dt * v
                    return x, x if keep_states else None

                last, states = jax.lax.scan(step, x, np.arange(steps, dtype="float32"))
                return ops.concatenate([x[None], states]) if keep_states else last

            self._samplers[key] = jax.jit(run)
        return self._samplers[key]

    def generate(self, num, seed=None, labels=None, guidance=DEFAULT_GUIDANCE,
                 steps=DEFAULT_STEPS, sampler="euler"):
        """`num` samples at ``t = 1``, in the data's own range (images: [-1, 1])."""
        noise = self.noise(num, seed)
        return self._integrate(noise, labels, guidance, steps, sampler, keep_states=False)

    def noise(self, num, seed=None):
        """``x_0 ~ N(0, I)`` for `num` samples: from `seed`, or the model's sampling generator."""
        shape = (check_int("num", num), *self.data_shape)
        if seed is None:
            return np.asarray(keras.random.normal(shape, seed=self.seed_generator))
        return np.random.default_rng(check_seed(seed)).standard_normal(shape).astype(
            "float32")

    def sample(self, num, seed=None, labels=None, guidance=DEFAULT_GUIDANCE,
               steps=DEFAULT_STEPS, sampler="euler"):
        """Draw `num` images as float32 in [0, 1], shape `(num, *data_shape)`.

        Args:
            num: number of samples (>= 1).
            seed: an int gives the same samples on every call; None draws
                from the model's sampling `SeedGenerator`.
            labels: None for unconditional samples (the "no label" token,
                no guidance), or `num` integers in [0, num_classes).
            guidance: the guidance scale ``w`` (>= 0) for labelled samples;
                1 samples the conditional model (one network call a step).
            steps: integration steps from noise to data.
            sampler: ``"euler"`` or ``"heun"`` (two network calls a step).

        Raises:
            ValueError: for a bad `num`, `seed`, `labels`, `guidance`,
                `steps` or `sampler`.
        """
        samples = self.generate(num, seed, labels, guidance, steps, sampler)
        return np.clip((samples + 1.0) / 2.0, 0.0, 1.0)

    def _check_labels(self, labels, num):
        if labels is None:
            return None
        array = np.asarray(labels)
        if array.shape != (num,) or not np.issubdtype(array.dtype, np.integer) \
                or array.min(initial=0) < 0 or array.max(initial=0) >= self.num_classes:
            raise ValueError(f"`labels` must be None or {num} integers in [0, "
                             f"{self.num_classes}); got {labels!r:.80}.")
        return array.astype("int32")

    # Saving

    def get_config(self):
        config = {"num_classes": self.num_classes, "label_dropout": self.label_dropout,
                  "ema_momentum": self.ema_momentum, "seed": self.seed}
        return config_with_networks(config, self, ("network", "average"))

    @classmethod
    def from_config(cls, config):
        return from_config_with_networks(cls, config, ("network", "average"))


def _check_unit(name, value, closed):
    inside = isinstance(value, numbers.Real) and not isinstance(value, bool) and (
        0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0)
    if not inside:
        raise ValueError(f"`{name}` must be in [0, 1{']' if closed else ')'}; got {value!r}.")
    return float(value)


def make_model(image_shape=(28, 28, 1), width=BOOK_CONFIG["width"],
               learning_rate=BOOK_CONFIG["learning_rate"],
               label_dropout=BOOK_CONFIG["label_dropout"],
               ema_momentum=BOOK_CONFIG["ema_momentum"], num_classes=NUM_CLASSES, seed=0):
    """The book's class-conditional flow-matching model, compiled with Adam.

    Args:
        image_shape: `(H, W, C)`, H and W divisible by 4.
        width: channels of the U-Net at half resolution (:func:`make_unet`).
        learning_rate: Adam's learning rate (a float or a schedule).
        label_dropout: probability of training an example without its label.
        ema_momentum: momentum of the weights' moving average.
        num_classes: number of labels.
        seed: seed of the weights and of the training and sampling noise.

    Example:

    >>> make_model(width=8).count_params() > 0
    True
    """
    network = make_unet(image_shape, width, num_classes, seed=seed)
    model = FlowMatching(network, num_classes=num_classes, label_dropout=label_dropout,
                         ema_momentum=ema_momentum, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


# The Gaussian path's algebra -------------------------------------------------------


def interpolate(x, noise, t):
    """``x_t = t * x + (1 - t) * noise``, with `t` one time an example `(B,)`."""
    t = ops.reshape(ops.cast(t, x.dtype), (-1,) + (1,) * (len(ops.shape(x)) - 1))
    return t * x + (1.0 - t) * noise


def _column(t, like):
    t = np.asarray(t, "float64")
    return t.reshape(t.shape + (1,) * (np.ndim(like) - t.ndim))


def to_data_and_noise(x_t, t, velocity):
    """The data and noise predictions equivalent to a velocity at ``(x_t, t)``.

    From ``x_t = t x + (1 - t) eps`` and ``v = x - eps``:

    ```
    x   = x_t + (1 - t) v
    eps = x_t - t v
    ```

    Example:

    >>> x, eps, t = np.array([[2.0]]), np.array([[-1.0]]), np.array([0.25])
    >>> x_t = 0.25 * x + 0.75 * eps
    >>> [float(a[0, 0]) for a in to_data_and_noise(x_t, t, x - eps)]
    [2.0, -1.0]
    """
    t = _column(t, x_t)
    return x_t + (1.0 - t) * velocity, x_t - t * velocity


def velocity_from_noise(x_t, t, noise):
    """The velocity equivalent to a noise prediction (DDPM's): ``v = (x_t - eps) / t``, t > 0."""
    return (x_t - noise) / _column(t, x_t)


def velocity_from_data(x_t, t, data):
    """The velocity equivalent to a data prediction: ``v = (x - x_t) / (1 - t)``, t < 1."""
    return (data - x_t) / (1.0 - _column(t, x_t))


def mixture_velocity(x_t, t, means, std):
    """The exact minimiser of the flow-matching loss for a mixture of Gaussians.

    For data ``x ~ sum_k (1/K) N(m_k, s^2 I)`` and ``x_t = t x + (1 - t) eps``,
    each component gives ``x_t ~ N(t m_k, r_t^2 I)`` with ``r_t^2 = t^2 s^2 +
    (1 - t)^2``; within it, ``x`` and ``eps`` are jointly Gaussian with ``x_t``, so

    ```
    E[x   | x_t, k] = m_k + (t s^2 / r_t^2) (x_t - t m_k)
    E[eps | x_t, k] =     ((1 - t) / r_t^2) (x_t - t m_k)
    v*(x_t, t) = sum_k P(k | x_t) (E[x | x_t, k] - E[eps | x_t, k])
    ```

    with ``P(k | x_t)`` proportional to ``N(x_t; t m_k, r_t^2 I)``. One
    component (``means`` of shape `(1, D)`) is a Gaussian: then ``v*`` is
    linear in ``x_t``.

    Args:
        x_t: points `(B, D)`.
        t: times `(B,)` in [0, 1].
        means: component means `(K, D)`.
        std: the components' standard deviation ``s`` > 0.

    Returns:
        float64 `(B, D)`.

    Example (a Gaussian at 3 with std 2; at t = 0, v* = E[x] - x_0):

    >>> float(mixture_velocity(np.array([[0.5]]), np.array([0.0]), np.array([[3.0]]), 2.0)[0, 0])
    2.5
    """
    x_t, means = np.asarray(x_t, "float64"), np.asarray(means, "float64")
    t = np.asarray(t, "float64")[:, None, None]
    centred = x_t[:, None, :] - t * means[None]  # (B, K, D)
    spread = t ** 2 * std ** 2 + (1.0 - t) ** 2
    log_weights = -0.5 * np.sum(centred ** 2, axis=-1) / spread[:, :, 0]
    weights = np.exp(log_weights - log_weights.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    velocity = means[None] + (t * std ** 2 - (1.0 - t)) / spread * centred
    return np.einsum("bk,bkd->bd", weights, velocity)


# DDPM ------------------------------------------------------------------------------


def ddpm_schedule(steps=1000, delta_start=1e-4, delta_end=0.02):
    """DDPM's linear noise schedule (Ho et al. 2020) and its cumulative products.

    Step ``t`` adds noise of variance ``delta_t``; after ``t`` steps the image
    is scaled by ``sqrt(lambda_t)`` (Ho et al. write ``beta_t`` and
    ``abar_t``; the book keeps ``beta`` for the VAE's KL weight):

    ```
    q(x_t | x_{t-1}) = N(sqrt(1 - delta_t) x_{t-1}, delta_t I)
    q(x_t | x_0)     = N(sqrt(lambda_t) x_0, (1 - lambda_t) I)
    lambda_t         = prod_{s<=t} (1 - delta_s)
    ```

    Returns:
        ``(deltas, lambdas)``, float64 arrays of length `steps` (index ``t - 1``).

    Example:

    >>> deltas, lambdas = ddpm_schedule(3, 0.1, 0.3)
    >>> [round(float(a), 4) for a in lambdas]
    [0.9, 0.72, 0.504]
    """
    steps = check_int("steps", steps)
    numbers_given = all(isinstance(d, numbers.Real) and not isinstance(d, bool)
                        for d in (delta_start, delta_end))
    if not numbers_given or not 0.0 < delta_start <= delta_end < 1.0:
        raise ValueError("Need 0 < delta_start <= delta_end < 1; got "
                         f"delta_start={delta_start!r}, delta_end={delta_end!r}.")
    deltas = np.linspace(delta_start, delta_end, steps)
    return deltas, np.cumprod(1.0 - deltas)


def ddpm_elbo_weights(deltas):
    """The weights ``nu_t`` that turn DDPM's simple loss into its ELBO's KL terms.

    With the reverse step ``p(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2 I)``,
    ``sigma_t^2 = delta_t`` and the mean written through a noise prediction,
    ``mu_theta = (x_t - delta_t / sqrt(1 - lambda_t) eps_theta) / sqrt(1 - delta_t)``,
    each KL term of the ELBO (t >= 2) is a weighted squared error plus a
    constant ``zeta_t`` that does not depend on the network (the two Gaussians'
    variances differ):

    ```
    KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))
        = nu_t * || eps - eps_theta ||^2 + zeta_t,
    nu_t = delta_t^2 / (2 sigma_t^2 (1 - delta_t) (1 - lambda_t))
    ```

    DDPM's simple loss drops this weight (sets ``nu_t`` to 1): a reweighted ELBO.

    Returns:
        float64 weights ``nu_t``, one for each ``t`` (``deltas``' order).

    Example:

    >>> round(float(ddpm_elbo_weights(np.array([0.1, 0.2]))[1]), 4)
    0.4464
    """
    deltas = np.asarray(deltas, "float64")
    lambdas = np.cumprod(1.0 - deltas)
    return deltas ** 2 / (2.0 * deltas * (1.0 - deltas) * (1.0 - lambdas))
