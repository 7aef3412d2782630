"""Losses of the book's model families, written from logits (or, for diffusion, predictions).

GAN (Goodfellow et al. 2014), Wasserstein GAN with gradient penalty (Arjovsky
et al. 2017; Gulrajani et al. 2017), VAE evidence lower bound (Kingma and
Welling 2014), autoregressive negative log-likelihood (van den Oord et al.
2016), and the regression losses of diffusion (Ho et al. 2020) and flow
matching (Lipman et al. 2023). Every function is a pure function on `keras.ops`, so it runs inside a
compiled JAX `train_step`, and takes *logits*: log-probabilities are written
with softplus,

    log sigmoid(logit)     = -softplus(-logit)
    log(1 - sigmoid(logit)) = -softplus(logit),

which stays finite for logits of any size (``log(sigmoid(logit))`` gives ``-inf``
at ``l = -200`` in float32).

Per-example functions return a vector with one entry per example (the first
axis); `*_loss` functions return a scalar mean over the batch. Mismatched
shapes raise `ValueError` naming both shapes: silent broadcasting between, say,
``(B, 1)`` and ``(B,)`` is the most common way to get a wrong loss that still
trains.

Example:

>>> import numpy as np
>>> from companion import losses
>>> zeros = np.zeros((4, 1), "float32")
>>> round(float(losses.discriminator_loss(zeros, zeros)), 4)  # 2 log 2
1.3863
"""

import math
import numbers

import keras
from keras import ops

_LOG_2PI = math.log(2.0 * math.pi)


# Shape checks ------------------------------------------------------------------


def _shape(x):
    return tuple(ops.shape(x))


def _check_rank(name, x, minimum):
    shape = _shape(x)
    if len(shape) < minimum:
        raise ValueError(
            f"`{name}` must have rank >= {minimum} (a batch axis first); got "
            f"shape {shape}."
        )


def _check_same_shape(name_a, a, name_b, b):
    shape_a, shape_b = _shape(a), _shape(b)
    if shape_a != shape_b:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same shape; got "
            f"{name_a}.shape={shape_a} and {name_b}.shape={shape_b}."
        )


def _check_same_example_shape(name_a, a, name_b, b):
    """Both batches may differ in size, but not in what one example is."""
    _check_rank(name_a, a, 1)
    _check_rank(name_b, b, 1)
    shape_a, shape_b = _shape(a), _shape(b)
    if shape_a[1:] != shape_b[1:]:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same shape apart from the "
            f"batch axis; got {name_a}.shape={shape_a} and {name_b}.shape={shape_b}."
        )


def _check_same_batch(name_a, a, name_b, b):
    shape_a, shape_b = _shape(a), _shape(b)
    if shape_a[0] != shape_b[0]:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same batch size; got "
            f"{name_a}.shape={shape_a} and {name_b}.shape={shape_b}."
        )


def _sum_per_example(x):
    """Sum over every axis but the first."""
    x = ops.reshape(x, (ops.shape(x)[0], -1))
    return ops.sum(x, axis=1)


def _float(x):
    return ops.convert_to_tensor(x, dtype=keras.backend.floatx())


# GAN ----------------------------------------------------------------------------


def discriminator_loss(real_logits, fake_logits):
    """Discriminator loss of a GAN: the negative of the estimated value V(D, G).

    Binary cross-entropy with target 1 for real and 0 for generated examples,
    each averaged over its own batch. The discriminator *minimises* this, i.e.
    it *maximises* V(D, G); the generator minimises V.

    Formula:

    ```
    loss = -mean(log D(x)) - mean(log(1 - D(G(z))))
         = mean(softplus(-real_logits)) + mean(softplus(fake_logits))
    ```

    At ``D = 1/2`` everywhere (zero logits) the loss is ``2 log 2`` (V = -log 4,
    the equilibrium value of Goodfellow et al. 2014).

    Args:
        real_logits: discriminator logits on real data, shape `(B, ...)`.
        fake_logits: logits on generated data, shape `(B', ...)`: the batch
            sizes may differ, one example's shape may not.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: if the per-example shapes differ or an input is a scalar.

    Example:

    >>> import numpy as np
    >>> real = np.array([[4.0], [3.0]], "float32")   # confident and right
    >>> fake = np.array([[-4.0], [-3.0]], "float32")
    >>> round(float(discriminator_loss(real, fake)), 4)
    0.0667
    """
    return -gan_value(real_logits, fake_logits)


