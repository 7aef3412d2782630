"""Tests of companion.losses against closed forms and exact properties."""

import itertools
import math

import companion  # noqa: F401  (selects the JAX backend before keras loads)
import jax
import keras
import numpy as np
import pytest
from keras import ops
from scipy import integrate, stats

from companion import losses


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def _log_sigmoid(l):
    return -np.logaddexp(0.0, -l)


# GAN --------------------------------------------------------------------------------


def test_discriminator_loss_at_zero_logits_is_two_log_two():
    zeros = np.zeros((8, 1), "float32")
    assert float(losses.discriminator_loss(zeros, zeros)) == pytest.approx(
        2 * math.log(2), rel=1e-6
    )
    assert float(losses.gan_value(zeros, zeros)) == pytest.approx(-math.log(4), rel=1e-6)


def test_discriminator_loss_matches_numpy_cross_entropy():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(16, 1)).astype("float32") * 3
    fake = rng.normal(size=(7, 1)).astype("float32") * 3  # batch sizes may differ
    expected = -_log_sigmoid(real).mean() - _log_sigmoid(-fake).mean()
    assert float(losses.discriminator_loss(real, fake)) == pytest.approx(expected, rel=1e-5)
    assert float(losses.gan_value(real, fake)) == pytest.approx(-expected, rel=1e-5)


def _quantile_points(dist, num=20_000):
    """Points whose plain mean approximates an expectation under `dist`."""
    return dist.ppf((np.arange(num) + 0.5) / num)


def test_optimal_discriminator_value_is_minus_log_four_plus_two_jsd():
    p_data, p_g = stats.norm(0.0, 1.0), stats.norm(1.5, 1.0)

    def optimal_logit(x):  # log D* - log(1 - D*) = log p_data - log p_g
        return p_data.logpdf(x) - p_g.logpdf(x)

    def integrand(x):
        m = 0.5 * (p_data.pdf(x) + p_g.pdf(x))
        return 0.5 * (p_data.pdf(x) * np.log(p_data.pdf(x) / m)
                      + p_g.pdf(x) * np.log(p_g.pdf(x) / m))

    jsd = integrate.quad(integrand, -12, 13.5)[0]
    x_real, x_fake = _quantile_points(p_data), _quantile_points(p_g)

    def value(logit_fn):
        real = logit_fn(x_real)[:, None].astype("float32")
        fake = logit_fn(x_fake)[:, None].astype("float32")
        return float(losses.gan_value(real, fake))

    best = value(optimal_logit)
    assert 0.1 < jsd < math.log(2)
    assert best == pytest.approx(-math.log(4) + 2 * jsd, abs=1e-3)
    others = {
        "scaled down": lambda x: 0.5 * optimal_logit(x),
        "scaled up": lambda x: 2.0 * optimal_logit(x),
        "shifted": lambda x: optimal_logit(x) + 0.5,
        "threshold moved": lambda x: optimal_logit(x - 0.3),
        "undecided": lambda x: 0.0 * x,
    }
    for name, logit_fn in others.items():
        assert value(logit_fn) < best - 1e-3, name


def test_saturating_gradient_vanishes_for_rejected_fakes():
    rejected = np.full((4, 1), -8.0, "float32")

    def gradient(saturating):
        grad = jax.grad(lambda l: losses.generator_loss(l, saturating=saturating))
        return np.abs(np.asarray(grad(rejected))).sum()

    saturating, non_saturating = gradient(True), gradient(False)
    assert saturating == pytest.approx(1 / (1 + math.exp(8)), rel=1e-3)  # sigmoid(-8)
    assert non_saturating == pytest.approx(1 / (1 + math.exp(-8)), rel=1e-3)
    assert saturating < 1e-3 * non_saturating


def test_generator_loss_values():
    logits = np.array([[-2.0], [0.5], [3.0]], "float32")
    assert float(losses.generator_loss(logits)) == pytest.approx(
        -_log_sigmoid(logits).mean(), rel=1e-5
    )
    assert float(losses.generator_loss(logits, saturating=True)) == pytest.approx(
        _log_sigmoid(-logits).mean(), rel=1e-5
    )


# Wasserstein GAN -------------------------------------------------------------------


def test_wasserstein_losses():
    real = np.array([[2.0], [4.0], [6.0]], "float32")
    fake = np.array([[-1.0], [1.0]], "float32")
    assert float(losses.wasserstein_critic_loss(real, fake)) == pytest.approx(-4.0)
    assert float(losses.wasserstein_generator_loss(fake)) == pytest.approx(0.0)


