"""The built book as a reader's browser shows it, with no network.

Every page of the -W -n build (shared with `test_book.py`) is served by a local
HTTP server and opened in headless Chromium through Selenium and the system's
chromedriver (never downloaded). On every page: formulas rendered by the bundled
MathJax (no raw TeX left, no TeX errors), images loaded, internal links and
anchors resolving, no JavaScript errors, no raw Markdown table (every table a cell
displays as Markdown is a `<table>`), and every display equation either fits its
column at a 1280-pixel window or scrolls. A deliberately broken page, served by
the same server, shows that these last checks fail when they should. Screenshots
of key pages land in the test's temporary folder (printed; see them with `pytest -s`).

The site has two editions, English at its root and Chinese under `zh/`: every page
of both is opened, each links to itself in the other edition, and no paragraph of
a Chinese page is left in English.

Set BOOK_HTML to an existing `_build/html` to test that build instead, and
REQUIRE_BROWSER=1 (CI does) to fail rather than skip without a browser.
"""

import functools
import html.parser
import http.server
import json
import os
import pathlib
import re
import shutil
import threading
import urllib.parse

import pytest

from test_book import build_book

# Debian's chromium with its chromium-driver; GitHub's runners: Google Chrome with
# the chromedriver of the same version in $CHROMEWEBDRIVER.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Pages whose screenshots are worth a look: maths, figures, and the start page.
KEY_PAGES = ("book/intro.html", "book/02_gan/theory.html", "book/02_gan/dcgan.html",
             "book/03_vae/theory.html", "zh/book/02_gan/theory.html")
RAW_TEX = ("\\(", "\\[", "$$")
# Inline TeX left as text: `$x$`, `$\beta = 1$` (dollars tight around it, not "$5 or $6").
RAW_INLINE_TEX = re.compile(r"\$[^\s$](?:[^$]*[^\s$])?\$")
# Sphinx < 8.2 writes inline scripts added after builder init twice, so the second
# `const THEBE_JS_URL` of sphinx-thebe throws (fixed by sphinx-doc/sphinx#13402;
# Jupyter Book 1.x pins Sphinx < 8). Harmless: the first copy defines it.
KNOWN_CONSOLE_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)

# The window a reader on a laptop has: the checks of wide equations hold at this width.
WINDOW = (1280, 800)
# The delimiter row of a Markdown pipe table in a notebook's Markdown output:
# `|---|:--:|`, `--- | ---`, `|---|` (at least one pipe, dashes in every cell).
MARKDOWN_TABLE_RULE = re.compile(
    r"^[ \t]*(?=[^\n]*\|)\|?([ \t]*:?-+:?[ \t]*\|)*[ \t]*:?-+:?[ \t]*\|?[ \t]*$", re.MULTILINE)
# Outputs that myst-nb renders in place of a `text/markdown` one when a cell has both.
RICHER_THAN_MARKDOWN = ("application/vnd.jupyter.widget-view+json", "application/javascript",
                        "text/html", "image/svg+xml", "image/png", "image/jpeg")
# Tags that keep a cell's outputs off the page.
HIDDEN_OUTPUT_TAGS = {"remove-cell", "remove_cell", "remove-output", "remove_output"}

# What a page that could not be read counts as in the checks other than the first.
UNREAD_PAGE = {"mathjax": False, "text": "", "maths": 0, "unrendered": [], "tex_errors": [],
               "broken_images": [], "links": [], "code_blocks": 0, "copy_buttons": 0,
               "raw_tables": [], "output_tables": 0, "display_maths": 0,
               "clipped_maths": [], "window_width": 0, "language": "",
               "edition_link": None, "english_prose": []}
