"""Small MLP networks and closed forms for the 1-D and 2-D GAN experiments.

The theory chapter trains a GAN on a 1-D Gaussian to compare the trained
discriminator with the optimal one, ``D* = p_data / (p_data + p_g)``; the
analysis chapter trains on the 2-D ring of Gaussians
(:func:`companion.data.ring_of_gaussians`). Both use the same
:class:`companion.models.gan.GAN` as the image model, with these networks.
The analysis chapter's two remedies for mode collapse that change only the
discriminator live here too: packing (:class:`Pack`, :class:`Unpack`) and
the minibatch standard deviation (:class:`MinibatchStdDev`).

Example:

>>> generator = make_mlp_generator(latent_dim=2, data_dim=1, width=8)
>>> generator.output_shape
(None, 1)
"""

import keras
import numpy as np
from keras import ops

from companion.models.gan import GAN, layer_seeds
from companion._validation import check_int, check_seed


def make_mlp_generator(latent_dim, data_dim, width=64, depth=2, name="generator",
                       seed=None):
    """An MLP generator: `depth` ReLU layers of `width` units, then a linear layer.

    With ``depth=0`` it is affine, ``G(z) = z K + b`` (``z`` a row vector,
    ``K`` the Dense layer's kernel, `(latent_dim, data_dim)`): for standard
    normal ``z`` its samples are Gaussian with mean ``b`` and covariance
    ``K^T K``, `(data_dim, data_dim)` (``^T``: transpose). In column-vector
    notation, ``G(z) = W z + b`` with ``W = K^T``, that is ``W W^T``. So its
    density has a closed form (the theory chapter uses this).

    Args:
        latent_dim: size of the noise vector.
        data_dim: size of one example.
        width: units a hidden layer.
        depth: number of hidden layers (0 for an affine generator).
        name: the model's name.
        seed: an int makes the initial weights deterministic (see
            :func:`companion.models.gan.layer_seeds`).

    Returns:
        A functional `keras.Model` from `(B, latent_dim)` to `(B, data_dim)`.

    Example:

    >>> make_mlp_generator(4, 2, 16).count_params()
    386
    """
    latent_dim, data_dim = check_int("latent_dim", latent_dim), check_int("data_dim", data_dim)
    seeds = layer_seeds(seed, "generator")
    z = keras.Input((latent_dim,), name="z")
    x = _hidden(z, width, depth, "relu", seeds, prefix="g", minimum_depth=0)
    out = keras.layers.Dense(data_dim, kernel_initializer=_kernel(seeds), name="g_out")
    return keras.Model(z, out(x), name=name)


def make_mlp_discriminator(data_dim, width=64, depth=2, name="discriminator",
                           after_first=None, seed=None):
    """An MLP discriminator: `depth` leaky-ReLU layers, then one logit.

    Args:
        data_dim: size of one example.
        width: units a hidden layer.
        depth: number of hidden layers (>= 1).
        name: the model's name.
        after_first: an optional layer applied after the first hidden layer
            (e.g. :class:`MinibatchStdDev`).
        seed: an int makes the initial weights deterministic (see
            :func:`companion.models.gan.layer_seeds`).

    Returns:
        A functional `keras.Model` from `(B, data_dim)` to logits `(B, 1)`.

    Example:

    >>> make_mlp_discriminator(2, 16).output_shape
    (None, 1)
    """
    data_dim = check_int("data_dim", data_dim)
    depth = check_int("depth", depth)
    seeds = layer_seeds(seed, "discriminator")
    x_in = keras.Input((data_dim,), name="x")
    x = _hidden(x_in, width, 1, "leaky_relu", seeds, prefix="d")
    if after_first is not None:
        x = after_first(x)
    x = _hidden(x, width, depth - 1, "leaky_relu", seeds, prefix="d", minimum_depth=0,
                start=1)
    logits = keras.layers.Dense(1, kernel_initializer=_kernel(seeds), name="d_logit")
    return keras.Model(x_in, logits(x), name=name)


def _hidden(x, width, depth, activation, seeds, prefix, minimum_depth=1, start=0):
    width = check_int("width", width)
    depth = check_int("depth", depth, minimum=minimum_depth)
    for i in range(start, start + depth):
        x = keras.layers.Dense(width, activation=activation,
                               kernel_initializer=_kernel(seeds),
                               name=f"{prefix}_dense_{i}")(x)
    return x


def _kernel(seeds):
    """Keras' default kernel initialiser, seeded from `seeds`."""
    return keras.initializers.GlorotUniform(seed=next(seeds))