def _linear_critic(weights):
    def critic_fn(x):
        flat = ops.reshape(x, (ops.shape(x)[0], -1))
        return ops.sum(flat * ops.reshape(weights, (1, -1)), axis=1)
    return critic_fn


def test_gradient_penalty_of_linear_critic_is_exact():
    rng = np.random.default_rng(0)
    real = rng.random((6, 3, 3, 1)).astype("float32")
    fake = rng.random((6, 3, 3, 1)).astype("float32")
    weights = rng.normal(size=9).astype("float32")
    norm = np.linalg.norm(weights)
    penalty = losses.gradient_penalty(_linear_critic(weights), real, fake, seed=1)
    assert float(penalty) == pytest.approx((norm - 1) ** 2, rel=1e-4)
    unit = weights / norm
    assert float(losses.gradient_penalty(_linear_critic(unit), real, fake, seed=1)) < 1e-8


def test_gradient_penalty_uses_interpolates_and_seed():
    rng = np.random.default_rng(1)
    real = rng.random((5, 2, 2, 1)).astype("float32")
    fake = rng.random((5, 2, 2, 1)).astype("float32")

    def critic_fn(x):  # grad = 2 x_hat, so the penalty depends on eps
        return ops.sum(ops.reshape(ops.square(x), (ops.shape(x)[0], -1)), axis=1)

    eps = np.asarray(keras.random.uniform((5, 1, 1, 1), seed=3))
    x_hat = eps * real + (1 - eps) * fake
    norms = np.linalg.norm(2 * x_hat.reshape(5, -1), axis=1)
    expected = np.mean((norms - 1) ** 2)
    assert float(losses.gradient_penalty(critic_fn, real, fake, seed=3)) == pytest.approx(
        expected, rel=1e-4
    )
    keys = [jax.random.key_data(jax.random.PRNGKey(i)) for i in (0, 1)]
    jitted = jax.jit(lambda key: losses.gradient_penalty(critic_fn, real, fake, seed=key))
    assert float(jitted(keys[0])) != float(jitted(keys[1]))


def test_gradient_penalty_is_differentiable_in_the_critic_weights():
    rng = np.random.default_rng(2)
    real = rng.random((4, 2, 2, 1)).astype("float32")
    fake = rng.random((4, 2, 2, 1)).astype("float32")
    weights = rng.normal(size=4).astype("float32")
    grad = jax.grad(
        lambda w: losses.gradient_penalty(_linear_critic(w), real, fake, seed=0)
    )(weights)
    norm = np.linalg.norm(weights)
    np.testing.assert_allclose(np.asarray(grad), 2 * (norm - 1) * weights / norm,
                               rtol=1e-4)


# VAE ---------------------------------------------------------------------------------


def test_kl_normal_matches_monte_carlo():
    mean = np.array([[0.5, -1.0, 2.0]], "float32")
    log_var = np.array([[0.3, -0.7, 1.2]], "float32")
    rng = np.random.default_rng(0)
    std = np.exp(0.5 * log_var.astype("float64"))
    z = mean + std * rng.normal(size=(200_000, 3))
    log_q = stats.norm(mean, std).logpdf(z).sum(axis=1)
    log_p = stats.norm(0.0, 1.0).logpdf(z).sum(axis=1)
    samples = log_q - log_p
    closed = float(_np(losses.kl_normal(mean, log_var))[0])
    assert closed == pytest.approx(samples.mean(), abs=4 * samples.std() / math.sqrt(len(z)))


