"""Implementation exercises: the reader writes a function, `check` judges it.

Each exercise of the theory pages names a function the package already has
(the reference). :func:`check` calls the reader's version on random inputs and
on edge cases, compares every result with the reference and, at the first
disagreement, raises :class:`ExerciseError` (an `AssertionError`) whose message
says what is wrong and for which input: a wrong shape, a value that is not
finite, a property the result must have (a KL is never negative) or a plain
mismatch, with a hint when the result is that of a known mistake. A function
whose body still raises `NotImplementedError` gets a "not written yet" line
instead, so a page's first run is clean.

The reader's function may use NumPy, `keras.ops` or `jax.numpy`: it receives
float32 NumPy arrays (and, for the gradient penalty, a critic function written
with `jax.numpy`) and may return any array-like. :data:`EXERCISES` lists the
exercises; each one's :attr:`Exercise.signature` says what the function takes
and returns.

Example:

>>> import numpy as np
>>> def my_gaussian_kl(mean, log_var):
...     return 0.5 * np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=-1)
>>> check("gaussian_kl", my_gaussian_kl)
gaussian_kl: all 6 checks passed
>>> def half_forgotten(mean, log_var):
...     return np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=-1)
>>> check("gaussian_kl", half_forgotten)
Traceback (most recent call last):
...
companion.exercises.ExerciseError: gaussian_kl, check 2 of 6 (one unit mean): your KL is 1 but should be 0.5 for mean=[[1.]], log_var=[[0.]]. It looks like you left out the factor 1/2: KL = 0.5 * sum(...).
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp

from companion import evaluation, losses
from companion._validation import check_choice
from companion.models import rnn, vae

RTOL, ATOL = 1e-4, 1e-4
"""How close a reader's float32 result must be to the reference."""


class ExerciseError(AssertionError):
    """A reader's function disagrees with the reference; the message says where."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One input of an exercise: what it tests, the arguments and their names.

    `about` describes arguments that are not arrays (a critic function).
    """

    label: str
    args: tuple
    names: tuple
    about: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Exercise:
    """An exercise: the function to write, its reference and how to judge it.

    Attributes:
        signature: what the reader's function takes and returns.
        what: the result's name in messages ("loss", "KL", ...).
        reference: the package's function, in the reader's signature (compiled
            with `jax.jit` where it is written with `keras.ops`: one program a
            case instead of one an operation).
        cases: a function returning the :class:`Case` list (built on demand).
        shape_hint: said when the result has the wrong shape.
        finite_hint: said when the result is not finite but should be.
        properties: functions ``(case, result) -> message or None``.
        mistakes: ``(function, hint)`` pairs: known wrong versions, and what
            to say when the reader's result equals theirs.
        per_example: the result has one entry per example (the first axis).
        judge: replaces the comparison above: ``(exercise, case, result) ->
            message or None`` (the mask is judged pixel by pixel).
    """

    signature: str
    what: str
    reference: object
    cases: object
    shape_hint: str
    finite_hint: str = ""
    properties: tuple = ()
    mistakes: tuple = ()
    per_example: bool = False
    judge: object = None


# Showing inputs ---------------------------------------------------------------------


def _show_array(value):
    value = np.asarray(value)
    flat = value.ravel()
    if value.size > 1 and np.all(flat == flat[0]):
        return f"{flat[0]:.4g} everywhere (shape {value.shape})"
    if value.size > 12:
        return (f"an array of shape {value.shape} with values from {flat.min():.3g} to "
                f"{flat.max():.3g}")
    return " ".join(np.array2string(value, precision=3, separator=" ").split())


def _show_inputs(case, example=None):
    """The case's inputs, or only those of one example (row of the first axis)."""
    parts = []
    for name, value in zip(case.names, case.args):
        if name in case.about:
            parts.append(case.about[name])
            continue
        value = np.asarray(value)
        if example is not None and value.ndim >= 1:
            value = value[example:example + 1]
        parts.append(f"{name}={_show_array(value)}")
    return ", ".join(parts)