# Runs in the page once MathJax has finished typesetting: what a reader sees.
PAGE_REPORT_JS = r"""
const done = arguments[arguments.length - 1];
const within = (promise, seconds, what) => Promise.race([promise, new Promise(
    (_, fail) => setTimeout(() => fail(`${what}: not done in ${seconds} s`), seconds * 1000))]);
const typeset = (window.MathJax && MathJax.startup && MathJax.startup.promise)
    || Promise.resolve();
within(typeset, 60, "MathJax typesetting").then(async () => {
  for (const img of document.images) { img.loading = "eager"; }
  // An image that never settles is reported below as broken (natural width 0).
  await within(Promise.all([...document.images].map((img) => img.complete ? null
      : new Promise((ok) => { img.addEventListener("load", ok);
                              img.addEventListener("error", ok); }))), 30, "images")
      .catch(() => null);
  // sphinx-copybutton adds its buttons once clipboard.js is ready: give it time.
  const copyable = () => document.querySelectorAll("button.copybtn").length
      >= document.querySelectorAll("div.highlight pre").length;
  for (let waited = 0; !copyable() && waited < 100; waited++) {
    await new Promise((ok) => setTimeout(ok, 100));
  }
  const skip = "pre, code, script, style, textarea, mjx-container, .MathJax";
  for (let waited = 0; document.readyState !== "complete" && waited < 100; waited++) {
    await new Promise((ok) => setTimeout(ok, 100));
  }
  const walker = document.createTreeWalker(document.body || document.documentElement,
                                           NodeFilter.SHOW_TEXT);
  const text = [];
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (parent && !parent.closest(skip)) { text.push(walker.currentNode.nodeValue); }
  }
  const maths = [...document.querySelectorAll("span.math, div.math")];
  // Raw Markdown table syntax a reader sees: in prose and in what a cell prints,
  // not in the code a cell runs nor in a code listing of the prose.
  const tableRule = /\|\s*:?-{3,}:?\s*\||:?-{3,}:?\s*\|\s*:?-{3,}/;
  const code = (element) => element.closest(
      ".cell_input, script, style, textarea, mjx-container, .MathJax")
      || (element.closest("pre, code") && !element.closest(".cell_output"));
  const rawTables = [];
  const everyText = document.createTreeWalker(document.body || document.documentElement,
                                              NodeFilter.SHOW_TEXT);
  while (everyText.nextNode()) {
    const parent = everyText.currentNode.parentElement;
    if (parent && !code(parent) && tableRule.test(everyText.currentNode.nodeValue)) {
      rawTables.push(parent.textContent.trim().slice(0, 100));
    }
  }
  // A display equation is clipped when part of it can be neither seen nor scrolled
  // to: it sticks out of an ancestor that hides overflow, or out of its column
  // (the content box of the article). A scrolling ancestor makes all of it
  // reachable, if that ancestor fits in turn.
  const contentBox = (element) => {
    const box = element.getBoundingClientRect(), style = getComputedStyle(element);
    return {left: box.left + parseFloat(style.paddingLeft) + parseFloat(style.borderLeftWidth),
            right: box.right - parseFloat(style.paddingRight)
                   - parseFloat(style.borderRightWidth)};
  };
  const clipped = (container) => {
    const column = container.closest("article") || document.body;
    const inner = container.querySelector("mjx-math") || container;
    let {left, right} = inner.getBoundingClientRect();
    for (let box = inner.parentElement; box && box !== column; box = box.parentElement) {
      const overflow = getComputedStyle(box).overflowX;
      if (overflow === "visible") { continue; }
      const edges = box.getBoundingClientRect();
      if (left >= edges.left - 1 && right <= edges.right + 1) { continue; }
      if (overflow !== "auto" && overflow !== "scroll") { return true; }
      ({left, right} = edges);
    }
    const edges = contentBox(column);
    return left < edges.left - 1 || right > edges.right + 1;
  };
  const displayMaths = [...document.querySelectorAll('mjx-container[display="true"]')];
  // Prose a reader sees in English: a paragraph, list item, heading or cell with three
  // or more Latin words and no Chinese character, outside code, maths, what cells
  // print, the docstrings of the API reference (.docstring, dl.py) and the
  // bibliography's entries.
  const kept = ".cell_input, .cell_output, pre, code, mjx-container, dl.py, "
      + ".bibliography, .citation, .edition-switch, .toctree-wrapper, nav, footer";
  const proseOf = (element) => {
    const copy = element.cloneNode(true);
    copy.querySelectorAll("code, pre, mjx-container, .math, a.reference.internal")
        .forEach((part) => part.remove());
    return copy.textContent;
  };
  const article = document.querySelector("article") || document.body;
  // The glossary's first column is the English term, on purpose.
  const glossary = location.pathname.endsWith("/appendix/glossary.html");
  const englishProse = [...article.querySelectorAll("p, li, h1, h2, h3, h4, th, td, dt, dd")]
      .filter((element) => !element.closest(kept) && !element.closest(".docstring")
              && !element.querySelector(".docstring"))
      .filter((element) => !(glossary && element.matches("td:first-child, td:first-child *")))
      .map(proseOf)
      .filter((text) => /(\b[A-Za-z]{2,}\b.*){3}/s.test(text) && !/[\u4e00-\u9fff]/.test(text))
      .map((text) => text.replace(/\s+/g, " ").trim().slice(0, 80));
  const editionLink = document.querySelector(".edition-switch a");
  done({
    mathjax: Boolean(window.MathJax && MathJax.startup),
    text: text.join(" "),
    maths: maths.length,
    unrendered: maths.filter((m) => !m.querySelector("mjx-container"))
        .map((m) => m.textContent.slice(0, 80)),
    tex_errors: [...document.querySelectorAll("mjx-merror")]
        .map((e) => e.getAttribute("data-mjx-error") || e.textContent),
    broken_images: [...document.images].filter((img) => !(img.naturalWidth > 0))
        .map((img) => img.getAttribute("src")),
    links: [...document.querySelectorAll("a[href]")].map((a) => a.href),
    code_blocks: document.querySelectorAll("div.highlight pre").length,
    copy_buttons: document.querySelectorAll("button.copybtn").length,
    raw_tables: rawTables,
    output_tables: document.querySelectorAll(".cell_output table").length,
    display_maths: displayMaths.length,
    clipped_maths: displayMaths.filter(clipped).map((m) => (m.querySelector(
        "mjx-assistive-mml") || m).textContent.replace(/\s+/g, " ").slice(0, 80)),
    window_width: window.innerWidth,
    language: document.documentElement.lang,
    edition_link: editionLink ? editionLink.href : null,
    english_prose: englishProse,
  });
}, (error) => done({error: String(error)}));
"""


