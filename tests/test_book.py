"""Both editions of the book build from stored outputs with warnings as errors (-W -n).

The build runs once a session: `build_book` keeps it, and the browser test
(`test_site.py`) and the launch-button test (`test_colab.py`) read the same pages.
The site holds the English edition at its root and the Chinese one under zh/.
"""

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import editions  # noqa: E402

_BUILDS = {}


def build_book(tmp_path_factory):
    """Build the site (-W -n) once a session; return (returncode, log, html folder)."""
    if "book" not in _BUILDS:
        output = tmp_path_factory.mktemp("book")
        returncode, log = editions.build(output, strict=True)
        _BUILDS["book"] = (returncode, log, output / "_build" / "html")
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
    assert (html / "zh" / "book" / "01_background" / "data.html").exists()


@pytest.mark.slow
def test_the_chinese_edition_is_in_chinese(book):
    """The Chinese pages are translated: language, title and text; code stays as it is."""
    _, log, html = book
    page = (html / "zh" / "book" / "02_gan" / "theory.html").read_text()
    english = (html / "book" / "02_gan" / "theory.html").read_text()
    assert '<html lang="zh-CN"' in page and '<html lang="en"' in english
    assert editions.CHINESE["title"] in page
    heading = "The value function, and who maximises it"
    assert heading in english and heading not in page
    assert "价值函数" in page and "生成器" in page
    # Code is the same in both editions.
    assert 'DATA_MEAN</span><span class="p">,</span>' in page


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