def _number(value):
    value = np.asarray(value)
    return f"{float(value):.4g}" if value.size == 1 else _show_array(value)


# Judging ------------------------------------------------------------------------------


def _as_array(result):
    try:
        return np.asarray(result, dtype="float64")
    except (TypeError, ValueError):
        return None


def _close(a, b):
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True))


def _fresh(args):
    """Copies of a case's arrays: a function that changes its inputs in place must
    not change what the reference and the messages see."""
    return tuple(np.array(a) if isinstance(a, np.ndarray) else a for a in args)


def _outputs(function, cases):
    """`function`'s results on `cases`, None where it fails."""
    results = []
    for case in cases:
        try:
            with np.errstate(all="ignore"):
                results.append(_as_array(function(*_fresh(case.args))))
        except Exception:  # the reader's or a mistake's: only compared, never shown
            results.append(None)
    return results


def _mistake_hint(exercise, cases, yours, failing):
    """Say which known mistake gives the reader's results, if one does.

    The mistake must give the reader's result on the failing case; among
    those, the one that agrees on the most cases wins.
    """
    best, best_score = None, 0
    for mistake, hint in exercise.mistakes:
        theirs = _outputs(mistake, cases)
        if theirs[failing] is None or yours[failing] is None or not _close(
                yours[failing], theirs[failing]):
            continue
        score = sum(a is not None and b is not None and _close(a, b)
                    for a, b in zip(yours, theirs))
        if score > best_score:
            best, best_score = hint, score
    return f" It looks like {best}" if best else ""


def _judge(exercise, case, got):
    """The message for the first thing wrong with `got` on `case`, or None."""
    if exercise.judge is not None:
        return exercise.judge(exercise, case, got)
    expected = np.asarray(exercise.reference(*case.args), dtype="float64")
    result = _as_array(got)
    if result is None or got is None:
        return (f"your function returned {type(got).__name__} for {_show_inputs(case)}; "
                f"return the {exercise.what} (did you forget `return`?).")
    if result.shape != expected.shape:
        return (f"your {exercise.what} has shape {result.shape} but expected "
                f"{expected.shape} for {_show_inputs(case)}: {exercise.shape_hint}.")
    problem = None
    if np.all(np.isfinite(expected)) and not np.all(np.isfinite(result)):
        bad = _first_bad(exercise, ~np.isfinite(result))
        shown = result if bad is None else result[bad]
        problem = (f"your {exercise.what} is not finite ({_number(shown)}) for "
                   f"{_show_inputs(case, bad)}: {exercise.finite_hint}.")
    for check_property in exercise.properties:
        if problem is None:
            problem = check_property(case, result)
    if problem is None and not _close(result, expected):
        bad = _first_bad(exercise, ~np.isclose(result, expected, rtol=RTOL, atol=ATOL))
        pick = (lambda a: a[bad]) if bad is not None else (lambda a: a)
        problem = (f"your {exercise.what} is {_number(pick(result))} but should be "
                   f"{_number(pick(expected))} for {_show_inputs(case, bad)}.")
    return problem


def _first_bad(exercise, wrong):
    """Index of the first wrong example of a per-example result (else None)."""
    if not exercise.per_example or wrong.ndim == 0:
        return None
    rows = np.flatnonzero(wrong.reshape(len(wrong), -1).any(axis=1))
    return int(rows[0]) if len(rows) else None