def test_kl_per_dimension_is_the_one_dimensional_closed_form_and_sums_to_kl_normal():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(5, 4)).astype("float32")
    log_var = rng.normal(size=(5, 4)).astype("float32")
    std = np.exp(0.5 * log_var.astype("float64"))
    # KL(N(m, s^2) || N(0, 1)) = -log s + (s^2 + m^2) / 2 - 1/2, one dimension at a time.
    expected = -np.log(std) + (std**2 + mean.astype("float64") ** 2) / 2 - 0.5
    per_dimension = _np(losses.kl_per_dimension(mean, log_var))
    assert per_dimension.shape == (5, 4)
    np.testing.assert_allclose(per_dimension, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(per_dimension.sum(axis=1), _np(losses.kl_normal(mean, log_var)),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="log_var"):
        losses.kl_per_dimension(mean, log_var[:, :3])


def test_kl_normal_is_nonnegative_and_zero_only_at_the_prior():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(1000, 4)).astype("float32")
    log_var = rng.normal(size=(1000, 4)).astype("float32") * 2
    assert (_np(losses.kl_normal(mean, log_var)) > 0).all()
    zeros = np.zeros((1, 4), "float32")
    assert float(_np(losses.kl_normal(zeros, zeros))[0]) == 0.0
    for index in range(4):
        for delta in (1e-2, -1e-2):
            nudged = zeros.copy()
            nudged[0, index] = delta
            assert _np(losses.kl_normal(nudged, zeros))[0] > 0
            assert _np(losses.kl_normal(zeros, nudged))[0] > 0


def test_gaussian_log_likelihood_matches_scipy_and_broadcasts():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 2)).astype("float32")
    mean = rng.normal(size=(3, 4, 2)).astype("float32")
    log_var = rng.normal(size=(3, 4, 2)).astype("float32")
    expected = stats.norm(mean, np.exp(0.5 * log_var)).logpdf(x).reshape(3, -1).sum(1)
    np.testing.assert_allclose(_np(losses.gaussian_log_likelihood(x, mean, log_var)),
                               expected, rtol=1e-5)
    shared = np.full((1, 4, 2), 0.3, "float32")
    np.testing.assert_allclose(
        _np(losses.gaussian_log_likelihood(x, mean, shared)),
        _np(losses.gaussian_log_likelihood(x, mean, np.broadcast_to(shared, x.shape))),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match=r"\(3, 4, 2\).*\(3, 2\)"):
        losses.gaussian_log_likelihood(x, mean, np.zeros((3, 2), "float32"))


def _linear_gaussian(x, w=1.5, noise_var=0.5):
    """Prior N(0, 1), p(x|z) = N(w z, noise_var): log p(x) and the posterior."""
    log_px = stats.norm(0.0, math.sqrt(w**2 + noise_var)).logpdf(x)
    post_var = 1.0 / (1.0 + w**2 / noise_var)
    return log_px, post_var * w * x / noise_var, post_var


def _elbo_samples(x, q_mean, q_var, w=1.5, noise_var=0.5, num=200_000, seed=0):
    """One-sample ELBO estimates with the closed-form KL, from the companion."""
    rng = np.random.default_rng(seed)
    z = (q_mean + math.sqrt(q_var) * rng.normal(size=(num, 1))).astype("float32")
    xs = np.full((num, 1), x, "float32")
    log_lik = losses.gaussian_log_likelihood(
        xs, w * z, np.full((num, 1), math.log(noise_var), "float32"))
    mean = np.full((num, 1), q_mean, "float32")
    log_var = np.full((num, 1), math.log(q_var), "float32")
    return _np(log_lik - losses.kl_normal(mean, log_var))


def test_elbo_is_below_log_evidence_with_equality_at_the_posterior():
    x = 1.3
    log_px, post_mean, post_var = _linear_gaussian(x)
    at_posterior = _elbo_samples(x, post_mean, post_var)
    tolerance = 4 * at_posterior.std() / math.sqrt(len(at_posterior))
    assert at_posterior.mean() == pytest.approx(log_px, abs=tolerance + 1e-4)
    for q_mean, q_var in ((post_mean + 0.5, post_var), (post_mean, 2 * post_var),
                          (0.0, 1.0)):
        samples = _elbo_samples(x, q_mean, q_var)
        # The gap is exactly KL(q || posterior).
        gap = (math.log(math.sqrt(post_var / q_var))
               + (q_var + (q_mean - post_mean) ** 2) / (2 * post_var) - 0.5)
        assert gap > 0.02
        assert samples.mean() == pytest.approx(log_px - gap, abs=0.01)


def test_log_weights_at_the_true_posterior_are_constant():
    x = -0.7
    log_px, post_mean, post_var = _linear_gaussian(x)
    rng = np.random.default_rng(1)
    z = (post_mean + math.sqrt(post_var) * rng.normal(size=(1000, 1))).astype("float32")
    ones = np.ones_like(z)
    log_joint = (losses.gaussian_log_likelihood(np.full_like(z, x), 1.5 * z,
                                                ones * math.log(0.5))
                 + losses.gaussian_log_likelihood(z, 0 * z, 0 * z))
    log_q = losses.gaussian_log_likelihood(z, ones * post_mean, ones * math.log(post_var))
    np.testing.assert_allclose(_np(log_joint - log_q), log_px, atol=1e-4)