def gan_value(real_logits, fake_logits):
    """The estimated GAN value V(D, G) = E log D(x) + E log(1 - D(G(z))).

    Formula:

    ```
    V = -mean(softplus(-real_logits)) - mean(softplus(fake_logits))
    ```

    For a fixed generator the best discriminator D* = p_data / (p_data + p_g)
    gives V(D*, G) = -log 4 + 2 JSD(p_data || p_g) (Goodfellow et al. 2014).

    Args:
        real_logits: discriminator logits on real data, shape `(B, ...)`.
        fake_logits: logits on generated data, shape `(B', ...)`.

    Returns:
        A scalar tensor, at most 0.

    Raises:
        ValueError: if the per-example shapes differ or an input is a scalar.

    Example:

    >>> import numpy as np
    >>> zeros = np.zeros((3, 1), "float32")
    >>> round(float(gan_value(zeros, zeros)), 4)  # -log 4
    -1.3863
    """
    _check_same_example_shape("real_logits", real_logits, "fake_logits", fake_logits)
    real_logits, fake_logits = _float(real_logits), _float(fake_logits)
    log_d_real = -ops.softplus(-real_logits)
    log_one_minus_d_fake = -ops.softplus(fake_logits)
    return ops.mean(log_d_real) + ops.mean(log_one_minus_d_fake)


def generator_loss(fake_logits, saturating=False):
    """Generator loss of a GAN, non-saturating by default.

    Formula:

    ```
    non-saturating: -mean(log D(G(z)))     = mean(softplus(-fake_logits))
    saturating:      mean(log(1 - D(G(z)))) = -mean(softplus(fake_logits))
    ```

    The saturating form is the generator's term of the minimax game. Early in
    training the discriminator rejects fakes confidently (very negative logits),
    where its gradient ``-sigmoid(logit)`` vanishes; the non-saturating form has
    the same fixed points and gradient ``-sigmoid(-l)``, close to -1 there
    (Goodfellow et al. 2014, section 3).

    Args:
        fake_logits: discriminator logits on generated data, shape `(B, ...)`.
        saturating: use the original minimax term instead.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: if `fake_logits` is a scalar.

    Example:

    >>> import numpy as np
    >>> rejected = np.full((2, 1), -8.0, "float32")
    >>> round(float(generator_loss(rejected)), 3)
    8.0
    >>> round(float(generator_loss(rejected, saturating=True)), 5)
    -0.00034
    """
    _check_rank("fake_logits", fake_logits, 1)
    fake_logits = _float(fake_logits)
    if saturating:
        return -ops.mean(ops.softplus(fake_logits))
    return ops.mean(ops.softplus(-fake_logits))


# Wasserstein GAN -----------------------------------------------------------------


def wasserstein_critic_loss(real_scores, fake_scores):
    """Critic loss of a Wasserstein GAN (Arjovsky et al. 2017).

    The critic maximises ``mean(f(x)) - mean(f(G(z)))``, an estimate of the
    Wasserstein-1 distance when `f` is 1-Lipschitz (enforce that with
    :func:`gradient_penalty`); the loss is its negative. Scores are unbounded
    real numbers, not logits.

    Formula:

    ```
    loss = mean(fake_scores) - mean(real_scores)
    ```

    Args:
        real_scores: critic scores of real data, shape `(B, ...)`.
        fake_scores: critic scores of generated data, shape `(B', ...)`.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: if the per-example shapes differ or an input is a scalar.

    Example:

    >>> import numpy as np
    >>> real = np.array([[2.0], [4.0]], "float32")
    >>> fake = np.array([[-1.0], [1.0]], "float32")
    >>> float(wasserstein_critic_loss(real, fake))
    -3.0
    """
    _check_same_example_shape("real_scores", real_scores, "fake_scores", fake_scores)
    return ops.mean(_float(fake_scores)) - ops.mean(_float(real_scores))