def check(name, function):
    """Run the reader's `function` for exercise `name` against the reference.

    Calls `function` on every case of the exercise, random inputs and edge
    cases, and compares each result with the package's reference. Prints one
    line when all pass, or when `function` still raises
    `NotImplementedError` (nothing is raised then: the exercise is not
    written yet).

    Args:
        name: the exercise, one of :data:`EXERCISES`.
        function: the reader's function, with the exercise's signature
            (``EXERCISES[name].signature``).

    Raises:
        ValueError: for an unknown `name` or a `function` that is not callable.
        ExerciseError: at the first case where `function`'s result has the
            wrong shape, is not finite, breaks a property of the exact
            result, or differs from the reference; the message names the
            input and, where it recognises one, the mistake.

    Example:

    >>> def my_iwae_bound(log_weights):
    ...     raise NotImplementedError
    >>> check("iwae_bound", my_iwae_bound)
    iwae_bound: not written yet. Write the function above, then run this check again.
    """
    exercise = EXERCISES[check_choice("name", name, tuple(EXERCISES))]
    if not callable(function):
        raise ValueError(f"`function` must be callable, like {exercise.signature}; "
                         f"got {function!r}.")
    cases = exercise.cases()
    for number, case in enumerate(cases, 1):
        try:
            got = function(*_fresh(case.args))
        except NotImplementedError:
            print(f"{name}: not written yet. Write the function above, then run this "
                  "check again.")
            return
        except Exception as error:
            error.add_note(f"check({name!r}) called your function with "
                           f"{_show_inputs(case)} ({case.label}).")
            raise
        problem = _judge(exercise, case, got)
        if problem is not None:
            hint = _mistake_hint(exercise, cases, _outputs(function, cases), number - 1)
            raise ExerciseError(f"{name}, check {number} of {len(cases)} ({case.label}): "
                                f"{problem}{hint}")
    print(f"{name}: all {len(cases)} checks passed")


# GAN losses -----------------------------------------------------------------------


def _f32(value):
    return np.asarray(value, dtype="float32")


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logits_cases(two):
    rng = np.random.default_rng(25)
    def full(value, batch=4):
        return _f32(np.full((batch, 1), value))
    if two:
        names = ("real_logits", "fake_logits")
        return [
            Case("zero logits, D = 1/2 everywhere", (full(0), full(0)), names),
            Case("random logits", (_f32(3 * rng.normal(size=(6, 1))),
                                   _f32(3 * rng.normal(size=(6, 1)))), names),
            Case("batches of different sizes", (_f32(rng.normal(size=(6, 1)) + 1),
                                                _f32(rng.normal(size=(3, 1)) - 1)), names),
            Case("a confident, right discriminator", (full(8), full(-8)), names),
            Case("a confident, wrong discriminator", (full(-100), full(100)), names),
        ]
    names = ("fake_logits",)
    return [
        Case("zero logits, D(G(z)) = 1/2", (full(0),), names),
        Case("random logits", (_f32(3 * rng.normal(size=(6, 1))),), names),
        Case("fakes the discriminator accepts", (full(8),), names),
        Case("fakes the discriminator rejects", (full(-8),), names),
        Case("fakes the discriminator rejects confidently", (full(-100),), names),
    ]


def _never_negative(description):
    def check_property(case, result):
        if np.any(result < -1e-6):
            return (f"your loss is negative ({_number(result)}) for {_show_inputs(case)}: "
                    f"{description}.")
        return None
    return check_property


_UNSTABLE = ("log(sigmoid(logit)) underflows to log(0), and log(1 + exp(logit)) overflows, for "
             "large |logit|; use the stable form log D = -softplus(-logit), "
             "log(1 - D) = -softplus(logit), with a stable softplus such as np.logaddexp(0, x) "
             "or keras.ops.softplus")


def _mean(x):
    return np.mean(np.asarray(x, "float64"))