def test_elbo_and_vae_loss_match_their_definition():
    rng = np.random.default_rng(0)
    x = (rng.random((5, 4, 4, 1)) < 0.5).astype("float32")
    logits = rng.normal(size=(5, 4, 4, 1)).astype("float32") * 3
    mean = rng.normal(size=(5, 3)).astype("float32")
    log_var = rng.normal(size=(5, 3)).astype("float32")
    log_lik = (x * _log_sigmoid(logits) + (1 - x) * _log_sigmoid(-logits)).reshape(5, -1)
    kl = 0.5 * (np.exp(log_var) + mean**2 - 1 - log_var).sum(1)
    expected = log_lik.sum(1) - kl
    np.testing.assert_allclose(_np(losses.elbo(x, logits, mean, log_var)), expected,
                               rtol=1e-5)
    for beta in (0.0, 1.0, 4.0):
        assert float(losses.vae_loss(x, logits, mean, log_var, beta=beta)) == \
            pytest.approx(np.mean(-log_lik.sum(1) + beta * kl), rel=1e-5)
    for beta in (-1.0, np.float32(-0.5)):
        with pytest.raises(ValueError, match="beta"):
            losses.vae_loss(x, logits, mean, log_var, beta=beta)
    # A traced weight (the VAE's kl_weight variable inside jit) is accepted.
    traced = jax.jit(lambda b: losses.vae_loss(x, logits, mean, log_var, beta=b))
    assert float(traced(np.float32(4.0))) == pytest.approx(
        np.mean(-log_lik.sum(1) + 4.0 * kl), rel=1e-5)


def test_bernoulli_log_likelihood_is_normalised():
    logits = np.array([[0.3, -1.2, 2.0]], "float32")
    images = np.array(list(itertools.product([0.0, 1.0], repeat=3)), "float32")
    log_p = _np(losses.bernoulli_log_likelihood(images, np.repeat(logits, 8, axis=0)))
    assert np.exp(log_p).sum() == pytest.approx(1.0, rel=1e-6)


def test_vae_loss_gives_the_decoder_a_gradient():
    x = np.ones((2, 3), "float32")
    mean = np.zeros((2, 1), "float32")
    grad = jax.grad(lambda l: losses.vae_loss(x, l, mean, mean))(np.zeros((2, 3), "float32"))
    np.testing.assert_allclose(np.asarray(grad), -0.5 / 2, rtol=1e-6)  # -(1 - 1/2) / B


# Autoregressive -----------------------------------------------------------------------


def test_autoregressive_nll_equals_summed_binary_cross_entropy():
    rng = np.random.default_rng(0)
    targets = (rng.random((4, 6, 5)) < 0.4).astype("float32")
    logits = rng.normal(size=(4, 6, 5)).astype("float32") * 4
    bce = keras.ops.binary_crossentropy(targets, logits, from_logits=True)
    expected = _np(bce).reshape(4, -1).sum(1)
    np.testing.assert_allclose(_np(losses.autoregressive_nll(targets, logits)), expected,
                               rtol=1e-5)


def test_autoregressive_nll_is_an_exact_likelihood_by_the_chain_rule():
    steps = 4
    sequences = np.array(list(itertools.product([0.0, 1.0], repeat=steps)), "float32")
    previous = np.concatenate([np.zeros((len(sequences), 1)), sequences[:, :-1]], axis=1)
    logits = (-0.4 + 1.7 * previous - 0.3 * np.arange(steps)).astype("float32")
    nll = _np(losses.autoregressive_nll(sequences, logits))
    assert np.exp(-nll).sum() == pytest.approx(1.0, rel=1e-6)
    assert (nll > 0).all()


# Stability and shape checks ------------------------------------------------------------