def wasserstein_generator_loss(fake_scores):
    """Generator loss of a Wasserstein GAN: ``-mean(fake_scores)``.

    Args:
        fake_scores: critic scores of generated data, shape `(B, ...)`.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: if `fake_scores` is a scalar.

    Example:

    >>> import numpy as np
    >>> float(wasserstein_generator_loss(np.array([[1.0], [3.0]], "float32")))
    -2.0
    """
    _check_rank("fake_scores", fake_scores, 1)
    return -ops.mean(_float(fake_scores))


def gradient_penalty(critic_fn, real, fake, seed, has_aux=False):
    """WGAN-GP gradient penalty (Gulrajani et al. 2017).

    Draws one ``eps ~ U(0, 1)`` per example, forms ``x_hat = eps * real +
    (1 - eps) * fake`` and penalises the critic's input-gradient norm away
    from 1.

    Formula:

    ```
    penalty = mean((||grad_x critic(x_hat)||_2 - 1) ** 2)
    ```

    The gradient is taken with `jax.grad` of ``sum(critic_fn(x_hat))`` with
    respect to ``x_hat``. Because each score depends only on its own example,
    this yields every example's own input gradient, provided the critic does
    not mix examples (no batch normalisation; the paper recommends layer
    normalisation or none). The function is differentiable again, so the
    penalty's gradient with respect to the critic's weights flows through it.

    Inside a stateless JAX `train_step`, pass a function of the images alone
    that closes over the variables being differentiated, e.g.

    ```
    def critic_fn(x):
        scores, _ = critic.stateless_call(trainable, non_trainable, x,
                                          training=True)
        return scores
    penalty = gradient_penalty(critic_fn, real, fake, seed=key)
    ```

    and give a fresh `seed` each step: a JAX key array of shape `(2,)` (for
    example ``self.seed_generator.next()`` under the step's
    `keras.StatelessScope`, or ``jax.random.fold_in(key, step)``). An integer
    seed draws the same `eps` on every call.

    Args:
        critic_fn: callable mapping a batch shaped like `real` to scores of
            shape `(B,)` or `(B, 1)`.
        real: real examples, shape `(B, ...)`.
        fake: generated examples, same shape as `real`.
        seed: an int, a `keras.random.SeedGenerator`, or (on JAX) a key array.
        has_aux: `critic_fn` returns ``(scores, aux)`` (for example the
            critic's new non-trainable state), and so does this function:
            ``(penalty, aux)``, with `aux` from the critic's call on ``x_hat``.

    Returns:
        A scalar tensor, or ``(penalty, aux)`` with `has_aux`.

    Raises:
        ValueError: if `real` and `fake` differ in shape.
        NotImplementedError: on a Keras backend other than JAX (the book's).

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> def critic_fn(x):  # f(x) = 2 * sum(x): gradient norm 2 * sqrt(4) = 4
    ...     return 2.0 * ops.sum(ops.reshape(x, (ops.shape(x)[0], -1)), axis=1)
    >>> real = np.ones((3, 2, 2, 1), "float32")
    >>> round(float(gradient_penalty(critic_fn, real, 0 * real, seed=0)), 4)
    9.0
    """
    if keras.backend.backend() != "jax":
        raise NotImplementedError(
            "gradient_penalty uses jax.grad; the companion package runs Keras on "
            f"JAX, but the active backend is {keras.backend.backend()!r}."
        )
    import jax

    _check_same_shape("real", real, "fake", fake)
    _check_rank("real", real, 2)
    real, fake = _float(real), _float(fake)
    batch = ops.shape(real)[0]
    eps_shape = (batch,) + (1,) * (len(ops.shape(real)) - 1)
    eps = keras.random.uniform(eps_shape, seed=seed, dtype=real.dtype)
    x_hat = eps * real + (1.0 - eps) * fake

    def total_score(x):
        scores, aux = critic_fn(x) if has_aux else (critic_fn(x), None)
        return ops.sum(ops.cast(scores, "float32")), aux

    grads, aux = jax.grad(total_score, has_aux=True)(x_hat)
    squared = _sum_per_example(ops.square(grads))
    # sqrt'(0) is infinite: a tiny floor keeps the penalty's gradient finite.
    norms = ops.sqrt(squared + 1e-12)
    penalty = ops.mean(ops.square(norms - 1.0))
    return (penalty, aux) if has_aux else penalty