DISCRIMINATOR_LOSS = Exercise(
    signature="discriminator_loss(real_logits, fake_logits) -> scalar: -V(D, G) from "
              "logits of shapes (B, 1) and (B', 1)",
    what="loss",
    reference=jax.jit(losses.discriminator_loss),
    cases=lambda: _logits_cases(two=True),
    shape_hint="the loss is one number, a scalar: the mean over each batch",
    finite_hint=_UNSTABLE,
    properties=(_never_negative("the discriminator's loss -V is a cross-entropy, never "
                                "negative"),),
    mistakes=(
        (lambda r, f: -_mean(_softplus(-r)) - _mean(_softplus(f)),
         "you returned V(D, G): the discriminator maximises V, so its loss is -V."),
        (lambda r, f: _mean(_softplus(r)) + _mean(_softplus(-f)),
         "real and fake are swapped: real examples take label 1 (D(x) -> 1), fakes 0."),
        (lambda r, f: np.sum(_softplus(-r)) + np.sum(_softplus(f)),
         "you summed over the batch: take the mean of each batch."),
        (lambda r, f: _mean(np.concatenate([_softplus(-r), _softplus(f)])),
         "you averaged both batches together: average each batch, then add the two."),
        (lambda r, f: _mean(_softplus(-r)),
         "the fakes' term -mean(log(1 - D(G(z)))) is missing."),
        (lambda r, f: _mean(_softplus(f)),
         "the real examples' term -mean(log D(x)) is missing."),
    ),
)

GENERATOR_LOSS = Exercise(
    signature="generator_loss(fake_logits) -> scalar: the non-saturating loss "
              "-mean(log D(G(z))) from logits of shape (B, 1)",
    what="loss",
    reference=jax.jit(losses.generator_loss),
    cases=lambda: _logits_cases(two=False),
    shape_hint="the loss is one number, a scalar: the mean over the batch",
    finite_hint=_UNSTABLE,
    properties=(_never_negative("the non-saturating loss -log D(G(z)) is never negative"),),
    mistakes=(
        (lambda f: -_mean(_softplus(f)),
         "this is the saturating (minimax) loss mean(log(1 - D(G(z)))), whose gradient "
         "vanishes where D rejects the fakes; write -mean(log D(G(z)))."),
        (lambda f: -_mean(_softplus(-f)),
         "a sign error: you returned mean(log D(G(z))); the generator minimises its "
         "negative."),
        (lambda f: _mean(_softplus(f)),
         "you returned -mean(log(1 - D(G(z)))): the non-saturating loss is "
         "-mean(log D(G(z)))."),
        (lambda f: np.sum(_softplus(-f)),
         "you summed over the batch: take the mean."),
    ),
)


# WGAN-GP gradient penalty ------------------------------------------------------------


def _linear_critic(direction):
    direction = jnp.asarray(direction)

    def critic(x):
        return jnp.sum(jnp.reshape(x, (x.shape[0], -1)) * direction.ravel(), axis=1)
    return critic


def _square_critic(x):
    return 0.5 * jnp.sum(jnp.reshape(x, (x.shape[0], -1)) ** 2, axis=1)


def _tanh_critic(weights):
    weights = jnp.asarray(weights)

    def critic(x):
        return jnp.sum(jnp.tanh(jnp.reshape(x, (x.shape[0], -1)) @ weights), axis=1)
    return critic


def _interpolate(real, fake, eps):
    return eps * real + (1.0 - eps) * fake


def _penalty_reference(critic_fn, real, fake, eps):
    # With real = fake = x_hat the package's interpolation is x_hat for any draw.
    at_points = jax.jit(lambda x_hat: losses.gradient_penalty(critic_fn, x_hat, x_hat, seed=0))
    return at_points(_interpolate(real, fake, eps))


def _gradients(critic_fn, points):
    return np.asarray(jax.grad(lambda x: jnp.sum(critic_fn(x)))(jnp.asarray(points)),
                      "float64")


def _norms(grads):
    return np.sqrt(np.sum(grads.reshape(len(grads), -1) ** 2, axis=1))


