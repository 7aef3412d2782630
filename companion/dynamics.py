"""Training dynamics of adversarial games, and mode coverage on the 2-D ring.

Two small, exactly analysable tools for the analysis chapter:

- **The bilinear game** ``min_x max_y V(x, y) = x * y``. Its only equilibrium
  is ``(0, 0)``. :func:`bilinear_trajectory` plays it with simultaneous,
  alternating or extragradient updates; each update is a linear map whose
  effect on the distance to the equilibrium has a closed form
  (:func:`bilinear_growth_factor`): simultaneous gradient play spirals *out*,
  alternating updates circle for ever, extragradient (Korpelevich 1976)
  spirals *in* for step sizes below 1 (Gidel et al. 2019 analyse these
  methods on bilinear games; Mescheder et al. 2018 the local dynamics of
  GAN training).
- **Mode coverage** of a generator trained on
  :func:`companion.data.ring_of_gaussians`: :func:`assign_modes`,
  :func:`modes_covered` and :func:`high_quality_fraction` follow the
  protocol of Srivastava et al. (2017, VEEGAN) and Metz et al. (2017): a
  sample is *high quality* if it lies within three standard deviations of
  a centre, and a mode is *covered* if enough high-quality samples fall on it.
  :class:`ModeCoverage` records both after every epoch of ``fit``.

Example:

>>> trajectory = bilinear_trajectory("simultaneous", steps=10, learning_rate=0.1)
>>> trajectory.shape
(11, 2)
"""

import numpy as np

from companion._validation import check_choice, check_int
from companion.training import EveryEpochs

METHODS = ("simultaneous", "alternating", "extragradient")


# The bilinear game ---------------------------------------------------------------


def bilinear_step(x, y, method, learning_rate):
    """One update of both players on ``V(x, y) = x * y`` (x minimises, y maximises).

    Formula:

    ```
    grad_x f = y,   grad_y f = x
    simultaneous:  x' = x - lr * y,          y' = y + lr * x
    alternating:   x' = x - lr * y,          y' = y + lr * x'
    extragradient: look ahead (x~, y~) = simultaneous step from (x, y), then
                   x' = x - lr * y~,         y' = y + lr * x~
    ```

    Args:
        x: the minimising player's parameter (float or numpy array).
        y: the maximising player's parameter.
        method: ``"simultaneous"``, ``"alternating"`` or ``"extragradient"``.
        learning_rate: the step size of both players, > 0.

    Returns:
        ``(x', y')``.

    Raises:
        ValueError: for an unknown `method` or a non-positive `learning_rate`.

    Example:

    >>> bilinear_step(1.0, 0.0, "simultaneous", 0.5)
    (1.0, 0.5)
    """
    check_choice("method", method, METHODS)
    lr = _check_learning_rate(learning_rate)
    if method == "simultaneous":
        return x - lr * y, y + lr * x
    if method == "alternating":
        x_new = x - lr * y
        return x_new, y + lr * x_new
    x_ahead, y_ahead = x - lr * y, y + lr * x
    return x - lr * y_ahead, y + lr * x_ahead


def bilinear_trajectory(method, steps=100, learning_rate=0.1, start=(1.0, 1.0)):
    """Play the bilinear game for `steps` updates from `start`.

    Args:
        method: ``"simultaneous"``, ``"alternating"`` or ``"extragradient"``.
        steps: number of updates (>= 1).
        learning_rate: step size, > 0.
        start: the initial ``(x, y)``.

    Returns:
        float64 numpy array `(steps + 1, 2)`: the start, then ``(x, y)`` after
        each update.

    Example:

    >>> bilinear_trajectory("alternating", steps=2, learning_rate=1.0).tolist()
    [[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]]
    """
    steps = check_int("steps", steps)
    x, y = (float(v) for v in start)
    points = [(x, y)]
    for _ in range(steps):
        x, y = bilinear_step(x, y, method, learning_rate)
        points.append((x, y))
    return np.asarray(points, dtype="float64")