# A page with every fault the table and equation checks look for, next to what
# they must let pass; the server below serves it beside the book.
BROKEN_PAGE_PATH = "__broken_page__.html"
_WIDE = " + ".join(f"x_{{{i}}}^{{2}}" for i in range(60))
BROKEN_PAGE = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>A broken page</title>
<script defer src="/_static/mathjax/tex-chtml.js"></script></head>
<body><article class="bd-article" style="width: 400px; padding: 0 2rem">
<p>| layer | output shape | |---|---| | Dense | $(None, 10)$ |</p>
<div class="cell_output"><pre>| model | nats |
| --- | --- |
| VAE | 96.0 |</pre></div>
<div class="cell_input"><pre>rows = ["| layer |", "|---|"]</pre></div>
<p>In code: <code>|---|---|</code>.</p>
<div class="cell_output"><table><tr><th>a rendered</th><th>table</th></tr></table></div>
<div class="math" style="overflow: hidden">\\[ \\text{{hidden}} {_WIDE} \\]</div>
<div class="math">\\[ \\text{{spills}} {_WIDE} \\]</div>
<div class="math"><div style="overflow-x: auto">\\[ \\text{{scrolls}} {_WIDE} \\]</div></div>
<div class="math">\\[ x = 1 \\]</div>
</article></body></html>
"""


def _find_browser():
    if os.environ.get("CHROMEWEBDRIVER"):
        driver = pathlib.Path(os.environ["CHROMEWEBDRIVER"]) / "chromedriver"
        return shutil.which("google-chrome"), str(driver) if driver.exists() else None
    return next(filter(None, map(shutil.which, BROWSERS)), None), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def site(browser, tmp_path_factory):
    """The built book's html folder (built only when there is a browser to open it)."""
    if os.environ.get("BOOK_HTML"):
        return pathlib.Path(os.environ["BOOK_HTML"])
    returncode, log, folder = build_book(tmp_path_factory)
    if not (folder / "index.html").exists():
        pytest.fail(f"the book did not build (exit {returncode}):\n{log[-3000:]}")
    return folder


@pytest.fixture(scope="module")
def server(site):
    """Serve the book over HTTP on a free local port (file:// blocks some scripts)."""
    handler = functools.partial(_BookHandler, directory=str(site))
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class _BookHandler(http.server.SimpleHTTPRequestHandler):
    """The book's files, and the broken page at BROKEN_PAGE_PATH; no log."""

    def do_GET(self):
        if self.path.lstrip("/") != BROKEN_PAGE_PATH:
            return super().do_GET()
        body = BROKEN_PAGE.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return None

    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A browser that drops a connection (e.g. after a 404) is not an error here."""


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by the system's chromedriver."""
    binary, driver_path = _find_browser()
    if binary is None or driver_path is None:
        reason = ("browser test skipped: needs Chromium and chromedriver on PATH "
                  "(Debian/Ubuntu: apt-get install chromium chromium-driver); "
                  f"found browser={binary}, chromedriver={driver_path}")
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size={},{}".format(*WINDOW),
                     "--disable-background-networking"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(100)  # below Selenium's 120 s HTTP timeout
    driver.set_page_load_timeout(100)
    yield driver
    driver.quit()