@keras.saving.register_keras_serializable(package="companion")
class Pack(keras.layers.Layer):
    """Concatenate each run of `pack` consecutive examples into one input.

    The *packing* of PacGAN (Lin et al. 2018): a discriminator that sees
    `pack` samples of the same source at once can see that they are all
    alike, which one sample at a time cannot show.

    Formula:

    ```
    (B, D) -> (B / pack, pack * D):   row j = concat(x[pack j], ..., x[pack j + pack - 1])
    ```

    The batch size must be a multiple of `pack`.

    Example:

    >>> x = np.arange(8, dtype="float32").reshape(4, 2)
    >>> np.asarray(Pack(2)(x)).tolist()
    [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]
    """

    def __init__(self, pack, **kwargs):
        super().__init__(**kwargs)
        self.pack = check_int("pack", pack)

    def call(self, inputs):
        batch = inputs.shape[0]
        if batch is not None and batch % self.pack:
            raise ValueError(f"The batch size must be a multiple of pack={self.pack}; "
                             f"got a batch of {batch}.")
        return ops.reshape(inputs, (-1, self.pack * inputs.shape[-1]))

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] // self.pack
        return (batch, self.pack * input_shape[-1])

    def get_config(self):
        return dict(super().get_config(), pack=self.pack)


@keras.saving.register_keras_serializable(package="companion")
class Unpack(keras.layers.Layer):
    """Repeat each packed logit `pack` times, one for every example of its pack.

    So a packed discriminator still returns one logit an example, `(B, 1)`,
    and :class:`~companion.models.gan.GAN` trains it unchanged: the mean
    loss over the repeated logits is the mean over the packs.

    Example:

    >>> np.asarray(Unpack(2)(np.array([[1.0], [5.0]], "float32"))).ravel().tolist()
    [1.0, 1.0, 5.0, 5.0]
    """

    def __init__(self, pack, **kwargs):
        super().__init__(**kwargs)
        self.pack = check_int("pack", pack)

    def call(self, inputs):
        return ops.repeat(inputs, self.pack, axis=0)

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] * self.pack
        return (batch,) + tuple(input_shape[1:])

    def get_config(self):
        return dict(super().get_config(), pack=self.pack)


def make_packed_discriminator(data_dim, pack=4, width=64, depth=2, name="discriminator",
                              seed=None):
    """The MLP discriminator of :func:`make_mlp_discriminator`, judging `pack` samples at once.

    ``Pack(pack) -> depth x Dense(width, leaky ReLU) -> Dense(1) -> Unpack(pack)``:
    only the first layer is wider (``pack * data_dim`` inputs); the rest is the
    same network. PacGAN (Lin et al. 2018) packs real with real and generated
    with generated samples, so a generator that puts its samples on a few
    modes gives packs that look alike, which real packs do not.

    Args:
        data_dim: size of one example.
        pack: samples a pack (1 gives the ordinary discriminator), >= 1.
        width: units a hidden layer.
        depth: number of hidden layers.
        name: the model's name.
        seed: an int makes the initial weights deterministic.

    Returns:
        A functional `keras.Model` from `(B, data_dim)` to logits `(B, 1)`;
        ``B`` must be a multiple of `pack`, and the `pack` examples of one
        pack share one logit.

    Example:

    >>> discriminator = make_packed_discriminator(2, pack=4, width=8)
    >>> discriminator(np.zeros((8, 2), "float32")).shape
    (8, 1)
    """
    data_dim, pack = check_int("data_dim", data_dim), check_int("pack", pack)
    seeds = layer_seeds(seed, "discriminator")
    x_in = keras.Input((data_dim,), name="x")
    x = Pack(pack, name="d_pack")(x_in)
    x = _hidden(x, width, depth, "leaky_relu", seeds, prefix="d")
    logits = keras.layers.Dense(1, kernel_initializer=_kernel(seeds), name="d_logit")(x)
    return keras.Model(x_in, Unpack(pack, name="d_unpack")(logits), name=name)


@keras.saving.register_keras_serializable(package="companion")
class MinibatchStdDev(keras.layers.Layer):
    """Append the batch's mean feature standard deviation to every example.

    A discriminator that sees one example at a time cannot tell a batch of
    identical samples from a diverse one; with this feature it can, so a
    generator that collapses onto a few modes is penalised (the minibatch
    standard deviation of Karras et al. 2018, a simplification of the
    minibatch discrimination of Salimans et al. 2016).

    Formula:

    ```
    s = mean_j sqrt(var_b(h_bj) + 1e-8),    output_b = concat(h_b, s)
    ```

    The real and the generated batch must therefore be passed to the
    discriminator separately (as :class:`~companion.models.gan.GAN` does).

    Example:

    >>> h = np.array([[0.0, 1.0], [2.0, 1.0]], "float32")
    >>> np.asarray(MinibatchStdDev()(h)).round(3).tolist()  # stds 1 and 0
    [[0.0, 1.0, 0.5], [2.0, 1.0, 0.5]]
    """

    def call(self, inputs):
        variance = ops.var(inputs, axis=0)
        statistic = ops.mean(ops.sqrt(variance + 1e-8))
        column = ops.ones_like(inputs[:, :1]) * statistic
        return ops.concatenate([inputs, column], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] + 1,)


