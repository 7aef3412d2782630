#!/usr/bin/env python3
"""The project's commands. Each makes (or reuses) `.venv` and installs what it needs.

    python3 tasks.py build     # render the book from stored outputs into _build/html:
                               # English at the root, the Chinese edition under zh/
    python3 tasks.py translations  # after editing a page: merge its new English text into
                               # locales/zh_CN (changed messages become fuzzy)
    python3 tasks.py test      # unit tests, nbval over every notebook, strict book build,
                               # then the quick unit tests at the minimum versions
    python3 tasks.py layout [NOTEBOOK ...]  # nbval under another thread layout (taskset -c 0)
    python3 tasks.py quick     # the quick loop: unit tests not marked slow (< 2 minutes)
    python3 tasks.py minimum   # the quick unit tests in .venv-min (declared minimum versions)
    python3 tasks.py constraints  # rewrite constraints-min.txt from pyproject.toml
    python3 tasks.py execute [NOTEBOOK ...]   # re-execute notebooks in place, report time/memory
    python3 tasks.py execute --record NOTEBOOK  # ... and re-record its stored training results
    python3 tasks.py sync      # rewrite every notebook's bootstrap cell from _config.yml

Only the standard library is used here, so a bare Python >= 3.10 with pip suffices.
Tests keep their caches (the reference classifier, JAX's compiled programs) in
the git-ignored `.cache/` (`COMPANION_CACHE_DIR`), never in the user's home.
"""

import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import venv


def _python_of(folder):
    return folder / ("Scripts" if os.name == "nt" else "bin") / (
        "python.exe" if os.name == "nt" else "python")


ROOT = pathlib.Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = _python_of(VENV)
EXTRAS = ".[book,test]"
# The exact versions the stored notebook outputs were made with, installed as pip
# constraints so a new JAX or Keras release cannot change a fresh clone's results
# (`.github/workflows/weekly.yml` tests the newest releases instead).
LOCK = ROOT / "requirements-lock.txt"
# A second environment with every dependency at its declared minimum version.
VENV_MIN = ROOT / ".venv-min"
CONSTRAINTS_MIN = ROOT / "constraints-min.txt"
QUICK = ("-m", "not slow")
# Two pytest workers, each file's tests on one (a notebook's cells share a kernel; a
# module's fixtures are made once): on 2 cores two notebooks at once train more images
# a second than one alone (the book's small XLA operations leave a core idle), and one's
# compilation overlaps the other's training.
PARALLEL = ("-n", "2", "--dist", "loadfile")
NBVAL = ("--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg")


def _fingerprint(*paths, extra=""):
    text = b"".join((ROOT / p).read_bytes() for p in paths) + extra.encode()
    return hashlib.sha256(text).hexdigest()


def _install(folder, fingerprint, *requirements):
    """Create the venv `folder` and pip-install `requirements`, unless current."""
    python, stamp = _python_of(folder), folder / "companion-install.sha256"
    if not python.exists():
        print(f"[tasks] creating {folder}", flush=True)
        venv.EnvBuilder(with_pip=True).create(folder)
    if stamp.exists() and stamp.read_text() == fingerprint:
        return python
    print(f"[tasks] installing the companion package and its tools into {folder.name}",
          flush=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *requirements],
        cwd=ROOT, check=True,
    )
    stamp.write_text(fingerprint)
    return python


def ensure_venv():
    """Create `.venv` and install the package with its extras at the locked versions.

    Reinstalls when `pyproject.toml` or `requirements-lock.txt` changes. Set
    ``COMPANION_UNLOCKED=1`` to install the newest releases instead (the weekly run).
    """
    if os.environ.get("COMPANION_UNLOCKED") == "1":
        _install(VENV, _fingerprint("pyproject.toml", extra=EXTRAS + "unlocked"),
                 "--upgrade", "--upgrade-strategy", "eager", "-e", EXTRAS)
        return
    _install(VENV, _fingerprint("pyproject.toml", LOCK.name, extra=EXTRAS),
             "-c", str(LOCK), "-e", EXTRAS)


def minimum_constraints():
    """The text of `constraints-min.txt`: each dependency pinned to its declared minimum.

    Every entry of `[project] dependencies` in pyproject.toml must read
    ``name>=minimum`` (optionally with an upper bound after a comma).
    """
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    pins = []
    for requirement in re.findall(r'"([^"]+)"', block):
        match = re.match(r"([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+)", requirement)
        if not match:
            raise SystemExit(f"pyproject.toml: dependency {requirement!r} has no minimum (>=)")
        pins.append("==".join(match.groups()))
    return ("# Generated from pyproject.toml by `python3 tasks.py constraints`: every\n"
            "# dependency at its declared minimum. `python3 tasks.py test` runs the quick\n"
            "# unit tests against these versions in .venv-min.\n" + "\n".join(pins) + "\n")