def _penalty_cases():
    rng = np.random.default_rng(26)
    names = ("critic_fn", "real", "fake", "eps")

    def eps_for(batch, ndim, value=None):
        shape = (batch,) + (1,) * (ndim - 1)
        return _f32(np.full(shape, value) if value is not None else rng.uniform(size=shape))

    unit = rng.normal(size=3)
    unit /= np.linalg.norm(unit)
    real, fake = _f32(rng.normal(size=(4, 3)) + 2), _f32(rng.normal(size=(4, 3)))
    images_real = _f32(rng.uniform(size=(3, 4, 4, 1)))
    images_fake = _f32(rng.uniform(size=(3, 4, 4, 1)))
    return [
        Case("a critic with gradient norm 1 everywhere", (_linear_critic(_f32(unit)), real,
             fake, eps_for(4, 2)), names,
             {"critic_fn": "critic_fn(x) = sum(u * x) with ||u|| = 1"}),
        Case("a critic with gradient norm 3 everywhere", (_linear_critic(_f32(3 * unit)),
             real, fake, eps_for(4, 2)), names,
             {"critic_fn": "critic_fn(x) = sum(u * x) with ||u|| = 3"}),
        Case("gradient = x_hat", (_square_critic, real, fake, eps_for(4, 2)), names,
             {"critic_fn": "critic_fn(x) = sum(x**2) / 2 (its gradient is x)"}),
        Case("eps = 1: x_hat is the real batch", (_square_critic, real, fake,
             eps_for(4, 2, 1.0)), names,
             {"critic_fn": "critic_fn(x) = sum(x**2) / 2 (its gradient is x)"}),
        Case("images (B, 4, 4, 1)", (_square_critic, images_real, images_fake,
             eps_for(3, 4)), names,
             {"critic_fn": "critic_fn(x) = sum(x**2) / 2 over each image (gradient x)"}),
        Case("a non-linear critic", (_tanh_critic(_f32(rng.normal(size=(3, 5)))), real,
             fake, eps_for(4, 2)), names,
             {"critic_fn": "critic_fn(x) = sum(tanh(x @ W))"}),
    ]


def _penalty_from(norm_fn, at=_interpolate):
    def wrong(critic_fn, real, fake, eps):
        return norm_fn(_gradients(critic_fn, at(real, fake, eps)))
    return wrong


GRADIENT_PENALTY = Exercise(
    signature="gradient_penalty(critic_fn, real, fake, eps) -> scalar: "
              "mean((||grad critic_fn(x_hat)|| - 1)**2) at x_hat = eps * real + "
              "(1 - eps) * fake; critic_fn maps (B, ...) to (B,), eps has shape "
              "(B, 1, ..., 1)",
    what="penalty",
    reference=_penalty_reference,
    cases=_penalty_cases,
    shape_hint="the penalty is one number, a scalar: the mean over the batch",
    finite_hint="take the gradient with jax.grad of sum(critic_fn(x)) at x_hat",
    properties=(lambda case, result: (
        f"your penalty is negative ({_number(result)}) for {_show_inputs(case)}: a mean "
        "of squares is never negative." if result < -1e-6 else None),),
    mistakes=(
        (_penalty_from(lambda g: np.mean((np.sum(g.reshape(len(g), -1) ** 2, 1) - 1) ** 2)),
         "you penalised the squared norm: the penalty is (||g|| - 1)**2 with "
         "||g|| = sqrt(sum(g**2))."),
        (_penalty_from(lambda g: np.mean(np.sum(g.reshape(len(g), -1) ** 2, 1))),
         "you penalised ||g||**2: the penalty pulls the norm towards 1, (||g|| - 1)**2."),
        (_penalty_from(lambda g: np.mean(_norms(g) - 1) ** 2),
         "you squared the mean: take the mean of the squares (||g|| - 1)**2."),
        (_penalty_from(lambda g: (np.sqrt(np.sum(g ** 2)) - 1) ** 2),
         "you took one norm over the whole batch: take one norm per example, "
         "over every axis but the first."),
        (_penalty_from(lambda g: np.mean((np.sqrt(np.sum(g ** 2, axis=-1)) - 1) ** 2)),
         "you took the norm over the last axis only: an example's norm runs over "
         "every axis but the first (all pixels of an image)."),
        (_penalty_from(lambda g: np.mean((_norms(g) - 1) ** 2),
                       at=lambda real, fake, eps: eps * fake + (1 - eps) * real),
         "real and fake are swapped in the interpolation: x_hat = eps * real + "
         "(1 - eps) * fake."),
        (_penalty_from(lambda g: np.mean((_norms(g) - 1) ** 2),
                       at=lambda real, fake, eps: real),
         "you took the gradient at the real examples: take it at x_hat."),
        (_penalty_from(lambda g: np.mean(np.maximum(_norms(g) - 1, 0) ** 2)),
         "you used the one-sided penalty max(0, ||g|| - 1)**2; WGAN-GP penalises "
         "both sides, (||g|| - 1)**2."),
    ),
)