def make_minibatch_discriminator(data_dim, width=64, depth=2, name="discriminator",
                                 seed=None):
    """The MLP discriminator of :func:`make_mlp_discriminator` with a minibatch-std feature.

    ``Dense(width, leaky ReLU) -> MinibatchStdDev -> (depth - 1) x Dense(width,
    leaky ReLU) -> Dense(1)``: one more input to the second layer, otherwise the
    same network as :func:`make_mlp_discriminator`.

    Args:
        data_dim: size of one example.
        width: units a hidden layer.
        depth: number of hidden layers (>= 1).
        name: the model's name.
        seed: an int makes the initial weights deterministic.

    Returns:
        A functional `keras.Model` from `(B, data_dim)` to logits `(B, 1)`.

    Example:

    >>> make_minibatch_discriminator(2, 16).output_shape
    (None, 1)
    """
    return make_mlp_discriminator(data_dim, width, depth, name, seed=seed,
                                  after_first=MinibatchStdDev(name="d_minibatch_std"))


def make_model(data_dim=1, latent_dim=1, width=32, depth=2, seed=0,
               generator_depth=None,
               generator_loss="non-saturating", d_learning_rate=1e-3,
               g_learning_rate=1e-3, beta_1=0.5, pack=1, minibatch_std=False,
               decay_steps=None, decay_to=0.1, steps_per_execution=1):
    """A compiled toy :class:`~companion.models.gan.GAN` with MLP networks.

    The two remedies for mode collapse that the analysis chapter compares
    change only the discriminator, so the generator, the losses and the
    optimisers stay the same: ``pack > 1`` gives :func:`make_packed_discriminator`
    (PacGAN, Lin et al. 2018), ``minibatch_std=True`` gives
    :func:`make_minibatch_discriminator` (the minibatch standard deviation of
    Karras et al. 2018).

    Args:
        data_dim: size of one example (1 for the Gaussian, 2 for the ring).
        latent_dim: size of the noise vector.
        width: units a hidden layer of both networks.
        depth: hidden layers of both networks.
        generator_depth: hidden layers of the generator, if not `depth`
            (0 makes it affine).
        seed: an int in [0, 2**32 - 1], the seed of the initialisation and of
            the model's noise; Keras' global random state is left alone.
        generator_loss: ``"non-saturating"`` or ``"saturating"``.
        d_learning_rate: Adam learning rate of the discriminator.
        g_learning_rate: Adam learning rate of the generator.
        beta_1: Adam's first-moment decay.
        pack: samples the discriminator judges at once (1: one at a time);
            the batch size must then be a multiple of `pack`.
        minibatch_std: give the discriminator the minibatch standard
            deviation of its first layer's features (not with ``pack > 1``).
        decay_steps: if given, both learning rates follow a cosine decay over
            this many steps, down to `decay_to` times their initial value.
        decay_to: the fraction of the learning rates left after the decay.
        steps_per_execution: training steps a compiled call runs
            (``keras.Model.compile``); more steps cost less dispatch time.

    Returns:
        A compiled GAN; ``fit`` it on float32 data `(N, data_dim)`.

    Raises:
        ValueError: for ``pack > 1`` together with ``minibatch_std``, or a
            `decay_to` outside [0, 1].

    Example:

    >>> model = make_model(data_dim=2, latent_dim=2, width=8)
    >>> model.generate(3, seed=0).shape
    (3, 2)
    >>> make_model(data_dim=2, width=8, pack=4).discriminator.input_shape
    (None, 2)
    """
    pack = check_int("pack", pack)
    if pack > 1 and minibatch_std:
        raise ValueError("Choose one remedy: `pack` > 1 or `minibatch_std`, not both; "
                         f"got pack={pack!r}, minibatch_std={minibatch_std!r}.")
    if not 0.0 <= decay_to <= 1.0:
        raise ValueError(f"`decay_to` must be in [0, 1]; got {decay_to!r}.")
    seed = check_seed(seed)
    if generator_depth is None:
        generator_depth = depth
    if minibatch_std:
        discriminator = make_minibatch_discriminator(data_dim, width, depth, seed=seed)
    elif pack > 1:
        discriminator = make_packed_discriminator(data_dim, pack, width, depth, seed=seed)
    else:
        discriminator = make_mlp_discriminator(data_dim, width, depth, seed=seed)
    model = GAN(make_mlp_generator(latent_dim, data_dim, width, generator_depth, seed=seed),
                discriminator, latent_dim=latent_dim, generator_loss=generator_loss,
                seed=seed)

    def rate(learning_rate):
        if decay_steps is None:
            return learning_rate
        return keras.optimizers.schedules.CosineDecay(
            learning_rate, check_int("decay_steps", decay_steps), alpha=decay_to)

    model.compile(d_optimizer=keras.optimizers.Adam(rate(d_learning_rate), beta_1=beta_1),
                  g_optimizer=keras.optimizers.Adam(rate(g_learning_rate), beta_1=beta_1),
                  steps_per_execution=check_int("steps_per_execution",
                                                steps_per_execution))
    return model