def ensure_minimum_venv():
    """Create `.venv-min`: the package with every dependency at its declared minimum."""
    if not CONSTRAINTS_MIN.exists() or CONSTRAINTS_MIN.read_text() != minimum_constraints():
        raise SystemExit("constraints-min.txt does not match pyproject.toml's dependencies: "
                         "run `python3 tasks.py constraints` and commit the file.")
    fingerprint = _fingerprint("pyproject.toml", CONSTRAINTS_MIN.name, extra=EXTRAS)
    return _install(VENV_MIN, fingerprint, "-c", str(CONSTRAINTS_MIN), "-e", EXTRAS)


def run(*args):
    print("[tasks] " + " ".join(str(a) for a in args), flush=True)
    env = dict(os.environ, KERAS_BACKEND="jax", PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.setdefault("COMPANION_CACHE_DIR", str(ROOT / ".cache"))
    return subprocess.run([str(a) for a in args], cwd=ROOT, env=env).returncode


def build():
    """Render both editions from the notebooks' stored outputs (no execution).

    English in `_build/html`, Chinese in `_build/html/zh` (`tools/editions.py`).
    """
    return run(PYTHON, "tools/editions.py")


def translations():
    """Merge the pages' current English messages into the Chinese catalogues."""
    return run(PYTHON, "tools/translations.py", "update")


def copy_book(destination):
    """Copy `book/` (without build outputs) into the folder `destination`; return the copy."""
    return pathlib.Path(shutil.copytree(
        ROOT / "book", pathlib.Path(destination) / "book",
        ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints")))


def test():
    """Everything CI checks: the full run, then the quick run at the minimum versions.

    nbval executes a copy of `book/` in a temporary folder under `.cache/`, deleted
    afterwards:
    notebooks write files next to themselves (the GIFs of
    `companion.plotting.save_animation`), and a test run must leave the work tree
    as it found it. The copy runs as the original does: the notebooks import the
    installed package and read no file by a path outside `book/`. The root
    `conftest.py` and `pyproject.toml` still apply (`--rootdir`, `-c`).
    """
    # Inside the repository (in the git-ignored cache folder), so each notebook's test
    # ids carry its path: pytest-xdist keeps a file's cells together by that path.
    (ROOT / ".cache").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nbval-", dir=ROOT / ".cache") as folder:
        book = copy_book(folder)
        full = run(
            PYTHON, "-m", "pytest", "--rootdir", ROOT, "-c", ROOT / "pyproject.toml",
            "tests", "companion", book, "--doctest-modules", *NBVAL, *PARALLEL,
            "--durations=25", "-ra",
        )
    return full or minimum()


def layout(*notebooks):
    """nbval over the notebooks (all by default) under another thread layout.

    Another machine sums in another order; so does this one with one thread
    instead of two. The run pins itself to core 0 (`taskset -c 0`; where taskset
    is missing, XLA's multi-threaded Eigen is turned off instead) and starts from
    an empty cache, so the reference classifier is retrained as on a new machine.
    Results of training must then stay within their tolerances
    (`companion.claims.TOLERANCES`); exact outputs must not change at all. At the
    end it prints, for each kind of result, the largest change it measured
    (`companion.claims.spread`): the evidence the tolerances rest on.
    """
    with tempfile.TemporaryDirectory(prefix="companion-layout-") as folder:
        book = copy_book(folder)
        targets = [book / pathlib.Path(n).resolve().relative_to(ROOT / "book")
                   for n in notebooks] or [book]
        os.environ["COMPANION_CACHE_DIR"] = str(pathlib.Path(folder) / "cache")
        one_core = ["taskset", "-c", "0"] if shutil.which("taskset") else []
        if not one_core:
            flags = os.environ.get("XLA_FLAGS", "")
            os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
        log = pathlib.Path(folder) / "claims.jsonl"
        os.environ["COMPANION_CLAIMS_LOG"] = str(log)
        status = run(*one_core, PYTHON, "-m", "pytest", "--rootdir", ROOT,
                     "-c", ROOT / "pyproject.toml", *targets, *NBVAL, "-ra")
        if log.exists():
            print("[tasks] results of training against their stored values, by kind:")
            run(PYTHON, "-c", "import sys; from companion import claims; "
                "print('\\n'.join(claims.spread(sys.argv[1])))", log)
        return status


def quick():
    """Unit tests not marked slow: the loop to run while developing."""
    return run(PYTHON, "-m", "pytest", "tests", *QUICK, "-q")


def minimum():
    """The quick unit tests with every dependency at its declared minimum version."""
    return run(ensure_minimum_venv(), "-m", "pytest", "tests", *QUICK, *PARALLEL, "-q")


def constraints():
    CONSTRAINTS_MIN.write_text(minimum_constraints())
    print(f"[tasks] wrote {CONSTRAINTS_MIN.name}")
    return 0


def execute(*notebooks):
    return run(PYTHON, "tools/notebooks.py", "execute", *notebooks)


def sync():
    return run(PYTHON, "tools/notebooks.py", "sync")


COMMANDS = {"build": build, "translations": translations, "test": test, "layout": layout,
            "quick": quick, "minimum": minimum,
            "constraints": constraints, "execute": execute, "sync": sync}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    ensure_venv()
    return COMMANDS[argv[0]](*argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