# VAE ----------------------------------------------------------------------------------


def _gaussian_cases(with_noise):
    rng = np.random.default_rng(27)
    names = ("mean", "log_var", "noise") if with_noise else ("mean", "log_var")

    def case(label, mean, log_var):
        mean, log_var = _f32(mean), _f32(log_var)
        args = (mean, log_var)
        if with_noise:
            args += (_f32(rng.normal(size=mean.shape)),)
        return Case(label, args, names)

    cases = [
        case("the prior: mean 0, log_var 0", np.zeros((1, 3)), np.zeros((1, 3))),
        case("one unit mean", [[1.0]], [[0.0]]),
        case("variance 4", np.zeros((1, 2)), np.full((1, 2), math.log(4.0))),
        case("random mean and log_var", rng.normal(size=(4, 3)),
             rng.normal(scale=0.7, size=(4, 3))),
        case("small variances, sigma -> 0", rng.normal(size=(2, 3)), np.full((2, 3), -30.0)),
        case("a batch of 5, 8 latent dimensions", rng.normal(size=(5, 8)),
             rng.normal(scale=1.5, size=(5, 8))),
    ]
    if with_noise:
        cases[1] = case("one unit mean, log_var = -1", [[1.0, -2.0]], [[-1.0, -1.0]])
    return cases


def _kl_never_negative(case, result):
    negative = np.flatnonzero(result < -1e-6)
    if len(negative):
        return (f"your KL is negative ({result[negative[0]]:.4g}) for "
                f"{_show_inputs(case, int(negative[0]))}: a KL divergence is never negative.")
    return None


def _kl(mean, log_var, half=0.5, minus_one=1.0, sign=-1.0, reduce=np.sum, variance=np.exp):
    return half * reduce(variance(log_var) + mean**2 - minus_one + sign * log_var, axis=-1)


GAUSSIAN_KL = Exercise(
    signature="gaussian_kl(mean, log_var) -> (B,): KL(N(mean, diag exp(log_var)) || "
              "N(0, I)) of each example, from arrays of shape (B, D)",
    what="KL",
    reference=jax.jit(losses.kl_normal),
    cases=lambda: _gaussian_cases(with_noise=False),
    shape_hint="one KL per example, summed over the latent axis (axis=-1)",
    finite_hint="write the closed form with exp(log_var) and log_var directly",
    properties=(_kl_never_negative,),
    mistakes=(
        (lambda m, v: _kl(m, v, half=1.0),
         "you left out the factor 1/2: KL = 0.5 * sum(...)."),
        (lambda m, v: _kl(m, v, reduce=np.mean),
         "you averaged over the latent dimensions: the KL of independent dimensions "
         "is their sum."),
        (lambda m, v: _kl(m, v, minus_one=0.0),
         "the -1 is missing: the KL of N(0, I) to itself must be 0."),
        (lambda m, v: _kl(m, v, sign=1.0),
         "a sign error: the log-variance enters as -log_var."),
        (lambda m, v: _kl(m, v, variance=lambda x: x),
         "log_var is the log of the variance: the variance is exp(log_var)."),
    ),
    per_example=True,
)


def _sample_mistake(scale):
    return lambda mean, log_var, noise: mean + scale(log_var) * noise


