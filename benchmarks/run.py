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

This module only parses flags and runs the measurements in order; each
concern is a module of its own, importable and tested in quick mode:

- :mod:`benchmarks.machine`: the machine and its load;
- :mod:`benchmarks.flops`: XLA's FLOP counts and the matmul peak;
- :mod:`benchmarks.throughput`: ``fit`` against the raw jitted loop, sampling;
- :mod:`benchmarks.notebooks`: executing the notebooks, the compilation cache;
- :mod:`benchmarks.report`: the JSON and Markdown results.
"""

import argparse
import datetime
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/run.py` as well as `-m`
    sys.path.insert(0, str(ROOT))

from benchmarks import flops, machine, report, throughput  # noqa: E402
from benchmarks import notebooks as notebooks_lib  # noqa: E402
from companion import models  # noqa: E402

FAMILIES = models.FAMILIES
RESULTS_JSON = ROOT / "benchmarks" / "results.json"
RESULTS_MARKDOWN = ROOT / "book" / "appendix" / "performance_results.md"
TIMES_FOLDER = ROOT / "book" / "appendix" / "times"
"""The time-to-run tables the chapter index pages and the Performance page include."""
QUICK_DIR = ROOT / "benchmarks" / "out"
FULL_MATMUL = (flops.MATMUL_SIZES, 7)
"""Matrix sides and timed calls of the matmul peak in a full run."""
QUICK_MATMUL = ((64, 128), 2)
"""The same in quick mode."""


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
    sizes, repeats = QUICK_MATMUL if quick else FULL_MATMUL
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC"), "quick": quick,
        "load_start": machine.load_average(), "machine": machine.machine()}
    print("matmul peak ...", flush=True)
    results["matmul"] = flops.matmul_peak(sizes, repeats)
    peak = results["matmul"]["peak_gflops"]
    print(f"  {peak:.1f} GFLOP/s", flush=True)
    results["families"] = []
    investigate = (not quick) if investigate is None else investigate
    for name in families:
        print(f"{name} ...", flush=True)
        row = throughput.benchmark_family(name, quick=quick, peak_gflops=peak)
        if investigate and row["fit_over_raw"] < report.FIT_RAW_TARGET:
            steps = (throughput.QUICK if quick else throughput.FULL)["spe"]
            row["steps_per_execution_trial"] = throughput.steps_per_execution_trial(
                name, quick=quick, steps=steps)
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
        results["notebooks"] = notebooks_lib.time_notebooks(
            paths, pathlib.Path(cache_notebook) if cache_notebook else None)
    results["load_end"] = machine.load_average()
    return results


def _select_notebooks(notebooks, quick):
    if notebooks == "default":
        notebooks = "none" if quick else "all"
    if notebooks == "none":
        return []
    if notebooks == "all":
        return notebooks_lib.book_notebooks()
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
    parser.add_argument("--times", help="folder for the time-to-run tables (default: "
                        "book/appendix/times, benchmarks/out/times with --quick)")
    args = parser.parse_args(argv)
    if args.from_json:
        results = json.loads(pathlib.Path(args.from_json).read_text())
        markdown_path = pathlib.Path(args.markdown or RESULTS_MARKDOWN)
        report.write_markdown(results, markdown_path, args.times or TIMES_FOLDER)
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
    times = args.times or (folder / "times" if folder else TIMES_FOLDER)
    report.write_results(results, json_path, markdown_path, times)
    print(f"wrote {json_path} and {markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
