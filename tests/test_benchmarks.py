"""The benchmark script runs (quick mode) and measures what it says; no timing is asserted."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import flops, machine, notebooks, report, throughput
from benchmarks import run as bench
from companion import models
from companion.models import rnn


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One quick run of every family (tiny models), written to a temporary folder."""
    folder = tmp_path_factory.mktemp("bench")
    results = bench.run(quick=True)
    report.write_results(results, folder / "results.json", folder / "results.md")
    return results, folder


def test_xla_flops_counts_a_matmul_exactly():
    a, b = jnp.ones((8, 5)), jnp.ones((5, 3))
    compiled = jax.jit(jnp.matmul).lower(a, b).compile()
    assert flops.xla_flops(compiled) == 2 * 8 * 5 * 3


def test_matmul_peak_is_the_best_size_and_counts_2n3():
    peak = flops.matmul_peak(sizes=(16, 32), repeats=1)
    for row in peak["sizes"]:
        assert row["xla_flops"] == 2 * row["n"] ** 3
        assert row["gflops"] == pytest.approx(2 * row["n"] ** 3 / row["seconds"] / 1e9)
    assert peak["peak_gflops"] == max(r["gflops"] for r in peak["sizes"])


def test_raw_step_is_exactly_fits_step():
    """The raw loop's jitted `train_step` on `model_state` reproduces `fit`'s weights."""
    images = throughput.training_images("rnn", 64)
    fitted = rnn.make_model(units=4, seed=0)
    fitted.fit(images, batch_size=32, epochs=1, shuffle=False, verbose=0)
    model = rnn.make_model(units=4, seed=0)
    state = throughput.model_state(model, images[:32])
    assert int(model.optimizer.iterations) == 0  # built, not trained
    step = jax.jit(model.train_step, donate_argnums=0)
    for start in (0, 32):
        _, state = step(state, jnp.asarray(images[start:start + 32]))
    for variable, value in zip(fitted.trainable_variables, state[0]):
        np.testing.assert_allclose(np.asarray(variable.value), np.asarray(value),
                                   rtol=1e-5, atol=1e-6)
    untrained = rnn.make_model(units=4, seed=0).trainable_variables
    assert any(not np.allclose(u.value, v.value)
               for u, v in zip(untrained, fitted.trainable_variables))


@pytest.mark.slow
def test_quick_run_measures_every_family(quick):
    results, _ = quick
    assert [r["family"] for r in results["families"]] == list(bench.FAMILIES)
    assert len(results["load_start"]) == len(results["load_end"]) == 3
    assert results["machine"]["backend"] == "jax" and results["machine"]["logical_cores"]
    peak = results["matmul"]["peak_gflops"]
    for row in results["families"]:
        images = row["images"]
        assert row["fit_images_per_second"] == pytest.approx(
            images / min(row["fit_epoch_seconds"][1:]))
        assert row["raw_images_per_second"] == pytest.approx(
            images / min(row["raw_epoch_seconds"]))
        assert row["fit_over_raw"] == pytest.approx(
            row["fit_images_per_second"] / row["raw_images_per_second"])
        assert row["flops_per_step"] > 0
        assert row["fraction_of_peak"] == pytest.approx(row["raw_gflops"] / peak)
        assert row["sampling"]["shape"] == [report.SAMPLES, 28, 28, 1]
        assert row["steps_per_epoch"] == -(-images // row["batch_size"])


@pytest.mark.slow
def test_quick_run_writes_json_and_markdown(quick):
    results, folder = quick
    assert json.loads((folder / "results.json").read_text())["families"]
    text = (folder / "results.md").read_text()
    assert "GFLOP/s" in text and results["machine"]["jax"] in text
    for family in bench.FAMILIES:
        assert f"| {family} |" in text


def _timed(seconds, peak_mib=100.0):
    return {"seconds": seconds, "peak_mib": peak_mib, "ok": True,
            "load_before": [1.0, 1.0, 1.0]}


def _book(first, again):
    """A notebooks result of two notebooks in two chapters, with these seconds."""
    rows = [{"notebook": f"book/0{i}_x/n{i}.ipynb", "chapter": f"0{i}_x",
             "first": _timed(f), "again": _timed(a)}
            for i, (f, a) in enumerate(zip(first, again), start=1)]
    return {"notebooks": rows,
            "total_seconds": {"first": sum(first), "again": sum(again)},
            "max_peak_mib": {"first": 100.0, "again": 100.0}}


@pytest.mark.slow
def test_markdown_marks_missed_targets(quick):
    results, _ = quick
    slow = json.loads(json.dumps(results))
    slow["families"][0]["fit_over_raw"] = 0.5
    slow["notebooks"] = _book(first=[120.0, 30.0], again=[80.0, 20.0])
    text = report.to_markdown(slow)
    assert "0.500 (**no**)" in text
    assert "| 120.0 (**no**) | 80.0 (yes) | 100 (yes) |" in text


def test_time_tables_by_chapter_and_for_the_book():
    results = {"date": "2026-12-02 06:00 UTC", "machine": {"usable_cores": 2},
               "notebooks": _book(first=[120.0, 500.0], again=[80.0, 9.5])}
    tables = report.chapter_times(results)
    assert sorted(tables) == ["01_x", "02_x"]
    assert "| {doc}`n1` | 120 s | 80 s |" in tables["01_x"]
    assert "| {doc}`n2` | 500 s | 9.5 s |" in tables["02_x"]
    book = report.book_times(results)
    assert "| {doc}`../01_x/index` (120 / 80 s) | {doc}`../01_x/n1` | 120 s | 80 s |" in book
    assert "**620 s** on a first run and **90 s** on a second" in book
    assert ("a first run: missed, `book/01_x/n1.ipynb` took 120 s, `book/02_x/n2.ipynb` "
            "took 500 s, the book took 10.3 minutes; a second run: all met.") in book


def test_write_markdown_writes_the_time_tables(tmp_path):
    results = {"date": "2026-12-02 06:00 UTC", "quick": False, "load_start": [1, 1, 1],
               "load_end": [1, 1, 1], "families": [],
               "machine": machine.machine(),
               "matmul": {"repeats": 1, "sizes": [], "peak_gflops": 1.0},
               "notebooks": _book(first=[10.0, 20.0], again=[5.0, 6.0])}
    report.write_markdown(results, tmp_path / "results.md", tmp_path / "times")
    assert sorted(p.name for p in (tmp_path / "times").iterdir()) == [
        "01_x.md", "02_x.md", "book.md"]
    assert "| `book/02_x/n2.ipynb` | 20.0 (yes) | 6.0 (yes) |" in (
        tmp_path / "results.md").read_text()


@pytest.mark.slow
def test_execute_notebook_reports_time_memory_and_passes_the_cache(tmp_path):
    notebook = tmp_path / "probe.ipynb"
    notebook.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                   "outputs": [], "source": "import os\n"
                   "print(os.environ.get('COMPANION_CACHE_DIR'), "
                   "os.environ.get('COMPANION_JAX_CACHE'))"}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    result = notebooks.execute_notebook(notebook, tmp_path / "cache", jax_cache=False)
    assert result["ok"] and result["seconds"] > 0 and result["peak_mib"] > 0
    output = json.loads(notebook.read_text())["cells"][0]["outputs"][0]["text"]
    assert f"{tmp_path / 'cache'} 0" in "".join(output)