def _pages(site):
    return sorted(
        path.relative_to(site).as_posix() for path in site.rglob("*.html")
        if not {"_static", "_sources", "_images"} & set(path.relative_to(site).parts)
    )


@pytest.fixture(scope="module")
def reports(site, server, browser):
    """Open every page once; record what the checks below look at."""
    return {page: _report(browser, server + page) for page in _pages(site)}


def _report(browser, url):
    """What PAGE_REPORT_JS finds on the page at `url`, and its console's errors."""
    from selenium.common.exceptions import WebDriverException

    for _attempt in range(2):  # a second chance for a page slowed by a busy machine
        browser.get_log("browser")  # drop what an earlier attempt or page logged
        try:
            browser.get(url)
            report = browser.execute_async_script(PAGE_REPORT_JS)
        except WebDriverException as error:  # test_every_page_was_opened reports it
            report = {"error": str(error)[:500]}
        if "error" not in report:
            break
    report = {**UNREAD_PAGE, **report}
    report["console"] = [
        entry["message"] for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE"
        and not any(known in entry["message"] for known in KNOWN_CONSOLE_ERRORS)]
    return report


@pytest.mark.slow
def test_every_page_was_opened(site, reports):
    assert len(reports) >= 60, sorted(reports)
    assert {"book/02_gan/theory.html", "zh/book/02_gan/theory.html"} <= set(reports)
    assert len([page for page in reports if page.startswith("zh/")]) * 2 == len(reports)
    assert not {page: r["error"] for page, r in reports.items() if "error" in r}


@pytest.mark.slow
def test_formulas_render_without_a_network(reports):
    problems = {}
    for page, report in reports.items():
        raw = _raw_tex(report["text"])
        if raw or report["unrendered"] or report["tex_errors"]:
            problems[page] = {"raw TeX in visible text": raw,
                              "maths not typeset": report["unrendered"][:5],
                              "TeX errors": report["tex_errors"][:5]}
        if report["maths"] and not report["mathjax"]:
            problems[page] = "has maths but MathJax did not load"
    assert not problems, problems
    assert sum(report["maths"] for report in reports.values()) > 100


@pytest.mark.slow
def test_every_image_loads(reports):
    broken = {page: r["broken_images"] for page, r in reports.items() if r["broken_images"]}
    assert not broken, broken


@pytest.mark.slow
def test_no_javascript_errors(reports):
    errors = {page: r["console"] for page, r in reports.items() if r["console"]}
    assert not errors, errors


@pytest.mark.slow
def test_the_site_root_serves_a_favicon(site):
    """Browsers ask every page without an icon link (the root redirect) for it."""
    icon = site / "favicon.ico"
    assert icon.is_file() and icon.read_bytes()[:4] == b"\x00\x00\x01\x00"


@pytest.mark.slow
def test_internal_links_and_anchors_resolve(site, server, reports):
    ids = _IdIndex(site)
    broken = {}
    for page, report in reports.items():
        for link in report["links"]:
            if link.startswith(server):
                problem = ids.problem(link[len(server):])
                if problem:
                    broken.setdefault(page, []).append(f"{link[len(server):]}: {problem}")
    assert not broken, broken


@pytest.mark.slow
def test_no_raw_markdown_tables(reports):
    """A table shows as a table: no `|---|` rule in prose or in what a cell prints.

    A cell shows a table with `IPython.display.Markdown(text)`, never `print(text)`.
    """
    problems = _raw_table_problems(reports)
    assert not problems, problems


@pytest.mark.slow
def test_markdown_tables_of_cells_render_as_tables(site, reports):
    """Each pipe table a notebook's cells display as Markdown is a `<table>` on its page."""
    expected = {page: tables for page, tables in _markdown_tables_by_page(site).items() if tables}
    assert sum(expected.values()) >= 15, expected  # the check has tables to look for
    problems = _missing_table_problems(expected, reports)
    assert not problems, problems