@pytest.mark.parametrize("big", [1e4, -1e4])
def test_every_loss_is_finite_at_huge_logits(big):
    logits = np.full((3, 2, 2, 1), big, "float32")
    targets = np.array([0.0, 1.0, 1.0])[:, None, None, None] * np.ones_like(logits)
    zeros2 = np.zeros((3, 2), "float32")
    scalars = [
        losses.discriminator_loss(logits, logits),
        losses.gan_value(logits, -logits),
        losses.generator_loss(logits),
        losses.generator_loss(logits, saturating=True),
        losses.vae_loss(targets, logits, zeros2, zeros2),
        losses.wasserstein_critic_loss(logits, -logits),
        losses.wasserstein_generator_loss(logits),
    ]
    vectors = [
        losses.bernoulli_log_likelihood(targets, logits),
        losses.elbo(targets, logits, zeros2, zeros2),
        losses.autoregressive_nll(targets, logits),
    ]
    for value in scalars + vectors:
        assert np.isfinite(_np(value)).all()
    wrong = 1e4 * 4  # four pixels, each off by 1e4 nats
    nll = _np(losses.autoregressive_nll(targets, logits))
    assert nll.tolist() == ([0.0, wrong, wrong] if big < 0 else [wrong, 0.0, 0.0])
    grad = jax.grad(lambda l: losses.generator_loss(l))(logits)
    assert np.isfinite(np.asarray(grad)).all()


@pytest.mark.parametrize(
    "call, shapes",
    [
        (lambda a, b: losses.bernoulli_log_likelihood(a, b), ((4, 1), (4,))),
        (lambda a, b: losses.autoregressive_nll(a, b), ((2, 5, 3), (2, 3, 5))),
        (lambda a, b: losses.kl_normal(a, b), ((4, 2), (4, 3))),
        (lambda a, b: losses.discriminator_loss(a, b), ((4, 1), (4, 2))),
        (lambda a, b: losses.gan_value(a, b), ((4, 1), (4,))),
        (lambda a, b: losses.wasserstein_critic_loss(a, b), ((4, 1), (4,))),
        (lambda a, b: losses.elbo(a, a, b, b), ((4, 3), (5, 2))),
        (lambda a, b: losses.gaussian_log_likelihood(a, b, b), ((4, 3), (3, 4))),
        (lambda a, b: losses.gradient_penalty(lambda x: x, a, b, seed=0),
         ((4, 3), (4, 2))),
    ],
)
def test_mismatched_shapes_raise_naming_both(call, shapes):
    a, b = (np.zeros(s, "float32") for s in shapes)
    pattern = r".*".join(map(lambda s: re_escape(str(s)), shapes))
    with pytest.raises(ValueError, match=pattern):
        call(a, b)


def re_escape(text):
    import re
    return re.escape(text)


@pytest.mark.parametrize(
    "call",
    [
        lambda v: losses.kl_normal(v, v),
        lambda v: losses.bernoulli_log_likelihood(v, v),
        lambda v: losses.autoregressive_nll(v, v),
        lambda v: losses.gaussian_log_likelihood(v, v, v),
    ],
)
def test_per_example_losses_need_a_batch_axis(call):
    with pytest.raises(ValueError, match=r"rank >= 2.*\(3,\)"):
        call(np.zeros(3, "float32"))


def test_scalars_are_rejected():
    with pytest.raises(ValueError, match=r"rank >= 1.*\(\)"):
        losses.generator_loss(np.float32(0.0))


def test_gradient_penalty_inside_a_stateless_keras_step():
    critic = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
                               keras.layers.Dense(1)])
    trainable = [v.value for v in critic.trainable_variables]
    non_trainable = [v.value for v in critic.non_trainable_variables]
    rng = np.random.default_rng(3)
    real = rng.random((8, 2, 2, 1)).astype("float32")
    fake = rng.random((8, 2, 2, 1)).astype("float32")

    def penalty(trainable, key):
        def critic_fn(x):
            scores, _ = critic.stateless_call(trainable, non_trainable, x, training=True)
            return scores
        return losses.gradient_penalty(critic_fn, real, fake, seed=key)

    key = jax.random.key_data(jax.random.PRNGKey(0))
    value, grads = jax.jit(jax.value_and_grad(penalty))(trainable, key)
    norm = np.linalg.norm(np.asarray(trainable[0]))
    assert float(value) == pytest.approx((norm - 1) ** 2, rel=1e-4)  # a linear critic
    assert all(np.isfinite(np.asarray(g)).all() for g in grads)


# Diffusion and flow matching --------------------------------------------------------

_REGRESSION_LOSSES = [losses.denoising_loss, losses.flow_matching_loss]


