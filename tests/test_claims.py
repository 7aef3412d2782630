"""Tests for companion.claims: results of training checked within a tolerance,
the record mode that writes the stored values, and the notebook conventions
around them (tools/notebooks.py)."""

import itertools
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from companion import claims
from tools import notebooks

ROOT = pathlib.Path(__file__).resolve().parents[1]
_IDS = itertools.count()


def test_tolerance_is_relative_or_absolute_whichever_is_larger():
    relative, absolute = claims.TOLERANCES["frechet"]
    assert claims.tolerance("frechet", 100.0) == pytest.approx(relative * 100.0)
    assert claims.tolerance("frechet", 1.0) == absolute
    with pytest.raises(ValueError, match="`kind` must be one of"):
        claims.tolerance("nat", 1.0)


@pytest.mark.parametrize("kind", sorted(claims.TOLERANCES))
def test_reproduces_passes_inside_and_fails_outside_the_tolerance(kind):
    stored = 50.0 if kind != "score" else 0.5
    allowed = claims.tolerance(kind, stored)
    claims.reproduces("figure", stored + 0.99 * allowed, stored=stored, kind=kind)
    claims.reproduces("figure", stored - 0.99 * allowed, stored=stored, kind=kind)
    with pytest.raises(AssertionError, match="figure is .* in the stored run"):
        claims.reproduces("figure", stored + 1.01 * allowed, stored=stored, kind=kind)


def test_reproduces_refuses_nan_and_a_missing_stored_value():
    with pytest.raises(AssertionError):
        claims.reproduces("loss", float("nan"), stored=1.0, kind="nats")
    with pytest.raises(AssertionError, match="no stored value"):
        claims.reproduces("loss", 1.0, stored=None, kind="nats")


def test_record_mode_writes_instead_of_checking(tmp_path, monkeypatch):
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv(claims.RECORD_VARIABLE, str(record))
    claims.reproduces("far off", 1000.0, stored=1.0, kind="nats")  # no error
    claims.reproduces("new", 2.5, stored=None, kind="score")
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines == [{"name": "far off", "value": 1000.0}, {"name": "new", "value": 2.5}]


def test_the_spread_report_names_the_largest_change_of_each_kind(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv(claims.LOG_VARIABLE, str(log))
    claims.reproduces("VAE NLL", 97.0, stored=96.0, kind="nats")
    claims.reproduces("LSTM NLL", 91.5, stored=91.4, kind="nats")
    claims.reproduces("label entropy", 0.95, stored=0.97, kind="score")
    report = claims.spread(log)
    assert len(report) == 2
    assert report[0].startswith("nats") and "2 checks" in report[0]
    assert "1.0% (VAE NLL: 96 -> 97)" in report[0] and "share of the tolerance 52% (VAE NLL)" in report[0]
    share = 0.02 / claims.tolerance("score", 0.97)
    assert report[1].startswith("score") and f"share of the tolerance {share:.0%}" in report[1]


def _notebook(path, cells):
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook))
    return path


def _code(text, tags=(), outputs=()):
    return {"cell_type": "code", "execution_count": None, "id": f"cell-{next(_IDS)}",
            "metadata": {"tags": list(tags)}, "outputs": list(outputs), "source": text}


def test_record_stored_rewrites_each_literal_with_the_recorded_figure(tmp_path):
    path = _notebook(tmp_path / "n.ipynb", [
        _code('reproduces("test NLL", nll,\n           stored=None, kind="nats")\n'
              'reproduces("Fréchet (lstm)", float(f.mean()), stored=12.0, kind="frechet")',
              tags=["remove-cell"]),
    ])
    record = tmp_path / "record.jsonl"
    record.write_text(json.dumps({"name": "test NLL", "value": 95.93417}) + "\n"
                      + json.dumps({"name": "Fréchet (lstm)", "value": 31.04}) + "\n")
    notebooks.record_stored(path, record)
    text = notebooks.source(json.loads(path.read_text())["cells"][0])
    assert "stored=95.93, kind=\"nats\"" in text and "stored=31.04, kind" in text
    assert "float(f.mean())" in text  # the value expression is untouched


def test_record_stored_refuses_a_figure_without_a_literal_call(tmp_path):
    path = _notebook(tmp_path / "n.ipynb", [_code('reproduces("a", x, stored=1.0, kind="nats")')])
    record = tmp_path / "record.jsonl"
    record.write_text(json.dumps({"name": "b", "value": 1.0}) + "\n"
                      + json.dumps({"name": "a", "value": 1.0}) + "\n")
    with pytest.raises(SystemExit, match="no literal reproduces"):
        notebooks.record_stored(path, record)


def test_trained_output_cells_need_the_nbval_tag_and_a_check_right_after():
    printed = _code("print(loss)", tags=[notebooks.TRAINED])
    visible = _code("print(1)")
    check = _code('reproduces("loss", loss, stored=1.0, kind="nats")', tags=["remove-cell"])
    problems = notebooks.trained_output_problems([printed, visible, check])
    assert any("not nbval-ignore-output" in p for p in problems)
    assert any("no hidden cell right after it" in p for p in problems)
    printed["metadata"]["tags"].append(notebooks.IGNORE_OUTPUT)
    assert notebooks.trained_output_problems([printed, check, visible]) == []


def test_claim_calls_need_a_literal_name_a_stored_value_and_unique_names():
    def problems(*texts):
        return notebooks.trained_output_problems([_code(t, tags=["remove-cell"]) for t in texts])

    assert any("string literal name" in p
               for p in problems('reproduces(name, x, stored=1.0, kind="nats")'))
    assert any("no stored value" in p
               for p in problems('reproduces("a", x, stored=None, kind="nats")'))
    assert any("used twice" in p for p in problems('reproduces("a", x, stored=1, kind="nats")',
                                                  'reproduces("a", y, stored=2, kind="nats")'))


def test_every_notebook_checks_what_it_prints_from_training():
    found = {path.name: notebooks.trained_output_problems(
                 notebooks.code_cells(json.loads(path.read_text())))
             for path in notebooks.all_notebooks()}
    assert {name: p for name, p in found.items() if p} == {}
    assert not any(re.search(r"(seconds|time)\w*\s*[<>]", notebooks.source(cell))
                   for path in notebooks.all_notebooks()
                   for cell in notebooks.code_cells(json.loads(path.read_text()))
                   if notebooks.is_claim_cell(cell)), "a claim cell asserts a wall-clock time"


@pytest.mark.slow
def test_a_perturbed_training_run_fails_its_stored_checks(tmp_path):
    """The stored values still catch a real change: train the video notebook's model
    for half its epochs and nbval fails, at a reproduces() check (the printed
    digits of training are no longer compared, so the checks must do it)."""
    import nbformat

    notebook = nbformat.read(ROOT / "book" / "04_rnn" / "video.ipynb", as_version=4)
    training = next(cell for cell in notebook.cells
                    if cell.cell_type == "code" and ".fit(" in cell.source)
    training.source = 'CONFIG["epochs"] //= 2  # the perturbation\n' + training.source
    copy = tmp_path / "video.ipynb"
    nbformat.write(notebook, copy)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
         "-c", str(ROOT / "pyproject.toml"), "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"), str(copy), "-q"],
        capture_output=True, text=True, cwd=tmp_path, env=dict(os.environ), timeout=900)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "in the stored run" in result.stdout, result.stdout[-3000:]
