"""Wall time and peak memory of executing the book's notebooks, and the compilation cache."""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from benchmarks.machine import load_average

ROOT = pathlib.Path(__file__).resolve().parents[1]


def book_notebooks():
    from tools import notebooks

    return [p.relative_to(ROOT) for p in notebooks.all_notebooks()]


def copy_book(destination):
    """Copy `book/` (without build outputs) into `destination`; return the new root."""
    shutil.copytree(ROOT / "book", destination / "book",
                    ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
    return destination


def execute_notebook(path, cache_dir=None):
    """Execute one notebook in a fresh process (tools/notebooks.py) in place.

    Args:
        path: the notebook (a copy: its stored outputs are overwritten).
        cache_dir: a folder for JAX's persistent compilation cache, or None
            to run with the cache turned off (``COMPANION_JAX_CACHE=0``).

    Returns:
        dict: ``seconds`` (wall time, kernel start included), ``peak_mib``
        (the kernel's peak resident memory) and ``ok``.
    """
    from tools import notebooks

    env = dict(os.environ, KERAS_BACKEND="jax", PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if cache_dir is None:
        env["COMPANION_JAX_CACHE"] = "0"
    else:
        env["COMPANION_JAX_CACHE"] = "1"
        env["JAX_COMPILATION_CACHE_DIR"] = str(cache_dir)
        # Cache every program, not only those that took over 1 s to compile.
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    start = time.perf_counter()
    child = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "notebooks.py"), "_execute_one", str(path)],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "peak_mib": notebooks._peak_mib(child.stdout),
              "ok": child.returncode == 0}
    if child.returncode:
        result["error"] = child.stderr[-1500:]
    return result


def time_notebooks(paths, cache_notebook=None):
    """Execute copies of the notebooks one by one; time the compilation cache.

    The notebooks run as on a fresh machine with the package's defaults: JAX's
    persistent compilation cache on, starting empty, shared by the notebooks of
    the run (a program one notebook compiled, a later one reads).

    Args:
        paths: notebook paths relative to the repository root.
        cache_notebook: one of `paths` to run three more times: with the cache
            turned off, filling an empty cache, and with that cache warm; or None.

    Returns:
        dict: ``notebooks`` (one row each), ``total_seconds``, ``max_peak_mib``
        and, with `cache_notebook`, ``compilation_cache``.
    """
    rows = []
    with tempfile.TemporaryDirectory(prefix="benchmark-book-") as folder:
        copy = copy_book(pathlib.Path(folder))
        book_cache = pathlib.Path(folder) / "jax-cache-book"
        for path in paths:
            row = {"notebook": str(path), "load_before": load_average()}
            row.update(execute_notebook(copy / path, cache_dir=book_cache))
            rows.append(row)
            print(f"  {path}: {row['seconds']:.1f} s, {row['peak_mib']:.0f} MiB"
                  f"{'' if row['ok'] else ' FAILED'}", flush=True)
        result = {"notebooks": rows,
                  "total_seconds": sum(r["seconds"] for r in rows),
                  "max_peak_mib": max((r["peak_mib"] for r in rows), default=None)}
        if cache_notebook is not None:
            cache = pathlib.Path(folder) / "jax-cache"
            without = execute_notebook(copy / cache_notebook, cache_dir=None)
            cold = execute_notebook(copy / cache_notebook, cache_dir=cache)
            warm = execute_notebook(copy / cache_notebook, cache_dir=cache)
            result["compilation_cache"] = {
                "notebook": str(cache_notebook),
                "no_cache_seconds": without["seconds"],
                "cold_cache_seconds": cold["seconds"],
                "warm_cache_seconds": warm["seconds"],
                "cache_mib": sum(f.stat().st_size for f in cache.rglob("*")
                                 if f.is_file()) / 2**20 if cache.exists() else 0.0,
                "ok": without["ok"] and cold["ok"] and warm["ok"],
                "load_after": load_average(),
            }
    return result