def distance_to_equilibrium(trajectory):
    """Euclidean distance of each point of a trajectory to ``(0, 0)``, `(T,)`."""
    trajectory = np.asarray(trajectory, dtype="float64")
    if trajectory.ndim != 2 or trajectory.shape[1] != 2:
        raise ValueError(f"`trajectory` must have shape (T, 2); got {trajectory.shape}.")
    return np.linalg.norm(trajectory, axis=1)


def bilinear_growth_factor(method, learning_rate):
    """How much one update multiplies the distance to the equilibrium.

    Simultaneous and extragradient updates are a scaled rotation, so the
    factor is exact for every step:

    Formula:

    ```
    simultaneous:  sqrt(1 + lr^2)               > 1: spirals out
    extragradient: sqrt(1 - lr^2 + lr^4)        < 1 for 0 < lr < 1: spirals in;
                                                = 1 at lr = 1, > 1 beyond
    alternating:   1 (on average; the map has determinant 1 and, for lr < 2,
                   complex eigenvalues of modulus 1: it circles, neither
                   diverging nor converging)
    ```

    Args:
        method: ``"simultaneous"``, ``"alternating"`` or ``"extragradient"``.
        learning_rate: step size, > 0.

    Returns:
        A float.

    Example:

    >>> round(bilinear_growth_factor("simultaneous", 0.1), 6)
    1.004988
    """
    check_choice("method", method, METHODS)
    lr = _check_learning_rate(learning_rate)
    if method == "simultaneous":
        return float(np.sqrt(1.0 + lr ** 2))
    if method == "extragradient":
        return float(np.sqrt(1.0 - lr ** 2 + lr ** 4))
    return float(np.max(np.abs(np.linalg.eigvals(bilinear_matrix(method, lr)))))


def bilinear_matrix(method, learning_rate):
    """The 2x2 matrix ``A`` with ``(x', y') = A (x, y)`` for one update."""
    check_choice("method", method, METHODS)
    lr = _check_learning_rate(learning_rate)
    columns = [bilinear_step(1.0, 0.0, method, lr), bilinear_step(0.0, 1.0, method, lr)]
    return np.asarray(columns, dtype="float64").T


def _check_learning_rate(learning_rate):
    if not (isinstance(learning_rate, (int, float, np.floating)) and learning_rate > 0):
        raise ValueError(f"`learning_rate` must be a number > 0; got {learning_rate!r}.")
    return float(learning_rate)


# Mode coverage on the ring -------------------------------------------------------


def assign_modes(points, centres, std, num_std=3.0):
    """Index of the centre each point is within `num_std` standard deviations of.

    Args:
        points: `(N, 2)` samples.
        centres: `(K, 2)` mode centres (:func:`companion.data.ring_centres`).
        std: the standard deviation of each mode, > 0.
        num_std: how many standard deviations count as "on" a mode; None
            assigns every point to its nearest centre (its Voronoi cell).

    Returns:
        int numpy array `(N,)`: the nearest centre's index, or -1 for a point
        farther than ``num_std * std`` from every centre (a low-quality sample).

    Raises:
        ValueError: for mismatched shapes or a non-positive `std`.

    Example:

    >>> centres = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> assign_modes(np.array([[0.01, 0.0], [0.5, 0.0]]), centres, std=0.02).tolist()
    [0, -1]
    """
    points, centres = _check_points(points, centres)
    if not std > 0 or not (num_std is None or num_std > 0):
        raise ValueError(f"`std` and `num_std` must be > 0; got {std!r}, {num_std!r}.")
    distances = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=-1)
    nearest = np.argmin(distances, axis=1)
    if num_std is None:
        return nearest
    close = distances[np.arange(len(points)), nearest] <= num_std * std
    return np.where(close, nearest, -1)


