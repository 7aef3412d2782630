"""The formulas and quantitative claims of the summary page, checked numerically.

`book/07_summary/index.md` states, without a notebook, the change-of-variables
formula of a normalising flow, the solution of its affine-flow exercise, the
triangular Jacobian of a coupling layer, the marginal of the diffusion forward
process and the upward bias of the Fréchet distance for small samples. The intro
promises that every equation of the book is checked by code; these tests are that
check for the summary page.
"""

import math

import companion  # noqa: F401  (selects the JAX backend first)
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from companion import evaluation


def _standard_normal_logpdf(z):
    return -0.5 * jnp.sum(z ** 2, axis=-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def _flow_log_density(inverse, x):
    """log p(x) = log p(psi^{-1}(x)) + log |det d psi^{-1}(x) / dx|, one point x."""
    z = inverse(x)
    jacobian = jax.jacfwd(inverse)(x)
    return _standard_normal_logpdf(z) + jnp.linalg.slogdet(jacobian)[1]


# Normalising flows --------------------------------------------------------------------


@pytest.mark.parametrize("a, b", [(2.0, 1.0), (-0.5, 3.0), (0.1, -2.0)])
def test_affine_flow_is_the_gaussian_of_the_exercise(a, b):
    """x = a z + b with z ~ N(0, 1) has log-density log N(x; b, a^2) (exercise)."""
    xs = np.linspace(-6.0, 6.0, 25)
    inverse = lambda x: (x - b) / a  # noqa: E731
    by_formula = [float(_flow_log_density(inverse, jnp.array([x]))) for x in xs]
    solution = [-0.5 * math.log(2 * math.pi) - 0.5 * ((x - b) / a) ** 2 - math.log(abs(a))
                for x in xs]
    np.testing.assert_allclose(by_formula, stats.norm(b, abs(a)).logpdf(xs), rtol=1e-5)
    np.testing.assert_allclose(solution, stats.norm(b, abs(a)).logpdf(xs), rtol=1e-12)


def _coupling(x):
    """An affine coupling layer on R^2: y1 = x1, y2 = x2 exp(s(x1)) + t(x1)."""
    scale, shift = jnp.tanh(x[0]), jnp.sin(2.0 * x[0])
    return jnp.array([x[0], x[1] * jnp.exp(scale) + shift])


def _coupling_inverse(y):
    scale, shift = jnp.tanh(y[0]), jnp.sin(2.0 * y[0])
    return jnp.array([y[0], (y[1] - shift) * jnp.exp(-scale)])


def test_coupling_layer_has_a_triangular_jacobian_with_a_cheap_determinant():
    """Coupling layers make the Jacobian triangular: log|det| is the sum of the scales."""
    for x in [jnp.array([0.3, -1.2]), jnp.array([-2.0, 0.5])]:
        jacobian = jax.jacfwd(_coupling)(x)
        assert float(jacobian[0, 1]) == 0.0
        assert float(jnp.linalg.slogdet(jacobian)[1]) == pytest.approx(
            float(jnp.tanh(x[0])), rel=1e-6)
        np.testing.assert_allclose(_coupling_inverse(_coupling(x)), x, atol=1e-6)


def test_change_of_variables_gives_a_normalised_density():
    """The change-of-variables density of a coupling flow integrates to 1."""
    grid = np.linspace(-9.0, 9.0, 361)
    points = jnp.stack(jnp.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    log_p = jax.vmap(lambda x: _flow_log_density(_coupling_inverse, x))(points)
    density = np.exp(np.asarray(log_p, "float64")).reshape(len(grid), len(grid))
    mass = integrate.trapezoid(integrate.trapezoid(density, grid, axis=1), grid)
    assert mass == pytest.approx(1.0, abs=2e-3)


def test_flow_log_density_matches_samples():
    """Samples x = psi(z) have the density the formula gives (a histogram check)."""
    z = np.random.default_rng(0).standard_normal((200_000, 2)).astype("float32")
    x = np.asarray(jax.vmap(_coupling)(jnp.asarray(z)))
    # Probability of the box [0, 1] x [0, 1]: Monte Carlo against the integral of p.
    in_box = np.mean((x[:, 0] > 0) & (x[:, 0] < 1) & (x[:, 1] > 0) & (x[:, 1] < 1))
    grid = np.linspace(0.0, 1.0, 101)
    points = jnp.stack(jnp.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    density = np.exp(np.asarray(
        jax.vmap(lambda p: _flow_log_density(_coupling_inverse, p))(points), "float64"))
    box = integrate.trapezoid(integrate.trapezoid(
        density.reshape(len(grid), len(grid)), grid, axis=1), grid)
    assert in_box == pytest.approx(box, abs=4 * math.sqrt(box * (1 - box) / len(z)))


# Diffusion ----------------------------------------------------------------------------


def test_diffusion_forward_marginal():
    """x_t = sqrt(1 - delta_t) x_{t-1} + sqrt(delta_t) eps_t has, given x_0, the marginal
    N(sqrt(lambda_t) x_0, (1 - lambda_t) I) with lambda_t = prod_{s <= t} (1 - delta_s)."""
    steps = 200
    deltas = np.linspace(1e-4, 0.02, steps)  # the linear schedule of Ho et al., shortened
    lambdas = np.cumprod(1.0 - deltas)
    rng = np.random.default_rng(0)
    x0 = 1.5
    x = np.full(100_000, x0)
    for t in range(steps):
        x = np.sqrt(1.0 - deltas[t]) * x + np.sqrt(deltas[t]) * rng.standard_normal(x.shape)
        if t in (0, 49, 199):
            mean, var = math.sqrt(lambdas[t]) * x0, 1.0 - lambdas[t]
            stderr = math.sqrt(var / x.size)
            assert x.mean() == pytest.approx(mean, abs=5 * stderr)
            assert x.var() == pytest.approx(var, rel=0.03)
    # With a long enough schedule the end of the chain forgets x_0: lambda_T -> 0.
    long = np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000))
    assert long[-1] < 1e-4


def test_diffusion_forward_marginal_exact_moments():
    """The same marginal by exact propagation of mean and variance, step by step."""
    deltas = np.linspace(1e-4, 0.02, 1000)
    mean, var = 1.0, 0.0
    for delta in deltas:
        mean, var = math.sqrt(1 - delta) * mean, (1 - delta) * var + delta
    lam = float(np.prod(1.0 - deltas))
    assert mean == pytest.approx(math.sqrt(lam), rel=1e-9)
    assert var == pytest.approx(1.0 - lam, rel=1e-9)


# Evaluation ---------------------------------------------------------------------------


def test_frechet_distance_is_biased_upwards_for_small_samples():
    """Two samples of the *same* Gaussian: the estimated distance shrinks as n grows."""
    rng = np.random.default_rng(0)
    dim = 16

    def mean_distance(n, repeats=5):
        return np.mean([evaluation._frechet_from_features(rng.standard_normal((n, dim)),
                                                          rng.standard_normal((n, dim)))
                        for _ in range(repeats)])

    small, medium, large = mean_distance(100), mean_distance(1_000), mean_distance(10_000)
    assert small > medium > large > 0.0
    assert small > 5 * large
