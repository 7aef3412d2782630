"""Generative adversarial networks: the corrected DCGAN and a generic `GAN` model.

A GAN (Goodfellow et al. 2014) trains a generator ``G`` (noise ``z`` to data)
against a discriminator ``D`` (data to a logit: real or generated?). This module
holds

- :func:`make_generator` and :func:`make_discriminator`: the DCGAN design of the
  original document's section 4.1 (Radford et al. 2016), corrected so it runs:
  7x7 -> 14x14 -> 28x28 with one channel and a tanh output, and a
  discriminator that takes those images and returns a *logit*;
- :class:`GAN`, a `keras.Model` that trains *any* generator/discriminator pair
  (the DCGAN here, the MLPs of :mod:`companion.models.toy`) with ``fit``,
  through one stateless JAX ``train_step``;
- :func:`make_model` and :data:`BOOK_CONFIG`: the book's configuration.

Data lives in [-1, 1] (:data:`VALUE_RANGE`), to match the tanh output.

Example:

>>> from companion.models import gan
>>> model = gan.make_model(width=8, latent_dim=16)
>>> model.sample(2, seed=0).shape
(2, 28, 28, 1)
"""

import itertools
import zlib

import jax
import keras
import numpy as np
from keras import ops

from companion import inference, losses
from companion.layers import Conv2DTranspose, GlorotUniform
from companion.models._saving import config_with_networks, from_config_with_networks
from companion._validation import (check_choice, check_fit_data, check_image_shape,
                                  check_int, check_seed)

VALUE_RANGE = "symmetric"
GENERATOR_LOSSES = ("non-saturating", "saturating")

BOOK_CONFIG = {
    "width": 16,  # base channel count (the article's is 64)
    "kernel_size": 5,  # side of every kernel (the article's)
    "dropout": 0.0,  # the discriminator's dropout rate (the article's is 0.3)
    "latent_dim": 64,
    "epochs": 13,  # with a cosine decay: make_model(decay_steps=decay_steps_for(N))
    "batch_size": 64,
    "d_learning_rate": 1e-3,
    "g_learning_rate": 1e-3,
    "beta_1": 0.5,  # Adam's momentum, lowered as in Radford et al. (2016)
}
"""The configuration the DCGAN notebook trains (CLI and benchmarks reuse it).

The article's design at a quarter of its width, without dropout and with
larger, decaying learning rates, so that it trains on ``mnist10k`` within the
notebook's budget on two CPU cores.
"""


LONG_CONFIG = {
    "width": 32,
    "kernel_size": 5,
    "dropout": 0.0,
    "latent_dim": 64,
    "epochs": 120,
    "batch_size": 64,
    "d_learning_rate": 5e-4,
    "g_learning_rate": 5e-4,
    "beta_1": 0.5,
    "seed": 0,
    "check_every": 5,  # epochs between validation Fréchet distances
}
"""The configuration of the longer-trained checkpoint (:mod:`companion.pretrained`):
twice the book's width, half its learning rates, cosine decays over the whole run.
``pretrain`` also accepts an ``"ema_momentum"`` entry (samples from a moving average
of the generator's weights, :class:`companion.training.WeightAverage`)."""


def layer_seeds(seed, network):
    """Distinct seeds derived from `seed`, one for each random layer of `network`.

    Builders pass them to each layer's initialiser (and dropout), so the same
    `seed` builds the same weights without touching Keras' global random
    state. `network` (e.g. ``"generator"``) keeps two networks built from one
    seed apart. A `seed` of None gives None for every layer: Keras' unseeded
    default.

    Args:
        seed: None or an int in [0, 2**32 - 1].
        network: the network's role, a string.

    Returns:
        An endless iterator of ints in [0, 2**32 - 1] (or of None).

    Raises:
        ValueError: for a `seed` that is not None or such an int.

    Example:

    >>> first, again = layer_seeds(0, "generator"), layer_seeds(0, "generator")
    >>> a, b = next(first), next(first)
    >>> a == next(again) and a != b
    True
    """
    seed = check_seed(seed)
    if seed is None:
        return itertools.repeat(None)
    stream = zlib.crc32(network.encode())
    return (int(np.random.SeedSequence([seed, stream, index]).generate_state(1)[0])
            for index in itertools.count())


def _kernel(seeds):
    """Keras' default kernel initialiser (drawn by NumPy), seeded from `seeds`."""
    return GlorotUniform(seed=next(seeds))


