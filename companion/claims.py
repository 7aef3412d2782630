"""Checks for the book's hidden claim cells: results of training, within a tolerance.

A figure that comes out of a training run (a loss, a likelihood, a Fréchet
distance, a classifier's score of samples) depends on the order in which the
CPU adds numbers up, and that order changes with the processor and with the
number of threads. A run amplifies the difference: the same notebook gives
95.9 nats on one machine and 96.0 on another, run after run. So the book
compares such figures with the value stored when the notebook was executed,
within a tolerance measured for their kind, and keeps their printed digits out
of nbval's exact comparison (the cell tag ``nbval-ignore-output``). Shapes,
counts, data statistics and analytic checks are compared digit for digit.

The tolerances (`TOLERANCES`) were set from the spread measured between the
stored outputs and a run of every notebook under another thread layout
(``taskset -c 0``); see CONTRIBUTING.md, "Results of training".

A maintainer who changes a result on purpose re-records the stored values:
``python3 tasks.py execute --record NOTEBOOK`` runs the notebook with
``COMPANION_RECORD_CLAIMS`` set, so :func:`reproduces` writes each figure to
that file instead of checking it, and rewrites the ``stored=`` literals.
"""

import json
import math
import os

from companion._validation import check_choice

# kind: (relative, absolute) tolerance; a figure passes when
# |value - stored| <= max(relative * |stored|, absolute). Each comment gives the
# largest change measured between the stored run (two threads) and a run under
# `taskset -c 0` (one thread, the reference classifier retrained) on the same
# machine: first over every notebook before the checks existed, then by
# `python3 tasks.py layout` over the 181 checks of the book.
TOLERANCES = {
    # Likelihoods, ELBOs and the training losses of likelihood models, in nats
    # per image or per pixel (measured: 0.6 %, then 0.5 %). A GAN's losses are
    # not likelihoods: they moved 6 % and are checked as "other".
    "nats": (0.02, 0.0),
    # Fréchet distances between classifier features (measured: 5 % for VAEs and
    # LSTMs, 18 % for a simple RNN's samples, 28 % for the DCGAN's, whose short
    # adversarial run amplifies every difference; then 12 %).
    "frechet": (0.5, 2.0),
    # Scores in [0, 1]: classifier confidences, label entropies, accuracies,
    # fractions (measured: 0.03, then 0.028, then 0.055 against the final stored
    # values: a GAN's or a simple RNN's label entropy is the least stable).
    "score": (0.0, 0.1),
    # Counts of a run: active latent dimensions, modes found (measured: 1, then
    # 2 of 30 active dimensions).
    "count": (0.15, 2.0),
    # Other results of a run: ratios, norms, KL terms, standard deviations,
    # adversarial losses (measured: 11 %, then 6 %).
    "other": (0.25, 0.001),
}

RECORD_VARIABLE = "COMPANION_RECORD_CLAIMS"
# When set, every check also appends what it compared to this file (one JSON
# object a line): `python3 tasks.py layout` reports the spread from it.
LOG_VARIABLE = "COMPANION_CLAIMS_LOG"


def tolerance(kind, stored):
    """The largest difference from `stored` that `kind` allows.

    >>> tolerance("nats", 96.0)
    1.92
    >>> tolerance("score", 0.9)
    0.1
    """
    relative, absolute = TOLERANCES[check_choice("kind", kind, tuple(TOLERANCES))]
    return max(relative * abs(stored), absolute)


def reproduces(name, value, stored, kind):
    """Check that a result of training `value` is within its kind's tolerance of `stored`.

    Args:
        name: what the figure is, unique in its notebook (e.g. ``"LSTM test NLL"``).
        value: the figure this run computed.
        stored: the figure when the notebook was executed and committed.
        kind: a key of `TOLERANCES`.

    Raises:
        AssertionError: naming the figure, both values and the tolerance, when
            they differ by more than the tolerance.

    Example:

    >>> reproduces("test NLL", 96.0, stored=95.9, kind="nats")
    >>> reproduces("test NLL", 110.0, stored=95.9, kind="nats")
    Traceback (most recent call last):
    ...
    AssertionError: test NLL is 110 here and 95.9 in the stored run: they differ by 14.1, more than the tolerance 1.918 for 'nats' (2% or 0). If the change is meant, re-record the notebook (python3 tasks.py execute --record NOTEBOOK).
    """
    value = float(value)
    path = os.environ.get(RECORD_VARIABLE)
    if path:
        with open(path, "a") as record:
            record.write(json.dumps({"name": name, "value": value}) + "\n")
        return
    if stored is None:
        raise AssertionError(f"{name} has no stored value: record the notebook "
                             "(python3 tasks.py execute --record NOTEBOOK).")
    allowed = tolerance(kind, stored)
    difference = abs(value - float(stored))
    _log(name=name, kind=kind, value=value, stored=float(stored), allowed=allowed)
    if not math.isfinite(value) or difference > allowed:
        relative, absolute = TOLERANCES[kind]
        raise AssertionError(
            f"{name} is {value:.4g} here and {stored:.4g} in the stored run: they differ "
            f"by {difference:.3g}, more than the tolerance {allowed:.4g} for {kind!r} "
            f"({relative:.0%} or {absolute:g}). If the change is meant, re-record the "
            "notebook (python3 tasks.py execute --record NOTEBOOK)."
        )


def _log(**entry):
    path = os.environ.get(LOG_VARIABLE)
    if path:
        with open(path, "a") as log:
            log.write(json.dumps(entry) + "\n")


def spread(log_path):
    """The largest change of each kind in a log of checks, as report lines.

    Each line gives the kind, the number of checks, the largest relative change
    (``|value - stored| / |stored|``) with its figure, and the largest change as a
    fraction of the tolerance.
    """
    entries = [json.loads(line) for line in open(log_path) if line.strip()]
    lines = []
    for kind in TOLERANCES:
        rows = [e for e in entries if e["kind"] == kind]
        if not rows:
            continue
        def relative(e):
            return abs(e["value"] - e["stored"]) / abs(e["stored"]) if e["stored"] else 0.0
        worst = max(rows, key=relative)
        def share(e):
            return abs(e["value"] - e["stored"]) / e["allowed"] if e["allowed"] else 0.0
        closest = max(rows, key=share)
        lines.append(f"{kind:8s} {len(rows):4d} checks; largest relative change "
                     f"{relative(worst):.1%} ({worst['name']}: {worst['stored']:.4g} -> "
                     f"{worst['value']:.4g}); largest share of the tolerance "
                     f"{share(closest):.0%} ({closest['name']})")
    return lines


def stored_literal(value):
    """How a recorded figure is written into a claim cell: four significant digits.

    >>> stored_literal(95.93417), stored_literal(0.0123456), stored_literal(1234567.0)
    ('95.93', '0.01235', '1.235e+06')
    """
    return f"{value:.4g}"
