"""The benchmark results as JSON and as the Markdown the Performance page includes."""

import json
import pathlib

FIT_RAW_TARGET = 0.95
"""fit's throughput should reach this fraction of the raw jitted loop's."""
SAMPLES = 1000
"""Samples drawn to time sampling."""
NOTEBOOK_SECONDS, NOTEBOOK_GIB, BOOK_SECONDS, RNN_SAMPLE_SECONDS = 90, 3.0, 10 * 60, 5.0
"""Targets: a notebook's wall time and memory, the whole book's time, the RNN's sampling."""


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
