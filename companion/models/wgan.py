"""Wasserstein GAN with gradient penalty: a remedy for mode collapse.

A Wasserstein GAN (Arjovsky et al. 2017) replaces the discriminator by a
*critic* ``f`` with unbounded scores and trains it to estimate the
Wasserstein-1 distance between the data and the generator's distribution,

```
W(p_data, p_g) = sup_{||f||_L <= 1}  E_x f(x) - E_z f(G(z)),
```

keeping ``f`` close to 1-Lipschitz with a gradient penalty (Gulrajani et al.
2017). Unlike the Jensen-Shannon divergence, this distance still says *how
far* a missing mode is, so the generator keeps receiving gradient towards the
modes it does not cover. The analysis chapter measures the effect on the
2-D ring of Gaussians.

:class:`WGANGP` subclasses :class:`companion.models.gan.GAN` and keeps its
contract (``fit``, ``generate``, ``sample``, the same metric names, save and
load); it only changes the losses in ``train_step``. Both networks are
updated simultaneously from the same batch, as in ``GAN``; the critic's
head start that Gulrajani et al. give with five critic steps a generator step
is given here by a larger critic learning rate (the two-time-scale rule of
Heusel et al. 2017).

Example:

>>> model = make_toy_model(data_dim=2, latent_dim=2, width=8)
>>> model.generate(3, seed=0).shape
(3, 2)
"""

import keras
import numpy as np
from keras import ops

from companion import losses
from companion.models.gan import GAN
from companion.models import toy


@keras.saving.register_keras_serializable(package="companion")
class WGANGP(GAN):
    """A GAN trained with the Wasserstein loss and a gradient penalty.

    Formula:

    ```
    d_loss = mean f(G(z)) - mean f(x) + gp_weight * mean((||grad f(x_hat)|| - 1)^2)
    g_loss = -mean f(G(z))
    x_hat  = eps x + (1 - eps) G(z),   eps ~ U(0, 1) per example
    ```

    Metrics keep the names of :class:`~companion.models.gan.GAN`, with
    ``d_real`` and ``d_fake`` the mean critic *scores* (not probabilities),
    plus ``penalty``, the gradient penalty before weighting. Only the losses
    differ from ``GAN``: its ``train_step`` runs them.

    Args:
        generator: a `keras.Model` from `(B, latent_dim)` to data.
        discriminator: the critic, a `keras.Model` from data to scores
            `(B, 1)`, without batch normalisation (it would mix the examples
            the penalty treats separately).
        latent_dim: size of the noise vector.
        gp_weight: weight ``lambda`` of the penalty (10 in the paper), >= 0.
        seed: seed of the training noise.

    Raises:
        ValueError: for a negative `gp_weight`, a `generator_loss` argument
            (the generator's loss is the Wasserstein one), or networks that
            do not fit.

    Example:

    >>> import numpy as np
    >>> model = make_toy_model(data_dim=1, latent_dim=1, width=8)
    >>> history = model.fit(np.zeros((64, 1), "float32"), epochs=1, verbose=0)
    >>> sorted(history.history)
    ['d_fake', 'd_loss', 'd_real', 'g_grad_norm', 'g_loss', 'penalty']
    """

    def __init__(self, generator, discriminator, latent_dim, gp_weight=10.0,
                 seed=None, **kwargs):
        if "generator_loss" in kwargs:
            raise ValueError("WGANGP trains its generator on the Wasserstein loss "
                             "-mean f(G(z)); `generator_loss` is not an option; got "
                             f"generator_loss={kwargs['generator_loss']!r}.")
        super().__init__(generator, discriminator, latent_dim, seed=seed, **kwargs)
        if not gp_weight >= 0:
            raise ValueError(f"`gp_weight` must be >= 0; got {gp_weight!r}.")
        self.gp_weight = float(gp_weight)
        self.generator_loss = "wasserstein"
        self._trackers["penalty"] = keras.metrics.Mean(name="penalty")

    def _draw_key(self):
        """A fresh key for the penalty's interpolation (inside `_draw_noise`)."""
        return self.seed_generator.next()

    def _generator_objective(self, fake_scores):
        return losses.wasserstein_generator_loss(fake_scores)

    def _discriminator_loss(self, d_trainable, d_state, real, fake, key, training):
        """The critic's loss with the penalty; returns ``(loss, (metric values, d_state))``.

        The critic's non-trainable state (e.g. a dropout layer's seed) is
        passed from each call to the next, the penalty's included, so real,
        generated and interpolated inputs each get their own dropout mask, and
        the last state is kept for the next step.
        """
        def critic(x):
            nonlocal d_state
            scores, d_state = self.discriminator.stateless_call(
                d_trainable, d_state, x, training=training)
            return scores

        real_scores, fake_scores = critic(real), critic(fake)
        penalty = losses.gradient_penalty(critic, real, fake, seed=key)
        loss = (losses.wasserstein_critic_loss(real_scores, fake_scores)
                + self.gp_weight * penalty)
        values = {"d_real": ops.mean(real_scores), "d_fake": ops.mean(fake_scores),
                  "penalty": penalty}
        return loss, (values, d_state)

    def discriminate(self, x):
        """Not defined for a critic: its scores are not probabilities; see `score`."""
        raise TypeError("A WGAN critic returns unbounded scores, not probabilities "
                        "D(x); call `score(x)` for the scores f(x).")

    def score(self, x):
        """The critic's scores ``f(x)`` (unbounded) as numpy `(N,)`.

        Example:

        >>> import numpy as np
        >>> make_toy_model(data_dim=2, width=8).score(np.zeros((3, 2), "float32")).shape
        (3,)
        """
        scores = self.discriminator(np.asarray(x, dtype="float32"), training=False)
        return np.asarray(scores)[:, 0]

    def get_config(self):
        config = super().get_config()
        config.pop("generator_loss", None)
        config["gp_weight"] = self.gp_weight
        return config