@pytest.mark.parametrize("loss", _REGRESSION_LOSSES)
def test_regression_losses_by_hand(loss):
    target = np.array([[1.0, -1.0, 2.0], [0.0, 3.0, -2.0]], "float32")
    prediction = np.array([[0.0, 1.0, 2.0], [1.0, 3.0, 0.0]], "float32")
    # squared errors 1, 4, 0 and 1, 0, 4: 10 over 6 entries
    assert float(loss(target, prediction)) == pytest.approx(10 / 6, rel=1e-6)
    assert float(loss(target, prediction)) == float(loss(prediction, target))
    # The docstrings' examples, and integers are converted.
    assert float(loss(np.array([[1, -1]]), np.array([[0, 0]]))) == 1.0
    assert float(loss(np.array([[2.0, 0.0]], "float32"), np.zeros((1, 2), "float32"))) == 2.0


@pytest.mark.parametrize("loss", _REGRESSION_LOSSES)
def test_regression_losses_average_over_batch_and_every_axis(loss):
    rng = np.random.default_rng(0)
    target, prediction = rng.normal(size=(2, 3, 4, 4, 2)).astype("float32")
    expected = np.mean((target.astype("float64") - prediction) ** 2)
    assert float(loss(target, prediction)) == pytest.approx(expected, rel=1e-5)
    # Not a sum: the loss of one example repeated is that example's loss.
    once = float(loss(target[:1], prediction[:1]))
    assert float(loss(np.repeat(target[:1], 5, 0), np.repeat(prediction[:1], 5, 0))) == (
        pytest.approx(once, rel=1e-6))
    compiled = jax.jit(loss)(target, prediction)
    assert float(compiled) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("loss", _REGRESSION_LOSSES)
def test_regression_losses_are_zero_exactly_at_the_target(loss):
    target = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
    assert float(loss(target, target)) == 0.0
    nudged = target.copy()
    nudged[2, 3] += 0.5
    assert float(loss(target, nudged)) == pytest.approx(0.25 / 20, rel=1e-5)


@pytest.mark.parametrize("loss", _REGRESSION_LOSSES)
def test_regression_loss_gradient_is_twice_the_error_over_the_size(loss):
    rng = np.random.default_rng(2)
    target, prediction = rng.normal(size=(2, 3, 2, 2)).astype("float32")
    grad = np.asarray(jax.grad(lambda p: loss(target, p))(prediction))
    np.testing.assert_allclose(grad, 2 * (prediction - target) / target.size,
                               rtol=1e-5, atol=1e-7)
    at_target = np.asarray(jax.grad(lambda p: loss(target, p))(target))
    np.testing.assert_array_equal(at_target, 0.0)  # a stationary point: the minimum


def test_flow_matching_loss_against_a_constant_is_least_at_the_mean():
    # For a constant prediction c: loss(c) = loss(mean) + (c - mean)^2 (per dimension),
    # the sample version of E||v - c||^2 being least at c = E[v].
    rng = np.random.default_rng(3)
    target = rng.normal(size=(64, 1)).astype("float32") * 2 + 1
    mean = float(target.mean())
    best = float(losses.flow_matching_loss(target, np.full_like(target, mean)))
    assert best == pytest.approx(float(np.var(target.astype("float64"))), rel=1e-5)
    for offset in (-0.5, 0.1, 2.0):
        shifted = float(losses.flow_matching_loss(target, np.full_like(target, mean + offset)))
        assert shifted == pytest.approx(best + offset ** 2, rel=1e-5)


@pytest.mark.parametrize("loss", _REGRESSION_LOSSES)
@pytest.mark.parametrize("shapes", [((4, 3), (4, 1)), ((4, 1), (4,)), ((2, 4, 4, 1), (2, 4, 4)),
                                    ((3, 2), (2, 3)), ((4, 3), (5, 3))])
def test_regression_losses_refuse_mismatched_shapes_naming_both(loss, shapes):
    a, b = (np.zeros(s, "float32") for s in shapes)
    pattern = r".*".join(re_escape(str(s)) for s in shapes)
    with pytest.raises(ValueError, match=pattern):
        loss(a, b)


@pytest.mark.parametrize("loss", _REGRESSION_LOSSES)
def test_regression_losses_need_a_batch_axis_and_one_more(loss):
    with pytest.raises(ValueError, match=r"rank >= 2.*\(3,\)"):
        loss(np.zeros(3, "float32"), np.zeros(3, "float32"))
    with pytest.raises(ValueError, match=r"rank >= 2.*\(\)"):
        loss(np.float32(1.0), np.float32(0.0))