def make_generator(latent_dim=100, image_shape=(28, 28, 1), width=64,
                   kernel_size=BOOK_CONFIG["kernel_size"], name="generator", seed=None):
    """The DCGAN generator of the original's section 4.1, corrected.

    ``Dense -> (H/4, W/4, 4w) -> ConvT(2w, stride 1) -> ConvT(w, stride 2) ->
    ConvT(C, stride 2, tanh)``, with batch normalisation and leaky ReLU
    between. For 28x28x1: 7x7 -> 7x7 -> 14x14 -> 28x28x1. The original
    asserted 7x7 after a stride-2 layer and made three channels. The
    transposed convolutions are :class:`companion.layers.Conv2DTranspose`
    (Keras' layer, differentiated as the transpose of a convolution).

    Args:
        latent_dim: size of the noise vector ``z``.
        image_shape: `(H, W, C)` of the images, H and W divisible by 4.
        width: base channel count ``w`` (64 is the article's and the
            TensorFlow tutorial's size; the book's is 16).
        kernel_size: side of the transposed-convolution kernels (the
            article's 5, which the book keeps).
        name: the model's name.
        seed: an int makes the initial weights deterministic (see
            :func:`layer_seeds`); None leaves them to Keras' global generator.

    Returns:
        A functional `keras.Model` from `(B, latent_dim)` to images
        `(B, H, W, C)` in [-1, 1].

    Raises:
        ValueError: for a non-positive size, H, W not divisible by 4, or a
            bad `seed`.

    Example:

    >>> generator = make_generator(latent_dim=8, width=4)
    >>> generator.output_shape
    (None, 28, 28, 1)
    """
    latent_dim = check_int("latent_dim", latent_dim)
    width = check_int("width", width)
    height, breadth, channels = check_image_shape(image_shape, multiple_of=4)
    seeds = layer_seeds(seed, "generator")
    layers = keras.layers
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(height // 4 * breadth // 4 * 4 * width, use_bias=False,
                     kernel_initializer=_kernel(seeds))(z)
    x = _normalise_and_activate(x)
    x = layers.Reshape((height // 4, breadth // 4, 4 * width))(x)
    for filters, stride in ((2 * width, 1), (width, 2)):
        x = Conv2DTranspose(filters, kernel_size, strides=stride, padding="same",
                            use_bias=False, kernel_initializer=_kernel(seeds))(x)
        x = _normalise_and_activate(x)
    images = Conv2DTranspose(channels, kernel_size, strides=2, padding="same",
                             activation="tanh", kernel_initializer=_kernel(seeds),
                             name="images")(x)
    return keras.Model(z, images, name=name)


def make_discriminator(image_shape=(28, 28, 1), width=64,
                       kernel_size=BOOK_CONFIG["kernel_size"],
                       dropout=BOOK_CONFIG["dropout"], name="discriminator", seed=None):
    """The DCGAN discriminator of the original's section 4.1, corrected.

    ``Conv(w, stride 2) -> Conv(2w, stride 2) -> Flatten -> Dense(1)``, with
    leaky ReLU and dropout between. It takes the generator's images (the
    original expected 7x7x3) and returns one *logit* per image:
    ``D(x) = sigmoid(logit)``.

    Args:
        image_shape: `(H, W, C)` of the images.
        width: base channel count ``w``.
        kernel_size: side of the convolution kernels (the article's 5).
        dropout: dropout rate after each convolution (default: the book's
            0; the article's is 0.3).
        name: the model's name.
        seed: an int makes the initial weights and the dropout masks
            deterministic (see :func:`layer_seeds`).

    Returns:
        A functional `keras.Model` from images `(B, H, W, C)` to logits `(B, 1)`.

    Example:

    >>> discriminator = make_discriminator(width=4)
    >>> discriminator.output_shape
    (None, 1)
    """
    width = check_int("width", width)
    check_image_shape(image_shape, multiple_of=4)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1); got {dropout!r}.")
    seeds = layer_seeds(seed, "discriminator")
    layers = keras.layers
    images = keras.Input(tuple(image_shape), name="images")
    x = images
    for filters in (width, 2 * width):
        x = layers.Conv2D(filters, kernel_size, strides=2, padding="same",
                          kernel_initializer=_kernel(seeds))(x)
        x = layers.LeakyReLU(negative_slope=0.2)(x)
        x = layers.Dropout(dropout, seed=next(seeds))(x)
    logits = layers.Dense(1, kernel_initializer=_kernel(seeds),
                          name="logit")(layers.Flatten()(x))
    return keras.Model(images, logits, name=name)


def _normalise_and_activate(x):
    # momentum 0.9 (not 0.99): the moving statistics used by `sample` must
    # keep up with a generator that changes quickly during short training.
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    return keras.layers.LeakyReLU(negative_slope=0.2)(x)


@keras.saving.register_keras_serializable(package="companion")
class GAN(keras.Model):
    """A generator and a discriminator trained against each other with `fit`.

    The discriminator minimises the cross-entropy of telling real from
    generated data (it *maximises* the value ``V(D, G)``); the generator
    minimises its own loss (Goodfellow et al. 2014):

    ```
    V(D, G) = E_x log D(x) + E_z log(1 - D(G(z)))
    d_loss  = -V(D, G)
    g_loss  = -E_z log D(G(z))          ("non-saturating", the default)
            =  E_z log(1 - D(G(z)))     ("saturating": the minimax term)
    ```

    **Simultaneous updates.** Each ``train_step`` draws one noise batch and
    takes *both* gradients at the same weights: ``g_loss`` (``G`` makes the
    batch, ``D`` judges it) with respect to ``G``'s weights only, then
    ``d_loss`` (``D`` judges the real batch and those fakes) with respect to
    ``D``'s weights only. One `MultiOptimizer` (``D``'s optimiser for ``D``'s
    variables, ``G``'s for the rest) applies both. This is the scheme of the
    TensorFlow DCGAN tutorial the original's listing comes from, compiled to
    one JAX function. Goodfellow et al.'s Algorithm 1 alternates instead
    (``k`` discriminator steps, then one generator step that sees the updated
    ``D``); with small learning rates both follow the same gradient field,
    and neither is the original's two separate "phases" of training.

    **Noise.** Training, evaluation and sampling each draw from their own
    `SeedGenerator` (``training_seed_generator``,
    ``evaluation_seed_generator``, ``seed_generator``), so looking at samples
    or validation losses during `fit` does not change the training run.

    **Mixed precision.** Under a ``"mixed_float16"`` or ``"mixed_bfloat16"``
    policy both losses are scaled as the optimiser asks before they are
    differentiated (Keras' `LossScaleOptimizer` under float16 unscales the
    gradients), and `generate`, `sample` and `decode` return float32.

    Tracked metrics: ``d_loss``, ``g_loss``, ``d_real`` (mean ``D(x)``),
    ``d_fake`` (mean ``D(G(z))``) and ``g_grad_norm`` (the global norm of the
    generator's gradient), averaged over an epoch's steps. `evaluate` (and
    ``fit(validation_data=...)``) reports the first four, in inference mode.

    Args:
        generator: a built `keras.Model` from `(B, latent_dim)` to data.
        discriminator: a built `keras.Model` from data to logits `(B, 1)`.
        latent_dim: size of the noise vector.
        generator_loss: ``"non-saturating"`` (default) or ``"saturating"``.
        seed: None or an int in [0, 2**32 - 1]: the seed of the model's three
            noise generators (training, evaluation and sampling).

    Raises:
        ValueError: for an unknown `generator_loss`, a bad `seed`, or networks
            whose shapes do not fit together.

    Example:

    >>> from companion.models import toy
    >>> model = GAN(toy.make_mlp_generator(2, 1, 8),
    ...             toy.make_mlp_discriminator(1, 8), latent_dim=2)
    >>> model.compile()
    >>> history = model.fit(np.zeros((64, 1), "float32"), epochs=1, verbose=0)
    >>> sorted(history.history)
    ['d_fake', 'd_loss', 'd_real', 'g_grad_norm', 'g_loss']
    """

    def __init__(self, generator, discriminator, latent_dim,
                 generator_loss="non-saturating", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = check_int("latent_dim", latent_dim)
        self.generator_loss = check_choice("generator_loss", generator_loss,
                                           GENERATOR_LOSSES)
        self.generator = generator
        self.discriminator = discriminator
        self.seed = check_seed(seed)
        self._check_networks()
        # Three noise streams, so what a user samples or evaluates during `fit`
        # leaves the training run unchanged.
        training, evaluation, sampling = itertools.islice(
            layer_seeds(self.seed, "noise"), 3)
        self.training_seed_generator = keras.random.SeedGenerator(
            training, name="training_noise")
        self.evaluation_seed_generator = keras.random.SeedGenerator(
            evaluation, name="evaluation_noise")
        self.seed_generator = keras.random.SeedGenerator(sampling, name="sampling_noise")
        self._trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm")
        }
        self._check_variable_order()
        self.built = True

    def _check_networks(self):
        if tuple(self.generator.input_shape[1:]) != (self.latent_dim,):
            raise ValueError(
                f"`generator` must take inputs (B, {self.latent_dim}) for "
                f"latent_dim={self.latent_dim}; it takes {self.generator.input_shape}."
            )
        if tuple(self.generator.output_shape[1:]) != tuple(
                self.discriminator.input_shape[1:]):
            raise ValueError(
                "`discriminator` must accept what `generator` makes; generator "
                f"output {self.generator.output_shape}, discriminator input "
                f"{self.discriminator.input_shape}."
            )
        if tuple(self.discriminator.output_shape[1:]) != (1,):
            raise ValueError("`discriminator` must return one logit an example, "
                             f"(B, 1); it returns {self.discriminator.output_shape}.")

    @property
    def data_shape(self):
        """Shape of one example, e.g. `(28, 28, 1)`."""
        return tuple(self.generator.output_shape[1:])

    @property
    def metrics(self):
        return list(self._trackers.values())

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def compile(self, d_optimizer=None, g_optimizer=None, optimizer=None,
                auto_scale_loss=True, **kwargs):
        """Configure training with one optimiser a network.

        Args:
            d_optimizer: the discriminator's optimiser (default
                ``Adam(2e-4, beta_1=0.5)``).
            g_optimizer: the generator's optimiser (same default).
            optimizer: instead of the two above, either a `MultiOptimizer`
                that maps the discriminator's variables to one optimiser and
                the rest to another (as this model builds it), or one
                optimiser (or its name) for the discriminator, the generator
                getting a copy of it.
            auto_scale_loss: under the ``"mixed_float16"`` policy, wrap the
                optimisers in a `LossScaleOptimizer` (as `keras.Model.compile`).
            **kwargs: passed to `keras.Model.compile` (for example
                ``steps_per_execution``); saved with the model like the
                optimisers.

        Raises:
            ValueError: if `optimizer` comes with `d_optimizer` or
                `g_optimizer`, is a `MultiOptimizer` of another shape, or a
                generator and a discriminator variable share a path.
        """
        if optimizer is not None:
            if d_optimizer is not None or g_optimizer is not None:
                raise ValueError("Pass either `optimizer` or `d_optimizer` and "
                                 "`g_optimizer`, not both; got optimizer="
                                 f"{optimizer!r}, d_optimizer={d_optimizer!r}, "
                                 f"g_optimizer={g_optimizer!r}.")
            d_optimizer, g_optimizer = _split_optimizer(optimizer)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        self._auto_scale_loss = bool(auto_scale_loss)
        super().compile(optimizer=self._multi_optimizer(self.d_optimizer, self.g_optimizer),
                        auto_scale_loss=auto_scale_loss, **kwargs)

    def get_compile_config(self):
        """Every argument of `compile`: both optimisers, ``steps_per_execution``,
        ``jit_compile``, ``auto_scale_loss`` and the rest."""
        if not self.compiled:
            return None
        config = super().get_compile_config()
        config.pop("optimizer", None)  # the MultiOptimizer, rebuilt from these two
        config.update(d_optimizer=keras.saving.serialize_keras_object(self.d_optimizer),
                      g_optimizer=keras.saving.serialize_keras_object(self.g_optimizer),
                      auto_scale_loss=self._auto_scale_loss)
        return config

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        # Built now, so the saved optimiser state (Adam's moments) loads too.
        self.optimizer.build(self.trainable_variables)

    def _multi_optimizer(self, d_optimizer, g_optimizer):
        # Exact variable paths (not a regex on a name prefix): functional
        # sub-models do not prefix their variables' paths with their name.
        d_paths = [v.path for v in self.discriminator.trainable_variables]
        g_paths = {v.path for v in self.generator.trainable_variables}
        shared = sorted(g_paths.intersection(d_paths))
        if shared or len(set(d_paths)) != len(d_paths):
            raise ValueError(
                "The generator and the discriminator must name their layers "
                f"differently; variable paths {shared or d_paths} are ambiguous."
            )
        mapping = keras.optimizers.OptimizerMap(g_optimizer)
        for path in d_paths:
            mapping[path] = d_optimizer
        return keras.optimizers.MultiOptimizer(mapping)

    def fit(self, x=None, y=None, **kwargs):
        """Train on data `x` (images in [-1, 1] for an image GAN); see `keras.Model.fit`.

        An array `x` is checked first; a `tf.data.Dataset`, a
        `keras.utils.PyDataset` or a Python generator of batches goes to Keras
        unchecked (a generator must yield tuples ``(batch,)``, as Keras says).

        Raises:
            ValueError: if an array `x` does not have the generator's example
                shape, or (for images) has values outside [-1, 1] or looks
                scaled to [0, 1] (see :meth:`evaluate`).
        """
        return super().fit(self._check_data(x), y, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        """The losses and mean outputs of both networks on data `x`, no update.

        The discriminator judges `x` and as many generated examples (noise
        from the model's evaluation `SeedGenerator`), both in inference mode;
        see `keras.Model.evaluate`. ``fit(validation_data=...)`` runs the same
        step, the ``val_`` metrics.

        An image array is rejected as scaled to [0, 1] rather than [-1, 1]
        when its values all lie in [0, 1] and at least a quarter of them are
        exactly 0: the black background of images scaled to [0, 1], which is
        -1 in [-1, 1].

        Raises:
            ValueError: as :meth:`fit`.
        """
        return super().evaluate(self._check_data(x), y, **kwargs)

    def _check_data(self, x):
        if len(self.data_shape) == 3:
            x = check_fit_data(x, "x", shape=self.data_shape, value_range=(-1.0, 1.0))
            if (isinstance(x, np.ndarray) and x.size and x.min() >= 0.0
                    and np.mean(x == 0.0) >= 0.25):
                raise ValueError(
                    "`x` looks scaled to [0, 1] (all values >= 0, a quarter or more "
                    "exactly 0), but a GAN with a tanh output trains on [-1, 1]: "
                    "load the data with value_range='symmetric'."
                )
            return x
        if not (isinstance(x, (list, tuple)) or hasattr(x, "__array__")):
            return x  # None, a dataset or a generator of batches
        x = np.asarray(x, dtype="float32")
        if x.shape[1:] != self.data_shape or not np.isfinite(x).all():
            raise ValueError(f"`x` must be finite with shape (N, "
                             f"{', '.join(map(str, self.data_shape))}); got {x.shape}.")
        return x

    def train_step(self, state, data):
        """One simultaneous update of both networks: `fit`'s JAX training step."""
        trainable, non_trainable, optimizer_variables, metric_variables = state
        real = data[0] if isinstance(data, (tuple, list)) else data
        g_trainable, d_trainable = self._split(trainable)
        seeds, g_state, d_state = self._split_state(non_trainable)
        # The noise comes from the training SeedGenerator, its state passed in.
        z, key, seeds[0] = self._draw_noise(self.training_seed_generator, seeds[0],
                                            ops.shape(real)[0])
        # Under mixed float16 the optimiser scales the losses (and unscales
        # the gradients), so that small gradients do not underflow.
        scale = self._loss_scale(optimizer_variables)

        # The generator's loss and its gradient with respect to G's weights.
        g_grads, (g_loss, (fake, g_state, d_state)) = jax.grad(
            _scaled(self._generator_loss, scale), has_aux=True)(
            g_trainable, g_state, d_trainable, d_state, z, training=True)

        # The discriminator's loss on real and generated data, its gradient
        # with respect to D's weights; `fake` is a constant here.
        d_grads, (d_loss, (values, d_state)) = jax.grad(
            _scaled(self._discriminator_loss, scale), has_aux=True)(
            d_trainable, d_state, real, fake, key, training=True)

        # Both gradients were taken at the same weights: one update applies both.
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, g_grads + d_grads, trainable)
        non_trainable = [*seeds, *g_state, *d_state]
        g_grad_norm = ops.sqrt(sum(ops.sum(ops.square(g)) for g in g_grads))
        values.update(d_loss=d_loss, g_loss=g_loss,
                      g_grad_norm=g_grad_norm / scale)
        logs, metric_variables = self._update_metrics(metric_variables, values)
        return logs, (trainable, non_trainable, optimizer_variables, metric_variables)

    def _loss_scale(self, optimizer_variables):
        """The optimiser's loss scale at its variables' current values.

        ``optimizer.scale_loss(1)``, read as Keras' own JAX ``train_step``
        reads it: 1 unless a `LossScaleOptimizer` (mixed float16) or a
        ``loss_scale_factor`` asks for more; the optimiser divides the
        gradients by it again.
        """
        mapping = list(zip(self.optimizer.variables, optimizer_variables))
        with keras.StatelessScope(state_mapping=mapping):
            return ops.cast(self.optimizer.scale_loss(ops.ones((), "float32")), "float32")

    def test_step(self, state, data):
        """Both losses on a validation batch, in inference mode (`evaluate`'s step)."""
        trainable, non_trainable, metric_variables = state
        real = data[0] if isinstance(data, (tuple, list)) else data
        g_trainable, d_trainable = self._split(trainable)
        seeds, g_state, d_state = self._split_state(non_trainable)
        z, key, seeds[1] = self._draw_noise(self.evaluation_seed_generator, seeds[1],
                                            ops.shape(real)[0])
        g_loss, (fake, _, _) = self._generator_loss(
            g_trainable, g_state, d_trainable, d_state, z, training=False)
        d_loss, (values, _) = self._discriminator_loss(
            d_trainable, d_state, real, fake, key, training=False)
        values.update(d_loss=d_loss, g_loss=g_loss)
        logs, metric_variables = self._update_metrics(metric_variables, values)
        non_trainable = [*seeds, *g_state, *d_state]
        return logs, (trainable, non_trainable, metric_variables)

    def _generator_loss(self, g_trainable, g_state, d_trainable, d_state, z, training):
        """G's loss on generated data; returns ``(loss, (fake, g_state, d_state))``."""
        fake, g_state = self.generator.stateless_call(
            g_trainable, g_state, z, training=training)
        fake_logits, d_state = self.discriminator.stateless_call(
            d_trainable, d_state, fake, training=training)
        return self._generator_objective(fake_logits), (fake, g_state, d_state)

    def _generator_objective(self, fake_logits):
        return losses.generator_loss(
            fake_logits, saturating=self.generator_loss == "saturating")

    def _discriminator_loss(self, d_trainable, d_state, real, fake, key, training):
        """D's loss; returns ``(loss, (metric values, d_state))``.

        `key` (None here) is for losses that draw random numbers, such as the
        gradient penalty of :class:`~companion.models.wgan.WGANGP`.
        """
        real_logits, d_state = self.discriminator.stateless_call(
            d_trainable, d_state, real, training=training)
        fake_logits, d_state = self.discriminator.stateless_call(
            d_trainable, d_state, fake, training=training)
        values = {"d_real": ops.mean(ops.sigmoid(ops.cast(real_logits, "float32"))),
                  "d_fake": ops.mean(ops.sigmoid(ops.cast(fake_logits, "float32")))}
        return losses.discriminator_loss(real_logits, fake_logits), (values, d_state)

    def _noise_generators(self):
        """The noise's generators, in the order of their states in the variables."""
        return (self.training_seed_generator, self.evaluation_seed_generator,
                self.seed_generator)

    def _check_variable_order(self):
        # `_split` and `_split_state` cut the model's variable lists by
        # position: Keras lists a model's own variables (the noise seeds)
        # first, then its layers' in the order they were assigned.
        g, d = self.generator, self.discriminator
        expected = (g.trainable_variables + d.trainable_variables,
                    [s.state for s in self._noise_generators()]
                    + g.non_trainable_variables + d.non_trainable_variables)
        found = (self.trainable_variables, self.non_trainable_variables)
        if any(len(a) != len(b) or any(u is not v for u, v in zip(a, b))
               for a, b in zip(expected, found)):
            raise RuntimeError("GAN expects the model's variables to be the "
                               "generator's, then the discriminator's.")

    def _split(self, trainable):
        """The generator's and the discriminator's trainable values."""
        size = len(self.generator.trainable_variables)
        return trainable[:size], trainable[size:]

    def _split_state(self, non_trainable):
        """The noise seeds' states (a list: training, evaluation, sampling), the
        generator's and the discriminator's other values."""
        seeds = len(self._noise_generators())
        size = seeds + len(self.generator.non_trainable_variables)
        return list(non_trainable[:seeds]), non_trainable[seeds:size], non_trainable[size:]

    def _draw_noise(self, seed_generator, seed_state, batch_size):
        """Noise ``z`` from `seed_generator` at state `seed_state`, a key for the
        discriminator's loss (see `_draw_key`) and the generator's next state."""
        state = seed_generator.state
        with keras.StatelessScope(state_mapping=[(state, seed_state)]) as scope:
            z = keras.random.normal((batch_size, self.latent_dim), seed=seed_generator)
            key = self._draw_key(seed_generator)
            new_state = scope.get_current_value(state)
        return z, key, new_state

    def _draw_key(self, seed_generator):
        """None: a GAN's losses draw no random numbers (WGANGP's penalty does)."""
        return None

    def _update_metrics(self, metric_variables, values):
        """Update, statelessly, the trackers named in `values`; the others keep theirs."""
        logs, updated, start = {}, [], 0
        for metric in self.metrics:
            own = metric_variables[start:start + len(metric.variables)]
            start += len(own)
            if metric.name in values:
                own = metric.stateless_update_state(own, values[metric.name])
                logs[metric.name] = metric.stateless_result(own)
            updated.extend(own)
        return logs, updated

    def generate(self, num, seed=None):
        """Draw `num` examples from the generator, as its raw output.

        The noise (:meth:`noise`) and the generator run compiled, in chunks of
        a fixed size (:mod:`companion.inference`), so every `num` reuses the
        same two programs, and the first examples do not depend on `num`:
        ``generate(1000, seed=s)[:10]`` is ``generate(10, seed=s)``.

        Args:
            num: how many examples (>= 1).
            seed: None or an int in [0, 2**32 - 1]; an int makes the noise,
                hence the output, deterministic.

        Returns:
            float32 numpy array `(num, *data_shape)` (images in [-1, 1]).

        Raises:
            ValueError: if `num` is not an integer >= 1, or `seed` is bad.
        """
        return self._run_generator(self.noise(num, seed))

    def _run_generator(self, z):
        """The generator's float32 inference output for noise `z`, compiled once."""
        def generate(z):
            return ops.cast(self.generator(z, training=False), "float32")

        run = inference.compiled(self, "generate", generate, self.generator.variables)
        return inference.in_chunks(run, len(z), (z,))

    def noise(self, num, seed=None):
        """The standard normal noise `(num, latent_dim)` that `generate` uses.

        Drawn in chunks (:func:`companion.inference.in_chunks`), chunk ``i``
        from ``fold_in(key, i)``, so the first vectors do not depend on `num`.

        Args:
            num: how many vectors (>= 1).
            seed: None or an int in [0, 2**32 - 1]; an int makes the noise
                deterministic; None draws a key from the model's sampling
                `SeedGenerator` (and advances it).

        Returns:
            float32 numpy array `(num, latent_dim)`.

        Raises:
            ValueError: if `num` is not an integer >= 1, or `seed` is bad.

        Example:

        >>> model = make_model(width=4, latent_dim=8)
        >>> bool((model.noise(2, seed=1) == model.noise(5, seed=1)[:2]).all())
        True
        """
        num, seed = check_int("num", num), check_seed(seed)

        def draw(key):
            return keras.random.normal((inference.CHUNK, self.latent_dim), seed=key,
                                       dtype="float32")

        run = inference.compiled(self, "noise", draw, [])
        return inference.in_chunks(run, num, key=inference.seed_key(self.seed_generator,
                                                                    seed))

    def decode(self, z):
        """Images in [0, 1] from given noise vectors (e.g. to interpolate in `z`).

        The same meaning as `VAE.decode`: latent vectors in, images in [0, 1]
        out (here the tanh output mapped by ``(x + 1) / 2``).

        Args:
            z: noise, shape `(N, latent_dim)`.

        Returns:
            float32 numpy array `(N, H, W, C)` in [0, 1].

        Raises:
            ValueError: if `z` has the wrong shape, or the generator does not
                make images.

        Example:

        >>> model = make_model(width=4, latent_dim=8)
        >>> model.decode(model.noise(2, seed=0)).shape
        (2, 28, 28, 1)
        """
        self._require_images()
        z = np.asarray(z, dtype="float32")
        if z.ndim != 2 or z.shape[1] != self.latent_dim or not len(z):
            raise ValueError(f"`z` must have shape (N, {self.latent_dim}), N >= 1; "
                             f"got {z.shape}.")
        return _to_unit_range(self._run_generator(z))

    def sample(self, num, seed=None):
        """Draw `num` images in [0, 1] (the tanh output mapped by (x + 1) / 2).

        Compiled and chunked as :meth:`generate`.

        Args:
            num: how many images (>= 1).
            seed: None or an int in [0, 2**32 - 1]; an int makes the samples
                deterministic.

        Returns:
            float32 numpy array `(num, H, W, C)` in [0, 1].

        Raises:
            ValueError: if `num` is not an integer >= 1, `seed` is bad, or the
                generator does not make images (use `generate` for toy data).
        """
        self._require_images()
        return _to_unit_range(self.generate(num, seed))

    def _require_images(self):
        if len(self.data_shape) != 3:
            raise ValueError(
                f"This GAN makes examples of shape {self.data_shape}, not images; "
                "call `generate(num, seed)` for its raw output."
            )

    def discriminate(self, x):
        """The discriminator's probability ``D(x) = sigmoid(logit)`` as numpy `(N,)`."""
        logits = self.discriminator(np.asarray(x, dtype="float32"), training=False)
        return np.asarray(ops.sigmoid(ops.cast(logits, "float32")))[:, 0]

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, generator_loss=self.generator_loss,
                      seed=self.seed)
        return config_with_networks(config, self, ("generator", "discriminator"))

    @classmethod
    def from_config(cls, config):
        return from_config_with_networks(cls, config, ("generator", "discriminator"))


