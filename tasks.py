#!/usr/bin/env python3
"""The project's commands. Each makes (or reuses) `.venv` and installs what it needs.

    python3 tasks.py build     # render the book from stored outputs into _build/html
    python3 tasks.py test      # unit tests, nbval over every notebook, strict book build
    python3 tasks.py execute [NOTEBOOK ...]   # re-execute notebooks in place, report time/memory
    python3 tasks.py sync      # rewrite every notebook's bootstrap cell from _config.yml

Only the standard library is used here, so a bare Python >= 3.10 with pip suffices.
"""

import hashlib
import os
import pathlib
import subprocess
import sys
import venv

ROOT = pathlib.Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / "companion-install.sha256"
EXTRAS = ".[book,test]"
# `python -m jupyter_book` does nothing in Jupyter Book 1.x: call its CLI entry point.
JUPYTER_BOOK = "import sys; from jupyter_book.cli.main import main; sys.exit(main())"


def _fingerprint():
    text = (ROOT / "pyproject.toml").read_bytes() + EXTRAS.encode()
    return hashlib.sha256(text).hexdigest()


def ensure_venv():
    """Create `.venv` and install the package with its extras, unless current."""
    if not PYTHON.exists():
        print(f"[tasks] creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("[tasks] installing the companion package and its tools into .venv", flush=True)
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-e", EXTRAS],
        cwd=ROOT, check=True,
    )
    STAMP.write_text(_fingerprint())


def run(*args):
    print("[tasks] " + " ".join(str(a) for a in args), flush=True)
    env = dict(os.environ, KERAS_BACKEND="jax", PYDEVD_DISABLE_FILE_VALIDATION="1")
    return subprocess.run([str(a) for a in args], cwd=ROOT, env=env).returncode


def build():
    """Render the book from the notebooks' stored outputs (no execution)."""
    return run(PYTHON, "-c", JUPYTER_BOOK, "build", ".", "--path-output", ".")


def test():
    """Unit tests and docstring examples, nbval over every notebook, the -W -n book build."""
    return run(
        PYTHON, "-m", "pytest", "tests", "companion", "book",
        "--doctest-modules", "--nbval", "--nbval-current-env",
        "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
        "--durations=25", "-ra",
    )


def execute(*notebooks):
    return run(PYTHON, "tools/notebooks.py", "execute", *notebooks)


def sync():
    return run(PYTHON, "tools/notebooks.py", "sync")


COMMANDS = {"build": build, "test": test, "execute": execute, "sync": sync}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    ensure_venv()
    return COMMANDS[argv[0]](*argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
