"""The benchmark results as JSON and as the Markdown the Performance page includes."""

import json
import pathlib

FIT_RAW_TARGET = 0.95
"""fit's throughput should reach this fraction of the raw jitted loop's."""
SAMPLES = 1000
"""Samples drawn to time sampling."""
NOTEBOOK_SECONDS, NOTEBOOK_GIB, BOOK_SECONDS, SAMPLE_SECONDS = 90, 3.0, 10 * 60, 0.2
"""Targets: a notebook's wall time and memory, the whole book's time, and drawing
1,000 samples of any family after compilation."""


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
            "`benchmarks/results.json`. A fit / raw above 1 (a negative extra time) "
            "means fit's best epoch happened to be faster than the raw loop's: the "
            "two differ by less than the run-to-run variation.",
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
                f"| family | draw {SAMPLES:,} samples (s, target ≤ {SAMPLE_SECONDS:g}) | "
                "first call, with compilation (s) |",
                "|---|---:|---:|",
            ]
            for r in sampled:
                s = r["sampling"]
                lines.append(f"| {r['family']} | {_fmt(s['seconds'])} "
                             f"({_mark(s['seconds'] <= SAMPLE_SECONDS)}) | "
                             f"{_fmt(s['first_call_seconds'])} |")
            lines.append("")
    book = results.get("notebooks")
    if book and book["notebooks"]:
        lines += notebook_table(book)
        cache = book.get("compilation_cache")
        if cache:
            lines += [
                f"**JAX persistent compilation cache** on `{cache['notebook']}` (the "
                "reference classifier already cached): "
                f"{_fmt(cache['no_cache_seconds'])} s without a cache, "
                f"{_fmt(cache['cold_cache_seconds'])} s filling an empty one, "
                f"{_fmt(cache['warm_cache_seconds'])} s with it warm "
                f"({_fmt(cache['cache_mib'])} MiB of cache).",
                "",
            ]
    return "\n".join(lines)


def _seconds(value):
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def notebook_table(book):
    """Markdown lines: every notebook's first and second run, memory and load."""
    lines = [
        f"| notebook | first run (s, target ≤ {NOTEBOOK_SECONDS}) | again (s) | "
        f"peak memory (MiB, target ≤ {NOTEBOOK_GIB * 1024:.0f}) | load before |",
        "|---|---:|---:|---:|---|",
    ]
    for r in book["notebooks"]:
        first, again = r["first"], r["again"]
        status = "" if first["ok"] and again["ok"] else " **FAILED**"
        peak = max(first["peak_mib"], again["peak_mib"])
        lines.append(
            f"| `{r['notebook']}`{status} | {first['seconds']:.1f} "
            f"({_mark(first['seconds'] <= NOTEBOOK_SECONDS)}) | {again['seconds']:.1f} "
            f"({_mark(again['seconds'] <= NOTEBOOK_SECONDS)}) | {peak:.0f} "
            f"({_mark(peak <= NOTEBOOK_GIB * 1024)}) | "
            f"{first['load_before'][0]}, {again['load_before'][0]} |")
    first, again = book["total_seconds"]["first"], book["total_seconds"]["again"]
    lines += [
        f"| **total** | **{first:.0f}** ({first / 60:.1f} min, target ≤ "
        f"{BOOK_SECONDS // 60} min: {_mark(first <= BOOK_SECONDS)}) | **{again:.0f}** "
        f"({again / 60:.1f} min) | | |",
        "",
        "*First run*: the cache folder starts empty, as on a fresh machine (JAX compiles "
        "every program, and the first notebook that uses the reference classifier "
        "trains it). *Again*: the same notebooks run a second time on the filled "
        "cache. The load columns are the 1-minute load average before each run.",
        "",
    ]
    return lines


def _measured_on(results):
    m = results["machine"]
    return (f"Measured {results['date'][:10]} with `python -m benchmarks.run` on "
            f"{m['usable_cores']} CPU cores, the whole book in reading order, each "
            "notebook top to bottom in a fresh kernel. *First run*: on a fresh "
            "machine, where JAX compiles the notebook's programs; *again*: a second "
            "run, which reads them from the compilation cache that the first cell "
            "turns on. The reference classifier that scores samples is trained once, in "
            "the first run of the first chapter's data notebook, and loaded by later "
            "notebooks; one that needs it and runs first on a fresh machine trains it "
            "itself, which adds to its first run. On a Colab GPU these notebooks have not been measured yet. The "
            "{doc}`../appendix/performance` appendix says how to make them faster.")