@pytest.mark.slow
def test_from_json_rewrites_the_same_markdown(quick, tmp_path):
    results, folder = quick
    assert bench.main(["--from-json", str(folder / "results.json"),
                       "--markdown", str(tmp_path / "again.md"),
                       "--times", str(tmp_path / "times")]) == 0
    assert (tmp_path / "again.md").read_text() == (folder / "results.md").read_text()


def test_profile_groups_the_traced_operations_of_a_step():
    from benchmarks import profile

    text = """HloModule m
%fused_conv (p: f32[2,3]) -> f32[2,3] {
  %c = f32[2,3]{1,0} convolution(f32[2,3]{1,0} %p, f32[1,1]{1,0} %k), dim_labels=b0f_0io->b0f
}
ENTRY %main (a: f32[2,3]) -> f32[2,3] {
  %ynn_fusion.1 = f32[2,3]{1,0} fusion(f32[2,3]{1,0} %a), kind=kCustom, calls=%fused_conv
  ROOT %add_fusion = f32[2,3]{1,0} fusion(f32[2,3]{1,0} %ynn_fusion.1), kind=kLoop, calls=%x
}"""
    found = profile.hlo_instructions(text)
    assert found["ynn_fusion.1"][:2] == ("fusion", "f32[2,3]{1,0}")
    assert profile.kind_of("ynn_fusion.1", found["ynn_fusion.1"]) == profile.KINDS[1]
    assert profile.kind_of("add_fusion", found["add_fusion"]) == "element-wise"

    result = profile.profile_family("vae", steps=2, kwargs=models.family("vae").tiny)
    assert result["operations"] and result["compile_seconds"] > 0
    assert set(result["kinds"]) == set(profile.KINDS)
    traced = sum(o["ms"] for o in result["operations"])
    assert traced == pytest.approx(sum(result["kinds"].values()))
    assert 0 < traced <= 1.5 * result["step_ms"]  # operations run within the step


def test_seeds_table_gives_each_seed_and_mean_with_sample_sd():
    from benchmarks import seeds

    results = {"seeds": [0, 1, 2], "epochs": {"gan": 13},
               "figures": {"gan": {"frechet": [30.0, 33.0, 36.0],
                                   "label_entropy": [0.98, 0.97, 0.99]}}}
    lines = seeds.markdown(results).splitlines()
    assert lines[0] == "| chapter's model | figure | seed 0 | seed 1 | seed 2 | mean ± sd |"
    assert lines[2] == "| GAN (DCGAN), 13 epochs | Fréchet distance | 30.0 | 33.0 | 36.0 | 33.0 ± 3.0 |"
    assert lines[3].endswith("| 0.980 ± 0.010 |")
    assert seeds.summary([5.0]) == (5.0, 0.0)


def test_committed_seeds_results_match_their_table():
    from benchmarks import seeds

    results = json.loads(seeds.RESULTS_JSON.read_text())
    assert results["seeds"] == list(seeds.SEEDS)
    assert set(results["figures"]) == set(models.FAMILIES)
    for family, figures in results["figures"].items():
        assert tuple(figures) == seeds.HEADLINES[family]
        assert results["epochs"][family] == models.family(family).module.BOOK_CONFIG["epochs"]
    assert seeds.RESULTS_MARKDOWN.read_text() == seeds.markdown(results)
    for family, page in seeds.PAGES.items():  # the chapter quotes the committed figures
        assert seeds.sentence(results, family) in " ".join(page.read_text().split())
