"""Small MLP networks and closed forms for the 1-D and 2-D GAN experiments.

The theory chapter trains a GAN on a 1-D Gaussian to compare the trained
discriminator with the optimal one, ``D* = p_data / (p_data + p_g)``; the
analysis chapter trains on the 2-D ring of Gaussians
(:func:`companion.data.ring_of_gaussians`). Both use the same
:class:`companion.models.gan.GAN` as the image model, with these networks.

Example:

>>> generator = make_mlp_generator(latent_dim=2, data_dim=1, width=8)
>>> generator.output_shape
(None, 1)
"""

import keras
import numpy as np

from companion._validation import check_int


def make_mlp_generator(latent_dim, data_dim, width=64, depth=2, name="generator"):
    """An MLP generator: `depth` ReLU layers of `width` units, then a linear layer.

    With ``depth=0`` it is affine, ``G(z) = W z + b``: for standard normal
    ``z`` its samples are Gaussian with known mean ``b`` and covariance
    ``W^T W``, so its density has a closed form (the theory chapter uses this).

    Args:
        latent_dim: size of the noise vector.
        data_dim: size of one example.
        width: units a hidden layer.
        depth: number of hidden layers (0 for an affine generator).
        name: the model's name.

    Returns:
        A functional `keras.Model` from `(B, latent_dim)` to `(B, data_dim)`.

    Example:

    >>> make_mlp_generator(4, 2, 16).count_params()
    386
    """
    latent_dim, data_dim = check_int("latent_dim", latent_dim), check_int("data_dim", data_dim)
    z = keras.Input((latent_dim,), name="z")
    x = _hidden(z, width, depth, "relu", prefix="g", minimum_depth=0)
    return keras.Model(z, keras.layers.Dense(data_dim, name="g_out")(x), name=name)


def make_mlp_discriminator(data_dim, width=64, depth=2, name="discriminator"):
    """An MLP discriminator: `depth` leaky-ReLU layers, then one logit.

    Args:
        data_dim: size of one example.
        width: units a hidden layer.
        depth: number of hidden layers.
        name: the model's name.

    Returns:
        A functional `keras.Model` from `(B, data_dim)` to logits `(B, 1)`.

    Example:

    >>> make_mlp_discriminator(2, 16).output_shape
    (None, 1)
    """
    data_dim = check_int("data_dim", data_dim)
    x_in = keras.Input((data_dim,), name="x")
    x = _hidden(x_in, width, depth, "leaky_relu", prefix="d")
    return keras.Model(x_in, keras.layers.Dense(1, name="d_logit")(x), name=name)


def _hidden(x, width, depth, activation, prefix, minimum_depth=1):
    width = check_int("width", width)
    depth = check_int("depth", depth, minimum=minimum_depth)
    for i in range(depth):
        x = keras.layers.Dense(width, activation=activation, name=f"{prefix}_dense_{i}")(x)
    return x


def make_model(data_dim=1, latent_dim=1, width=32, depth=2, seed=0,
               generator_depth=None,
               generator_loss="non-saturating", d_learning_rate=1e-3,
               g_learning_rate=1e-3, beta_1=0.5):
    """A compiled toy :class:`~companion.models.gan.GAN` with MLP networks.

    Args:
        data_dim: size of one example (1 for the Gaussian, 2 for the ring).
        latent_dim: size of the noise vector.
        width: units a hidden layer of both networks.
        depth: hidden layers of both networks.
        generator_depth: hidden layers of the generator, if not `depth`
            (0 makes it affine).
        seed: seed of the initialisation and the training noise.
        generator_loss: ``"non-saturating"`` or ``"saturating"``.
        d_learning_rate: Adam learning rate of the discriminator.
        g_learning_rate: Adam learning rate of the generator.
        beta_1: Adam's first-moment decay.

    Returns:
        A compiled GAN; ``fit`` it on float32 data `(N, data_dim)`.

    Example:

    >>> model = make_model(data_dim=2, latent_dim=2, width=8)
    >>> model.generate(3, seed=0).shape
    (3, 2)
    """
    from companion.models.gan import GAN

    keras.utils.set_random_seed(seed)
    if generator_depth is None:
        generator_depth = depth
    model = GAN(make_mlp_generator(latent_dim, data_dim, width, generator_depth),
                make_mlp_discriminator(data_dim, width, depth),
                latent_dim=latent_dim, generator_loss=generator_loss, seed=seed)
    model.compile(d_optimizer=keras.optimizers.Adam(d_learning_rate, beta_1=beta_1),
                  g_optimizer=keras.optimizers.Adam(g_learning_rate, beta_1=beta_1))
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