def _by_chapter(book):
    """The notebook rows of `book` grouped by chapter folder, in reading order."""
    chapters = {}
    for r in book["notebooks"]:
        chapters.setdefault(r["chapter"], []).append(r)
    return chapters


def chapter_times(results):
    """Each chapter's time-to-run table, as Markdown its index page includes.

    Returns:
        dict: chapter folder (``"02_gan"``) to Markdown; notebooks are linked
        with ``{doc}`` relative to the chapter's folder.
    """
    cores = results["machine"]["usable_cores"]
    tables = {}
    for chapter, rows in _by_chapter(results["notebooks"]).items():
        lines = [f"| Notebook | CPU, {cores} cores: first run | again |",
                 "|---|---:|---:|"]
        for r in rows:
            lines.append(f"| {{doc}}`{pathlib.Path(r['notebook']).stem}` | "
                         f"{_seconds(r['first']['seconds'])} | "
                         f"{_seconds(r['again']['seconds'])} |")
        tables[chapter] = "\n".join(lines + ["", _measured_on(results)]) + "\n"
    return tables


def book_times(results):
    """The whole book's time to run, notebook by notebook, for the Performance page."""
    book = results["notebooks"]
    cores = results["machine"]["usable_cores"]
    lines = [f"| Chapter (total: first run / again) | Notebook | CPU, {cores} cores: "
             "first run | again |",
             "|---|---|---:|---:|"]
    for chapter, rows in _by_chapter(book).items():
        first = sum(r["first"]["seconds"] for r in rows)
        again = sum(r["again"]["seconds"] for r in rows)
        for i, r in enumerate(rows):
            cell = f"{{doc}}`../{chapter}/index` ({first:.0f} / {again:.0f} s)" if i == 0 else ""
            lines.append(f"| {cell} | {{doc}}`../{chapter}/{pathlib.Path(r['notebook']).stem}` | "
                         f"{_seconds(r['first']['seconds'])} | "
                         f"{_seconds(r['again']['seconds'])} |")
    total, peak = book["total_seconds"], max(book["max_peak_mib"].values())
    lines += [
        "",
        f"The whole book took **{total['first']:.0f} s** on a first run and "
        f"**{total['again']:.0f} s** on a second, one notebook after another, and no "
        f"notebook needed more than {peak / 1024:.1f} GiB. Budgets (the book at most "
        f"{BOOK_SECONDS // 60} minutes, each notebook at most {NOTEBOOK_SECONDS} s and "
        f"{NOTEBOOK_GIB:g} GiB): " + "; ".join(
            f"{label}: " + ("missed, " + ", ".join(misses) if misses else "all met")
            for label, misses in (("a first run", budget_misses(book, "first")),
                                  ("a second run", budget_misses(book, "again"))))
        + f". Measured {results['date'][:10]} with `python -m benchmarks.run`.",
    ]
    return "\n".join(lines) + "\n"


def budget_misses(book, name):
    """What a pass (``"first"`` or ``"again"``) of the notebooks missed, in words."""
    misses = [f"`{r['notebook']}` took {r[name]['seconds']:.0f} s"
              for r in book["notebooks"] if r[name]["seconds"] > NOTEBOOK_SECONDS]
    misses += [f"`{r['notebook']}` needed {r[name]['peak_mib'] / 1024:.1f} GiB"
               for r in book["notebooks"] if r[name]["peak_mib"] > NOTEBOOK_GIB * 1024]
    if book["total_seconds"][name] > BOOK_SECONDS:
        misses.append(f"the book took {book['total_seconds'][name] / 60:.1f} minutes")
    return misses


def write_results(results, json_path, markdown_path, times_folder=None):
    """Write the raw results as JSON, then :func:`write_markdown`."""
    json_path = pathlib.Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1, default=float) + "\n")
    write_markdown(results, markdown_path, times_folder)


def write_markdown(results, markdown_path, times_folder=None):
    """Write the Performance page's Markdown and, when notebooks were timed and
    `times_folder` is given, the time-to-run tables: ``<chapter>.md`` for each
    chapter's index page and ``book.md`` for the Performance page."""
    markdown_path = pathlib.Path(markdown_path)
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(to_markdown(results) + "\n")
    if times_folder is None or not (results.get("notebooks") or {}).get("notebooks"):
        return
    times_folder = pathlib.Path(times_folder)
    times_folder.mkdir(parents=True, exist_ok=True)
    for chapter, text in chapter_times(results).items():
        (times_folder / f"{chapter}.md").write_text(text)
    (times_folder / "book.md").write_text(book_times(results))