def _scaled(loss_function, scale):
    """`loss_function`, returning ``(loss, aux)``, made to return
    ``(scale * loss, (loss, aux))``."""
    def scaled(*args, **kwargs):
        loss, aux = loss_function(*args, **kwargs)
        return ops.cast(loss, "float32") * scale, (loss, aux)
    return scaled


def _to_unit_range(images):
    return np.clip((images + 1.0) / 2.0, 0.0, 1.0).astype("float32")


def _split_optimizer(optimizer):
    """The discriminator's and the generator's optimisers in `compile(optimizer=...)`."""
    if isinstance(optimizer, keras.optimizers.MultiOptimizer):
        mapping = optimizer._optimizer_map  # the map it was made with (Keras has no getter)
        mapped = ({id(o): o for o in mapping.values()}
                  if isinstance(mapping, keras.optimizers.OptimizerMap) else {})
        if len(mapped) != 1:
            raise ValueError("`optimizer` must be one optimiser, or a MultiOptimizer "
                             "mapping the discriminator's variables to one optimiser "
                             f"and the rest to another; got {optimizer!r}.")
        return next(iter(mapped.values())), mapping.default_optimizer
    d_optimizer = keras.optimizers.get(optimizer)
    copy = keras.optimizers.deserialize(keras.optimizers.serialize(d_optimizer))
    return d_optimizer, copy


