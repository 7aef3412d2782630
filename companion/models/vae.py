"""Variational autoencoders: a convolutional VAE with a Bernoulli decoder.

A VAE (Kingma and Welling 2014; Rezende et al. 2014) is a latent-variable
model ``p(z) = N(0, I)``, ``p(x|z) = prod Bernoulli(x_i; sigmoid(logit_i(z)))``
fitted by maximising the evidence lower bound (ELBO) with an *encoder*
``q(z|x) = N(mean(x), diag exp(log_var(x)))`` that approximates the posterior:

```
log p(x) = ELBO(x) + KL(q(z|x) || p(z|x))  >=  ELBO(x)
ELBO(x)  = E_q[log p(x|z)] - KL(q(z|x) || p(z))
```

This module holds

- :func:`make_encoder` (mean and log-variance heads) and :func:`make_decoder`
  (Bernoulli logits), the corrected networks of the original's section 4.2;
- :func:`reparameterise`, the draw ``z = mean + exp(log_var / 2) * eps`` for a
  given noise ``eps``, and :class:`Sampling`, the layer that draws the noise;
- :class:`VAE`, trained with ``fit(images)`` on
  :func:`companion.losses.vae_loss` (the beta-weighted negative ELBO), with
  ``encode``, ``decode`` (Bernoulli means), ``decode_logits``, ``sample``,
  ``reconstruct``, ``elbo``, ``log_likelihood`` (the importance-weighted bound
  of Burda et al. 2016) and ``kl_per_dimension``;
- :class:`KLWarmup`, a callback that raises the KL weight linearly from 0, and
  :class:`KLPerDimension`, one that records the KL of each latent dimension;
- :func:`make_model` and :data:`BOOK_CONFIG`: the book's configuration.

Data are binary images in {0, 1} (:data:`VALUE_RANGE`); grey levels in [0, 1]
are accepted too (then the reconstruction term is a cross-entropy, not a
normalised log-likelihood).

Example:

>>> from companion.models import vae
>>> model = vae.make_model(latent_dim=2, width=4)
>>> model.sample(3, seed=0).shape
(3, 28, 28, 1)
"""


import jax
import keras
import numpy as np
from keras import ops
from scipy.special import expit

from companion import evaluation, inference, losses
from companion.layers import Conv2DTranspose, GlorotUniform
from companion.models._saving import config_with_networks, from_config_with_networks
from companion.training import EveryEpochs
from companion._validation import (check_fit_data, check_image_shape, check_images,
                                   check_int, check_non_negative, check_seed,
                                   derived_seed)

VALUE_RANGE = "binary"

BOOK_CONFIG = {
    "latent_dim": 32,  # size of z
    "width": 16,  # channels of the encoder's first convolution; hidden layers have 2x
    "epochs": 18,
    "batch_size": 64,
    "learning_rate": 2e-3,  # Adam's
}
"""The configuration the convolutional-VAE notebook trains (CLI and benchmarks reuse it):
the one with the best importance-weighted bound on ``mnist10k`` that trains within a
notebook's time budget on 2 CPU cores."""

LONG_CONFIG = {
    "latent_dim": 32,
    "width": 32,
    "epochs": 200,
    "batch_size": 64,
    "learning_rate": 1e-3,  # Adam's, with a cosine decay to 0 over the run
    "seed": 0,
    "check_every": 10,  # epochs between validation bounds
}
"""The configuration of the longer-trained checkpoint (:mod:`companion.pretrained`):
twice the book's width, a fresh binarisation of the training digits every
epoch, a cosine learning-rate decay over the whole run."""


ACTIVE_KL_NATS = 0.1
"""A latent dimension is *active* when its average KL to the prior exceeds this many
nats (:func:`active_dimensions`); every page of the book that counts active or
collapsed dimensions uses it."""

_BLOCK = 16384
"""Codes (images x importance samples) :meth:`VAE.log_weights` holds in memory at once."""


def _kernel_initializers(seed, count, network):
    """`count` Glorot-uniform kernel initializers, each seeded from `seed` and
    `network` (0 the encoder, 1 the decoder); unseeded for None."""
    if seed is None:
        return [GlorotUniform() for _ in range(count)]
    seeds = np.random.SeedSequence([check_seed(seed), network]).generate_state(count)
    return [GlorotUniform(seed=int(s)) for s in seeds]


