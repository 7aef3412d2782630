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
PASSES = ("first", "again")
"""The two runs of the book: on an empty cache (a fresh machine), then reading it."""


def book_notebooks():
    from tools import notebooks

    return [p.relative_to(ROOT) for p in notebooks.all_notebooks()]


def chapter_of(path):
    """The chapter folder of a notebook path, for example ``"02_gan"``."""
    return pathlib.Path(path).parent.name


def copy_book(destination):
    """Copy `book/` (without build outputs) into `destination`; return the new root."""
    shutil.copytree(ROOT / "book", destination / "book",
                    ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
    return destination


def execute_notebook(path, cache_root, jax_cache=True):
    """Execute one notebook in a fresh process (tools/notebooks.py) in place.

    Args:
        path: the notebook (a copy: its stored outputs are overwritten).
        cache_root: the folder ``$COMPANION_CACHE_DIR`` names for the run: the
            reference classifier is cached there and, unless `jax_cache` is
            False, JAX's compiled programs in its ``jax/`` subfolder, exactly as
            the bootstrap cell's ``use_book_defaults()`` arranges on a reader's
            machine.
        jax_cache: False runs with JAX's persistent cache turned off
            (``COMPANION_JAX_CACHE=0``).

    Returns:
        dict: ``seconds`` (wall time, kernel start included), ``peak_mib``
        (the kernel's peak resident memory), ``ok`` and ``load_before``.
    """
    from tools import notebooks

    env = dict(os.environ, KERAS_BACKEND="jax", PYDEVD_DISABLE_FILE_VALIDATION="1",
               COMPANION_CACHE_DIR=str(cache_root),
               COMPANION_JAX_CACHE="1" if jax_cache else "0")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.pop("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", None)
    result = {"load_before": load_average()}
    start = time.perf_counter()
    child = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "notebooks.py"), "_execute_one", str(path)],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    result.update(seconds=time.perf_counter() - start,
                  peak_mib=notebooks._peak_mib(child.stdout), ok=child.returncode == 0)
    if child.returncode:
        result["error"] = child.stderr[-1500:]
    return result


def time_notebooks(paths, cache_notebook=None):
    """Execute copies of the notebooks, all of them twice; time the compilation cache.

    The first pass runs as on a fresh machine: an empty cache folder, shared
    by the notebooks one after another (a program one notebook compiled, or
    the reference classifier it trained, a later one reads). The second pass
    runs them all again on the filled cache, as a reader's second run does.

    Args:
        paths: notebook paths relative to the repository root.
        cache_notebook: one of `paths` to run three more times, with the
            reference classifier cached: with JAX's cache turned off, filling
            an empty one, and reading it; or None.

    Returns:
        dict: ``notebooks`` (one row each: ``notebook``, ``chapter`` and a
        result of :func:`execute_notebook` for each of :data:`PASSES`),
        ``total_seconds`` and ``max_peak_mib`` (each a dict by pass) and,
        with `cache_notebook`, ``compilation_cache``.
    """
    rows = [{"notebook": str(p), "chapter": chapter_of(p)} for p in paths]
    with tempfile.TemporaryDirectory(prefix="benchmark-book-") as folder:
        folder = pathlib.Path(folder)
        copy = copy_book(folder)
        for name in PASSES:
            for row in rows:
                row[name] = execute_notebook(copy / row["notebook"], folder / "cache")
                print(f"  {name}: {row['notebook']}: {row[name]['seconds']:.1f} s, "
                      f"{row[name]['peak_mib']:.0f} MiB"
                      f"{'' if row[name]['ok'] else ' FAILED'}", flush=True)
        result = {"notebooks": rows,
                  "total_seconds": {n: sum(r[n]["seconds"] for r in rows) for n in PASSES},
                  "max_peak_mib": {n: max((r[n]["peak_mib"] for r in rows), default=None)
                                   for n in PASSES}}
        if cache_notebook is not None:
            result["compilation_cache"] = _cache_experiment(
                copy / cache_notebook, folder / "cache", folder / "cache-experiment")
            result["compilation_cache"]["notebook"] = str(cache_notebook)
    return result


def _cache_experiment(notebook, book_cache, cache_root):
    """One notebook without JAX's cache, filling an empty one, then reading it."""
    # The reference classifier comes along, JAX's compiled programs do not.
    shutil.copytree(book_cache, cache_root, ignore=shutil.ignore_patterns("jax"))
    without = execute_notebook(notebook, cache_root, jax_cache=False)
    cold = execute_notebook(notebook, cache_root)
    warm = execute_notebook(notebook, cache_root)
    jax_folder = cache_root / "jax"
    return {
        "no_cache_seconds": without["seconds"],
        "cold_cache_seconds": cold["seconds"],
        "warm_cache_seconds": warm["seconds"],
        "cache_mib": sum(f.stat().st_size for f in jax_folder.rglob("*")
                         if f.is_file()) / 2**20 if jax_folder.exists() else 0.0,
        "ok": without["ok"] and cold["ok"] and warm["ok"],
        "load_after": load_average(),
    }
