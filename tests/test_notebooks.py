"""The book's notebook conventions: bootstrap cell, executed in order, no models
defined in notebooks, every page in the table of contents."""

import json
import pathlib
import re

import pytest

from tools import notebooks

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = notebooks.all_notebooks()


def _toc_files():
    text = (ROOT / "_toc.yml").read_text()
    return re.findall(r"(?:root|file):\s*(\S+)", text)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_follows_the_conventions(path):
    assert notebooks.convention_problems(path) == []


def test_bootstrap_cell_names_the_configured_repository_and_version():
    source = notebooks.bootstrap_source()
    assert notebooks.repository_url() in source
    assert "@v" + notebooks.package_version() in source
    import companion

    assert notebooks.package_version() == companion.__version__


def test_convention_checker_catches_violations(tmp_path):
    bad = {
        "cells": [
            {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [],
             "source": "print('not the bootstrap')"},
            {"cell_type": "code", "execution_count": 3, "metadata": {}, "outputs": [],
             "source": "class Critic(keras.Model):\n    pass"},
            {"cell_type": "code", "execution_count": 4, "metadata": {}, "outputs": [],
             "source": "def my_loss(x):\n    return x"},
            {"cell_type": "code", "execution_count": 5, "metadata": {}, "outputs": [],
             "source": "h = keras.layers.Dense(3)(x)"},
            {"cell_type": "code", "execution_count": 6, "metadata": {}, "outputs": [],
             "source": "figure = plot(x);"},
            {"cell_type": "code", "execution_count": 7, "metadata": {}, "outputs": [],
             "source": "# NBVAL_IGNORE_OUTPUT\nmodel.fit(x)"},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(bad))
    problems = " | ".join(notebooks.convention_problems(path))
    for expected in ("bootstrap", "execution counts", "model, layer or loss class",
                     "loss function", "keras.layers", "ends with ';'", "nbval comment",
                     "no claim cell"):
        assert expected in problems


def test_a_hidden_assert_cell_counts_as_a_claim_cell():
    visible = {"cell_type": "code", "metadata": {}, "source": "assert nll < baseline"}
    hidden = dict(visible, metadata={"tags": ["remove-cell"]})
    hidden_print = dict(hidden, source="print(nll)")
    assert notebooks.is_claim_cell(hidden)
    assert not notebooks.is_claim_cell(visible)
    assert not notebooks.is_claim_cell(hidden_print)


def test_sync_is_idempotent_and_inserts_the_bootstrap(tmp_path, monkeypatch):
    book = tmp_path / "book"
    book.mkdir()
    path = book / "n.ipynb"
    path.write_text(json.dumps({"cells": [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
         "source": "x = 1"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    monkeypatch.setattr(notebooks, "BOOK", book)
    monkeypatch.setattr(notebooks, "ROOT", tmp_path)
    monkeypatch.setattr(notebooks, "bootstrap_source", lambda: "# Bootstrap\nimport companion")
    notebooks.sync()
    once = path.read_text()
    notebooks.sync()
    assert path.read_text() == once
    cells = json.loads(once)["cells"]
    assert notebooks.source(cells[0]) == "# Bootstrap\nimport companion"
    assert notebooks.source(cells[1]) == "x = 1"


def test_every_page_is_in_the_table_of_contents_and_exists():
    listed = set(_toc_files())
    for entry in listed:
        candidates = [ROOT / f"{entry}{suffix}" for suffix in ("", ".md", ".ipynb")]
        assert any(c.is_file() for c in candidates), f"_toc.yml lists missing {entry}"
    pages = [p for p in (ROOT / "book").rglob("*") if p.suffix in (".md", ".ipynb")
             and ".ipynb_checkpoints" not in p.parts]
    included = {
        (page.parent / target).resolve()
        for page in pages if page.suffix == ".md"
        for target in re.findall(r"```\{include\}\s+(\S+)", page.read_text())
    }
    for page in pages:
        if page.resolve() in included:
            continue  # a fragment another page includes, not a page of its own
        stem = str(page.relative_to(ROOT).with_suffix(""))
        assert stem in listed, f"{stem} is not in _toc.yml"