@pytest.mark.slow
def test_display_equations_fit_or_scroll(reports):
    """At a 1280-pixel window no display equation is cut off: it fits or it scrolls."""
    assert {r["window_width"] for r in reports.values()} == {WINDOW[0]}
    assert sum(r["display_maths"] for r in reports.values()) > 30
    problems = _clipped_equation_problems(reports)
    assert not problems, problems


@pytest.mark.slow
def test_every_page_links_to_itself_in_the_other_edition(server, reports):
    """The language switch: English pages link to zh/<page>, Chinese ones back."""
    pages = [page for page in reports if page.startswith(("book/", "zh/book/"))]
    assert len(pages) >= 60
    problems = {}
    for page in pages:
        chinese = page.startswith("zh/")
        other = page[len("zh/"):] if chinese else "zh/" + page
        language = "zh-CN" if chinese else "en"
        report = reports[page]
        if report["edition_link"] != server + other or report["language"] != language:
            problems[page] = (report["edition_link"], report["language"])
    assert not problems, problems


@pytest.mark.slow
def test_the_language_switch_takes_the_reader_across_and_back(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "zh/book/03_vae/theory.html")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    browser.find_element(By.CSS_SELECTOR, ".edition-switch a").click()
    assert browser.current_url == server + "book/03_vae/theory.html"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    browser.find_element(By.CSS_SELECTOR, ".edition-switch a").click()
    assert browser.current_url == server + "zh/book/03_vae/theory.html"


@pytest.mark.slow
def test_no_chinese_page_shows_english_prose(reports):
    """Every message of the Chinese edition is translated, as a reader sees the page."""
    chinese = {page: r for page, r in reports.items() if page.startswith("zh/book/")}
    assert len(chinese) >= 30
    left = {page: r["english_prose"][:5] for page, r in chinese.items() if r["english_prose"]}
    assert not left, left
    # The check sees English prose where there is some: on the English pages.
    assert sum(bool(r["english_prose"]) for page, r in reports.items()
               if page.startswith("book/")) >= 30


@pytest.mark.slow
def test_the_checks_fail_on_a_broken_page(server, browser):
    """Each of the checks above finds the faults of BROKEN_PAGE, and only those."""
    page = "broken.html"
    report = _report(browser, server + BROKEN_PAGE_PATH)
    assert "error" not in report, report["error"]
    raw = _raw_table_problems({page: report})[page]
    assert raw == ["| layer | output shape | |---|---| | Dense | $(None, 10)$ |",
                   "| model | nats |\n| --- | --- |\n| VAE | 96.0 |"], raw
    assert _raw_tex(report["text"]) == ["$(None, 10)$"]
    assert _missing_table_problems({page: 2}, {page: report}) == {
        page: "cells display 2 Markdown tables, the cell outputs have 1 <table>"}
    assert not _missing_table_problems({page: 1}, {page: report})
    assert report["display_maths"] == 4
    clipped = _clipped_equation_problems({page: report})[page]
    assert [tex[:6] for tex in clipped] == ["hidden", "spills"], clipped


def test_markdown_tables_are_counted_as_the_page_shows_them():
    table = "| a | b |\n|---|:-:|\n| 1 | 2 |\n\nand\n\n| c |\n| --- |\n| 3 |"
    notebook = {"cells": [
        {"cell_type": "markdown", "source": table},
        _cell([{"output_type": "display_data", "data": {"text/markdown": table}}]),
        _cell([{"output_type": "execute_result", "data": {"text/markdown": [table]}}],
              tags=["hide-input"]),
        _cell([{"output_type": "display_data", "data": {"text/markdown": table}}],
              tags=["remove-output"]),
        _cell([{"output_type": "display_data",
                "data": {"text/markdown": table, "text/html": "<table></table>"}}]),
        _cell([{"output_type": "display_data", "data": {"text/markdown": "a\n\n---\n"}}]),
        _cell([{"output_type": "stream", "name": "stdout", "text": table}]),
    ]}
    assert _markdown_tables(notebook) == 4


def _cell(outputs, tags=()):
    return {"cell_type": "code", "source": "", "metadata": {"tags": list(tags)},
            "outputs": outputs}


def _raw_tex(text):
    """The TeX delimiters, and the inline formulas, that `text` shows untypeset."""
    return ([token for token in RAW_TEX if token in text]
            + [match[:40] for match in RAW_INLINE_TEX.findall(text)])


def _raw_table_problems(reports):
    return {page: r["raw_tables"][:5] for page, r in reports.items() if r["raw_tables"]}


