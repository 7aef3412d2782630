"""The implementation exercises: solutions pass, realistic mistakes are named."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from companion import exercises  # first: selects the JAX backend
from keras import ops  # noqa: E402


# Solutions, as a reader might write them (NumPy, keras.ops or jax.numpy) -----------


def discriminator_loss(real_logits, fake_logits):
    return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))


def generator_loss(fake_logits):
    return np.mean(np.logaddexp(0.0, -fake_logits))


def gradient_penalty(critic_fn, real, fake, eps):
    x_hat = eps * real + (1 - eps) * fake
    grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(x_hat)
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1))
    return jnp.mean((norms - 1) ** 2)


def reparameterised_sample(mean, log_var, noise):
    return mean + np.exp(0.5 * log_var) * noise


def gaussian_kl(mean, log_var):
    return 0.5 * ops.sum(ops.exp(log_var) + mean**2 - 1 - log_var, axis=-1)


def iwae_bound(log_weights):
    largest = np.max(log_weights, axis=-1, keepdims=True)
    return (largest[:, 0] + np.log(np.mean(np.exp(log_weights - largest), axis=-1)))


def raster_causal_mask(height, width):
    index = np.arange(height * width)
    return (index[:, None] < index[None, :]).astype(int)


SOLUTIONS = {"discriminator_loss": discriminator_loss, "generator_loss": generator_loss,
             "gradient_penalty": gradient_penalty,
             "reparameterised_sample": reparameterised_sample, "gaussian_kl": gaussian_kl,
             "iwae_bound": iwae_bound, "raster_causal_mask": raster_causal_mask}


def test_every_exercise_has_a_solution_here():
    assert set(SOLUTIONS) == set(exercises.EXERCISES)


@pytest.mark.parametrize("name", sorted(exercises.EXERCISES))
def test_a_reader_solution_and_the_reference_pass(name, capsys):
    for function in (SOLUTIONS[name], exercises.EXERCISES[name].reference):
        exercises.check(name, function)
        count = len(exercises.EXERCISES[name].cases())
        assert capsys.readouterr().out == f"{name}: all {count} checks passed\n"
        assert count >= 5


@pytest.mark.parametrize("name", sorted(exercises.EXERCISES))
def test_a_function_not_written_yet_prints_and_does_not_raise(name, capsys):
    def not_written(*args):
        raise NotImplementedError

    assert exercises.check(name, not_written) is None
    assert capsys.readouterr().out == (
        f"{name}: not written yet. Write the function above, then run this check again.\n")


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="`name` must be one of 'discriminator_loss'.*"
                                         "'raster_causal_mask'; got 'kl'"):
        exercises.check("kl", gaussian_kl)
    with pytest.raises(ValueError, match="`function` must be callable"):
        exercises.check("gaussian_kl", None)


def test_an_exercise_error_is_an_assertion_error():
    assert issubclass(exercises.ExerciseError, AssertionError)


def test_a_crash_in_the_readers_function_names_the_input():
    def crashes(mean, log_var):
        return mean @ log_var  # shapes (1, 3) @ (1, 3)

    with pytest.raises(Exception) as info:
        exercises.check("gaussian_kl", crashes)
    assert any("called your function with mean=" in note
               for note in getattr(info.value, "__notes__", []))


def test_forgetting_return_is_named():
    def no_return(mean, log_var):
        0.5 * np.sum(np.exp(log_var) + mean**2 - 1 - log_var, axis=-1)

    with pytest.raises(exercises.ExerciseError, match="returned NoneType .* forget `return`"):
        exercises.check("gaussian_kl", no_return)


def _rejects(name, function, *fragments):
    with pytest.raises(exercises.ExerciseError) as info, np.errstate(all="ignore"):
        exercises.check(name, function)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# Mistakes, one test an exercise ----------------------------------------------------

sigmoid = jax.nn.sigmoid


def test_discriminator_loss_mistakes_are_named():
    _rejects("discriminator_loss",
             lambda r, f: -np.mean(np.log(sigmoid(r))) - np.mean(np.log(1 - sigmoid(f))),
             "not finite (inf) for real_logits=-100 everywhere (shape (4, 1)), "
             "fake_logits=100 everywhere", "stable form")
    # softplus written naively overflows at logit 100: the hint names it too.
    _rejects("discriminator_loss",
             lambda r, f: np.mean(np.log1p(np.exp(-r))) + np.mean(np.log1p(np.exp(f))),
             "not finite (inf)", "log(1 + exp(logit)) overflows", "np.logaddexp(0, x)")
    _rejects("discriminator_loss", lambda r, f: -discriminator_loss(r, f),
             "your loss is negative (-1.386)", "you returned V(D, G)")
    _rejects("discriminator_loss", lambda r, f: discriminator_loss(f, r),
             "check 2 of 5", "real and fake are swapped")
    _rejects("discriminator_loss",
             lambda r, f: ops.mean(ops.concatenate([ops.softplus(-r), ops.softplus(f)])),
             "is 0.6931 but should be 1.386", "average each batch, then add")
    _rejects("discriminator_loss",
             lambda r, f: ops.softplus(-r) + ops.mean(ops.softplus(f)),
             "shape (4, 1) but expected ()", "a scalar")


def test_generator_loss_mistakes_are_named():
    message = _rejects("generator_loss", lambda f: np.mean(np.log(1 - sigmoid(f))),
                       "check 1 of 5", "your loss is negative (-0.6931)",
                       "the saturating (minimax) loss")
    assert message.startswith("generator_loss, check 1 of 5 (zero logits, D(G(z)) = 1/2)")
    _rejects("generator_loss", lambda f: -np.mean(np.log(1 / (1 + np.exp(-f)))),
             "not finite (inf) for fake_logits=-100 everywhere", "softplus")
    _rejects("generator_loss", lambda f: np.mean(np.log(sigmoid(f))), "a sign error")


def test_gradient_penalty_mistakes_are_named():
    def penalty(norms_of, at=lambda r, f, e: e * r + (1 - e) * f):
        def wrong(critic_fn, real, fake, eps):
            grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(at(real, fake, eps))
            return norms_of(grads)
        return wrong

    per_example = lambda g: jnp.sqrt(jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1))
    _rejects("gradient_penalty",
             penalty(lambda g: jnp.mean((jnp.sum(g.reshape(g.shape[0], -1) ** 2, 1) - 1) ** 2)),
             "check 2 of 6 (a critic with gradient norm 3 everywhere)", "is 64 but should be 4",
             "the squared norm")
    _rejects("gradient_penalty", penalty(lambda g: (jnp.sqrt(jnp.sum(g**2)) - 1) ** 2),
             "check 1 of 6", "one norm over the whole batch")
    _rejects("gradient_penalty",
             penalty(lambda g: jnp.mean((jnp.sqrt(jnp.sum(g**2, axis=-1)) - 1) ** 2)),
             "images (B, 4, 4, 1)", "the last axis only")
    _rejects("gradient_penalty",
             penalty(lambda g: jnp.mean((per_example(g) - 1) ** 2),
                     at=lambda r, f, e: e * f + (1 - e) * r),
             "gradient = x_hat", "swapped in the interpolation")
    _rejects("gradient_penalty", penalty(lambda g: jnp.mean(per_example(g) ** 2)),
             "gradient norm 1 everywhere", "is 1 but should be 0", "(||g|| - 1)**2")


def test_reparameterised_sample_mistakes_are_named():
    _rejects("reparameterised_sample", lambda m, v, e: m + np.exp(v) * e,
             "check 2 of 6 (one unit mean, log_var = -1)", "by the variance exp(log_var)")
    _rejects("reparameterised_sample", lambda m, v, e: m + np.sqrt(v) * e,
             "check 1 of 6 (the prior: mean 0, log_var 0): your sample is 0 everywhere",
             "you took sqrt(log_var)")
    _rejects("reparameterised_sample", lambda m, v, e: m + v * e,
             "scaled the noise by log_var itself")
    _rejects("reparameterised_sample", lambda m, v, e: (m + np.exp(0.5 * v) * e)[:, :1],
             "shape (1, 1) but expected (1, 3)")


def test_gaussian_kl_mistakes_are_named():
    _rejects("gaussian_kl", lambda m, v: np.sum(np.exp(v) + m**2 - 1 - v, axis=-1),
             "check 2 of 6 (one unit mean): your KL is 1 but should be 0.5 for mean=[[1.]], "
             "log_var=[[0.]]", "the factor 1/2")
    _rejects("gaussian_kl", lambda m, v: 0.5 * np.sum(np.exp(v) + m**2 - 1 + v, axis=-1),
             "check 3 of 6 (variance 4): your KL is 4.386 but should be 1.614",
             "a sign error")
    _rejects("gaussian_kl", lambda m, v: 0.5 * np.sum(v + m**2 - 1 - v, axis=-1),
             "check 1 of 6 (the prior: mean 0, log_var 0): your KL is negative (-1.5) for "
             "mean=0 everywhere (shape (1, 3)), log_var=0 everywhere (shape (1, 3)): "
             "a KL divergence is never negative", "the variance is exp(log_var)")
    _rejects("gaussian_kl", lambda m, v: 0.5 * np.sum(np.exp(v) + m**2 - v, axis=-1),
             "check 1 of 6", "is 1.5 but should be 0", "the -1 is missing")
    _rejects("gaussian_kl",
             lambda m, v: 0.5 * np.sum(np.exp(v) + m**2 - 1 - v, axis=-1, keepdims=True),
             "has shape (1, 1) but expected (1,)", "summed over the latent axis")
    _rejects("gaussian_kl", lambda m, v: 0.5 * np.mean(np.exp(v) + m**2 - 1 - v, axis=-1),
             "averaged over the latent dimensions")


def test_iwae_bound_mistakes_are_named():
    _rejects("iwae_bound", lambda w: np.log(np.mean(np.exp(w), axis=-1)),
             "check 5 of 5", "not finite (-inf)", "logsumexp")
    _rejects("iwae_bound", lambda w: np.mean(w, axis=-1),
             "check 3 of 5 (one large weight among small ones)",
             "is -6 but should be -1.385", "that is the ELBO estimate")
    _rejects("iwae_bound", lambda w: jax.scipy.special.logsumexp(w, axis=-1),
             "check 2 of 5 (equal weights)", "above the largest log-weight",
             "the 1/k is missing")
    _rejects("iwae_bound",
             lambda w: jax.scipy.special.logsumexp(w, axis=0) - math.log(w.shape[0]),
             "shape (1,) but expected (3,)", "reduce over the last axis")


def test_raster_causal_mask_mistakes_are_named():
    _rejects("raster_causal_mask", lambda h, w: np.triu(np.ones((h * w, h * w))),
             "check 1 of 6 (a single pixel)", "lets pixel 0 (row 0, column 0) read itself",
             "k=1 in np.triu")
    _rejects("raster_causal_mask", lambda h, w: np.tril(np.ones((h * w, h * w)), k=-1),
             "check 2 of 6", "your mask is transposed")
    _rejects("raster_causal_mask", lambda h, w: np.kron(np.eye(h), np.triu(np.ones((w, w)), 1)),
             "check 3 of 6 (one column of 4 pixels)",
             "does not let pixel 1 (row 1, column 0) read pixel 0 (row 0, column 0)",
             "rows above count too")

    def left_and_above_only(height, width):
        rows, columns = np.divmod(np.arange(height * width), width)
        return ((rows[:, None] < rows[None, :]) & (columns[:, None] <= columns[None, :])
                | (rows[:, None] == rows[None, :]) & (columns[:, None] < columns[None, :]))

    _rejects("raster_causal_mask", left_and_above_only,
             "a 2 x 2 image", "does not let pixel 2 (row 1, column 0) read pixel 1 "
             "(row 0, column 1)", "also their pixels right of the current column")
    _rejects("raster_causal_mask", lambda h, w: np.triu(np.ones((h * w, h * w)), 1)[:, :-1],
             "shape (1, 0) but expected (1, 1)")

    def first_pixel_reads(height, width):
        mask = np.triu(np.ones((height * width, height * width)), 1)
        mask[-1, 0] = height * width > 1  # the last pixel, read by the first
        return mask

    _rejects("raster_causal_mask", first_pixel_reads, "check 2 of 6",
             "the first pixel must read nothing")


def test_a_solution_that_changes_its_inputs_in_place_still_passes(capsys):
    def sample_in_place(mean, log_var, noise):
        z = mean
        z += np.exp(0.5 * log_var) * noise  # writes into the caller's `mean`
        return z

    def iwae_in_place(log_weights):
        w = log_weights
        top = w.max(axis=1, keepdims=True)
        w -= top  # writes into the caller's array
        return np.log(np.mean(np.exp(w), axis=1)) + top[:, 0]

    exercises.check("reparameterised_sample", sample_in_place)
    exercises.check("iwae_bound", iwae_in_place)
    assert "all" in capsys.readouterr().out
