"""The GitHub workflows are valid and pass zizmor's audit, offline.

`check-jsonschema` carries GitHub's workflow schema inside the package, and
`zizmor --offline` audits without the network (unpinned actions, credentials
persisted by checkout, excessive permissions, template injection, ...).
"""

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = pathlib.Path(sys.executable).parent


def _tool(name):
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]' installs it)")
    return path


def _zizmor(*paths):
    return subprocess.run(
        [_tool("zizmor"), "--offline", "--min-severity", "medium",
         "--config", str(ROOT / "zizmor.yml"), *map(str, paths)],
        capture_output=True, text=True, cwd=ROOT,
    )


def test_the_three_workflows_exist():
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["book.yml", "ci.yml", "weekly.yml"]


def test_workflows_match_the_github_schema():
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
         *map(str, sorted(WORKFLOWS.glob("*.yml")))],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing():
    result = _zizmor(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout, result.stdout


def test_zizmor_would_catch_an_unpinned_third_party_action(tmp_path):
    """The audit really runs, and the tag-pin exemption covers actions/* only."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\npermissions: {}\njobs:\n  job:\n    name: job\n"
        "    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: browser-actions/setup-chrome@v1\n"
    )
    result = _zizmor(bad)
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout, result.stdout


def test_ci_installs_the_lock_file_and_runs_the_readme_command():
    ci = (WORKFLOWS / "ci.yml").read_text()
    assert "-r requirements-lock.txt" in ci
    assert "python3 tasks.py test" in ci
    assert 'python-version: "3.11"' in ci and "cache: pip" in ci
    book = (WORKFLOWS / "book.yml").read_text()
    assert "actions/upload-pages-artifact@" in book and "actions/deploy-pages@" in book
    weekly = (WORKFLOWS / "weekly.yml").read_text()
    assert "schedule:" in weekly and "requirements-lock.txt" not in weekly.split("steps:")[1]


def test_lock_file_pins_every_package():
    lines = [line for line in (ROOT / "requirements-lock.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    assert len(lines) > 50
    assert all("==" in line for line in lines), [l for l in lines if "==" not in l]
    names = {line.split("==")[0].lower() for line in lines}
    assert {"keras", "jax", "jupyter-book", "pytest", "selenium"} <= names


def test_the_readme_commands_install_the_locked_versions(monkeypatch):
    # tasks.py installs with the lock file as pip constraints and reinstalls when
    # it changes; the weekly workflow opts out to test the newest releases.
    import tasks

    calls = []
    monkeypatch.setattr(tasks, "_install", lambda folder, fingerprint, *requirements:
                        calls.append((fingerprint, requirements)))
    monkeypatch.delenv("COMPANION_UNLOCKED", raising=False)
    tasks.ensure_venv()
    fingerprint, requirements = calls[-1]
    assert requirements[:2] == ("-c", str(tasks.LOCK)) and tasks.LOCK.name == "requirements-lock.txt"
    assert fingerprint == tasks._fingerprint("pyproject.toml", "requirements-lock.txt",
                                             extra=tasks.EXTRAS)
    monkeypatch.setenv("COMPANION_UNLOCKED", "1")
    tasks.ensure_venv()
    assert "-c" not in calls[-1][1] and "--upgrade" in calls[-1][1]
    weekly = (WORKFLOWS / "weekly.yml").read_text()
    assert 'COMPANION_UNLOCKED: "1"' in weekly
