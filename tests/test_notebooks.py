"""The book's conventions: bootstrap cell (hidden), executed in order, no models
defined in notebooks, every page in the table of contents, and a tutorial's
furniture (objectives, exercises, summaries, live package source)."""

import json
import pathlib
import re

import pytest

from tools import notebooks

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = notebooks.all_notebooks()
CHAPTERS = notebooks.chapters()
PAGES = [page for folder in CHAPTERS for page in notebooks.chapter_pages(folder)]


def _toc_files():
    text = (ROOT / "_toc.yml").read_text()
    return re.findall(r"(?:root|file):\s*(\S+)", text)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_follows_the_conventions(path):
    assert notebooks.convention_problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_valid_nbformat(path):
    # A cell id in a version 4.4 notebook (ids came with 4.5) is invalid: tools
    # that validate, such as nbformat.write and Colab's upload, reject the file.
    import nbformat

    nbformat.validate(nbformat.read(path, as_version=4))


@pytest.mark.parametrize("folder", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_objectives_exercises_and_live_source(folder):
    assert notebooks.chapter_problems(folder) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_chapter_page_ends_with_a_summary(page):
    assert notebooks.page_problems(page) == []


def test_bootstrap_cell_names_the_configured_repository_and_version():
    source = notebooks.bootstrap_source()
    assert notebooks.repository_url() in source
    assert "@v" + notebooks.package_version() in source
    import companion

    assert notebooks.package_version() == companion.__version__
    assert "companion.environment.use_book_defaults()" in source


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


def _problems_of(tmp_path, *cells):
    cells = [{"cell_type": "code", "execution_count": None, "metadata": {"tags": ["remove-cell"]},
              "outputs": [], "source": notebooks.bootstrap_source()}] + [
        {"cell_type": "code", "execution_count": None, "outputs": [],
         "metadata": {"tags": list(tags)}, "source": text} for text, tags in cells]
    for count, cell in enumerate(cells, 1):
        cell["execution_count"] = count
    path = tmp_path / "exercise.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {},
                                "nbformat": 4, "nbformat_minor": 5}))
    return notebooks.convention_problems(path)


def test_an_exercise_may_define_the_loss_it_checks_and_nothing_else(tmp_path):
    skeleton = "def my_generator_loss(fake_logits):\n    raise NotImplementedError"
    solution = "def generator_loss_solution(fake_logits):\n    return fake_logits"
    checks = ('exercises.check("generator_loss", my_generator_loss)\n'
              'exercises.check("generator_loss", generator_loss_solution)')
    assert _problems_of(tmp_path, (skeleton, ["exercise"]), (solution, ["solution"]),
                        (checks, [])) == []
    # Untagged, or tagged otherwise: the rule holds.
    for tags in ([], ["remove-cell"], ["hide-input"]):
        problems = _problems_of(tmp_path, (skeleton, tags), (checks, []))
        assert problems == ["code cell 2 defines a loss function; it belongs in companion"]
    # Tagged but never checked, or defining a second, unchecked function.
    assert _problems_of(tmp_path, (skeleton, ["exercise"]), ("x = 1", [])) == [
        "code cell 2 defines a loss function; it belongs in companion"]
    helper = skeleton + "\n\ndef another_loss(x):\n    return x"
    assert _problems_of(tmp_path, (helper, ["exercise"]), (checks, [])) == [
        "code cell 2 defines a loss function; it belongs in companion"]
    # The other rules still apply to an exercise cell.
    layer = skeleton + "\n\nclass Critic(keras.Model):\n    pass"
    assert _problems_of(tmp_path, (layer, ["exercise"]), (checks, [])) == [
        "code cell 2 defines a model, layer or loss class; it belongs in companion"]
    network = skeleton + "\nh = keras.layers.Dense(3)(x)"
    assert _problems_of(tmp_path, (network, ["solution"]), (checks, [])) == [
        "code cell 2 builds a network with keras.layers; it belongs in companion"]


def test_a_hidden_assert_cell_counts_as_a_claim_cell():
    visible = {"cell_type": "code", "metadata": {}, "source": "assert nll < baseline"}
    hidden = dict(visible, metadata={"tags": ["remove-cell"]})
    hidden_print = dict(hidden, source="print(nll)")
    assert notebooks.is_claim_cell(hidden)
    assert not notebooks.is_claim_cell(visible)
    assert not notebooks.is_claim_cell(hidden_print)


def test_the_hidden_bootstrap_cell_is_not_a_claim_cell(tmp_path):
    bootstrap = {"cell_type": "code", "execution_count": 1,
                 "metadata": {"tags": ["remove-cell"]}, "outputs": [],
                 "source": notebooks.bootstrap_source() + "\nassert True"}
    assert not notebooks.is_claim_cell(bootstrap)
    trains = {"cell_type": "code", "execution_count": 2, "metadata": {}, "outputs": [],
              "source": "model.fit(x)"}
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps({"cells": [bootstrap, trains], "metadata": {},
                                "nbformat": 4, "nbformat_minor": 5}))
    assert any("no claim cell" in p for p in notebooks.convention_problems(path))