def modes_covered(points, centres, std, num_std=3.0, min_fraction=None):
    """Number of modes that received a fair share of high-quality samples.

    A mode counts as covered if at least ``min_fraction`` of *all* samples
    land within ``num_std * std`` of it (with ``num_std=None``: closer to it
    than to any other centre, which measures which modes the generator
    *reaches*, however imprecisely). The default threshold is a quarter
    of the fair share, ``1 / (4 K)`` for K modes: a perfect generator covers
    every mode with near certainty, a collapsed one covers few.

    Args:
        points: `(N, 2)` samples.
        centres: `(K, 2)` mode centres.
        std: the standard deviation of each mode.
        num_std: radius of a mode, in standard deviations, or None for the
            nearest-centre rule.
        min_fraction: fraction of samples a mode needs; default ``1 / (4 K)``.

    Returns:
        An int between 0 and K.

    Example:

    >>> from companion import data
    >>> points, _ = data.ring_of_gaussians(2000, std=0.02)
    >>> modes_covered(points, data.ring_centres(), std=0.02)
    8
    """
    points, centres = _check_points(points, centres)
    if min_fraction is None:
        min_fraction = 1.0 / (4 * len(centres))
    modes = assign_modes(points, centres, std, num_std)
    counts = np.bincount(modes[modes >= 0], minlength=len(centres))
    return int(np.sum(counts >= min_fraction * len(points)))


def high_quality_fraction(points, centres, std, num_std=3.0):
    """Fraction of samples within `num_std` standard deviations of some centre.

    Example:

    >>> from companion import data
    >>> points, _ = data.ring_of_gaussians(2000, std=0.02)
    >>> high_quality_fraction(points, data.ring_centres(), std=0.02) > 0.98
    True
    """
    return float(np.mean(assign_modes(points, centres, std, num_std) >= 0))


def _check_points(points, centres):
    points = np.asarray(points, dtype="float64")
    centres = np.asarray(centres, dtype="float64")
    if points.ndim != 2 or centres.ndim != 2 or points.shape[1] != centres.shape[1]:
        raise ValueError(
            f"`points` (N, D) and `centres` (K, D) must agree in D; got "
            f"{points.shape} and {centres.shape}."
        )
    if len(points) < 1 or len(centres) < 1:
        raise ValueError("`points` and `centres` must not be empty.")
    return points, centres


class ModeCoverage(EveryEpochs):
    """Record a 2-D GAN's mode coverage after every `every` epochs of ``fit``.

    At each record the model draws `num` samples with a fixed `seed`
    (``model.generate``) and the callback stores :func:`modes_covered` and
    :func:`high_quality_fraction`, and the samples themselves.

    Args:
        centres: `(K, 2)` mode centres.
        std: the modes' standard deviation.
        num: samples drawn at each record.
        seed: seed of those samples.
        every: record every `every` epochs (and before training).

    Attributes:
        epochs: the epoch of each record (0 = before training).
        covered: modes covered within three standard deviations.
        reached: modes covered under the nearest-centre rule.
        quality: the high-quality fraction.
        samples: the `(num, 2)` samples.

    Example:

    >>> from companion import data
    >>> recorder = ModeCoverage(data.ring_centres(), std=0.02)
    >>> recorder.covered
    []
    """

    def __init__(self, centres, std, num=1000, seed=0, every=1):
        super().__init__(every)
        self.centres = np.asarray(centres, dtype="float64")
        self.std = float(std)
        self.num = check_int("num", num)
        self.seed = seed
        self.covered, self.reached, self.quality, self.samples = [], [], [], []

    def record(self, epoch):
        points = np.asarray(self.model.generate(self.num, seed=self.seed))
        self.covered.append(modes_covered(points, self.centres, self.std))
        self.reached.append(modes_covered(points, self.centres, self.std, num_std=None))
        self.quality.append(high_quality_fraction(points, self.centres, self.std))
        self.samples.append(points)
