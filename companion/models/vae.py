"""Variational autoencoders: a convolutional VAE with a Bernoulli decoder.

A VAE (Kingma and Welling 2014; Rezende et al. 2014) is a latent-variable
model ``p(z) = N(0, I)``, ``p(x|z) = prod Bernoulli(x_i; sigmoid(l_i(z)))``
fitted by maximising the evidence lower bound (ELBO) with an *encoder*
``q(z|x) = N(mean(x), diag exp(log_var(x)))`` that approximates the posterior:

```
log p(x) = ELBO(x) + KL(q(z|x) || p(z|x))  >=  ELBO(x)
ELBO(x)  = E_q[log p(x|z)] - KL(q(z|x) || p(z))
```

This module holds

- :func:`make_encoder` (mean and log-variance heads) and :func:`make_decoder`
  (Bernoulli logits), the corrected networks of the original's section 4.2;
- :class:`Sampling`, the reparameterisation ``z = mean + exp(log_var / 2) * eps``;
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

import math
import numbers

import keras
import numpy as np
from keras import ops
from scipy.special import expit

from companion import evaluation, losses
from companion.models._saving import config_with_networks, from_config_with_networks
from companion.training import EveryEpochs
from companion._validation import check_image_shape, check_images, check_int

VALUE_RANGE = "binary"

BOOK_CONFIG = {
    "latent_dim": 32,  # 16 gives a bound about 1 nat worse at the same cost
    "width": 16,  # channels of the encoder's first convolution; hidden layers have 2x
    "epochs": 18,  # about 2.5 s an epoch on 9,000 digits on 2 CPU cores
    "batch_size": 64,
    "learning_rate": 2e-3,
}
"""The configuration the convolutional-VAE notebook trains (CLI and benchmarks reuse it).

Tuned on ``mnist10k`` for a notebook of at most 75 s on 2 CPU cores: test
negative ELBO 103.7 nats and importance-weighted bound 96.4 nats (k = 200) on
the fixed stochastic binarisation of the 1,000 test digits. Width 32 costs
about 3x per epoch; width 12 for more epochs, a learning rate of 1e-3, and
cosine decays from 3e-3 or 4e-3 all gave worse bounds in the same time, 3e-3
the same.
"""

_CHUNK = 64
"""Codes a compiled decoder step: small steps keep the activations in the CPU's
cache (on 2 CPU cores, 64 codes a step decode about 3x faster than 2,000)."""
_BLOCK = 16384
"""Codes (images x importance samples) one compiled call of `log_weights` handles."""


def _check_beta(beta, name="beta"):
    if (isinstance(beta, bool) or not isinstance(beta, numbers.Real)
            or not 0 <= beta < math.inf):
        raise ValueError(f"`{name}` must be a finite number >= 0; got {beta!r}.")
    return float(beta)


def make_encoder(latent_dim, image_shape=(28, 28, 1), width=32, name="encoder"):
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

    Returns:
        A functional `keras.Model` from images `(B, H, W, C)` to the list
        ``[mean, log_var]``, each `(B, latent_dim)`.

    Raises:
        ValueError: for `latent_dim` or `width` < 1 or a bad `image_shape`.

    Example:

    >>> encoder = make_encoder(latent_dim=2, width=4)
    >>> [tuple(s) for s in encoder.output_shape]
    [(None, 2), (None, 2)]
    """
    latent_dim = check_int("latent_dim", latent_dim)
    width = check_int("width", width)
    shape = check_image_shape(image_shape, multiple_of=4)
    layers = keras.layers
    images = keras.Input(shape, name="images")
    x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu")(images)
    x = layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Dense(8 * width, activation="relu")(layers.Flatten()(x))
    mean = layers.Dense(latent_dim, name="mean")(x)
    log_var = layers.Dense(latent_dim, name="log_var")(x)
    return keras.Model(images, [mean, log_var], name=name)


