"""FLOPs from XLA's cost analysis and the float32 matmul peak of ``jax.jit``."""

import time

import companion  # noqa: F401  (selects Keras' JAX backend before keras loads)
import jax
import jax.numpy as jnp

MATMUL_SIZES = (256, 512, 1024, 2048)
"""Matrix sides of the full run's peak measurement."""


def xla_flops(compiled):
    """FLOPs of one call of a compiled JAX function, from XLA's cost analysis.

    Args:
        compiled: the result of ``jax.jit(f).lower(*args).compile()``.

    Returns:
        float, or None when the backend gives no cost analysis.

    Example:

    >>> a = jnp.ones((8, 4))
    >>> xla_flops(jax.jit(jnp.dot).lower(a, a.T).compile())  # 2 * 8 * 4 * 8
    512.0
    """
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):  # older JAX: one dict per device
        analysis = analysis[0] if analysis else None
    if not analysis or "flops" not in analysis:
        return None
    return float(analysis["flops"])


def best_time(function, repeats):
    """Best of `repeats` wall times of `function()` (which blocks until done)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(sizes=MATMUL_SIZES, repeats=7):
    """Measure float32 ``n x n @ n x n`` throughput through ``jax.jit``.

    Each size is compiled once, run once to warm up, then timed `repeats`
    times; the best time counts (other processes only ever add time).

    Args:
        sizes: matrix sides n.
        repeats: timed calls a size.

    Returns:
        dict: ``sizes`` (a list of ``{"n", "seconds", "gflops",
        "xla_flops"}``) and ``peak_gflops`` (the best of them).
    """
    rows = []
    for n in sizes:
        a = jax.random.normal(jax.random.PRNGKey(0), (n, n), "float32")
        b = jax.random.normal(jax.random.PRNGKey(1), (n, n), "float32")
        compiled = jax.jit(jnp.matmul).lower(a, b).compile()
        compiled(a, b).block_until_ready()
        seconds = best_time(lambda: compiled(a, b).block_until_ready(), repeats)
        flops = 2.0 * n**3
        rows.append({"n": n, "seconds": seconds, "gflops": flops / seconds / 1e9,
                     "xla_flops": xla_flops(compiled)})
    return {"sizes": rows, "peak_gflops": max(r["gflops"] for r in rows),
            "repeats": repeats}
