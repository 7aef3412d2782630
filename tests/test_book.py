"""The book builds from stored outputs with warnings as errors (-W -n)."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
# `python -m jupyter_book` does nothing in Jupyter Book 1.x: call its CLI entry point.
JUPYTER_BOOK = "import sys; from jupyter_book.cli.main import main; sys.exit(main())"


def test_book_builds_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", JUPYTER_BOOK, "build", str(ROOT),
         "--path-output", str(tmp_path), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, cwd=ROOT,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    assert (tmp_path / "_build" / "html" / "index.html").exists()
    assert (tmp_path / "_build" / "html" / "book" / "01_background" / "data.html").exists()