def make_encoder(latent_dim, image_shape=(28, 28, 1), width=32, name="encoder",
                 seed=None):
    """The encoder ``q(z|x)``: a convolutional network with two Gaussian heads.

    ``Conv(w, stride 2) -> Conv(2w, stride 2) -> Flatten -> Dense(8w)``, then
    two linear heads: the posterior's ``mean`` and ``log_var`` (log-variance,
    unconstrained, so the variance ``exp(log_var)`` is always positive). For
    28x28x1: 14x14xw -> 7x7x2w. The original's encoder returned a single
    64-vector, i.e. a plain autoencoder's code with no distribution.

    Args:
        latent_dim: size of ``z`` (>= 1).
        image_shape: `(H, W, C)`, H and W divisible by 4.
        width: channels of the first convolution (>= 1).
        name: the model's name.
        seed: an int makes the initial weights deterministic (and leaves
            Keras' global random state alone); None draws them from it.

    Returns:
        A functional `keras.Model` from images `(B, H, W, C)` to the list
        ``[mean, log_var]``, each `(B, latent_dim)`.

    Raises:
        ValueError: for `latent_dim` or `width` < 1, a bad `image_shape` or `seed`.

    Example:

    >>> encoder = make_encoder(latent_dim=2, width=4)
    >>> [tuple(s) for s in encoder.output_shape]
    [(None, 2), (None, 2)]
    """
    latent_dim = check_int("latent_dim", latent_dim)
    width = check_int("width", width)
    shape = check_image_shape(image_shape, multiple_of=4)
    kernels = _kernel_initializers(seed, 5, network=0)
    layers = keras.layers
    images = keras.Input(shape, name="images")
    x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu",
                      kernel_initializer=kernels[0])(images)
    x = layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu",
                      kernel_initializer=kernels[1])(x)
    x = layers.Dense(8 * width, activation="relu",
                     kernel_initializer=kernels[2])(layers.Flatten()(x))
    mean = layers.Dense(latent_dim, name="mean", kernel_initializer=kernels[3])(x)
    log_var = layers.Dense(latent_dim, name="log_var", kernel_initializer=kernels[4])(x)
    return keras.Model(images, [mean, log_var], name=name)