def make_toy_model(data_dim=2, latent_dim=2, width=128, depth=2, seed=0,
                   gp_weight=10.0, d_learning_rate=3e-3, g_learning_rate=1e-3,
                   beta_1=0.5, beta_2=0.9):
    """A compiled :class:`WGANGP` with the MLP networks of :mod:`~companion.models.toy`.

    Same networks as :func:`companion.models.toy.make_model`, so the two are
    compared at equal size and equal training budget.

    Args:
        data_dim: size of one example (2 for the ring).
        latent_dim: size of the noise vector.
        width: units a hidden layer of both networks.
        depth: hidden layers of both networks.
        seed: seed of the initialisation and the training noise.
        gp_weight: weight of the gradient penalty.
        d_learning_rate: Adam learning rate of the critic.
        g_learning_rate: Adam learning rate of the generator.
        beta_1, beta_2: Adam's moment decays (0.5 and 0.9 as in Gulrajani et al.).

    Returns:
        A compiled :class:`WGANGP`; ``fit`` it on float32 data `(N, data_dim)`.

    Example:

    >>> make_toy_model(width=8).gp_weight
    10.0
    """
    keras.utils.set_random_seed(seed)
    model = WGANGP(toy.make_mlp_generator(latent_dim, data_dim, width, depth),
                   toy.make_mlp_discriminator(data_dim, width, depth),
                   latent_dim=latent_dim, gp_weight=gp_weight, seed=seed)
    model.compile(
        d_optimizer=keras.optimizers.Adam(d_learning_rate, beta_1=beta_1, beta_2=beta_2),
        g_optimizer=keras.optimizers.Adam(g_learning_rate, beta_1=beta_1, beta_2=beta_2),
    )
    return model


# Minibatch standard deviation ------------------------------------------------------


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

    >>> import numpy as np
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


def make_minibatch_discriminator(data_dim, width=64, depth=2, name="discriminator"):
    """The MLP discriminator of :mod:`~companion.models.toy` with a minibatch-std feature.

    ``Dense(width, leaky ReLU) -> MinibatchStdDev -> (depth - 1) x Dense(width,
    leaky ReLU) -> Dense(1)``: one more input to the second layer, otherwise the
    same network as :func:`companion.models.toy.make_mlp_discriminator`.

    Args:
        data_dim: size of one example.
        width: units a hidden layer.
        depth: number of hidden layers (>= 1).
        name: the model's name.

    Returns:
        A functional `keras.Model` from `(B, data_dim)` to logits `(B, 1)`.

    Example:

    >>> make_minibatch_discriminator(2, 16).output_shape
    (None, 1)
    """
    return toy.make_mlp_discriminator(data_dim, width, depth, name,
                                      after_first=MinibatchStdDev(name="d_minibatch_std"))


def make_minibatch_model(data_dim=2, latent_dim=2, width=128, depth=2, seed=0,
                         d_learning_rate=1e-3, g_learning_rate=1e-3, beta_1=0.5):
    """A compiled toy :class:`~companion.models.gan.GAN` whose discriminator sees
    the minibatch standard deviation; otherwise :func:`companion.models.toy.make_model`.

    Example:

    >>> model = make_minibatch_model(width=8)
    >>> model.generate(3, seed=0).shape
    (3, 2)
    """
    keras.utils.set_random_seed(seed)
    model = GAN(toy.make_mlp_generator(latent_dim, data_dim, width, depth),
                make_minibatch_discriminator(data_dim, width, depth),
                latent_dim=latent_dim, seed=seed)
    model.compile(d_optimizer=keras.optimizers.Adam(d_learning_rate, beta_1=beta_1),
                  g_optimizer=keras.optimizers.Adam(g_learning_rate, beta_1=beta_1))
    return model