def test_a_visible_bootstrap_cell_is_a_problem(tmp_path):
    cell = {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [],
            "source": notebooks.bootstrap_source()}
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps({"cells": [cell], "metadata": {},
                                "nbformat": 4, "nbformat_minor": 5}))
    assert notebooks.convention_problems(path) == [
        "the bootstrap cell is not hidden (tag it remove-cell: run `python3 tasks.py sync`)"]
    cell["metadata"]["tags"] = ["remove-cell"]
    path.write_text(json.dumps({"cells": [cell], "metadata": {},
                                "nbformat": 4, "nbformat_minor": 5}))
    assert notebooks.convention_problems(path) == []


def _chapter(tmp_path, name, index, pages=None):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "index.md").write_text(index)
    for page_name, text in (pages or {}).items():
        (folder / page_name).write_text(text)
    return folder


GOOD_INDEX = """# A chapter

## What you will learn
- one thing

## Exercises

````{exercise}
:label: a-chapter-one
Do it.
````

````{solution} a-chapter-one
:class: dropdown
```python
# Not a heading: inside a fence
```
````

## Summary
- done
"""


def test_chapter_checker_accepts_a_complete_chapter(tmp_path):
    folder = _chapter(tmp_path, "02_gan", GOOD_INDEX, {"code.md": (
        "# Code\n\n```{literalinclude} ../../companion/models/gan.py\n"
        ":pyobject: GAN.train_step\n```\n\n## Summary\n- the step\n")})
    assert notebooks.chapter_problems(folder) == []
    for page in notebooks.chapter_pages(folder):
        assert notebooks.page_problems(page) == []


def test_chapter_checker_catches_missing_furniture(tmp_path):
    folder = _chapter(tmp_path, "03_vae", "# A chapter\n\n## Summary\n\n## Further reading\n")
    problems = " | ".join(notebooks.chapter_problems(folder))
    for expected in ("objectives", "exercises", "live source"):
        assert expected in problems
    assert "last heading: 'Further reading'" in notebooks.page_problems(folder / "index.md")[0]
    # Not a model chapter: no live source needed.
    other = _chapter(tmp_path, "06_faq", GOOD_INDEX)
    assert notebooks.chapter_problems(other) == []


def test_a_notebook_page_ends_with_a_summary_in_its_markdown(tmp_path):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# Title\n## Summary\n- a"},
             {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [],
              "source": "# Not a heading\nx = 1"}]
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {},
                                "nbformat": 4, "nbformat_minor": 5}))
    assert notebooks.page_problems(path) == []
    cells.append({"cell_type": "markdown", "metadata": {}, "source": "## Next steps"})
    path.write_text(json.dumps({"cells": cells, "metadata": {},
                                "nbformat": 4, "nbformat_minor": 5}))
    assert notebooks.page_problems(path) != []


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
    assert cells[0]["metadata"]["tags"] == ["remove-cell"]
    assert notebooks.source(cells[1]) == "x = 1"


def test_sync_hides_an_existing_bootstrap_cell(tmp_path, monkeypatch):
    book = tmp_path / "book"
    book.mkdir()
    path = book / "n.ipynb"
    path.write_text(json.dumps({"cells": [
        {"cell_type": "code", "execution_count": 1,
         "metadata": {"tags": ["nbval-ignore-output"]}, "outputs": [],
         "source": "# Bootstrap\nimport companion"}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    monkeypatch.setattr(notebooks, "BOOK", book)
    monkeypatch.setattr(notebooks, "ROOT", tmp_path)
    monkeypatch.setattr(notebooks, "bootstrap_source", lambda: "# Bootstrap\nimport companion")
    notebooks.sync()
    cell = json.loads(path.read_text())["cells"][0]
    assert cell["metadata"]["tags"] == ["remove-cell", "nbval-ignore-output"]


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


def test_tasks_test_runs_nbval_on_a_temporary_copy_of_the_book(monkeypatch):
    # Notebooks write files next to themselves (save_animation's GIFs); executed
    # in book/, they would rewrite tracked files on every `python3 tasks.py test`.
    import tasks

    calls, copies = [], []

    def fake_run(*args):
        args = [str(a) for a in args]
        calls.append(args)
        if "--nbval" in args:
            folders = [pathlib.Path(a) for a in args if pathlib.Path(a).is_dir()]
            notebook_dirs = [f for f in folders if f.resolve() != ROOT  # --rootdir
                             and any(f.rglob("*.ipynb"))]
            assert len(notebook_dirs) == 1, args
            (copy,) = notebook_dirs
            # in the git-ignored cache folder, so test ids carry each notebook's path
            assert copy.resolve().is_relative_to(ROOT / ".cache")
            assert sorted(p.relative_to(copy) for p in copy.rglob("*.ipynb")) == sorted(
                p.relative_to(ROOT / "book") for p in NOTEBOOKS)
            copies.append(copy)
        return 0

    monkeypatch.setattr(tasks, "run", fake_run)
    monkeypatch.setattr(tasks, "minimum", lambda: 0)
    assert tasks.test() == 0
    (nbval,) = [args for args in calls if "--nbval" in args]
    assert "book" not in nbval and str(ROOT / "book") not in nbval
    assert len(copies) == 1 and not copies[0].exists()  # removed afterwards
    assert nbval[nbval.index("--rootdir") + 1] == str(ROOT)
