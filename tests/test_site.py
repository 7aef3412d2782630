"""The built book as a reader's browser shows it, with no network.

Every page of the -W -n build (shared with `test_book.py`) is served by a local
HTTP server and opened in headless Chromium through Selenium and the system's
chromedriver (never downloaded). On every page: formulas rendered by the bundled
MathJax (no raw TeX left, no TeX errors), images loaded, internal links and
anchors resolving, no JavaScript errors. Screenshots of key pages land in the
test's temporary folder (printed; see them with `pytest -s`).

Set BOOK_HTML to an existing `_build/html` to test that build instead, and
REQUIRE_BROWSER=1 (CI does) to fail rather than skip without a browser.
"""

import functools
import html.parser
import http.server
import os
import pathlib
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
             "book/03_vae/theory.html")
RAW_TEX = ("\\(", "\\[", "$$")
# Sphinx < 8.2 writes inline scripts added after builder init twice, so the second
# `const THEBE_JS_URL` of sphinx-thebe throws (fixed by sphinx-doc/sphinx#13402;
# Jupyter Book 1.x pins Sphinx < 8). Harmless: the first copy defines it.
KNOWN_CONSOLE_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)

# What a page that could not be read counts as in the checks other than the first.
UNREAD_PAGE = {"mathjax": False, "text": "", "maths": 0, "unrendered": [], "tex_errors": [],
               "broken_images": [], "links": [], "code_blocks": 0, "copy_buttons": 0}
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
  });
}, (error) => done({error: String(error)}));
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
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
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
                     "--disable-dev-shm-usage", "--window-size=1280,900",
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
    from selenium.common.exceptions import WebDriverException

    results = {}
    for page in _pages(site):
        for _attempt in range(2):  # a second chance for a page slowed by a busy machine
            browser.get_log("browser")  # drop what an earlier attempt or page logged
            try:
                browser.get(server + page)
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
        results[page] = report
    return results


@pytest.mark.slow
def test_every_page_was_opened(site, reports):
    assert len(reports) >= 30, sorted(reports)
    assert "book/02_gan/theory.html" in reports
    assert not {page: r["error"] for page, r in reports.items() if "error" in r}


@pytest.mark.slow
def test_formulas_render_without_a_network(reports):
    problems = {}
    for page, report in reports.items():
        raw = [token for token in RAW_TEX if token in report["text"]]
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
@pytest.mark.slow
def test_the_site_root_serves_a_favicon(site):
    """Browsers ask every page without an icon link (the root redirect) for it."""
    icon = site / "favicon.ico"
    assert icon.is_file() and icon.read_bytes()[:4] == b"\x00\x00\x01\x00"


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
def test_code_cells_have_a_copy_button(reports):
    missing = [page for page, r in reports.items()
               if r["code_blocks"] and r["copy_buttons"] < r["code_blocks"]]
    assert not missing, missing
    assert reports["book/02_gan/dcgan.html"]["copy_buttons"] > 0


@pytest.mark.slow
def test_every_notebook_page_offers_its_ipynb(site, server, reports):
    sources = sorted((site / "_sources").rglob("*.ipynb"))
    assert len(sources) >= 10
    for source in sources:
        page = source.relative_to(site / "_sources").with_suffix(".html").as_posix()
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