REPARAMETERISED_SAMPLE = Exercise(
    signature="reparameterised_sample(mean, log_var, noise) -> z, the shape of mean: "
              "z = mean + sigma * noise for given standard-normal noise",
    what="sample",
    reference=jax.jit(vae.reparameterise),
    cases=lambda: _gaussian_cases(with_noise=True),
    shape_hint="z has the shape of mean: one code per example",
    finite_hint="the standard deviation is exp(log_var / 2), finite for any log_var",
    mistakes=(
        (_sample_mistake(np.exp),
         "you scaled the noise by the variance exp(log_var): scale it by the standard "
         "deviation exp(log_var / 2)."),
        (_sample_mistake(lambda v: v),
         "you scaled the noise by log_var itself: the standard deviation is "
         "exp(log_var / 2)."),
        (_sample_mistake(np.sqrt),
         "you took sqrt(log_var): log_var is a log-variance, the standard deviation is "
         "exp(log_var / 2)."),
        (_sample_mistake(lambda v: np.exp(-0.5 * v)),
         "a sign error: the standard deviation is exp(+log_var / 2)."),
        (lambda mean, log_var, noise: np.exp(0.5 * log_var) * noise,
         "the mean is missing: z = mean + sigma * noise."),
    ),
    per_example=True,
)


def _iwae_cases():
    rng = np.random.default_rng(28)
    names = ("log_weights",)
    return [
        Case("k = 1: the bound is the ELBO estimate log w",
             (_f32(rng.normal(size=(3, 1)) - 90),), names),
        Case("equal weights", (_f32(np.full((2, 4), -2.0)),), names),
        Case("one large weight among small ones", (_f32([[0.0, -8.0, -8.0, -8.0]]),), names),
        Case("random log-weights, 3 images, k = 5", (_f32(rng.normal(size=(3, 5))),), names),
        Case("log-weights near -1000 (whole images)", (_f32(rng.normal(size=(2, 6)) - 1000),),
             names),
    ]


def _iwae_between_elbo_and_max(case, result):
    log_weights = np.asarray(case.args[0], "float64")
    elbo, largest = log_weights.mean(axis=-1), log_weights.max(axis=-1)
    for row, value in enumerate(result):
        if value < elbo[row] - 1e-4:
            return (f"your bound {value:.4g} is below the ELBO estimate mean(log w) = "
                    f"{elbo[row]:.4g} for {_show_inputs(case, row)}: by Jensen's "
                    "inequality the log of an average of weights is at least the average "
                    "of their logs.")
        if value > largest[row] + 1e-4:
            return (f"your bound {value:.4g} is above the largest log-weight "
                    f"{largest[row]:.4g} for {_show_inputs(case, row)}: the log of an "
                    "average is at most the log of its largest term.")
    return None


IWAE_BOUND = Exercise(
    signature="iwae_bound(log_weights) -> (B,): log((1/k) sum_i exp(log_weights[:, i])) "
              "from an array of shape (B, k)",
    what="bound",
    reference=evaluation.importance_weighted_bound,
    cases=_iwae_cases,
    shape_hint="one bound per image: reduce over the last axis, the k samples",
    finite_hint="exp(log w) underflows to 0 for log-weights near -1000; use a "
                "logsumexp (subtract the largest log-weight before exp)",
    properties=(_iwae_between_elbo_and_max,),
    mistakes=(
        (lambda w: np.mean(w, axis=-1),
         "you averaged the log-weights: that is the ELBO estimate. Average the "
         "weights, then take the log: logsumexp(log w) - log k."),
        (lambda w: logsumexp(np.asarray(w, "float64"), axis=-1),
         "the 1/k is missing: subtract log k from the logsumexp."),
        (lambda w: logsumexp(np.asarray(w, "float64"), axis=-1) / w.shape[-1],
         "you divided the logsumexp by k: the 1/k is inside the log, so subtract "
         "log k."),
        (lambda w: np.max(w, axis=-1),
         "you took the largest log-weight: the bound averages all k weights."),
    ),
    per_example=True,
)


