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

import keras
import numpy as np
from keras import ops

from companion import losses
from companion._validation import check_choice, check_images, check_int

VALUE_RANGE = "symmetric"
GENERATOR_LOSSES = ("non-saturating", "saturating")

BOOK_CONFIG = {
    "width": 16,  # base channel count (the article's is 64)
    "kernel_size": 5,  # side of every kernel (the article's)
    "dropout": 0.0,  # the discriminator's dropout rate (the article's is 0.3)
    "latent_dim": 64,
    "epochs": 13,
    "batch_size": 64,
    "d_learning_rate": 1e-3,
    "g_learning_rate": 1e-3,
    "beta_1": 0.5,  # Adam's momentum, lowered as in Radford et al. (2016)
    "decay": "cosine",  # make_model(decay_steps=decay_steps_for(len(images)))
}
"""The configuration the DCGAN notebook trains (CLI and benchmarks reuse it).

Tuned on ``mnist10k`` (9,000 training digits) for the notebook's budget (at
most 90 s on two CPU cores, training included): 13 epochs of 141 steps take
about a minute, compilation included. Each setting below was trained once
(seed 0 unless said) and scored with
:func:`companion.evaluation.sample_quality` on 1,000 samples (Fréchet
distance floor 2.5):

- dropout: with the article's 0.3 every setting tried stayed at a Fréchet
  distance of 40 to 65; without it, this configuration reaches 30.9 and
  35.3 (seeds 0 and 1; coverage 0.975 and 0.979). With 3x3 kernels and 18
  epochs: 44.8 and 48.2 (seeds 0 and 1) without dropout against 57.5 and
  61.0 with it.
- 3x3 kernels instead of 5x5: a step costs about half as much (17 against
  32 ms for 64 images), but for the same training time the distance was
  worse (41.7 after 26 epochs against 30.9 after 13, both without dropout).
- learning rates: 1e-3 for both against 4e-4: 48 against 60 (batch 32,
  with dropout); 2e-3 was no better. A faster discriminator (1e-3 against
  2e-4 for the generator) or a slower one (5e-4 against 2e-3) was worse, and
  so was Adam's beta_1 = 0.9 instead of 0.5.
- batches of 32: 36.5 after 20 epochs (77 s of training, over budget);
  batches of 128 were worse.
- width 24 or 32, a wider discriminator alone (48) or a wider generator
  alone (32), all with dropout: no better within the budget.

None of these comes near the issue's target of five times the floor (about
13); see ``book/02_gan/dcgan.ipynb`` for what the samples look like.
"""


