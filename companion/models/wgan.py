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
modes it does not cover.

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
from companion.models import toy
from companion.models.gan import GAN
from companion._validation import check_seed


@keras.saving.register_keras_serializable(package="companion")
class WGANGP(GAN):
    """A GAN trained with the Wasserstein loss and a gradient penalty.

    Formula:

    ```
    d_loss = mean D(G(z)) - mean D(x) + gp_weight * mean((||grad D(x_hat)|| - 1)^2)
    g_loss = -mean D(G(z))
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
        gp_weight: weight of the penalty (10 in the paper), >= 0.
        seed: None or an int in [0, 2**32 - 1], the seed of the model's noise
            (see :class:`~companion.models.gan.GAN`).

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

    def _draw_key(self, seed_generator):
        """A fresh key for the penalty's interpolation (inside `_draw_noise`)."""
        return seed_generator.next()

    def _generator_objective(self, fake_scores):
        return losses.wasserstein_generator_loss(fake_scores)

    def _discriminator_loss(self, d_trainable, d_state, real, fake, key, training):
        """The critic's loss with the penalty; returns ``(loss, (metric values, d_state))``.

        The critic's non-trainable state (e.g. a dropout layer's seed) is
        passed from each call to the next, the penalty's included, so real,
        generated and interpolated inputs each get their own dropout mask, and
        the last state is kept for the next step.
        """
        real_scores, d_state = self.discriminator.stateless_call(
            d_trainable, d_state, real, training=training)
        fake_scores, d_state = self.discriminator.stateless_call(
            d_trainable, d_state, fake, training=training)
        penalty, d_state = self._gradient_penalty(d_trainable, d_state, real, fake, key,
                                                  training)
        loss = (losses.wasserstein_critic_loss(real_scores, fake_scores)
                + self.gp_weight * penalty)
        values = {"d_real": ops.mean(ops.cast(real_scores, "float32")),
                  "d_fake": ops.mean(ops.cast(fake_scores, "float32")),
                  "penalty": penalty}
        return loss, (values, d_state)

    def _gradient_penalty(self, d_trainable, d_state, real, fake, key, training):
        """:func:`companion.losses.gradient_penalty`, and the critic's state after it."""
        def critic(x):
            return self.discriminator.stateless_call(d_trainable, d_state, x,
                                                     training=training)

        return losses.gradient_penalty(critic, real, fake, seed=key, has_aux=True)

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
        return np.asarray(scores, dtype="float32")[:, 0]

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
        seed: an int in [0, 2**32 - 1], the seed of the initialisation and of
            the model's noise; Keras' global random state is left alone.
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
    seed = check_seed(seed)
    model = WGANGP(toy.make_mlp_generator(latent_dim, data_dim, width, depth, seed=seed),
                   toy.make_mlp_discriminator(data_dim, width, depth, seed=seed),
                   latent_dim=latent_dim, gp_weight=gp_weight, seed=seed)
    model.compile(
        d_optimizer=keras.optimizers.Adam(d_learning_rate, beta_1=beta_1, beta_2=beta_2),
        g_optimizer=keras.optimizers.Adam(g_learning_rate, beta_1=beta_1, beta_2=beta_2),
    )
    return model
