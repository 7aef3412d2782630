#!/usr/bin/env python3
"""The project's commands. Each makes (or reuses) `.venv` and installs what it needs.

    python3 tasks.py build     # render the book from stored outputs into _build/html
    python3 tasks.py test      # unit tests, nbval over every notebook, strict book build,
                               # then the quick unit tests at the minimum versions
    python3 tasks.py quick     # the quick loop: unit tests not marked slow (< 2 minutes)
    python3 tasks.py minimum   # the quick unit tests in .venv-min (declared minimum versions)
    python3 tasks.py constraints  # rewrite constraints-min.txt from pyproject.toml
    python3 tasks.py execute [NOTEBOOK ...]   # re-execute notebooks in place, report time/memory
    python3 tasks.py sync      # rewrite every notebook's bootstrap cell from _config.yml

Only the standard library is used here, so a bare Python >= 3.10 with pip suffices.
Tests keep their caches (the reference classifier, JAX's compiled programs) in
the git-ignored `.cache/` (`COMPANION_CACHE_DIR`), never in the user's home.
"""

import hashlib
import os
import pathlib
import re
import subprocess
import sys
import venv


def _python_of(folder):
    return folder / ("Scripts" if os.name == "nt" else "bin") / (
        "python.exe" if os.name == "nt" else "python")


ROOT = pathlib.Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = _python_of(VENV)
EXTRAS = ".[book,test]"
# A second environment with every dependency at its declared minimum version.
VENV_MIN = ROOT / ".venv-min"
CONSTRAINTS_MIN = ROOT / "constraints-min.txt"
QUICK = ("-m", "not slow")
# `python -m jupyter_book` does nothing in Jupyter Book 1.x: call its CLI entry point.
JUPYTER_BOOK = "import sys; from jupyter_book.cli.main import main; sys.exit(main())"


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
    """Create `.venv` and install the package with its extras, unless current."""
    _install(VENV, _fingerprint("pyproject.toml", extra=EXTRAS), "-e", EXTRAS)


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
    """Render the book from the notebooks' stored outputs (no execution)."""
    return run(PYTHON, "-c", JUPYTER_BOOK, "build", ".", "--path-output", ".")


def test():
    """Everything CI checks: the full run, then the quick run at the minimum versions."""
    full = run(
        PYTHON, "-m", "pytest", "tests", "companion", "book",
        "--doctest-modules", "--nbval", "--nbval-current-env",
        "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
        "--durations=25", "-ra",
    )
    return full or minimum()


def quick():
    """Unit tests not marked slow: the loop to run while developing."""
    return run(PYTHON, "-m", "pytest", "tests", *QUICK, "-q")


def minimum():
    """The quick unit tests with every dependency at its declared minimum version."""
    return run(ensure_minimum_venv(), "-m", "pytest", "tests", *QUICK, "-q")


def constraints():
    CONSTRAINTS_MIN.write_text(minimum_constraints())
    print(f"[tasks] wrote {CONSTRAINTS_MIN.name}")
    return 0


def execute(*notebooks):
    return run(PYTHON, "tools/notebooks.py", "execute", *notebooks)


def sync():
    return run(PYTHON, "tools/notebooks.py", "sync")


COMMANDS = {"build": build, "test": test, "quick": quick, "minimum": minimum,
            "constraints": constraints, "execute": execute, "sync": sync}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    ensure_venv()
    return COMMANDS[argv[0]](*argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