def make_decoder(latent_dim, image_shape=(28, 28, 1), width=32, name="decoder"):
    """The decoder ``p(x|z)``: latent codes to Bernoulli *logits* per pixel.

    ``Dense(H/4 * W/4 * 2w) -> ConvT(2w, 4x4, stride 2) -> ConvT(C, 4x4,
    stride 2)``; for 28x28x1: 7x7 -> 14x14 -> 28x28x1, the image's own shape
    (the original's decoder made 66x66). The output is a logit ``l``; the
    pixel's probability of being 1 is ``sigmoid(l)``. Returning logits (no
    sigmoid layer) lets the loss use the stable form of
    :func:`companion.losses.bernoulli_log_likelihood`.

    Args:
        latent_dim: size of ``z`` (>= 1).
        image_shape: `(H, W, C)`, H and W divisible by 4.
        width: half the channels of the hidden layers (>= 1).
        name: the model's name.

    Returns:
        A functional `keras.Model` from `(B, latent_dim)` to logits `(B, H, W, C)`.

    Raises:
        ValueError: for `latent_dim` or `width` < 1 or a bad `image_shape`.

    Example:

    >>> make_decoder(latent_dim=2, width=4).output_shape
    (None, 28, 28, 1)
    """
    latent_dim = check_int("latent_dim", latent_dim)
    width = check_int("width", width)
    height, breadth, channels = check_image_shape(image_shape, multiple_of=4)
    layers = keras.layers
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(height // 4 * breadth // 4 * 2 * width, activation="relu")(z)
    x = layers.Reshape((height // 4, breadth // 4, 2 * width))(x)
    x = layers.Conv2DTranspose(2 * width, 4, strides=2, padding="same",
                               activation="relu")(x)
    logits = layers.Conv2DTranspose(channels, 4, strides=2, padding="same",
                                    name="logits")(x)
    return keras.Model(z, logits, name=name)


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
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mean, log_var = inputs
        eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator,
                                  dtype=mean.dtype)
        return mean + ops.exp(0.5 * log_var) * eps

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
        seed: seed of the model's seed generators (training noise, samples).

    Raises:
        ValueError: for a bad `beta` or networks whose shapes do not fit.

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
        self.beta = _check_beta(beta)
        self.encoder = encoder
        self.decoder = decoder
        self.seed = seed
        self._check_networks()
        self.latent_dim = int(self.decoder.input_shape[-1])
        self.sampler = Sampling(seed=seed, name="sampling")
        self.seed_generator = keras.random.SeedGenerator(
            None if seed is None else seed + 1)
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

        Raises:
            ValueError: if `x` is not `(N, *image_shape)` with values in [0, 1].
        """
        if x is not None and not hasattr(x, "element_spec"):
            x = check_images(x, "x", shape=self.image_shape)
        return super().fit(x, y, **kwargs)

    # Training --------------------------------------------------------------------

    def compute_loss_and_updates(self, trainable, non_trainable, x, training=False):
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
        import jax

        trainable, non_trainable, optimizer_variables, metric_variables = state
        x = data[0] if isinstance(data, (tuple, list)) else data
        loss_and_gradients = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
        (loss, (terms, non_trainable)), gradients = loss_and_gradients(
            trainable, non_trainable, x, training=True)
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, gradients, trainable)
        logs, metric_variables = self._update_metrics(metric_variables, loss=loss, **terms)
        return logs, (trainable, non_trainable, optimizer_variables, metric_variables)

    def test_step(self, state, data):
        """The training loss and its terms on held-out images, without updating weights."""
        trainable, non_trainable, metric_variables = state
        x = data[0] if isinstance(data, (tuple, list)) else data
        loss, (terms, non_trainable) = self.compute_loss_and_updates(
            trainable, non_trainable, x)
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

    def _check_x(self, x):
        return check_images(x, "x", shape=self.image_shape)

    def _check_z(self, z):
        z = np.asarray(z, dtype="float32")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"`z` must have shape (N, {self.latent_dim}); "
                             f"got {z.shape}.")
        return z

    def encode(self, x, batch_size=256):
        """The posterior's parameters ``(mean, log_var)``, numpy `(N, latent_dim)` each.

        Raises:
            ValueError: if `x` is not `(N, *image_shape)` in [0, 1].
        """
        x = self._check_x(x)
        parts = [self.encoder(x[i:i + batch_size], training=False)
                 for i in range(0, len(x), batch_size)]
        mean = np.concatenate([np.asarray(p[0]) for p in parts]).astype("float32")
        log_var = np.concatenate([np.asarray(p[1]) for p in parts]).astype("float32")
        return mean, log_var

    def decode(self, z, batch_size=_CHUNK):
        """The decoder's Bernoulli means ``sigmoid(logits)`` for codes `z`.

        Like ``GAN.decode``, it returns images in [0, 1]: each pixel is its
        probability of being 1 under ``p(x|z)`` (e.g. to show a latent
        interpolation). :meth:`decode_logits` gives the logits.

        Args:
            z: codes `(N, latent_dim)`.
            batch_size: codes a compiled decoder step (>= 1).

        Returns:
            float32 numpy `(N, *image_shape)` in [0, 1].

        Raises:
            ValueError: if `z` is not `(N, latent_dim)`.

        Example:

        >>> model = make_model(latent_dim=2, width=4)
        >>> images = model.decode(model.noise(3, seed=0))
        >>> images.shape, bool(0 <= images.min() and images.max() <= 1)
        ((3, 28, 28, 1), True)
        """
        return expit(self.decode_logits(z, batch_size))

    def decode_logits(self, z, batch_size=_CHUNK):
        """The decoder's Bernoulli logits for codes `z`, numpy `(N, *image_shape)`.

        The decoder runs compiled (one ``jax.jit`` call, `batch_size` codes a
        step inside it).

        Raises:
            ValueError: if `z` is not `(N, latent_dim)`.
        """
        z = self._check_z(z)
        batch_size = check_int("batch_size", batch_size)
        size = min(len(z), batch_size)
        padded = np.pad(z, ((0, -len(z) % size), (0, 0)))
        logits = self._compiled("decode")(*self._decoder_weights(), padded, size)
        return np.asarray(logits)[:len(z)].astype("float32")

    def reconstruct(self, x, sample=False, seed=None):
        """Reconstructions of `x`: the Bernoulli means :meth:`decode` of its codes.

        Args:
            x: images `(N, *image_shape)` in [0, 1].
            sample: decode a draw ``z ~ q(z|x)`` instead of the posterior mean.
            seed: with ``sample=True``, an int makes the draw deterministic.

        Returns:
            float32 numpy `(N, *image_shape)` in [0, 1].
        """
        mean, log_var = self.encode(x)
        if sample:
            eps = np.asarray(keras.random.normal(mean.shape, seed=self._seed(seed)))
            mean = mean + np.exp(0.5 * log_var) * eps
        return self.decode(mean)

    def _seed(self, seed):
        return self.seed_generator if seed is None else int(seed)

    def _key(self, seed):
        """A JAX random key: from the int `seed`, or the next from the model's generator."""
        if seed is None:
            return self.seed_generator.next()
        return np.array([int(seed) & 0xFFFFFFFF, 0], dtype="uint32")

    def _decoder_weights(self):
        return ([v.value for v in self.decoder.trainable_variables],
                [v.value for v in self.decoder.non_trainable_variables])

    def _compiled(self, name):
        """The compiled inference functions, built once a model (see `_build_*`)."""
        if getattr(self, "_jitted", None) is None:
            self._jitted = {}
        if name not in self._jitted:
            self._jitted[name] = getattr(self, f"_build_{name}")()
        return self._jitted[name]

    def _decode_steps(self, trainable, non_trainable, z, size):
        """Logits of codes `z` `(M, D)`, M a multiple of `size`, inside a traced
        function: a `jax.lax.map` over steps of `size` codes (small steps keep
        the activations in the CPU's cache)."""
        import jax

        def step(codes):
            logits, _ = self.decoder.stateless_call(trainable, non_trainable, codes,
                                                    training=False)
            return logits

        logits = jax.lax.map(step, ops.reshape(z, (-1, size, self.latent_dim)))
        return ops.reshape(logits, (-1,) + self.image_shape)

    def _build_decode(self):
        import jax

        return jax.jit(self._decode_steps, static_argnums=3)

    def _build_sample(self):
        import jax

        def run(trainable, non_trainable, key, num, binary):
            # Two independent keys: one for the codes, one for the pixels.
            key_z, key_x = jax.random.split(key)
            z = jax.random.normal(key_z, (num, self.latent_dim), dtype="float32")
            size = min(num, _CHUNK)
            padded = ops.pad(z, ((0, -num % size), (0, 0)))
            logits = self._decode_steps(trainable, non_trainable, padded, size)[:num]
            probabilities = jax.nn.sigmoid(logits)
            if binary:
                uniforms = jax.random.uniform(key_x, probabilities.shape)
                return ops.cast(uniforms < probabilities, "float32")
            return probabilities

        return jax.jit(run, static_argnums=(3, 4))

    def noise(self, num, seed=None):
        """The prior draws ``z ~ N(0, I)`` that :meth:`sample` decodes with this `seed`.

        Args:
            num: how many codes (>= 1).
            seed: an int gives the codes of ``sample(num, seed)``.

        Returns:
            float32 numpy `(num, latent_dim)`.
        """
        import jax

        num = check_int("num", num)
        key_z, _ = jax.random.split(self._key(seed))
        return np.asarray(jax.random.normal(key_z, (num, self.latent_dim),
                                            dtype="float32"))

    def sample(self, num, seed=None, binary=False):
        """Draw `num` images from the model: ``z ~ N(0, I)``, then ``p(x|z)``.

        By default it returns the decoder's *Bernoulli means* ``sigmoid(logits)``
        (pixel probabilities, smooth grey images), the usual way to show VAE
        samples. With ``binary=True`` it draws the pixels themselves, a true
        sample from the model (salt-and-pepper noise wherever p is near 1/2).

        The whole draw (codes, decoder, pixels) is one compiled JAX function,
        compiled once for each `num`: after that, 1,000 samples of the book's
        model take a few hundredths of a second on a CPU. The seed's key is
        split in two, one key for the codes (:meth:`noise`) and one for the
        pixels, so the pixel noise is independent of the codes.

        Args:
            num: how many images (>= 1).
            seed: an int makes the samples deterministic.
            binary: draw {0, 1} pixels instead of returning probabilities.

        Returns:
            float32 numpy array `(num, *image_shape)` in [0, 1].

        Raises:
            ValueError: if `num` is not an integer >= 1.
        """
        num = check_int("num", num)
        images = self._compiled("sample")(*self._decoder_weights(), self._key(seed),
                                          num, bool(binary))
        return np.asarray(images, dtype="float32")

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

        Compiled: each call handles a block of images (about 16,000 codes
        in all), decoding 64 codes a step, so thousands of samples per image
        fit in memory.

        Args:
            x: images `(N, *image_shape)` in [0, 1].
            num_samples: samples ``S`` per image (>= 1).
            seed: an int makes the estimate deterministic.

        Returns:
            float64 numpy `(N, S)`.

        Raises:
            ValueError: for bad images or counts.
        """
        log_px, log_ratio = self._sample_terms(x, num_samples, seed)
        return log_px + log_ratio

    def _sample_terms(self, x, num_samples, seed):
        """``log p(x|z_s)`` and ``log p(z_s) - log q(z_s|x)``, each `(N, S)`."""
        import jax

        x = self._check_x(x)
        num_samples = check_int("num_samples", num_samples)
        images = max(1, min(len(x), _BLOCK // num_samples, _CHUNK))
        steps = max(1, _CHUNK // images)  # samples a decoder step
        padded_samples = -(-num_samples // steps) * steps
        mean, log_var = self.encode(x)
        run = self._compiled("sample_terms")
        weights = self._decoder_weights()
        key = self._key(seed)
        log_px_rows, ratio_rows = [], []
        for block, start in enumerate(range(0, len(x), images)):
            count = len(x[start:start + images])
            xb, mb, vb = (np.concatenate([a[start:start + count],
                                          np.repeat(a[start:start + 1], images - count, 0)])
                          for a in (x, mean, log_var))
            log_px, ratio = run(*weights, xb, mb, vb, jax.random.fold_in(key, block),
                                padded_samples, steps)
            log_px_rows.append(np.asarray(log_px, "float64")[:num_samples, :count].T)
            ratio_rows.append(np.asarray(ratio, "float64")[:num_samples, :count].T)
        return np.concatenate(log_px_rows), np.concatenate(ratio_rows)

    def _build_sample_terms(self):
        """A compiled ``(log p(x|z_s), log p(z_s) - log q(z_s|x))``, each `(S, B)`."""
        import jax

        def run(trainable, non_trainable, x, mean, log_var, key, num_samples, steps):
            batch = x.shape[0]
            eps = jax.random.normal(key, (num_samples, batch, self.latent_dim),
                                    dtype="float32")
            z = mean[None] + ops.exp(0.5 * log_var)[None] * eps
            targets = ops.tile(x, (steps, 1, 1, 1))  # row s * batch + b is image b

            def step(codes):  # `steps` samples of every image: (steps, B, D)
                logits, _ = self.decoder.stateless_call(
                    trainable, non_trainable,
                    ops.reshape(codes, (steps * batch, self.latent_dim)), training=False)
                log_px = losses.bernoulli_log_likelihood(targets, logits)
                return ops.reshape(log_px, (steps, batch))

            log_px = jax.lax.map(step, ops.reshape(
                z, (num_samples // steps, steps, batch, self.latent_dim)))
            log_px = ops.reshape(log_px, (num_samples, batch))
            # log N(z; 0, I) - log N(z; mean, var): the 2 pi terms cancel.
            ratio = -0.5 * ops.sum(ops.square(z) - ops.square(eps) - log_var[None], axis=-1)
            return log_px, ratio

        return jax.jit(run, static_argnums=(6, 7))

    def elbo(self, x, num_samples=1, seed=None):
        """The ELBO of each image in nats, ``E_q[log p(x|z)] - KL(q(z|x) || p(z))``.

        The reconstruction term is averaged over `num_samples` draws from
        ``q(z|x)``; the KL is exact (closed form). Its expectation is at most
        ``log p(x)``.

        Args:
            x: images `(N, *image_shape)` in [0, 1].
            num_samples: draws of ``z`` per image (>= 1).
            seed: an int makes the estimate deterministic.

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
            seed: an int makes the estimate deterministic.

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
        self.beta = None if beta is None else _check_beta(beta)
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
        seed: seed of the weights' initialisation and of the training noise.
        learning_rate: Adam's learning rate.

    Returns:
        A compiled :class:`VAE`. Train it on binary images
        (``data.load(..., value_range=VALUE_RANGE)``) with
        ``fit(images, epochs=BOOK_CONFIG["epochs"],
        batch_size=BOOK_CONFIG["batch_size"])``.

    Raises:
        ValueError: for `latent_dim` or `width` < 1, a bad `image_shape` or a
            negative `beta`.

    Example:

    >>> model = make_model(latent_dim=2, width=4)
    >>> model.encoder.output_shape, model.decoder.output_shape
    ([(None, 2), (None, 2)], (None, 28, 28, 1))
    """
    keras.utils.set_random_seed(seed)
    model = VAE(make_encoder(latent_dim, image_shape, width),
                make_decoder(latent_dim, image_shape, width), beta=beta, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model