# VAE ------------------------------------------------------------------------------


def kl_per_dimension(mean, log_var):
    """KL(N(mean_j, exp(log_var_j)) || N(0, 1)) of each latent dimension, in nats.

    The closed form for one dimension of a diagonal Gaussian posterior:

    Formula:

    ```
    KL_j = 0.5 * (exp(log_var_j) + mean_j**2 - 1 - log_var_j)
    ```

    Summed over ``j`` it is :func:`kl_normal`. A dimension whose KL stays
    near 0 on every input is *collapsed*: the encoder ignores it.

    Args:
        mean: posterior means, shape `(B, D)` (or `(B, ..., D)`).
        log_var: posterior log-variances, same shape.

    Returns:
        A tensor of the inputs' shape, every entry >= 0.

    Raises:
        ValueError: if the shapes differ or the rank is below 2.

    Example:

    >>> import numpy as np
    >>> np.asarray(kl_per_dimension(np.array([[1.0, 0.0]]), np.zeros((1, 2)))).tolist()
    [[0.5, 0.0]]
    """
    _check_same_shape("mean", mean, "log_var", log_var)
    _check_rank("mean", mean, 2)
    mean, log_var = _float(mean), _float(log_var)
    return 0.5 * (ops.exp(log_var) + ops.square(mean) - 1.0 - log_var)


def kl_normal(mean, log_var):
    """Per-example KL(N(mean, diag exp(log_var)) || N(0, I)), in nats.

    Formula:

    ```
    KL = 0.5 * sum(exp(log_var) + mean**2 - 1 - log_var, axis=-1)
       = sum(kl_per_dimension(mean, log_var), axis=-1)
    ```

    It is >= 0, and 0 only at ``mean = 0, log_var = 0``.

    Args:
        mean: posterior means, shape `(B, D)` (or `(B, ..., D)`).
        log_var: posterior log-variances, same shape.

    Returns:
        A tensor of shape `(B,)` (the input's shape without its last axis).

    Raises:
        ValueError: if the shapes differ or the rank is below 2.

    Example:

    >>> import numpy as np
    >>> mean = np.array([[0.0, 0.0], [1.0, 0.0]], "float32")
    >>> log_var = np.zeros((2, 2), "float32")
    >>> np.asarray(kl_normal(mean, log_var)).tolist()
    [0.0, 0.5]
    """
    return ops.sum(kl_per_dimension(mean, log_var), axis=-1)


def bernoulli_log_likelihood(x, logits):
    """Per-example log p(x | z) for independent Bernoulli pixels, in nats.

    Formula:

    ```
    log p(x|z) = sum(x * log sigmoid(logit) + (1 - x) * log(1 - sigmoid(logit)))
               = -sum(softplus(logit) - x * logit)
    ```

    summed over every axis but the batch axis. `x` may be binary or, as the
    usual relaxation for grey-level images, in [0, 1] (then it is the negative
    binary cross-entropy, not a normalised log-likelihood).

    Args:
        x: targets in [0, 1], shape `(B, ...)`.
        logits: decoder logits, the same shape.

    Returns:
        A tensor of shape `(B,)`, at most 0 for binary `x`.

    Raises:
        ValueError: if the shapes differ or the rank is below 2.

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0]], "float32")
    >>> logits = np.zeros((1, 2), "float32")   # p = 1/2 per pixel
    >>> round(float(bernoulli_log_likelihood(x, logits)[0]), 4)  # 2 log(1/2)
    -1.3863
    """
    _check_same_shape("x", x, "logits", logits)
    _check_rank("x", x, 2)
    x, logits = _float(x), _float(logits)
    return -_sum_per_example(ops.softplus(logits) - x * logits)


