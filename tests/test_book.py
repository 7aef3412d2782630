"""The book builds from stored outputs with warnings as errors (-W -n).

The build runs once a session: `build_book` keeps it, and the browser test
(`test_site.py`) and the launch-button test (`test_colab.py`) read the same pages.
"""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# `python -m jupyter_book` does nothing in Jupyter Book 1.x: call its CLI entry point.
JUPYTER_BOOK = "import sys; from jupyter_book.cli.main import main; sys.exit(main())"
_BUILDS = {}


def build_book(tmp_path_factory):
    """Build the book (-W -n) once a session; return (returncode, log, html folder)."""
    if "book" not in _BUILDS:
        output = tmp_path_factory.mktemp("book")
        result = subprocess.run(
            [sys.executable, "-c", JUPYTER_BOOK, "build", str(ROOT),
             "--path-output", str(output), "-W", "-n", "--keep-going"],
            capture_output=True, text=True, cwd=ROOT,
        )
        html = output / "_build" / "html"
        _BUILDS["book"] = (result.returncode, result.stdout + result.stderr, html)
    return _BUILDS["book"]


@pytest.fixture(scope="session")
def book(tmp_path_factory):
    return build_book(tmp_path_factory)


@pytest.mark.slow
def test_book_builds_without_warnings(book):
    returncode, log, html = book
    assert returncode == 0, log[-6000:]
    assert (html / "index.html").exists()
    assert (html / "book" / "01_background" / "data.html").exists()


@pytest.mark.slow
def test_mathjax_is_served_from_the_build(book):
    """Formulas render offline: MathJax comes from _static, never from a CDN."""
    _, log, html = book
    page = (html / "book" / "02_gan" / "theory.html").read_text()
    assert 'src="../../_static/mathjax/tex-chtml.js"' in page, log[-3000:]
    assert (html / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert "cdn.jsdelivr.net" not in page


@pytest.mark.slow
def test_logo_favicon_and_dark_mode_style(book):
    _, _, html = book
    page = (html / "book" / "intro.html").read_text()
    assert '<link rel="icon" href="../_static/logo.svg"/>' in page
    assert 'src="../_static/logo.svg" class="logo__image' in page
    assert "_static/companion.css" in page