# Closed forms --------------------------------------------------------------------


def affine_gaussian(generator):
    """Mean and standard deviation of a 1-D affine generator's samples.

    For ``G(z) = w^T z + b`` with ``z ~ N(0, I)``: ``G(z) ~ N(b, |w|^2)``.

    Args:
        generator: a model from :func:`make_mlp_generator` with ``depth=0``
            and ``data_dim=1``.

    Returns:
        ``(mean, std)`` as python floats.

    Example:

    >>> generator = make_mlp_generator(1, 1, depth=0)
    >>> generator.set_weights([np.array([[2.0]]), np.array([3.0])])
    >>> affine_gaussian(generator)
    (3.0, 2.0)
    """
    weights = generator.get_weights()
    if len(weights) != 2 or weights[0].shape[1] != 1:
        raise ValueError("`generator` must be affine with one output "
                         "(make_mlp_generator(latent_dim, 1, depth=0)).")
    kernel, bias = weights
    return float(bias[0]), float(np.linalg.norm(kernel[:, 0]))


def gaussian_density(x, mean=0.0, std=1.0):
    """The normal density ``N(x; mean, std^2)`` on a numpy array."""
    x = np.asarray(x, dtype="float64")
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))


def optimal_discriminator(p_data, p_model):
    """The best discriminator for a fixed generator, pointwise.

    Formula:

    ```
    D*(x) = p_data(x) / (p_data(x) + p_g(x))
    ```

    Args:
        p_data: data density at some points (numpy array).
        p_model: the generator's density at the same points.

    Returns:
        ``D*`` at those points (1/2 where both densities are 0).

    Example:

    >>> optimal_discriminator(np.array([3.0, 1.0]), np.array([1.0, 1.0]))
    array([0.75, 0.5 ])
    """
    p_data, p_model = np.asarray(p_data, "float64"), np.asarray(p_model, "float64")
    total = p_data + p_model
    safe = np.where(total > 0, total, 1.0)
    return np.where(total > 0, p_data / safe, 0.5)


def jensen_shannon(p, q, grid):
    """Jensen-Shannon divergence (nats) of two densities tabulated on a 1-D grid.

    Formula:

    ```
    JSD(p || q) = KL(p || m) / 2 + KL(q || m) / 2,   m = (p + q) / 2
    ```

    integrated with the trapezoidal rule. Between 0 and ``log 2``.

    Example:

    >>> grid = np.linspace(-10, 10, 4001)
    >>> p = gaussian_density(grid)
    >>> round(float(jensen_shannon(p, p, grid)), 6)
    0.0
    """
    p, q = np.asarray(p, "float64"), np.asarray(q, "float64")
    m = (p + q) / 2
    return 0.5 * _kl(p, m, grid) + 0.5 * _kl(q, m, grid)


def _kl(p, q, grid):
    ratio = np.where(p > 0, p / np.where(q > 0, q, 1.0), 1.0)
    return float(np.trapezoid(p * np.log(ratio), grid))


def value_at_optimum(p_data, p_model, grid):
    """``V(D*, G)`` by numerical integration on a 1-D grid.

    Formula:

    ```
    V(D*, G) = ∫ p_data log D* + p_g log(1 - D*) dx  = -log 4 + 2 JSD(p_data || p_g)
    ```
    """
    d_star = optimal_discriminator(p_data, p_model)
    p_data, p_model = np.asarray(p_data, "float64"), np.asarray(p_model, "float64")
    integrand = (np.where(p_data > 0, p_data * np.log(np.clip(d_star, 1e-300, 1)), 0.0)
                 + np.where(p_model > 0,
                            p_model * np.log(np.clip(1 - d_star, 1e-300, 1)), 0.0))
    return float(np.trapezoid(integrand, grid))