def gaussian_log_likelihood(x, mean, log_var):
    """Per-example log N(x; mean, diag exp(log_var)), in nats.

    Formula:

    ```
    log p(x|z) = -0.5 * sum(log(2 pi) + log_var + (x - mean)**2 / exp(log_var))
    ```

    summed over every axis but the batch axis.

    Args:
        x: observations, shape `(B, ...)`.
        mean: means, the same shape.
        log_var: log-variances, the same shape or broadcastable to it (e.g. a
            scalar or a per-pixel `(1, ...)` learned variance).

    Returns:
        A tensor of shape `(B,)`.

    Raises:
        ValueError: if `x` and `mean` differ in shape, `log_var` does not
            broadcast to it, or the rank is below 2.

    Example:

    >>> import numpy as np
    >>> x = np.zeros((1, 1), "float32")
    >>> round(float(gaussian_log_likelihood(x, x, x)[0]), 4)  # -0.5 log(2 pi)
    -0.9189
    """
    _check_same_shape("x", x, "mean", mean)
    _check_rank("x", x, 2)
    x_shape, var_shape = _shape(x), _shape(log_var)
    if len(var_shape) > len(x_shape) or any(
        v not in (1, s) for v, s in zip(var_shape[::-1], x_shape[::-1])
    ):
        raise ValueError(
            "`log_var` must have the shape of `x` or broadcast to it; got "
            f"x.shape={x_shape} and log_var.shape={var_shape}."
        )
    x, mean, log_var = _float(x), _float(mean), _float(log_var)
    log_var = ops.broadcast_to(log_var, x_shape)
    terms = _LOG_2PI + log_var + ops.square(x - mean) * ops.exp(-log_var)
    return -0.5 * _sum_per_example(terms)


def elbo(x, logits, mean, log_var):
    """Per-example evidence lower bound of a Bernoulli VAE, in nats.

    One-sample estimate with ``z ~ q(z|x)`` already drawn by the caller (the
    decoder's `logits` are computed from that `z`):

    Formula:

    ```
    ELBO = log p(x|z) - KL(q(z|x) || p(z))
         = bernoulli_log_likelihood(x, logits) - kl_normal(mean, log_var)
    ```

    ``E_q[ELBO] <= log p(x)``, with equality when q(z|x) is the true
    posterior (Kingma and Welling 2014).

    Args:
        x: images in [0, 1], shape `(B, ...)`.
        logits: decoder logits for `x`, the same shape.
        mean: encoder means, shape `(B, D)`.
        log_var: encoder log-variances, shape `(B, D)`.

    Returns:
        A tensor of shape `(B,)`.

    Raises:
        ValueError: for mismatched shapes or batch sizes.

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0]], "float32")
    >>> logits = np.zeros((1, 2), "float32")
    >>> mean, log_var = np.ones((1, 1), "float32"), np.zeros((1, 1), "float32")
    >>> round(float(elbo(x, logits, mean, log_var)[0]), 4)  # -2 log 2 - 0.5
    -1.8863
    """
    _check_rank("mean", mean, 2)
    _check_rank("x", x, 2)
    _check_same_batch("x", x, "mean", mean)
    return bernoulli_log_likelihood(x, logits) - kl_normal(mean, log_var)


def vae_loss(x, logits, mean, log_var, beta=1.0):
    """Scalar VAE loss: the batch mean of ``-log p(x|z) + beta * KL``.

    With ``beta = 1`` it is the negative ELBO (Kingma and Welling 2014); other
    values give the beta-VAE objective (Higgins et al. 2017).

    Formula:

    ```
    loss = mean(-bernoulli_log_likelihood(x, logits)
                + beta * kl_normal(mean, log_var))
    ```

    Args:
        x: images in [0, 1], shape `(B, ...)`.
        logits: decoder logits, the same shape.
        mean: encoder means, shape `(B, D)`.
        log_var: encoder log-variances, shape `(B, D)`.
        beta: weight of the KL term, >= 0.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: for mismatched shapes or a negative `beta`.

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0]], "float32")
    >>> logits = np.zeros((1, 2), "float32")
    >>> mean, log_var = np.ones((1, 1), "float32"), np.zeros((1, 1), "float32")
    >>> round(float(vae_loss(x, logits, mean, log_var)), 4)
    1.8863
    """
    if isinstance(beta, numbers.Real) and not beta >= 0:  # a tensor is checked by its owner
        raise ValueError(f"`beta` must be >= 0; got {beta!r}.")
    _check_rank("mean", mean, 2)
    _check_rank("x", x, 2)
    _check_same_batch("x", x, "mean", mean)
    reconstruction = -bernoulli_log_likelihood(x, logits)
    return ops.mean(reconstruction + beta * kl_normal(mean, log_var))