def make_decoder(latent_dim, image_shape=(28, 28, 1), width=32, name="decoder",
                 seed=None):
    """The decoder ``p(x|z)``: latent codes to Bernoulli *logits* per pixel.

    ``Dense(H/4 * W/4 * 2w) -> ConvT(2w, 4x4, stride 2) -> ConvT(C, 4x4,
    stride 2)``; for 28x28x1: 7x7 -> 14x14 -> 28x28x1, the image's own shape
    (the original's decoder made 66x66). The output is a logit ``l``; the
    pixel's probability of being 1 is ``sigmoid(logit)``. Returning logits (no
    sigmoid layer) lets the loss use the stable form of
    :func:`companion.losses.bernoulli_log_likelihood`.
    The transposed convolutions are :class:`companion.layers.Conv2DTranspose`
    (Keras' layer, differentiated as the transpose of a convolution).

    Args:
        latent_dim: size of ``z`` (>= 1).
        image_shape: `(H, W, C)`, H and W divisible by 4.
        width: half the channels of the hidden layers (>= 1).
        name: the model's name.
        seed: an int makes the initial weights deterministic (and leaves
            Keras' global random state alone); None draws them from it.

    Returns:
        A functional `keras.Model` from `(B, latent_dim)` to logits `(B, H, W, C)`.

    Raises:
        ValueError: for `latent_dim` or `width` < 1, a bad `image_shape` or `seed`.

    Example:

    >>> make_decoder(latent_dim=2, width=4).output_shape
    (None, 28, 28, 1)
    """
    latent_dim = check_int("latent_dim", latent_dim)
    width = check_int("width", width)
    height, breadth, channels = check_image_shape(image_shape, multiple_of=4)
    kernels = _kernel_initializers(seed, 3, network=1)
    layers = keras.layers
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(height // 4 * breadth // 4 * 2 * width, activation="relu",
                     kernel_initializer=kernels[0])(z)
    x = layers.Reshape((height // 4, breadth // 4, 2 * width))(x)
    x = Conv2DTranspose(2 * width, 4, strides=2, padding="same",
                        activation="relu", kernel_initializer=kernels[1])(x)
    logits = Conv2DTranspose(channels, 4, strides=2, padding="same",
                             name="logits", kernel_initializer=kernels[2])(x)
    return keras.Model(z, logits, name=name)


def active_dimensions(kl_per_dimension, threshold=ACTIVE_KL_NATS):
    """How many latent dimensions carry information: average KL above `threshold`.

    Formula:

    ```
    active = #{ j : KL_j > threshold },   KL_j = mean over x of KL(q(z_j|x) || N(0, 1))
    ```

    A dimension at or below the threshold is (nearly) *collapsed*: the encoder
    ignores it and the decoder reads prior noise there.

    Args:
        kl_per_dimension: average KL of each dimension in nats, shape
            `(latent_dim,)`, as :meth:`VAE.kl_per_dimension` returns it.
        threshold: nats, >= 0 (default :data:`ACTIVE_KL_NATS`).

    Returns:
        int, between 0 and `latent_dim`.

    Raises:
        ValueError: if `kl_per_dimension` is not one-dimensional or `threshold`
            is negative.

    Example:

    >>> active_dimensions([0.02, 0.5, 3.1, 0.09])
    2
    """
    values = np.asarray(kl_per_dimension, "float64")
    if values.ndim != 1:
        raise ValueError("`kl_per_dimension` must be one-dimensional (one KL a latent "
                         f"dimension); got shape {values.shape}.")
    if not threshold >= 0:
        raise ValueError(f"`threshold` must be a number of nats >= 0; got {threshold!r}.")
    return int(np.sum(values > threshold))


def reparameterise(mean, log_var, noise):
    """The reparameterised draw from ``N(mean, diag exp(log_var))`` for given noise.

    Formula:

    ```
    z = mean + exp(log_var / 2) * noise,    noise ~ N(0, I)
    ```

    ``exp(log_var / 2)`` is the standard deviation. `z` is a differentiable
    function of `mean` and `log_var`; the noise is an input (Kingma and Welling
    2014). :class:`Sampling` draws the noise and calls this.

    Args:
        mean: means, shape `(B, D)` (any shape).
        log_var: log-variances, the same shape.
        noise: standard-normal draws, the same shape.

    Returns:
        A tensor of that shape.

    Raises:
        ValueError: if the three shapes differ.

    Example:

    >>> import numpy as np
    >>> mean, log_var = np.array([[1.0, 0.0]]), np.log(np.array([[4.0, 1.0]]))
    >>> np.asarray(reparameterise(mean, log_var, np.array([[0.5, -1.0]]))).tolist()
    [[2.0, -1.0]]
    """
    shapes = {name: tuple(ops.shape(value)) for name, value in
              (("mean", mean), ("log_var", log_var), ("noise", noise))}
    if len(set(shapes.values())) > 1:
        raise ValueError("`mean`, `log_var` and `noise` must have the same shape; got "
                         + ", ".join(f"{n}.shape={s}" for n, s in shapes.items()) + ".")
    return mean + ops.exp(0.5 * log_var) * noise


@keras.saving.register_keras_serializable(package="companion")
class Sampling(keras.layers.Layer):
    """The reparameterisation trick: draw ``z ~ N(mean, diag exp(log_var))``.

    Formula:

    ```
    z = mean + exp(log_var / 2) * eps,    eps ~ N(0, I)
    ```

    The noise ``eps`` does not depend on the parameters, so ``z`` is a
    differentiable function of ``mean`` and ``log_var`` and gradients flow
    from the decoder into the encoder (Kingma and Welling 2014).

    Args:
        seed: seed of the layer's `SeedGenerator`.

    Example:

    >>> import numpy as np
    >>> layer = Sampling(seed=0)
    >>> mean, log_var = np.zeros((2, 3), "float32"), np.full((2, 3), -100.0, "float32")
    >>> bool(np.abs(np.asarray(layer([mean, log_var]))).max() < 1e-6)  # no variance: z = mean
    True
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def call(self, inputs):
        mean, log_var = inputs
        eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator,
                                  dtype=mean.dtype)
        return reparameterise(mean, log_var, eps)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="companion")
class VAE(keras.Model):
    """A variational autoencoder trained with ``fit`` on the negative ELBO.

    Each ``train_step`` encodes the batch, draws one ``z`` per example with
    the reparameterisation trick, decodes it and takes one gradient step on
    :func:`companion.losses.vae_loss`,

    ```
    loss = mean_batch( -log p(x|z) + kl_weight * KL(q(z|x) || N(0, I)) )
    ```

    with respect to the encoder's and the decoder's weights *together* (one
    objective, one backward pass: there are no separate "encoder" and
    "decoder" phases). ``kl_weight`` starts at `beta`; ``beta = 1`` is the
    ELBO (Kingma and Welling 2014), other values the beta-VAE objective
    (Higgins et al. 2017): beta trades the *rate* (the KL, in nats) against
    the *distortion* (the reconstruction term). ``kl_weight`` is a
    non-trainable variable, so a callback such as :class:`KLWarmup` can change
    it during training; it is saved with the model.

    Tracked metrics (per epoch, averaged over batches; ``evaluate`` and
    ``fit(validation_data=...)`` report the same on held-out images):
    ``loss``, ``reconstruction`` (``-log p(x|z)``, nats) and ``kl`` (nats).
    :class:`KLPerDimension` records the KL of each latent dimension.

    Args:
        encoder: a `keras.Model` from images to ``[mean, log_var]``.
        decoder: a `keras.Model` from ``(B, latent_dim)`` to logits shaped like
            the images.
        beta: initial weight of the KL term, a finite number >= 0.
        seed: an int in [0, 2**32 - 1] seeds the model's seed generators
            (training noise, samples); None draws it from Keras' global state.

    Raises:
        ValueError: for a bad `beta` or `seed`, or networks whose shapes do not fit.

    Example:

    >>> import numpy as np
    >>> model = VAE(make_encoder(2, width=4), make_decoder(2, width=4), seed=0)
    >>> model.compile(optimizer="adam")
    >>> images = np.zeros((8, 28, 28, 1), "float32")
    >>> history = model.fit(images, epochs=1, batch_size=4, verbose=0)
    >>> sorted(history.history)
    ['kl', 'loss', 'reconstruction']
    """

    def __init__(self, encoder, decoder, beta=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.beta = check_non_negative("beta", beta)
        self.encoder = encoder
        self.decoder = decoder
        self.seed = check_seed(seed)
        self._check_networks()
        self.latent_dim = int(self.decoder.input_shape[-1])
        self.sampler = Sampling(seed=self.seed, name="sampling")
        self.seed_generator = keras.random.SeedGenerator(
            derived_seed(self.seed, 1))
        self.kl_weight = keras.Variable(self.beta, trainable=False, name="kl_weight",
                                        dtype="float32")
        self._trackers = [keras.metrics.Mean(name=name)
                          for name in ("loss", "reconstruction", "kl")]
        self.built = True

    def _check_networks(self):
        outputs = self.encoder.output_shape
        if not (isinstance(outputs, list) and len(outputs) == 2):
            raise ValueError("`encoder` must return [mean, log_var]; it returns "
                             f"{outputs}.")
        latent = tuple(self.decoder.input_shape[1:])
        if tuple(outputs[0][1:]) != latent or tuple(outputs[1][1:]) != latent:
            raise ValueError(
                f"`decoder` must take the encoder's codes: encoder outputs "
                f"{outputs}, decoder input {self.decoder.input_shape}."
            )
        if tuple(self.decoder.output_shape[1:]) != tuple(self.encoder.input_shape[1:]):
            raise ValueError(
                "`decoder` must output the encoder's input shape; encoder input "
                f"{self.encoder.input_shape}, decoder output "
                f"{self.decoder.output_shape}."
            )

    @property
    def image_shape(self):
        """Shape of one image, e.g. `(28, 28, 1)`."""
        return tuple(self.encoder.input_shape[1:])

    @property
    def metrics(self):
        return list(self._trackers)

    def call(self, x, training=False):
        """Encode, draw ``z`` by reparameterisation, decode.

        Returns:
            ``(logits, mean, log_var)``.
        """
        mean, log_var = self.encoder(x, training=training)
        z = self.sampler([mean, log_var])
        return self.decoder(z, training=training), mean, log_var

    def fit(self, x=None, y=None, **kwargs):
        """Train on images in [0, 1] (binary for a true likelihood); see `keras.Model.fit`.

        An array `x` is checked first; a `tf.data.Dataset`, a
        `keras.utils.PyDataset` or a Python generator of batches goes to Keras
        unchecked (a generator must yield tuples ``(batch,)``, as Keras says).

        Raises:
            ValueError: if an array `x` (or `validation_data`) is not
                `(N, *image_shape)` with values in [0, 1], or `batch_size` is
                not an integer >= 1.
        """
        x = check_fit_data(x, "x", shape=self.image_shape)
        if hasattr(kwargs.get("validation_data"), "__array__"):
            kwargs["validation_data"] = check_fit_data(
                kwargs["validation_data"], "validation_data", shape=self.image_shape)
        return super().fit(x, y, **self._check_batch_size(kwargs))

    def evaluate(self, x=None, y=None, **kwargs):
        """The loss and its terms on held-out images; see `keras.Model.evaluate`.

        Raises:
            ValueError: if an array `x` is not `(N, *image_shape)` with values
                in [0, 1], or `batch_size` is not an integer >= 1.
        """
        x = check_fit_data(x, "x", shape=self.image_shape)
        return super().evaluate(x, y, **self._check_batch_size(kwargs))

    @staticmethod
    def _check_batch_size(kwargs):
        if kwargs.get("batch_size") is not None:
            kwargs["batch_size"] = check_int("batch_size", kwargs["batch_size"])
        return kwargs

    # Training --------------------------------------------------------------------

    def stateless_loss(self, trainable, non_trainable, x, training=False):
        """The loss of batch `x` as a pure function of the variables' values.

        Keras on JAX trains statelessly: the variables' values come in as
        arguments (`trainable` is what `jax.grad` differentiates) and the
        updated non-trainable values (the samplers' seeds) go out.

        Returns:
            ``(loss, (terms, non_trainable))``: the scalar loss, the metrics'
            values (``reconstruction`` and ``kl``, batch means in nats) and the
            non-trainable variables' new values.
        """
        variables = self.trainable_variables + self.non_trainable_variables
        values = list(trainable) + list(non_trainable)
        with keras.StatelessScope(state_mapping=zip(variables, values)) as scope:
            mean, log_var = self.encoder(x, training=training)  # q(z|x)
            z = self.sampler([mean, log_var])  # z = mean + exp(log_var / 2) * eps
            logits = self.decoder(z, training=training)  # p(x|z) = Bernoulli(sigmoid(logits))
            loss = losses.vae_loss(x, logits, mean, log_var, beta=self.kl_weight.value)
        terms = {"reconstruction": -ops.mean(losses.bernoulli_log_likelihood(x, logits)),
                 "kl": ops.mean(losses.kl_normal(mean, log_var))}
        non_trainable = [scope.get_current_value(v) for v in self.non_trainable_variables]
        return loss, (terms, non_trainable)

    def train_step(self, state, data):
        """One gradient step on the encoder and the decoder together.

        ``fit`` calls it for every batch inside one compiled JAX function:
        `state` holds the values of every variable and the step returns their
        new values instead of changing anything in place.
        """
        trainable, non_trainable, optimizer_variables, metric_variables = state
        x = data[0] if isinstance(data, (tuple, list)) else data

        def scaled_loss(trainable):
            loss, (terms, new_non_trainable) = self.stateless_loss(
                trainable, non_trainable, x, training=True)
            # Under mixed float16 the optimizer multiplies the loss by a scale, so
            # small float16 gradients do not underflow to 0, and `stateless_apply`
            # divides the gradients by it again; under other policies it is 1.
            optimizer_state = list(zip(self.optimizer.variables, optimizer_variables))
            with keras.StatelessScope(state_mapping=optimizer_state):
                scaled = self.optimizer.scale_loss(loss)
            return scaled, (loss, terms, new_non_trainable)

        loss_and_gradients = jax.value_and_grad(scaled_loss, has_aux=True)
        (_, (loss, terms, non_trainable)), gradients = loss_and_gradients(trainable)
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, gradients, trainable)
        logs, metric_variables = self._update_metrics(metric_variables, loss=loss, **terms)
        return logs, (trainable, non_trainable, optimizer_variables, metric_variables)

    def test_step(self, state, data):
        """The training loss and its terms on held-out images, without updating weights."""
        trainable, non_trainable, metric_variables = state
        x = data[0] if isinstance(data, (tuple, list)) else data
        loss, (terms, non_trainable) = self.stateless_loss(trainable, non_trainable, x)
        logs, metric_variables = self._update_metrics(metric_variables, loss=loss, **terms)
        return logs, (trainable, non_trainable, metric_variables)

    def _update_metrics(self, metric_variables, **values):
        """Update each tracker with its value, statelessly; return logs and variables."""
        logs, updated = {}, []
        for metric in self.metrics:
            own = metric_variables[len(updated):len(updated) + len(metric.variables)]
            own = metric.stateless_update_state(own, values[metric.name])
            logs[metric.name] = metric.stateless_result(own)
            updated.extend(own)
        return logs, updated

    # Inference -------------------------------------------------------------------
    #
    # Every method below runs through `companion.inference`: one compiled program
    # a purpose ("encode", "decode", "noise", "sample", "sample_binary",
    # "sample_terms"), called on chunks of `inference.CHUNK` rows whatever the
    # number asked for. A random chunk gets its own key, `fold_in(key, i)`.

    def _check_x(self, x):
        x = check_images(x, "x", shape=self.image_shape)
        if not len(x):
            raise ValueError(f"`x` must hold at least one image; got shape {x.shape}.")
        return x

    def _check_z(self, z):
        z = np.asarray(z, dtype="float32")
        if z.ndim != 2 or z.shape[1] != self.latent_dim or not len(z):
            raise ValueError(f"`z` must have shape (N, {self.latent_dim}) with N >= 1; "
                             f"got {z.shape}.")
        return z

    def encode(self, x, batch_size=inference.CHUNK):
        """The posterior's parameters ``(mean, log_var)``, numpy `(N, latent_dim)` each.

        Args:
            x: images `(N, *image_shape)` in [0, 1].
            batch_size: images a compiled call (>= 1); the default keeps one
                compiled program for every `N`, another value compiles one more.

        Raises:
            ValueError: if `x` is not `(N, *image_shape)` in [0, 1] or
                `batch_size` is not an integer >= 1.
        """
        x = self._check_x(x)
        batch_size = check_int("batch_size", batch_size)

        def encode(images):
            mean, log_var = self.encoder(images, training=False)
            return ops.cast(mean, "float32"), ops.cast(log_var, "float32")

        run = inference.compiled(self, "encode", encode, self.encoder.variables)
        return inference.in_chunks(run, len(x), (x,), chunk=batch_size)

    def decode(self, z, batch_size=inference.CHUNK):
        """The decoder's Bernoulli means ``sigmoid(logits)`` for codes `z`.

        Like ``GAN.decode``, it returns images in [0, 1]: each pixel is its
        probability of being 1 under ``p(x|z)`` (e.g. to show a latent
        interpolation). :meth:`decode_logits` gives the logits.

        Args:
            z: codes `(N, latent_dim)`.
            batch_size: codes a compiled call (>= 1); the default keeps one
                compiled program for every `N`, another value compiles one more.

        Returns:
            float32 numpy `(N, *image_shape)` in [0, 1].

        Raises:
            ValueError: if `z` is not `(N, latent_dim)` or `batch_size` is not
                an integer >= 1.

        Example:

        >>> model = make_model(latent_dim=2, width=4)
        >>> images = model.decode(model.noise(3, seed=0))
        >>> images.shape, bool(0 <= images.min() and images.max() <= 1)
        ((3, 28, 28, 1), True)
        """
        return expit(self.decode_logits(z, batch_size))

    def decode_logits(self, z, batch_size=inference.CHUNK):
        """The decoder's Bernoulli logits for codes `z`, float32 numpy `(N, *image_shape)`.

        Args:
            z: codes `(N, latent_dim)`.
            batch_size: codes a compiled call (>= 1), as in :meth:`decode`.

        Raises:
            ValueError: if `z` is not `(N, latent_dim)` or `batch_size` is not
                an integer >= 1.
        """
        z = self._check_z(z)
        batch_size = check_int("batch_size", batch_size)
        run = inference.compiled(self, "decode", self._logits, self.decoder.variables)
        return inference.in_chunks(run, len(z), (z,), chunk=batch_size)

    def _logits(self, z):
        """The decoder's logits of codes `z`, in float32 whatever the dtype policy."""
        return ops.cast(self.decoder(z, training=False), "float32")

    def _prior_codes(self, key):
        """One chunk of codes ``z ~ N(0, I)`` from `key`, and a second key for pixels.

        The key is split in two, so the pixel noise of a binary sample is
        independent of its codes.
        """
        key_z, key_x = jax.random.split(key)
        z = jax.random.normal(key_z, (inference.CHUNK, self.latent_dim), dtype="float32")
        return z, key_x

    def reconstruct(self, x, sample=False, seed=None):
        """Reconstructions of `x`: the Bernoulli means :meth:`decode` of its codes.

        Args:
            x: images `(N, *image_shape)` in [0, 1].
            sample: decode a draw ``z ~ q(z|x)`` instead of the posterior mean.
            seed: with ``sample=True``, an int in [0, 2**32 - 1] makes the draw
                deterministic.

        Returns:
            float32 numpy `(N, *image_shape)` in [0, 1].

        Raises:
            ValueError: for bad images or a bad `seed`.
        """
        seed = check_seed(seed)
        mean, log_var = self.encode(x)
        if sample:
            mean = mean + np.exp(0.5 * log_var) * self.noise(len(mean), seed)
        return self.decode(mean)

    def noise(self, num, seed=None):
        """The prior draws ``z ~ N(0, I)`` that :meth:`sample` decodes with this `seed`.

        Args:
            num: how many codes (>= 1).
            seed: an int in [0, 2**32 - 1] gives the codes of ``sample(num, seed)``.

        Returns:
            float32 numpy `(num, latent_dim)`.

        Raises:
            ValueError: if `num` is not an integer >= 1 or `seed` is bad.
        """
        num, seed = check_int("num", num), check_seed(seed)
        run = inference.compiled(self, "noise", lambda key: self._prior_codes(key)[0], [])
        return inference.in_chunks(run, num, key=inference.seed_key(self.seed_generator,
                                                                    seed))

    def sample(self, num, seed=None, binary=False):
        """Draw `num` images from the model: ``z ~ N(0, I)``, then ``p(x|z)``.

        By default it returns the decoder's *Bernoulli means* ``sigmoid(logits)``
        (pixel probabilities, smooth grey images), the usual way to show VAE
        samples. With ``binary=True`` it draws the pixels themselves, a true
        sample from the model (salt-and-pepper noise wherever p is near 1/2).

        Codes, decoder and pixels run as one compiled program, the same for
        every `num`; the first images of ``sample(1000, seed=s)`` are those of
        ``sample(10, seed=s)``, and the codes are :meth:`noise`'s.

        Args:
            num: how many images (>= 1).
            seed: an int in [0, 2**32 - 1] makes the samples deterministic.
            binary: draw {0, 1} pixels instead of returning probabilities.

        Returns:
            float32 numpy array `(num, *image_shape)` in [0, 1].

        Raises:
            ValueError: if `num` is not an integer >= 1 or `seed` is bad.
        """
        num, seed, binary = check_int("num", num), check_seed(seed), bool(binary)

        def draw(key):
            z, key_x = self._prior_codes(key)
            probabilities = jax.nn.sigmoid(self._logits(z))
            if binary:
                uniforms = jax.random.uniform(key_x, probabilities.shape)
                return ops.cast(uniforms < probabilities, "float32")
            return probabilities

        purpose = "sample_binary" if binary else "sample"
        run = inference.compiled(self, purpose, draw, self.decoder.variables)
        return inference.in_chunks(run, num, key=inference.seed_key(self.seed_generator,
                                                                    seed))

    def kl_per_dimension(self, x):
        """Average KL(q(z_j|x) || N(0, 1)) of each latent dimension over `x`, in nats.

        A dimension whose KL stays near 0 on every input is *collapsed*: the
        encoder ignores it and the decoder gets pure prior noise there.

        Returns:
            numpy `(latent_dim,)`; its sum is the mean KL term of the ELBO.
        """
        mean, log_var = self.encode(x)
        return np.asarray(losses.kl_per_dimension(mean, log_var)).mean(axis=0)

    def log_weights(self, x, num_samples=1, seed=None):
        """Importance log-weights ``log p(x, z_s) - log q(z_s|x)``, ``z_s ~ q(z|x)``.

        Formula:

        ```
        log w_s = log p(x|z_s) + log N(z_s; 0, I) - log N(z_s; mean, diag var)
        ```

        Args:
            x: images `(N, *image_shape)` in [0, 1].
            num_samples: samples ``S`` per image (>= 1).
            seed: an int in [0, 2**32 - 1] makes the estimate deterministic.

        Returns:
            float64 numpy `(N, S)`.

        Raises:
            ValueError: for bad images, counts or seeds.
        """
        log_px, log_ratio = self._sample_terms(x, num_samples, seed)
        return log_px + log_ratio

    def _sample_terms(self, x, num_samples, seed):
        """``log p(x|z_s)`` and ``log p(z_s) - log q(z_s|x)``, float64 `(N, S)` each.

        The (image, sample) pairs are decoded in blocks of about `_BLOCK`
        codes, so thousands of samples per image fit in memory.
        """
        x = self._check_x(x)
        num_samples, seed = check_int("num_samples", num_samples), check_seed(seed)
        mean, log_var = self.encode(x)
        run = inference.compiled(self, "sample_terms", self._sample_terms_chunk,
                                 self.decoder.variables)
        key = inference.seed_key(self.seed_generator, seed)
        images = max(1, _BLOCK // num_samples)  # images a block
        log_px, ratio = [], []
        for block, start in enumerate(range(0, len(x), images)):
            # Row i * S + s of a block is sample s of its image i.
            rows = [np.repeat(a[start:start + images], num_samples, axis=0)
                    for a in (x, mean, log_var)]
            terms = inference.in_chunks(run, len(rows[0]), rows,
                                        key=jax.random.fold_in(key, block))
            log_px.append(terms[0].astype("float64").reshape(-1, num_samples))
            ratio.append(terms[1].astype("float64").reshape(-1, num_samples))
        return np.concatenate(log_px), np.concatenate(ratio)

    def _sample_terms_chunk(self, x, mean, log_var, key):
        """``log p(x|z)`` and ``log p(z) - log q(z|x)`` of one draw ``z ~ q(z|x)`` a row."""
        eps = jax.random.normal(key, mean.shape, dtype="float32")
        z = reparameterise(mean, log_var, eps)
        log_px = losses.bernoulli_log_likelihood(x, self._logits(z))
        # log N(z; 0, I) - log N(z; mean, var): the 2 pi terms cancel.
        ratio = -0.5 * ops.sum(ops.square(z) - ops.square(eps) - log_var, axis=-1)
        return log_px, ratio

    def elbo(self, x, num_samples=1, seed=None):
        """The ELBO of each image in nats, ``E_q[log p(x|z)] - KL(q(z|x) || p(z))``.

        The reconstruction term is averaged over `num_samples` draws from
        ``q(z|x)``; the KL is exact (closed form). Its expectation is at most
        ``log p(x)``.

        Args:
            x: images `(N, *image_shape)` in [0, 1].
            num_samples: draws of ``z`` per image (>= 1).
            seed: an int in [0, 2**32 - 1] makes the estimate deterministic.

        Returns:
            float64 numpy `(N,)`.
        """
        log_px, _ = self._sample_terms(x, num_samples, seed)
        mean, log_var = self.encode(x)
        kl = np.asarray(losses.kl_normal(mean, log_var), dtype="float64")
        return log_px.mean(axis=1) - kl

    def log_likelihood(self, x, num_samples=1000, seed=None):
        """Importance-weighted estimate of ``log p(x)`` per image, in nats.

        Formula (Burda et al. 2016):

        ```
        L_k(x) = log (1/k) sum_s p(x, z_s) / q(z_s|x),   z_s ~ q(z|x)
        ELBO <= E[L_1] <= E[L_k] <= E[L_{k+1}] <= log p(x)
        ```

        A lower bound in expectation that tightens as `num_samples` grows.

        Args:
            x: images `(N, *image_shape)` in [0, 1].
            num_samples: ``k`` (>= 1).
            seed: an int in [0, 2**32 - 1] makes the estimate deterministic.

        Returns:
            float64 numpy `(N,)`.
        """
        return evaluation.importance_weighted_bound(
            self.log_weights(x, num_samples, seed=seed))

    def get_config(self):
        config = super().get_config()
        config.update(beta=self.beta, seed=self.seed)
        return config_with_networks(config, self, ("encoder", "decoder"))

    @classmethod
    def from_config(cls, config):
        return from_config_with_networks(cls, config, ("encoder", "decoder"))


class KLWarmup(keras.callbacks.Callback):
    """Raise the VAE's KL weight linearly from 0 to `beta` over `epochs` epochs.

    At the start of epoch ``e`` (counting from 0) the weight is
    ``beta * min(1, e / epochs)``: the first epoch trains a plain
    autoencoder, and from epoch `epochs` on the full (beta-)ELBO. Warm-up
    (Bowman et al. 2016) lets the decoder learn to use ``z`` before the KL
    term pulls the posteriors onto the prior, which reduces posterior
    collapse. Only the last epochs optimise the true ELBO.

    Args:
        epochs: length of the ramp (>= 1).
        beta: the final weight; None uses the model's `beta`.

    Attributes:
        weights: the weight used in each epoch so far.

    Example:

    >>> warmup = KLWarmup(epochs=4)
    >>> warmup.weight_at(0, beta=1.0), warmup.weight_at(2, beta=1.0)
    (0.0, 0.5)
    """

    def __init__(self, epochs, beta=None):
        super().__init__()
        self.epochs = check_int("epochs", epochs)
        self.beta = None if beta is None else check_non_negative("beta", beta)
        self.weights = []

    def weight_at(self, epoch, beta):
        """The KL weight at the start of epoch `epoch` (from 0)."""
        return float(beta) * min(1.0, epoch / self.epochs)

    def on_epoch_begin(self, epoch, logs=None):
        beta = self.model.beta if self.beta is None else self.beta
        weight = self.weight_at(epoch, beta)
        self.model.kl_weight.assign(weight)
        self.weights.append(weight)


class KLPerDimension(EveryEpochs):
    """Record the mean KL of each latent dimension on fixed images during ``fit``.

    After every `every` epochs it appends ``model.kl_per_dimension(images)``
    (nats, one entry per latent dimension) to ``history``: a dimension
    that stays near 0 is collapsed, one that grows carries information.

    Args:
        images: the fixed images `(N, *image_shape)` in [0, 1].
        every: record after every `every` epochs (>= 1).

    Attributes:
        history: a list of lists, one per recorded epoch, of `latent_dim` floats.
        epochs: the recorded epochs, counted from 1.

    Example:

    >>> import numpy as np
    >>> model = make_model(latent_dim=2, width=4)
    >>> images = np.zeros((8, 28, 28, 1), "float32")
    >>> record = KLPerDimension(images[:4])
    >>> _ = model.fit(images, epochs=2, batch_size=4, verbose=0, callbacks=[record])
    >>> len(record.history), len(record.history[0]), record.epochs
    (2, 2, [1, 2])
    """

    def __init__(self, images, every=1):
        super().__init__(every, at_start=False)
        self.images = check_images(images, "images")
        self.history = []

    def record(self, epoch):
        per_dimension = self.model.kl_per_dimension(self.images)
        self.history.append([float(kl) for kl in per_dimension])


def make_model(image_shape=(28, 28, 1), latent_dim=BOOK_CONFIG["latent_dim"],
               width=BOOK_CONFIG["width"], beta=1.0, seed=0,
               learning_rate=BOOK_CONFIG["learning_rate"]):
    """The book's convolutional VAE, compiled and ready for ``fit(images)``.

    Args:
        image_shape: `(H, W, C)`, H and W divisible by 4.
        latent_dim: size of ``z``.
        width: channel count of the first convolution.
        beta: weight of the KL term (1 = the ELBO).
        seed: an int in [0, 2**32 - 1] seeds the initial weights and the
            training noise, leaving every global random state alone; None
            draws them from Keras' global state. ``fit``'s shuffling of the
            data follows Keras' global seed (``keras.utils.set_random_seed``).
        learning_rate: Adam's learning rate.

    Returns:
        A compiled :class:`VAE`. Train it on binary images
        (``data.load(..., value_range=VALUE_RANGE)``) with
        ``fit(images, epochs=BOOK_CONFIG["epochs"],
        batch_size=BOOK_CONFIG["batch_size"])``.

    Raises:
        ValueError: for `latent_dim` or `width` < 1, a bad `image_shape`, a
            negative `beta` or a bad `seed`.

    Example:

    >>> model = make_model(latent_dim=2, width=4)
    >>> model.encoder.output_shape, model.decoder.output_shape
    ([(None, 2), (None, 2)], (None, 28, 28, 1))
    """
    seed = check_seed(seed)
    model = VAE(make_encoder(latent_dim, image_shape, width, seed=seed),
                make_decoder(latent_dim, image_shape, width, seed=seed), beta=beta, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model