# Autoregressive models: the raster-causal mask ------------------------------------


def _mask_cases():
    names = ("height", "width")
    return [Case(label, size, names) for label, size in (
        ("a single pixel", (1, 1)),
        ("one row of 5 pixels", (1, 5)),
        ("one column of 4 pixels", (4, 1)),
        ("a 2 x 2 image", (2, 2)),
        ("a 3 x 4 image", (3, 4)),
        ("a 28 x 28 image", (28, 28)),
    )]


def _pixel(index, width):
    return f"pixel {index} (row {index // width}, column {index % width})"


def _judge_mask(exercise, case, got):
    height, width = case.args
    pixels = height * width
    inputs = f"height={height}, width={width}"
    result = _as_array(got)
    if result is None or got is None:
        return (f"your function returned {type(got).__name__} for {inputs}; return the "
                "mask (did you forget `return`?).")
    if result.shape != (pixels, pixels):
        return (f"your mask has shape {result.shape} but expected {(pixels, pixels)} for "
                f"{inputs}: one row and one column per pixel, height * width = {pixels}.")
    if not np.all((result == 0) | (result == 1)):
        return f"your mask has entries other than 0 and 1 for {inputs}."
    expected = np.asarray(rnn.raster_causal_mask(height, width), "float64")
    if np.array_equal(result, expected):
        return None
    if np.array_equal(result, expected.T):
        return (f"your mask is transposed for {inputs}: rows are the pixels read (i), "
                "columns the pixels predicted (j), so mask[i, j] = 1 when i < j "
                "(x @ (A * mask) is then causal).")
    diagonal = np.flatnonzero(np.diag(result))
    if len(diagonal):
        j = int(diagonal[0])
        return (f"your mask lets {_pixel(j, width)} read itself (mask[{j}, {j}] = 1) for "
                f"{inputs}: a pixel's logit must not see the pixel it predicts. "
                "The mask is strictly upper triangular (k=1 in np.triu).")
    if result[:, 0].any():
        i = int(np.flatnonzero(result[:, 0])[0])
        return (f"the first pixel must read nothing, but your mask lets it read "
                f"{_pixel(i, width)} (mask[{i}, 0] = 1) for {inputs}.")
    later = np.argwhere(np.tril(result, k=-1))
    if len(later):
        i, j = (int(v) for v in later[0])
        return (f"your mask lets {_pixel(j, width)} read {_pixel(i, width)}, which comes "
                f"after it in raster order (mask[{i}, {j}] = 1), for {inputs}.")
    i, j = (int(v) for v in np.argwhere(expected > result)[0])
    hint = (" The rows above count in full, also their pixels right of the current column."
            if i // width < j // width and i % width > j % width else
            " The pixels of the rows above count too." if i // width < j // width else "")
    return (f"your mask does not let {_pixel(j, width)} read {_pixel(i, width)}, which "
            f"comes before it in raster order (mask[{i}, {j}] = 0), for {inputs}.{hint}")


RASTER_CAUSAL_MASK = Exercise(
    signature="raster_causal_mask(height, width) -> (H*W, H*W) array of 0 and 1: "
              "mask[i, j] = 1 when pixel j may read pixel i, i.e. i comes before j in "
              "raster order",
    what="mask",
    reference=rnn.raster_causal_mask,
    cases=_mask_cases,
    shape_hint="one row and one column per pixel",
    judge=_judge_mask,
)


EXERCISES = {
    "discriminator_loss": DISCRIMINATOR_LOSS,
    "generator_loss": GENERATOR_LOSS,
    "gradient_penalty": GRADIENT_PENALTY,
    "reparameterised_sample": REPARAMETERISED_SAMPLE,
    "gaussian_kl": GAUSSIAN_KL,
    "iwae_bound": IWAE_BOUND,
    "raster_causal_mask": RASTER_CAUSAL_MASK,
}
"""The exercises by name: each an :class:`Exercise` with its signature."""