def make_model(image_shape=(28, 28, 1), latent_dim=BOOK_CONFIG["latent_dim"],
               width=BOOK_CONFIG["width"], seed=0,
               d_learning_rate=BOOK_CONFIG["d_learning_rate"],
               g_learning_rate=BOOK_CONFIG["g_learning_rate"],
               beta_1=BOOK_CONFIG["beta_1"], generator_loss="non-saturating",
               decay_steps=None, kernel_size=BOOK_CONFIG["kernel_size"],
               dropout=BOOK_CONFIG["dropout"]):
    """The book's DCGAN, compiled and ready for ``fit(images)``.

    Args:
        image_shape: `(H, W, C)`, H and W divisible by 4.
        latent_dim: size of the noise vector.
        width: base channel count of both networks.
        seed: an int in [0, 2**32 - 1], the seed of the weights'
            initialisation and of the model's noise (None: not deterministic).
            With an int, Keras' global random state is neither read nor changed.
        d_learning_rate: Adam learning rate of the discriminator.
        g_learning_rate: Adam learning rate of the generator.
        beta_1: Adam's first-moment decay for both.
        generator_loss: ``"non-saturating"`` or ``"saturating"``.
        decay_steps: if given, both learning rates follow a cosine decay to
            zero over this many steps (``epochs * ceil(N / batch_size)``):
            late in training the game then oscillates less, so the final
            samples depend less on the exact step training stops at.
        kernel_size: side of every kernel of both networks.
        dropout: the discriminator's dropout rate.

    Returns:
        A compiled :class:`GAN`. Train it on images in [-1, 1]
        (``data.load(..., value_range=VALUE_RANGE)``) with
        ``fit(images, epochs=BOOK_CONFIG["epochs"],
        batch_size=BOOK_CONFIG["batch_size"])``.

    Example:

    >>> model = make_model(width=8)
    >>> model.generator.output_shape, model.discriminator.output_shape
    ((None, 28, 28, 1), (None, 1))
    """
    seed = check_seed(seed)
    model = GAN(make_generator(latent_dim, image_shape, width, kernel_size, seed=seed),
                make_discriminator(image_shape, width, kernel_size, dropout, seed=seed),
                latent_dim=latent_dim, generator_loss=generator_loss, seed=seed)
    model.compile(
        d_optimizer=keras.optimizers.Adam(_rate(d_learning_rate, decay_steps),
                                          beta_1=beta_1),
        g_optimizer=keras.optimizers.Adam(_rate(g_learning_rate, decay_steps),
                                          beta_1=beta_1),
    )
    return model


