"""The Colab path, tested offline: the bootstrap cell and the launch buttons.

The bootstrap cell of a committed notebook runs as Colab runs it: in a fresh
virtual environment, with `google.colab` imported, installing the package with
pip from git. Two substitutions keep it offline: the repository URL becomes
this checkout (`git+file://...`) and the version tag its HEAD commit, so what is
tested is what is committed. The fresh environment sees the already-installed
dependencies (keras, jax, ...) through a `.pth` file, but not the editable
install of this package, and pip runs with `--no-index` and without build
isolation (Colab would download setuptools; here it is already present).
"""

import html.parser
import json
import os
import pathlib
import re
import site
import subprocess
import sys
import venv

import pytest
import yaml

from test_book import build_book

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = "book/01_background/data.ipynb"
FIRST_CELLS = 4  # bootstrap, imports and parameters, environment, loading the data
INSTALL = re.compile(r'"git\+(?P<url>[^"@]+)@v(?P<version>[^"]+)"')

HARNESS = """
import json, sys
import google.colab  # a Colab runtime has imported it before the first cell
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
for source in json.load(open(sys.argv[1])):
    shell.run_cell(source).raise_error()
import companion, keras
print("RESULT", json.dumps({"file": companion.__file__, "version": companion.__version__,
                            "backend": keras.backend.backend()}))
"""


def _git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def _config():
    return yaml.safe_load((ROOT / "_config.yml").read_text())


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A fresh environment, a `google.colab` stand-in, and the cells to run."""
    folder = tmp_path_factory.mktemp("colab")
    environment = folder / "venv"
    venv.EnvBuilder(with_pip=False).create(environment)
    python = environment / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (pathlib.Path(purelib) / "installed.pth").write_text(str(_installed_without_companion(folder)))
    stand_in = folder / "stand_in" / "google" / "colab"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text('"""Stand-in for the Colab runtime module."""\n')
    # jax imports google.colab.output when it sees Colab (for its debugger UI).
    (stand_in / "output.py").write_text('"""Stand-in: Colab\'s output widgets."""\n')
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("KERAS_", "COMPANION_", "PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(PYTHONPATH=str(folder / "stand_in"), KERAS_HOME=str(folder / "keras"),
               COMPANION_CACHE_DIR=str(folder / "cache"), COMPANION_JAX_CACHE="0",
               PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    return {"folder": folder, "python": python, "env": env}


def _installed_without_companion(folder):
    """A folder that mirrors this environment's packages, minus the editable companion."""
    mirror = folder / "installed"
    mirror.mkdir()
    for source in site.getsitepackages():
        for entry in pathlib.Path(source).iterdir():
            name = entry.name
            if (name.startswith(("__editable__", "generative_images_companion"))
                    or name.endswith(".pth") or (mirror / name).exists()):
                continue
            (mirror / name).symlink_to(entry)
    return mirror


def _committed_cells(count):
    """The first code cells of the committed notebook, install pointed at HEAD."""
    notebook = json.loads(_git("show", f"HEAD:{NOTEBOOK}"))
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    match = INSTALL.search(cells[0])
    assert match, cells[0]
    assert match["url"] == _config()["repository"]["url"]
    head = _git("rev-parse", "HEAD").strip()
    cells[0] = cells[0].replace(match[0], f'"git+file://{ROOT}@{head}"')
    return cells[:count]


@pytest.mark.slow
def test_bootstrap_cell_installs_the_package_and_the_notebook_runs(colab):
    cells = colab["folder"] / "cells.json"
    cells.write_text(json.dumps(_committed_cells(FIRST_CELLS)))
    harness = colab["folder"] / "harness.py"
    harness.write_text(HARNESS)
    result = subprocess.run([colab["python"], harness, cells], cwd=colab["folder"],
                            env=colab["env"], capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    report = json.loads(log.split("RESULT ", 1)[1].splitlines()[0])
    # The package came from pip's install into the fresh environment, not this checkout.
    assert report["file"].startswith(str(colab["folder"] / "venv")), report
    assert report["backend"] == "jax"
    assert "train: (9000, 28, 28, 1) float32" in result.stdout


@pytest.mark.slow
def test_import_after_keras_chose_another_backend_says_what_to_do(colab):
    """A Colab runtime may have imported keras with TensorFlow: the error must help."""
    keras_home = pathlib.Path(colab["env"]["KERAS_HOME"])
    keras_home.mkdir(exist_ok=True)
    (keras_home / "keras.json").write_text(json.dumps({"backend": "numpy"}))
    result = subprocess.run([sys.executable, "-c", "import keras; import companion"],
                            cwd=colab["folder"], env=dict(colab["env"], PYTHONPATH=str(ROOT)),
                            capture_output=True, text=True, timeout=300)
    (keras_home / "keras.json").unlink()
    assert result.returncode != 0
    assert "ImportError" in result.stderr, result.stderr[-2000:]
    assert "KERAS_BACKEND" in result.stderr, result.stderr[-2000:]


@pytest.mark.slow
def test_colab_buttons_open_the_page_notebook(tmp_path_factory):
    """Each notebook page of both editions launches its own notebook, at a path that exists."""
    returncode, log, html = build_book(tmp_path_factory)
    if not (html / "index.html").exists():
        pytest.fail(f"the book did not build (exit {returncode}):\n{log[-3000:]}")
    config = _config()
    owner_repo = config["repository"]["url"].removeprefix("https://github.com/")
    prefix = (f"{config['launch_buttons']['colab_url']}/github/{owner_repo}/blob/"
              f"{config['repository']['branch']}/")
    notebooks = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "book").rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    for notebook in notebooks:
        for edition in (html, html / "zh"):
            links = _links(edition / notebook.replace(".ipynb", ".html"))
            colab_links = {link for link in links if link.startswith("https://colab.")}
            assert colab_links == {prefix + notebook}, (edition, notebook, colab_links)
        assert (ROOT / notebook).is_file()
    markdown_page = _links(html / "book" / "intro.html")
    assert not [link for link in markdown_page if link.startswith("https://colab.")]


def _links(page):
    collector = _LinkCollector()
    collector.feed(page.read_text(encoding="utf-8"))
    return collector.links


class _LinkCollector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.links.append(href)