# Autoregressive models ------------------------------------------------------------


def autoregressive_nll(targets, logits):
    """Per-example negative log-likelihood of an autoregressive Bernoulli model.

    `logits[:, t]` must be computed from the pixels *before* step t only
    (teacher forcing: the input is the target shifted by one step); then the
    chain rule ``log p(x) = sum_t log p(x_t | x_<t)`` makes the sum of the
    per-step binary cross-entropies an exact negative log-likelihood in nats.

    Formula:

    ```
    nll = sum_t sum_pixels (softplus(l_t) - x_t * l_t)
    ```

    Args:
        targets: pixels in {0, 1} (or [0, 1]), shape `(B, T, ...)`.
        logits: the model's logits, the same shape.

    Returns:
        A tensor of shape `(B,)`, >= 0 for binary targets.

    Raises:
        ValueError: if the shapes differ or the rank is below 2.

    Example:

    >>> import numpy as np
    >>> targets = np.array([[[1.0, 0.0], [1.0, 1.0]]], "float32")  # 1 x 2 x 2
    >>> logits = np.zeros((1, 2, 2), "float32")
    >>> round(float(autoregressive_nll(targets, logits)[0]), 4)  # 4 log 2
    2.7726
    """
    _check_same_shape("targets", targets, "logits", logits)
    _check_rank("targets", targets, 2)
    targets, logits = _float(targets), _float(logits)
    return _sum_per_example(ops.softplus(logits) - targets * logits)


# Diffusion and flow matching ---------------------------------------------------


def _mean_squared_error(target, prediction, names):
    _check_same_shape(names[0], target, names[1], prediction)
    _check_rank(names[0], target, 2)
    target, prediction = _float(target), _float(prediction)
    squared = ops.reshape(ops.square(prediction - target), (ops.shape(target)[0], -1))
    return ops.mean(squared)


def denoising_loss(noise, predicted_noise):
    """DDPM's simple loss: the mean squared error of the predicted noise.

    For ``x_t = sqrt(lambda_t) x_0 + sqrt(1 - lambda_t) eps`` the network
    ``eps_theta(x_t, t)`` predicts the noise ``eps`` that was added (Ho et al.
    2020):

    ```
    loss = mean over batch and dimensions of (eps_theta - eps)^2
    ```

    Each KL term of the ELBO is this squared error times a weight that
    depends on t only (:func:`companion.models.diffusion.ddpm_elbo_weights`),
    plus a constant; the simple loss sets every weight to 1.

    Args:
        noise: the noise that was added, `(B, ...)`.
        predicted_noise: the network's prediction, the same shape.

    Returns:
        A scalar.

    Raises:
        ValueError: if the shapes differ or there is no axis beyond the batch.

    Example:

    >>> import numpy as np
    >>> noise = np.array([[1.0, -1.0]], "float32")
    >>> float(denoising_loss(noise, np.zeros((1, 2), "float32")))
    1.0
    """
    return _mean_squared_error(noise, predicted_noise, ("noise", "predicted_noise"))


def flow_matching_loss(velocity, predicted_velocity):
    """The flow-matching loss: the mean squared error of the predicted velocity.

    On the straight path ``x_t = t x + (1 - t) eps`` from noise (t = 0) to
    data (t = 1) the velocity is ``v = x - eps`` (rectified flow, Liu et al.
    2023; conditional flow matching, Lipman et al. 2023):

    ```
    loss = mean over batch and dimensions of (v_theta(x_t, t) - (x - eps))^2
    ```

    Its minimiser is the conditional expectation ``E[x - eps | x_t]``, the
    velocity field whose ODE carries the noise onto the data.

    Args:
        velocity: the target ``x - eps``, `(B, ...)`.
        predicted_velocity: the network's prediction, the same shape.

    Returns:
        A scalar.

    Raises:
        ValueError: if the shapes differ or there is no axis beyond the batch.

    Example:

    >>> import numpy as np
    >>> target = np.array([[2.0, 0.0]], "float32")
    >>> float(flow_matching_loss(target, np.zeros((1, 2), "float32")))
    2.0
    """
    return _mean_squared_error(velocity, predicted_velocity,
                               ("velocity", "predicted_velocity"))