def make_generator(latent_dim=100, image_shape=(28, 28, 1), width=64,
                   kernel_size=BOOK_CONFIG["kernel_size"], name="generator"):
    """The DCGAN generator of the original's section 4.1, corrected.

    ``Dense -> (H/4, W/4, 4w) -> ConvT(2w, stride 1) -> ConvT(w, stride 2) ->
    ConvT(C, stride 2, tanh)``, with batch normalisation and leaky ReLU
    between. For 28x28x1: 7x7 -> 7x7 -> 14x14 -> 28x28x1. The original
    asserted 7x7 after a stride-2 layer and made three channels.

    Args:
        latent_dim: size of the noise vector ``z``.
        image_shape: `(H, W, C)` of the images, H and W divisible by 4.
        width: base channel count ``w`` (64 is the article's and the
            TensorFlow tutorial's size; the CPU book uses 16).
        kernel_size: side of the transposed-convolution kernels (the
            article's 5, which the book keeps).
        name: the model's name.

    Returns:
        A functional `keras.Model` from `(B, latent_dim)` to images
        `(B, H, W, C)` in [-1, 1].

    Raises:
        ValueError: for a non-positive size or H, W not divisible by 4.

    Example:

    >>> generator = make_generator(latent_dim=8, width=4)
    >>> generator.output_shape
    (None, 28, 28, 1)
    """
    latent_dim = check_int("latent_dim", latent_dim)
    width = check_int("width", width)
    height, breadth, channels = _check_image_shape(image_shape)
    layers = keras.layers
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(height // 4 * breadth // 4 * 4 * width, use_bias=False)(z)
    x = _normalise_and_activate(x)
    x = layers.Reshape((height // 4, breadth // 4, 4 * width))(x)
    for filters, stride in ((2 * width, 1), (width, 2)):
        x = layers.Conv2DTranspose(filters, kernel_size, strides=stride,
                                   padding="same", use_bias=False)(x)
        x = _normalise_and_activate(x)
    images = layers.Conv2DTranspose(channels, kernel_size, strides=2, padding="same",
                                    activation="tanh", name="images")(x)
    return keras.Model(z, images, name=name)


def make_discriminator(image_shape=(28, 28, 1), width=64,
                       kernel_size=BOOK_CONFIG["kernel_size"],
                       dropout=BOOK_CONFIG["dropout"], name="discriminator"):
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

    Returns:
        A functional `keras.Model` from images `(B, H, W, C)` to logits `(B, 1)`.

    Example:

    >>> discriminator = make_discriminator(width=4)
    >>> discriminator.output_shape
    (None, 1)
    """
    width = check_int("width", width)
    _check_image_shape(image_shape)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1); got {dropout!r}.")
    layers = keras.layers
    images = keras.Input(tuple(image_shape), name="images")
    x = images
    for filters in (width, 2 * width):
        x = layers.Conv2D(filters, kernel_size, strides=2, padding="same")(x)
        x = layers.LeakyReLU(negative_slope=0.2)(x)
        x = layers.Dropout(dropout)(x)
    logits = layers.Dense(1, name="logit")(layers.Flatten()(x))
    return keras.Model(images, logits, name=name)


def _normalise_and_activate(x):
    # momentum 0.9 (not 0.99): the moving statistics used by `sample` must
    # keep up with a generator that changes quickly during short training.
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    return keras.layers.LeakyReLU(negative_slope=0.2)(x)


def _check_image_shape(image_shape):
    shape = tuple(image_shape)
    if len(shape) != 3 or any(not isinstance(s, (int, np.integer)) or s < 1
                              for s in shape):
        raise ValueError(f"`image_shape` must be (H, W, C) of positive ints; "
                         f"got {image_shape!r}.")
    if shape[0] % 4 or shape[1] % 4:
        raise ValueError(f"`image_shape` must have H and W divisible by 4 (two "
                         f"stride-2 layers); got {image_shape!r}.")
    return shape


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

    **Simultaneous updates.** Each ``train_step`` draws one noise batch, runs
    ``G`` once and ``D`` on the real and the generated batch, and takes *both*
    gradients at the same parameters: ``d_loss`` with respect to ``D``'s
    weights only, ``g_loss`` with respect to ``G``'s weights only. One
    `MultiOptimizer` (``D``'s optimiser for ``D``'s variables, ``G``'s for
    the rest) applies them together. This is the scheme of the TensorFlow
    DCGAN tutorial the original's listing comes from; it shares one forward
    pass and compiles to one JAX function. Goodfellow et al.'s Algorithm 1
    alternates instead (``k`` discriminator steps, then one generator step
    that sees the updated ``D``); with small learning rates both follow the
    same gradient field, and neither is the original's two separate
    "phases" of training.

    Tracked metrics: ``d_loss``, ``g_loss``, ``d_real`` (mean ``D(x)``),
    ``d_fake`` (mean ``D(G(z))``) and ``g_grad_norm`` (the global norm of the
    generator's gradient, averaged over the epoch's steps).

    Args:
        generator: a built `keras.Model` from `(B, latent_dim)` to data.
        discriminator: a built `keras.Model` from data to logits `(B, 1)`.
        latent_dim: size of the noise vector.
        generator_loss: ``"non-saturating"`` (default) or ``"saturating"``.
        seed: seed of the model's `SeedGenerator` (the training noise).

    Raises:
        ValueError: for an unknown `generator_loss`, or networks whose
            shapes do not fit together.

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
        self.seed = seed
        self._check_networks()
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm")
        }
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

    def compile(self, d_optimizer=None, g_optimizer=None, optimizer=None, **kwargs):
        """Configure training with one optimiser a network.

        Args:
            d_optimizer: the discriminator's optimiser (default
                ``Adam(2e-4, beta_1=0.5)``).
            g_optimizer: the generator's optimiser (same default).
            optimizer: a ready `MultiOptimizer` instead of the two above
                (used when a saved model is loaded).
            **kwargs: passed to `keras.Model.compile`.

        Raises:
            ValueError: if a generator and a discriminator variable share a path.
        """
        if optimizer is None:
            self.d_optimizer = d_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
            self.g_optimizer = g_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
            optimizer = self._multi_optimizer(self.d_optimizer, self.g_optimizer)
        super().compile(optimizer=optimizer, **kwargs)

    def get_compile_config(self):
        if getattr(self, "d_optimizer", None) is None:
            return None
        return {
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
        }

    def compile_from_config(self, config):
        self.compile(d_optimizer=keras.optimizers.deserialize(config["d_optimizer"]),
                     g_optimizer=keras.optimizers.deserialize(config["g_optimizer"]))
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

        Raises:
            ValueError: if `x` does not have the generator's example shape, or
                (for images) values outside [-1, 1] or all >= 0, i.e. data
                loaded in [0, 1] instead of with ``value_range="symmetric"``.
        """
        if x is not None and not hasattr(x, "element_spec"):
            x = self._check_data(x)
        return super().fit(x, y, **kwargs)

    def _check_data(self, x):
        if len(self.data_shape) == 3:
            x = check_images(x, "x", shape=self.data_shape, value_range=(-1.0, 1.0))
            if x.size and float(x.min()) >= 0.0:
                raise ValueError(
                    "`x` values lie in [0, 1], but a GAN with a tanh output trains "
                    "on [-1, 1]: load the data with value_range='symmetric'."
                )
            return x
        x = np.asarray(x, dtype="float32")
        if x.shape[1:] != self.data_shape or not np.isfinite(x).all():
            raise ValueError(f"`x` must be finite with shape (N, "
                             f"{', '.join(map(str, self.data_shape))}); got {x.shape}.")
        return x

    def train_step(self, state, data):
        """One simultaneous update of both networks (stateless, for JAX)."""
        trainable, non_trainable = state[0], state[1]
        real = data[0] if isinstance(data, (tuple, list)) else data
        parts = self._split(trainable, non_trainable)
        z, seed_state = self._draw_noise(parts["seed"], ops.shape(real)[0])

        def forward(g_trainable, d_trainable):
            return self._forward_losses(g_trainable, d_trainable, parts["g_rest"],
                                parts["d_rest"], real, z)

        (d_loss, g_loss), g_grads, d_grads, aux = self._own_gradients(forward, parts)
        real_logits, fake_logits, g_rest, d_rest = aux
        values = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": ops.mean(ops.sigmoid(real_logits)),
            "d_fake": ops.mean(ops.sigmoid(fake_logits)),
        }
        return self._apply_gradients(state, g_grads, d_grads, g_rest, d_rest,
                                     seed_state, values)

    @staticmethod
    def _own_gradients(forward, parts):
        """Each network's gradient of its own loss, from one forward pass.

        `forward(g_trainable, d_trainable)` returns ``((d_loss, g_loss), aux)``;
        one vector-Jacobian product gives both pullbacks, so D's gradient comes
        from D's loss only and G's from G's loss only.
        """
        import jax

        losses_, pullback, aux = jax.vjp(forward, parts["g"], parts["d"], has_aux=True)
        one, zero = ops.ones_like(losses_[0]), ops.zeros_like(losses_[0])
        _, d_grads = pullback((one, zero))
        g_grads, _ = pullback((zero, one))
        return losses_, g_grads, d_grads, aux

    def _apply_gradients(self, state, g_grads, d_grads, g_rest, d_rest, seed_state,
                         values):
        """Apply both networks' gradients in one optimizer step; update metrics."""
        trainable, non_trainable, optimizer_variables, metric_variables = state
        grads = self._merge(trainable, self.trainable_variables,
                            self.generator.trainable_variables, g_grads,
                            self.discriminator.trainable_variables, d_grads)
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, grads, trainable)
        non_trainable = self._merge_non_trainable(non_trainable, g_rest, d_rest,
                                                  seed_state)
        values = dict(values, g_grad_norm=ops.sqrt(
            sum(ops.sum(ops.square(g)) for g in g_grads)))
        logs, metric_variables = self._update_metrics(metric_variables, values)
        return logs, (trainable, non_trainable, optimizer_variables, metric_variables)

    def _forward_losses(self, g_trainable, d_trainable, g_rest, d_rest, real, z):
        fake, g_rest = self.generator.stateless_call(g_trainable, g_rest, z,
                                                     training=True)
        real_logits, d_rest = self.discriminator.stateless_call(
            d_trainable, d_rest, real, training=True)
        fake_logits, d_rest = self.discriminator.stateless_call(
            d_trainable, d_rest, fake, training=True)
        d_loss = losses.discriminator_loss(real_logits, fake_logits)
        g_loss = losses.generator_loss(
            fake_logits, saturating=self.generator_loss == "saturating")
        return (d_loss, g_loss), (real_logits, fake_logits, g_rest, d_rest)

    def _draw_noise(self, seed_state, batch_size):
        state = self.seed_generator.state
        with keras.StatelessScope(state_mapping=[(state, seed_state)]) as scope:
            z = keras.random.normal((batch_size, self.latent_dim),
                                    seed=self.seed_generator)
            new_state = scope.get_current_value(state)
        return z, new_state

    def _split(self, trainable, non_trainable):
        """Pick each network's values out of the model's (interleaved) lists."""
        def pick(values, model_variables, wanted):
            index = {id(v): i for i, v in enumerate(model_variables)}
            return [values[index[id(v)]] for v in wanted]

        g, d = self.generator, self.discriminator
        return {
            "g": pick(trainable, self.trainable_variables, g.trainable_variables),
            "d": pick(trainable, self.trainable_variables, d.trainable_variables),
            "g_rest": pick(non_trainable, self.non_trainable_variables,
                           g.non_trainable_variables),
            "d_rest": pick(non_trainable, self.non_trainable_variables,
                           d.non_trainable_variables),
            "seed": pick(non_trainable, self.non_trainable_variables,
                         [self.seed_generator.state])[0],
        }

    @staticmethod
    def _merge(values, model_variables, *variables_and_updates):
        """Return `values` (ordered as `model_variables`) with updates put in.

        `variables_and_updates` alternates a list of variables and a list of
        their new values.
        """
        index = {id(v): i for i, v in enumerate(model_variables)}
        merged = list(values)
        for variables, updates in zip(variables_and_updates[::2],
                                      variables_and_updates[1::2]):
            for variable, update in zip(variables, updates):
                merged[index[id(variable)]] = update
        return merged

    def _merge_non_trainable(self, non_trainable, g_rest, d_rest, seed_state):
        return self._merge(non_trainable, self.non_trainable_variables,
                           self.generator.non_trainable_variables, g_rest,
                           self.discriminator.non_trainable_variables, d_rest,
                           [self.seed_generator.state], [seed_state])

    def _update_metrics(self, metric_variables, values):
        logs, updated, start = {}, [], 0
        for metric in self.metrics:
            count = len(metric.variables)
            own = metric.stateless_update_state(
                metric_variables[start:start + count], values[metric.name])
            logs[metric.name] = metric.stateless_result(own)
            updated.extend(own)
            start += count
        return logs, updated

    def generate(self, num, seed=None, batch_size=100):
        """Draw `num` examples from the generator, as its raw output.

        The generator runs as one compiled JAX function: ``jax.jit`` over its
        ``stateless_call`` in inference mode, mapped (``jax.lax.map``) over
        batches of `batch_size` noise vectors, so one call makes all `num`
        examples. It is compiled once a shape and reused.

        Args:
            num: how many examples (>= 1).
            seed: an int makes the noise, hence the output, deterministic.
            batch_size: examples a batch inside the compiled call (the last
                batch is padded). Batches of about a hundred keep a CPU's
                caches busy; on a GPU, larger ones are faster.

        Returns:
            float32 numpy array `(num, *data_shape)` (images in [-1, 1]).

        Raises:
            ValueError: if `num` or `batch_size` is not an integer >= 1.
        """
        num = check_int("num", num)
        return self._run_generator(self.noise(num, seed),
                                   check_int("batch_size", batch_size))

    def _run_generator(self, z, batch_size=100):
        """The generator's inference output for noise `z`, in one compiled call."""
        size = min(len(z), batch_size)
        batches = -(-len(z) // size)
        padded = np.pad(z, ((0, batches * size - len(z)), (0, 0)))
        trainable = [v.value for v in self.generator.trainable_variables]
        non_trainable = [v.value for v in self.generator.non_trainable_variables]
        output = self._compiled_generator()(
            trainable, non_trainable, padded.reshape(batches, size, z.shape[1]))
        output = np.asarray(output, dtype="float32")
        return output.reshape((batches * size,) + output.shape[2:])[:len(z)]

    def _compiled_generator(self):
        if getattr(self, "_jitted_generator", None) is None:
            import jax

            def run(trainable, non_trainable, batches):
                def one_batch(z):
                    images, _ = self.generator.stateless_call(
                        trainable, non_trainable, z, training=False)
                    return images
                return jax.lax.map(one_batch, batches)

            self._jitted_generator = jax.jit(run)
        return self._jitted_generator

    def noise(self, num, seed=None):
        """The standard normal noise `(num, latent_dim)` that `generate` uses."""
        num = check_int("num", num)
        if seed is None:
            return np.asarray(keras.random.normal((num, self.latent_dim)))
        return np.asarray(keras.random.normal((num, self.latent_dim),
                                              seed=int(seed)))

    def decode(self, z):
        """Map given noise vectors `(N, latent_dim)` to images in [0, 1] (e.g.
        to interpolate in the latent space)."""
        self._require_images()
        z = np.asarray(z, dtype="float32")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"`z` must have shape (N, {self.latent_dim}); "
                             f"got {z.shape}.")
        images = self._run_generator(z)
        return np.clip((images + 1.0) / 2.0, 0.0, 1.0).astype("float32")

    def sample(self, num, seed=None):
        """Draw `num` images in [0, 1] (the tanh output mapped by (x + 1) / 2).

        The generator runs compiled (see :meth:`generate`): after the first
        call, 1,000 samples of the book's DCGAN take about 0.1 s on two CPU
        cores.

        Args:
            num: how many images (>= 1).
            seed: an int makes the samples deterministic.

        Returns:
            float32 numpy array `(num, H, W, C)` in [0, 1].

        Raises:
            ValueError: if `num` is not an integer >= 1, or the generator does
                not make images (use `generate` for toy data).
        """
        self._require_images()
        images = self.generate(num, seed)
        return np.clip((images + 1.0) / 2.0, 0.0, 1.0).astype("float32")

    def _require_images(self):
        if len(self.data_shape) != 3:
            raise ValueError(
                f"This GAN makes examples of shape {self.data_shape}, not images; "
                "call `generate(num, seed)` for its raw output."
            )

    def discriminate(self, x):
        """The discriminator's probability ``D(x) = sigmoid(logit)`` as numpy `(N,)`."""
        logits = self.discriminator(np.asarray(x, dtype="float32"), training=False)
        return np.asarray(ops.sigmoid(logits))[:, 0]

    def get_config(self):
        config = super().get_config()
        config.update({
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "generator_loss": self.generator_loss,
            "seed": self.seed,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


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
        seed: seed of the weights' initialisation and of the training noise.
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
    keras.utils.set_random_seed(seed)
    model = GAN(make_generator(latent_dim, image_shape, width, kernel_size),
                make_discriminator(image_shape, width, kernel_size, dropout),
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
