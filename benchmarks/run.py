"""Benchmarks of the book: training throughput, FLOP/s, sampling and notebook time.

    python -m benchmarks.run            # full run: writes benchmarks/results.json
                                        # and book/appendix/performance_results.md
    python -m benchmarks.run --quick    # a minute's smoke run into benchmarks/out/

One run on one machine measures

- the float32 matmul peak of ``jax.jit`` (several sizes, best of N);
- for the GAN, the VAE and the row RNN as the book configures them
  (``make_model()``, ``BOOK_CONFIG["batch_size"]``, the 9,000 training
  mnist10k digits): ``fit`` throughput in images/s after the first epoch, the same
  training step in a raw ``jax.jit`` loop (the model's own stateless
  ``train_step`` on its state tuple, data on the device) and the ratio
  fit / raw; each step's FLOPs from XLA's cost analysis, hence its
  achieved FLOP/s against the matmul peak; the time to draw 1,000 samples;
- the wall time and peak memory of executing every notebook (copies in a
  temporary folder: the repository is not touched), and the effect of JAX's
  persistent compilation cache on one notebook, cold against warm;
- the machine (CPU, cores, memory, versions) and its load average, since
  numbers taken on a shared machine are slower than the machine is.

The logic lives in importable functions (``matmul_peak``, ``benchmark_family``,
``time_notebooks``, ``to_markdown``...), so a test runs the quick mode.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/run.py` as well as `-m`
    sys.path.insert(0, str(ROOT))

import companion  # noqa: E402  (selects Keras' JAX backend before keras loads)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

FAMILIES = ("gan", "vae", "rnn")
RESULTS_JSON = ROOT / "benchmarks" / "results.json"
RESULTS_MARKDOWN = ROOT / "book" / "appendix" / "performance_results.md"
QUICK_DIR = ROOT / "benchmarks" / "out"
FIT_RAW_TARGET = 0.95
SAMPLES = 1000
NOTEBOOK_SECONDS, NOTEBOOK_GIB, BOOK_SECONDS, RNN_SAMPLE_SECONDS = 90, 3.0, 10 * 60, 5.0

# Quick mode: tiny versions of the book's models (same code, a few channels).
TINY_KWARGS = {
    "gan": {"width": 4, "latent_dim": 8},
    "vae": {"width": 4, "latent_dim": 2},
    "rnn": {"units": 8},
}

FULL = {"matmul_sizes": (256, 512, 1024, 2048), "matmul_repeats": 7,
        "images": None, "rounds": 5, "spe": 16}
QUICK = {"matmul_sizes": (64, 128), "matmul_repeats": 2,
         "images": 128, "rounds": 1, "spe": 2}


# The machine -------------------------------------------------------------------------


def load_average():
    """The 1, 5 and 15-minute load averages (runnable processes, all cores)."""
    return [round(x, 2) for x in os.getloadavg()]


def machine():
    """Describe the machine: CPU model, cores, memory, OS and library versions."""
    from companion import environment

    info = environment.describe()
    cpu = platform.processor() or platform.machine()
    flags = set()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in ("", platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    memory = None
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    info.update({
        "cpu": cpu,
        "simd": [f for f in ("avx2", "avx512f", "fma") if f in flags],
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": memory,
        "os": platform.platform(),
        "numpy": np.__version__,
    })
    return info


# FLOPs and the matmul peak ----------------------------------------------------------


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


def matmul_peak(sizes=FULL["matmul_sizes"], repeats=7):
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


# Training: fit against a raw jitted loop ----------------------------------------------


def family_module(name):
    import importlib

    return importlib.import_module(f"companion.models.{name}")


def training_images(name, limit=None):
    """The book's training digits in the family's value range (first `limit`)."""
    images, _ = companion.data.load("mnist10k", "train",
                                    value_range=family_module(name).VALUE_RANGE)
    return images[:limit] if limit else images


def count_parameters(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def _synchronising_timer():
    """An `EpochTimer` that waits for the epoch's last step before stopping the clock.

    JAX dispatches asynchronously: without waiting, an epoch could end on the
    clock before its last steps have run (the raw loop waits the same way).
    """
    from companion.training import EpochTimer

    class SynchronisingEpochTimer(EpochTimer):
        def on_epoch_end(self, epoch, logs=None):
            jax.block_until_ready([v.value for v in self.model.variables])
            super().on_epoch_end(epoch, logs)

    return SynchronisingEpochTimer()


def fit_epoch(model, images, batch_size, timer):
    """Train one epoch with ``fit`` (shuffled); `timer` records its wall time."""
    model.fit(images, batch_size=batch_size, epochs=1, shuffle=True, verbose=0,
              callbacks=[timer])
    return timer.seconds[-1]


def model_state(model, first_batch):
    """The state tuple ``fit`` threads through ``train_step`` on JAX.

    ``(trainable, non_trainable, optimizer, metrics)`` variable values, in
    the order Keras' JAX trainer uses; builds what ``fit`` would build first.
    """
    model._symbolic_build(data_batch=first_batch)  # as fit does before step 1
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return ([v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in model.optimizer.variables],
            [v.value for v in model.metrics_variables])


class RawLoop:
    """The model's own ``train_step`` in a hand-written ``jax.jit`` loop.

    The computation is exactly ``fit``'s: the same stateless ``train_step``
    (model, loss, optimiser, metric updates) on the same batches, one jitted
    call a batch with the state donated, as Keras' JAX trainer does. What is
    left out is everything around the step: shuffling, slicing and copying
    each batch to the device, callbacks and Python bookkeeping. The data is
    put on the device once.

    Args:
        model: a compiled model, not yet trained.
        images: numpy training data.
        batch_size: batch size (the last batch may be smaller, as in ``fit``).

    Attributes:
        compile_seconds: wall time of the first epoch (mostly compilation).
        flops_per_step: FLOPs of one full-batch step, from XLA's cost analysis.
    """

    def __init__(self, model, images, batch_size):
        self.batches = [jax.device_put(images[i:i + batch_size])
                        for i in range(0, len(images), batch_size)]
        self.state = model_state(model, images[:batch_size])
        self.step = jax.jit(model.train_step, donate_argnums=0)
        start = time.perf_counter()
        compiled = {}
        for batch in self.batches:
            if batch.shape not in compiled:  # `self.step` reuses this compilation
                compiled[batch.shape] = self.step.lower(self.state, batch).compile()
            _, self.state = self.step(self.state, batch)
        jax.block_until_ready(self.state)
        self.compile_seconds = time.perf_counter() - start
        self.flops_per_step = xla_flops(compiled[self.batches[0].shape])

    def epoch(self):
        """Run one epoch; return its wall time in seconds."""
        start = time.perf_counter()
        for batch in self.batches:
            _, self.state = self.step(self.state, batch)
        jax.block_until_ready(self.state)
        return time.perf_counter() - start


def compare_fit_and_raw(module, kwargs, images, batch_size, rounds):
    """Time `rounds` epochs of ``fit`` and of the raw loop, interleaved.

    Each round runs one ``fit`` epoch then one raw epoch, so a change in the
    machine's load hits both alike. The first (compiling) epoch of each is
    run before and not timed.

    Returns:
        ``(fit_model, fit_seconds, raw_loop)``: fit_seconds includes the
        first epoch at index 0.
    """
    fit_model = module.make_model(seed=0, **kwargs)
    timer = _synchronising_timer()
    fit_epoch(fit_model, images, batch_size, timer)
    raw = RawLoop(module.make_model(seed=0, **kwargs), images, batch_size)
    raw.seconds = []
    for _ in range(rounds):
        fit_epoch(fit_model, images, batch_size, timer)
        raw.seconds.append(raw.epoch())
    return fit_model, list(timer.seconds), raw


def time_sampling(model, num=SAMPLES):
    """Seconds to draw `num` samples: the first call (with compilation) and the next."""
    start = time.perf_counter()
    first = np.asarray(model.sample(num, seed=0))
    first_seconds = time.perf_counter() - start
    start = time.perf_counter()
    np.asarray(model.sample(num, seed=1))
    seconds = time.perf_counter() - start
    return {"num": num, "seconds": seconds, "first_call_seconds": first_seconds,
            "shape": list(first.shape)}


def benchmark_family(name, quick=False, peak_gflops=None, sample=True):
    """Measure one family: fit vs raw throughput, FLOP/s, sampling speed.

    Args:
        name: ``"gan"``, ``"vae"`` or ``"rnn"``.
        quick: tiny models on 128 images (the smoke mode the tests run).
        peak_gflops: the matmul peak, for the achieved fraction.
        sample: also time drawing 1,000 samples.

    Returns:
        A dict of the measurements (see the keys written to the JSON file).
    """
    settings = QUICK if quick else FULL
    module = family_module(name)
    kwargs = TINY_KWARGS[name] if quick else {}
    batch_size = module.BOOK_CONFIG["batch_size"]
    images = training_images(name, settings["images"])
    result = {"family": name, "batch_size": batch_size, "images": len(images),
              "model_kwargs": kwargs, "load_before": load_average()}

    fit_model, fit_seconds, raw = compare_fit_and_raw(
        module, kwargs, images, batch_size, settings["rounds"])
    result["parameters"] = count_parameters(fit_model)
    timed_fit = fit_seconds[1:]
    fit_best, raw_best = min(timed_fit), min(raw.seconds)
    steps = -(-len(images) // batch_size)
    result.update({
        "fit_epoch_seconds": fit_seconds,
        "raw_epoch_seconds": raw.seconds,
        "fit_first_epoch_seconds": fit_seconds[0],
        "raw_compile_seconds": raw.compile_seconds,
        "fit_images_per_second": len(images) / fit_best,
        "fit_images_per_second_median": len(images) / statistics.median(timed_fit),
        "raw_images_per_second": len(images) / raw_best,
        "raw_images_per_second_median": len(images) / statistics.median(raw.seconds),
        "fit_over_raw": raw_best / fit_best,
        "steps_per_epoch": steps,
        "flops_per_step": raw.flops_per_step,
    })
    if raw.flops_per_step:
        achieved = raw.flops_per_step * steps / raw_best / 1e9
        result["raw_gflops"] = achieved
        if peak_gflops:
            result["fraction_of_peak"] = achieved / peak_gflops
    if sample:
        result["sampling"] = time_sampling(fit_model)
    result["load_after"] = load_average()
    return result


def steps_per_execution_trial(name, quick=False, steps=16):
    """fit throughput with ``steps_per_execution=steps`` (an investigation)."""
    settings = QUICK if quick else FULL
    module = family_module(name)
    model = module.make_model(seed=0, **(TINY_KWARGS[name] if quick else {}))
    model.steps_per_execution = steps
    model.train_function = None
    images = training_images(name, settings["images"])
    batch_size = module.BOOK_CONFIG["batch_size"]
    timer = _synchronising_timer()
    for _ in range(1 + settings["rounds"]):
        fit_epoch(model, images, batch_size, timer)
    seconds = list(timer.seconds)
    return {"steps_per_execution": steps, "epoch_seconds": seconds,
            "images_per_second": len(images) / min(seconds[1:])}


# Notebooks ---------------------------------------------------------------------------


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


# Writers -----------------------------------------------------------------------------


def _fmt(value, digits=3):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def fit_overhead_ms(row):
    """Milliseconds a step that fit's best epoch took beyond the raw loop's."""
    images = row["images"]
    extra = images / row["fit_images_per_second"] - images / row["raw_images_per_second"]
    return 1e3 * extra / row["steps_per_epoch"]


def _mark(ok):
    return "yes" if ok else "**no**"


def to_markdown(results):
    """Render the results as the Markdown the Performance page includes."""
    m = results["machine"]
    lines = [
        f"Measured {results['date']} with `python -m benchmarks.run"
        f"{' --quick' if results['quick'] else ''}`"
        f"{' (quick smoke mode: tiny models, not the book)' if results['quick'] else ''}.",
        "",
        f"- **Machine**: {m['cpu']} ({', '.join(m['simd']) or 'no AVX'}), "
        f"{m['usable_cores']} usable of {m['logical_cores']} logical cores, "
        f"{m['memory_gib']} GiB memory; {m['os']}.",
        f"- **Software**: Python {m['python']}, JAX {m['jax']} on "
        f"{', '.join(m['devices'])} ({m['device_kind']}), Keras {m['keras']} "
        f"({m['backend']} backend), NumPy {m['numpy']}, companion {m['companion']}.",
        f"- **Load average** (1, 5, 15 min) at the start: {results['load_start']}; at "
        f"the end: {results['load_end']}. A load above the core count means other "
        "processes shared the CPU and every time below is longer than the machine's.",
        f"- **No GPU** was available for this run: CPU figures only.",
        "",
    ]
    peak = results["matmul"]
    lines += [
        "**float32 matmul through `jax.jit`** (best of "
        f"{peak['repeats']}): "
        + ", ".join(f"{r['n']}²: {_fmt(r['gflops'])} GFLOP/s" for r in peak["sizes"])
        + f". Peak: **{_fmt(peak['peak_gflops'])} GFLOP/s**.",
        "",
    ]
    if results["families"]:
        lines += [
            "| family | parameters | batch | fit images/s | raw images/s | fit / raw "
            f"(target ≥ {FIT_RAW_TARGET}) | fit's extra ms a step | GFLOP a step "
            "| raw GFLOP/s | of matmul peak |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["families"]:
            ratio = r["fit_over_raw"]
            lines.append(
                f"| {r['family']} | {r['parameters']:,} | {r['batch_size']} | "
                f"{_fmt(r['fit_images_per_second'])} | "
                f"{_fmt(r['raw_images_per_second'])} | {ratio:.3f} "
                f"({_mark(ratio >= FIT_RAW_TARGET)}) | {_fmt(fit_overhead_ms(r), 2)} | "
                f"{_fmt((r['flops_per_step'] or 0) / 1e9)} | "
                f"{_fmt(r.get('raw_gflops'))} | "
                f"{_fmt(100 * r['fraction_of_peak'], 2) + ' %' if r.get('fraction_of_peak') else 'n/a'} |")
        lines += [
            "",
            "Throughputs are the best epoch after the first (compiling) one, over "
            f"{results['families'][0]['images']} images an epoch; the medians are in "
            "`benchmarks/results.json`.",
            "",
        ]
        trials = [r for r in results["families"] if r.get("steps_per_execution_trial")]
        for r in trials:
            t = r["steps_per_execution_trial"]
            lines.append(
                f"- {r['family']}: with `steps_per_execution={t['steps_per_execution']}` "
                f"fit reaches {_fmt(t['images_per_second'])} images/s "
                f"({t['images_per_second'] / r['raw_images_per_second']:.3f} of raw).")
        if trials:
            lines.append("")
        sampled = [r for r in results["families"] if r.get("sampling")]
        if sampled:
            lines += [
                f"| family | draw {SAMPLES:,} samples (s) | first call, with compilation (s) |",
                "|---|---:|---:|",
            ]
            for r in sampled:
                s = r["sampling"]
                target = (f" ({_mark(s['seconds'] <= RNN_SAMPLE_SECONDS)}, target "
                          f"≤ {RNN_SAMPLE_SECONDS:g} s)" if r["family"] == "rnn" else "")
                lines.append(f"| {r['family']} | {_fmt(s['seconds'])}{target} | "
                             f"{_fmt(s['first_call_seconds'])} |")
            lines.append("")
    book = results.get("notebooks")
    if book and book["notebooks"]:
        lines += [
            f"| notebook | wall time (s, target ≤ {NOTEBOOK_SECONDS}) | "
            f"peak memory (MiB, target ≤ {NOTEBOOK_GIB * 1024:.0f}) | load before |",
            "|---|---:|---:|---|",
        ]
        for r in book["notebooks"]:
            status = "" if r["ok"] else " **FAILED**"
            lines.append(
                f"| `{r['notebook']}`{status} | {r['seconds']:.1f} "
                f"({_mark(r['seconds'] <= NOTEBOOK_SECONDS)}) | {r['peak_mib']:.0f} "
                f"({_mark(r['peak_mib'] <= NOTEBOOK_GIB * 1024)}) | "
                f"{r['load_before'][0]} |")
        total = book["total_seconds"]
        lines += [
            f"| **total** | **{total:.0f}** ({total / 60:.1f} min, target ≤ "
            f"{BOOK_SECONDS // 60} min: {_mark(total <= BOOK_SECONDS)}) | | |",
            "",
        ]
        cache = book.get("compilation_cache")
        if cache:
            lines += [
                f"**JAX persistent compilation cache** on `{cache['notebook']}`: "
                f"{_fmt(cache['no_cache_seconds'])} s without a cache, "
                f"{_fmt(cache['cold_cache_seconds'])} s filling an empty one, "
                f"{_fmt(cache['warm_cache_seconds'])} s with it warm "
                f"({_fmt(cache['cache_mib'])} MiB of cache).",
                "",
            ]
    return "\n".join(lines)


def write_results(results, json_path, markdown_path):
    json_path, markdown_path = pathlib.Path(json_path), pathlib.Path(markdown_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1, default=float) + "\n")
    markdown_path.write_text(to_markdown(results) + "\n")


# Command line ------------------------------------------------------------------------


def run(quick=False, families=FAMILIES, notebooks="default", cache_notebook="default",
        investigate=None):
    """Run every benchmark and return the results dict (nothing is written).

    Args:
        quick: tiny models, few steps, small matmuls, no notebooks by default.
        families: which model families to benchmark.
        notebooks: ``"default"`` (all in a full run, none in quick mode),
            ``"all"``, ``"none"`` or a list of notebook paths.
        cache_notebook: the notebook for the compilation-cache experiment:
            ``"default"`` (the DCGAN notebook if present), None to skip, or a path.
        investigate: also time fit with ``steps_per_execution`` > 1 for
            families under the fit / raw target (default: in full runs).
    """
    settings = QUICK if quick else FULL
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC"), "quick": quick, "load_start": load_average(),
        "machine": machine()}
    print("matmul peak ...", flush=True)
    results["matmul"] = matmul_peak(settings["matmul_sizes"], settings["matmul_repeats"])
    peak = results["matmul"]["peak_gflops"]
    print(f"  {peak:.1f} GFLOP/s", flush=True)
    results["families"] = []
    investigate = (not quick) if investigate is None else investigate
    for name in families:
        print(f"{name} ...", flush=True)
        row = benchmark_family(name, quick=quick, peak_gflops=peak)
        if investigate and row["fit_over_raw"] < FIT_RAW_TARGET:
            row["steps_per_execution_trial"] = steps_per_execution_trial(
                name, quick=quick, steps=settings["spe"])
        results["families"].append(row)
        print(f"  fit {row['fit_images_per_second']:.0f} img/s, raw "
              f"{row['raw_images_per_second']:.0f} img/s, fit/raw "
              f"{row['fit_over_raw']:.3f}", flush=True)
    paths = _select_notebooks(notebooks, quick)
    if paths:
        if cache_notebook == "default":
            dcgan = pathlib.Path("book/02_gan/dcgan.ipynb")
            cache_notebook = dcgan if dcgan in paths else paths[0]
        print(f"{len(paths)} notebooks ...", flush=True)
        results["notebooks"] = time_notebooks(
            paths, pathlib.Path(cache_notebook) if cache_notebook else None)
    results["load_end"] = load_average()
    return results


def _select_notebooks(notebooks, quick):
    if notebooks == "default":
        notebooks = "none" if quick else "all"
    if notebooks == "none":
        return []
    if notebooks == "all":
        return book_notebooks()
    return [pathlib.Path(p) for p in notebooks]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny models and few steps: a smoke run (no notebooks)")
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=FAMILIES)
    parser.add_argument("--notebooks", nargs="+", default=["default"],
                        help="'all', 'none' or notebook paths (default: all in a full "
                             "run, none with --quick)")
    parser.add_argument("--cache-notebook", default="default",
                        help="notebook for the compilation-cache experiment, or 'none'")
    parser.add_argument("--json", help="output JSON file")
    parser.add_argument("--from-json", metavar="PATH",
                        help="measure nothing: rewrite the Markdown from a results file")
    parser.add_argument("--markdown", help="output Markdown table")
    args = parser.parse_args(argv)
    if args.from_json:
        results = json.loads(pathlib.Path(args.from_json).read_text())
        markdown_path = pathlib.Path(args.markdown or RESULTS_MARKDOWN)
        markdown_path.write_text(to_markdown(results) + "\n")
        print(f"wrote {markdown_path}")
        return 0
    notebooks = args.notebooks[0] if args.notebooks in (
        ["default"], ["all"], ["none"]) else args.notebooks
    cache = None if args.cache_notebook == "none" else args.cache_notebook
    results = run(quick=args.quick, families=args.families, notebooks=notebooks,
                  cache_notebook=cache)
    folder = QUICK_DIR if args.quick else None
    json_path = args.json or (folder / "results.json" if folder else RESULTS_JSON)
    markdown_path = args.markdown or (folder / "results.md" if folder else RESULTS_MARKDOWN)
    write_results(results, json_path, markdown_path)
    print(f"wrote {json_path} and {markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