def _missing_table_problems(expected, reports):
    found = {page: reports.get(page, UNREAD_PAGE)["output_tables"] for page in expected}
    return {page: f"cells display {tables} Markdown tables, the cell outputs have "
                  f"{found[page]} <table>"
            for page, tables in expected.items() if found[page] < tables}


def _clipped_equation_problems(reports):
    return {page: r["clipped_maths"][:5] for page, r in reports.items() if r["clipped_maths"]}


def _markdown_tables_by_page(site):
    """{page: pipe tables its notebook's shown cells display as Markdown}, both editions."""
    return {f"{edition}{page}": tables
            for edition in ("", "zh/")
            for page, tables in _markdown_tables_of(site / edition / "_sources").items()}


def _markdown_tables_of(sources):
    return {source.relative_to(sources).with_suffix(".html").as_posix():
            _markdown_tables(json.loads(source.read_text(encoding="utf-8")))
            for source in sorted(sources.rglob("*.ipynb"))}


def _markdown_tables(notebook):
    """How many pipe tables the page of `notebook` shows from `text/markdown` outputs."""
    count = 0
    for cell in notebook["cells"]:
        if (cell["cell_type"] != "code"
                or HIDDEN_OUTPUT_TAGS & set(cell.get("metadata", {}).get("tags", []))):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/markdown" in data and not set(RICHER_THAN_MARKDOWN) & set(data):
                markdown = data["text/markdown"]
                text = "".join(markdown) if isinstance(markdown, list) else markdown
                count += len(MARKDOWN_TABLE_RULE.findall(text))
    return count


@pytest.mark.slow
def test_code_cells_have_a_copy_button(reports):
    missing = [page for page, r in reports.items()
               if r["code_blocks"] and r["copy_buttons"] < r["code_blocks"]]
    assert not missing, missing
    assert reports["book/02_gan/dcgan.html"]["copy_buttons"] > 0


@pytest.mark.slow
def test_every_notebook_page_offers_its_ipynb(site, server, reports):
    for edition in ("", "zh/"):
        sources = sorted((site / edition / "_sources").rglob("*.ipynb"))
        assert len(sources) >= 10
        for source in sources:
            page = edition + source.relative_to(
                site / edition / "_sources").with_suffix(".html").as_posix()
            assert server + source.relative_to(site).as_posix() in reports[page]["links"], page


@pytest.mark.slow
def test_screenshots_of_key_pages(site, server, browser, tmp_path_factory):
    """The top of each key page, and its first figure, in light and dark mode."""
    folder = tmp_path_factory.mktemp("screenshots")
    for theme in ("light", "dark"):
        browser.get(server + KEY_PAGES[0])
        browser.execute_script("localStorage.setItem('mode', arguments[0]);"
                               "localStorage.setItem('theme', arguments[0]);", theme)
        for page in KEY_PAGES:
            browser.get(server + page)
            browser.execute_async_script(PAGE_REPORT_JS)
            assert browser.execute_script(
                "return document.documentElement.dataset.theme") == theme
            name = folder / f"{page.replace('/', '_')[:-5]}_{theme}"
            _screenshot(browser, name.with_suffix(".png"))
            if browser.execute_script(
                    "const img = document.querySelector('.cell_output img');"
                    "if (img) { img.scrollIntoView({block: 'center'}); }"
                    "return Boolean(img);"):
                _screenshot(browser, name.with_name(name.name + "_figure.png"))
    browser.execute_script("localStorage.clear();")
    print(f"screenshots in {folder}")


def _screenshot(browser, path):
    assert browser.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000, path


class _IdIndex:
    """Which files exist and which ids each page defines, read once a page."""

    def __init__(self, site):
        self.site = site

    def problem(self, link):
        parts = urllib.parse.urlsplit(link)
        path = urllib.parse.unquote(parts.path)
        target = self.site / (path + "index.html" if path.endswith("/") or not path else path)
        if not target.is_file():
            return "no such file"
        anchor = urllib.parse.unquote(parts.fragment)
        if anchor and target.suffix == ".html" and anchor not in self.ids(target):
            return f"no element with id {anchor!r}"
        return None

    @functools.lru_cache(maxsize=None)
    def ids(self, target):
        collector = _IdCollector()
        collector.feed(target.read_text(encoding="utf-8"))
        return collector.ids


class _IdCollector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attributes.get(key):
                self.ids.add(attributes[key])