def decay_steps_for(num_examples, epochs=BOOK_CONFIG["epochs"],
                    batch_size=BOOK_CONFIG["batch_size"]):
    """Steps of a `fit` over `num_examples` for `epochs` (for `make_model`)."""
    num_examples = check_int("num_examples", num_examples)
    return check_int("epochs", epochs) * -(-num_examples // check_int(
        "batch_size", batch_size))


def _rate(learning_rate, decay_steps):
    if decay_steps is None:
        return learning_rate
    return keras.optimizers.schedules.CosineDecay(
        learning_rate, check_int("decay_steps", decay_steps))


def resize_schedule(model, total_steps):
    """Stretch a GAN's cosine learning-rate decays to end after `total_steps`.

    A resumed run that trains longer than first planned would otherwise
    continue at the end of the old decay: at learning rate 0 for
    :func:`make_model`'s schedule. Each optimiser keeps its state (moments,
    iteration count) and its schedule's initial rate and floor (``alpha``);
    only the length changes, so the rate continues as if the run had been
    planned for `total_steps` from the start. Optimisers with a constant rate
    are left alone.

    Args:
        model: a compiled :class:`GAN` (e.g. loaded from a ``.keras`` file).
        total_steps: optimiser steps of the whole run, the ones already taken
            included (e.g. ``decay_steps_for(len(images), epochs, batch_size)``
            for the new total of `epochs`); at least those already taken.

    Returns:
        `model`, changed in place (its next `fit` is compiled afresh).

    Raises:
        ValueError: if `total_steps` is not an integer, or fewer than the
            steps already taken.

    Example:

    >>> model = make_model(width=4, latent_dim=8, decay_steps=10)
    >>> resize_schedule(model, 40).d_optimizer.learning_rate.dtype
    dtype('float32')
    >>> model.d_optimizer._learning_rate.decay_steps
    40
    """
    total_steps = check_int("total_steps", total_steps)
    done = int(np.asarray(model.optimizer.iterations))
    if total_steps < done:
        raise ValueError(f"`total_steps` must be at least the {done} steps "
                         f"already taken; got {total_steps}.")
    for optimizer in (model.d_optimizer, model.g_optimizer):
        schedule = optimizer._learning_rate
        if isinstance(schedule, keras.optimizers.schedules.CosineDecay):
            config = dict(schedule.get_config(), decay_steps=total_steps)
            optimizer.learning_rate = type(schedule).from_config(config)
    model.train_function = None  # its compiled step holds the old schedules
    return model


def layer_table(model):
    """One row a layer of a functional or sequential model: for shape tables.

    Args:
        model: a built `keras.Model`.

    Returns:
        A list of dicts with keys ``layer`` (class name), ``name``,
        ``output_shape`` (tuple, batch axis None) and ``params``.

    Example:

    >>> rows = layer_table(make_generator(latent_dim=8, width=4))
    >>> rows[-1]["output_shape"]
    (None, 28, 28, 1)
    """
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        rows.append({
            "layer": type(layer).__name__,
            "name": layer.name,
            "output_shape": tuple(layer.output.shape),
            "params": int(layer.count_params()),
        })
    return rows
