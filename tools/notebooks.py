"""Notebook maintenance: the shared bootstrap cell, in-place execution, conventions.

    python tools/notebooks.py sync                 # rewrite every bootstrap cell
    python tools/notebooks.py execute [NB ...]     # re-execute in place (all by default)
    python tools/notebooks.py execute --record NB  # ... and re-record its stored figures
    python tools/notebooks.py check                # list every convention problem

`execute` runs each notebook (by default all of them, in the reading order of
`_toc.yml`) in a fresh kernel, top to bottom, from its own folder, stores the
outputs (execution counts 1..n) and prints its wall time, the kernel's peak
resident memory and the load average before it started.

The conventions `check` (and `tests/test_notebooks.py`) enforce:

- Every notebook: the first code cell is the bootstrap cell, tagged `remove-cell`
  (hidden in the rendered book, kept for Colab); cells executed top to bottom; no
  stored errors; no model, layer or loss defined; a hidden claim cell (tagged
  `remove-cell`, with an `assert`) if it trains a model or draws a comparison.
  One exception: an implementation exercise's cell (tagged `exercise` or
  `solution`) may define a loss function that the notebook passes to
  `exercises.check` (``check("name", function)``); nothing else is exempt.
  The bootstrap cell never counts as a claim cell.
- Results of training: a cell whose printed figures come out of a training
  run is tagged `trained-output` and `nbval-ignore-output` (nbval does not
  compare its digits, which differ between machines), and a hidden cell after
  it, before the next visible code cell, checks those figures with
  `companion.claims.reproduces(name, value, stored=..., kind=...)`. Every such
  call names its figure with a string literal, unique in the notebook, and has
  a recorded `stored=` value (`execute --record` writes them).
- Every chapter (a folder `book/NN_name/`), the summary chapter included: its
  `index.md` states objectives (a "What you will learn" heading) and has
  exercises (an `{exercise}` directive). The rule has no exceptions, so a reader
  finds the same furniture in every chapter.
- Every page of a chapter (its `index.md`, other Markdown pages and notebooks)
  ends with a "## Summary" section: it is the last Markdown heading of the page
  (headings inside fenced blocks do not count).
- Every model chapter (`MODEL_CHAPTERS`) shows the package's live source: some
  page of the chapter has a `{literalinclude}` of a file under
  `../../companion/`, so the code on the page is the code that runs.
"""

import json
import os
import pathlib
import re
import resource
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

BOOTSTRAP_TEMPLATE = '''\
# Bootstrap (the same in every notebook): in Google Colab, install the companion
# package at this book's version; elsewhere this does nothing.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "git+{url}@v{version}"], check=True)

import companion  # selects Keras' JAX backend

# The compilation cache and the figure style (assigned, so that nothing is printed).
book_defaults = companion.environment.use_book_defaults()'''

# Patterns of code that belongs in `companion`, never in a notebook.
FORBIDDEN = {
    "defines a model, layer or loss class": re.compile(
        r"^\s*class\s+\w+\s*\(\s*(keras\.)?(layers\.)?(Model|Layer|Sequential|Loss|"
        r"losses\.Loss|Callback|callbacks\.Callback)\b", re.M),
    "defines a loss function": re.compile(r"^\s*def\s+\w*loss\w*\s*\(", re.M),
    "builds a network with keras.layers": re.compile(
        r"(keras\.layers\.|layers\.)(Dense|Conv2D|Conv2DTranspose|LSTM|GRU|SimpleRNN|"
        r"ConvLSTM2D)\s*\("),
}

# Cells of an implementation exercise: the reader's skeleton and the folded solution.
EXERCISE_TAGS = ("exercise", "solution")
DEFINED_FUNCTION = re.compile(r"^\s*def\s+(\w+)\s*\(", re.M)
CHECKED_FUNCTION = re.compile(r"\bcheck\(\s*[\"'][\w]+[\"']\s*,\s*(\w+)\s*\)")

# Code that trains a model or draws a comparison: such a notebook needs a claim cell.
EXPERIMENT = re.compile(r"\.fit\(|\bcomparison\.|\btrain_family\(")
NBVAL_DIRECTIVE = re.compile(r"^\s*#\s*NBVAL_\w+", re.M)

HIDDEN = "remove-cell"  # the cell tag that hides a cell in the rendered book
TRAINED = "trained-output"  # the cell prints results of training (compared with tolerance)
IGNORE_OUTPUT = "nbval-ignore-output"
# A call of companion.claims.reproduces, up to the literal of its stored value.
CLAIM_CALL = re.compile(r'(reproduces\(\s*"(?P<name>[^"]+)".*?stored=)(?P<stored>[^,)\s]+)', re.S)
REPRODUCES = re.compile(r"\breproduces\(")
# Chapters about one model family: each must include the package's live source.
MODEL_CHAPTERS = ("02_gan", "03_vae", "04_rnn", "08_diffusion")
CHAPTER = re.compile(r"^\d\d_\w+$")
OBJECTIVES = re.compile(r"^#+\s+What you will learn\s*$", re.M)
EXERCISE = re.compile(r"^\s*(`{3,}|:{3,})\{exercise\}", re.M)
LIVE_SOURCE = re.compile(r"^\s*(`{3,}|:{3,})\{literalinclude\}\s+(\.\./)+companion/", re.M)
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def repository_url():
    """The repository URL, kept in one place: `_config.yml`."""
    text = (ROOT / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", text, re.M)
    if not match:
        raise SystemExit("_config.yml has no repository.url")
    return match.group(1).strip("\"'")


def package_version():
    text = (ROOT / "companion" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def bootstrap_source():
    return BOOTSTRAP_TEMPLATE.format(url=repository_url(), version=package_version())


def all_notebooks():
    """Every notebook of the book in reading order (that of `_toc.yml`), then any
    notebook the table of contents does not list, sorted."""
    found = sorted(
        p for p in BOOK.rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts
    )
    toc = ROOT / "_toc.yml"
    names = re.findall(r"file:\s*(\S+)", toc.read_text()) if toc.exists() else []
    listed = [ROOT / f"{name}.ipynb" for name in names]
    return [p for p in listed if p in found] + [p for p in found if p not in listed]


def code_cells(notebook):
    return [c for c in notebook["cells"] if c["cell_type"] == "code"]


def source(cell):
    text = cell["source"]
    return "".join(text) if isinstance(text, list) else text


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def is_bootstrap_cell(cell):
    return cell["cell_type"] == "code" and source(cell).startswith("# Bootstrap")


def is_claim_cell(cell):
    """A hidden cell (``remove-cell`` tag) that asserts what the text concludes.

    The bootstrap cell is hidden too, but it is never a claim cell.
    """
    if is_bootstrap_cell(cell):
        return False
    return HIDDEN in tags(cell) and bool(
        re.search(r"^\s*assert\b", source(cell), re.M) or REPRODUCES.search(source(cell)))


def trained_output_problems(cells):
    """Problems with the cells that print results of training and their checks."""
    problems, names = [], []
    for index, cell in enumerate(cells):
        text = source(cell)
        calls = list(CLAIM_CALL.finditer(text))
        if len(calls) != len(REPRODUCES.findall(text)):
            problems.append(f"code cell {index + 1}: every reproduces(...) call needs a "
                            "string literal name first and a stored= value")
        for call in calls:
            names.append(call["name"])
            if call["stored"] == "None":
                problems.append(f"code cell {index + 1}: {call['name']!r} has no stored "
                                "value (run `python3 tasks.py execute --record NOTEBOOK`)")
        if TRAINED not in tags(cell):
            continue
        if IGNORE_OUTPUT not in tags(cell):
            problems.append(f"code cell {index + 1} is tagged {TRAINED} but not "
                            f"{IGNORE_OUTPUT} (run `python3 tasks.py sync`)")
        following = []
        for later in cells[index + 1:]:
            if HIDDEN not in tags(later):
                break
            following.append(later)
        if not any(REPRODUCES.search(source(c)) for c in following):
            problems.append(f"code cell {index + 1} prints results of training, but no "
                            "hidden cell right after it checks them with reproduces(...)")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        problems.append(f"reproduces(...) names used twice: {repeated}")
    return problems


def checked_functions(cells):
    """Names of the functions the notebook passes to ``exercises.check``."""
    return {match.group(1) for cell in cells for match in CHECKED_FUNCTION.finditer(source(cell))}


def is_exercise_loss(cell, what, checked):
    """Whether `cell` is an exercise or solution that may define its loss function.

    Only the rule against loss functions is lifted, only in cells tagged
    ``exercise`` or ``solution``, and only if every function the cell defines
    is passed to ``check(...)`` somewhere in the notebook.
    """
    defined = set(DEFINED_FUNCTION.findall(source(cell)))
    return (what == "defines a loss function"
            and any(tag in tags(cell) for tag in EXERCISE_TAGS)
            and bool(defined) and defined <= checked)


def convention_problems(path):
    """List the ways a notebook breaks the book's conventions (empty if none)."""
    notebook = json.loads(pathlib.Path(path).read_text())
    cells = code_cells(notebook)
    problems = []
    if not cells or source(cells[0]) != bootstrap_source():
        problems.append("the first code cell is not the bootstrap cell "
                        "(run `python3 tasks.py sync`)")
    elif HIDDEN not in tags(cells[0]):
        problems.append(f"the bootstrap cell is not hidden (tag it {HIDDEN}: "
                        "run `python3 tasks.py sync`)")
    checked = checked_functions(cells)
    counts = [c.get("execution_count") for c in cells]
    if counts != list(range(1, len(cells) + 1)):
        problems.append(f"not executed top to bottom: execution counts {counts}")
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(f"code cell {index + 1} stored an error")
        if source(cell).rstrip().endswith(";"):
            problems.append(f"code cell {index + 1} ends with ';' (nbval ignores it: "
                            "assign the value instead, e.g. `figure = ...`)")
        for what, pattern in FORBIDDEN.items():
            if pattern.search(source(cell)) and not is_exercise_loss(cell, what, checked):
                problems.append(f"code cell {index + 1} {what}; it belongs in companion")
        if NBVAL_DIRECTIVE.search(source(cell)):
            problems.append(f"code cell {index + 1} has a visible nbval comment; use the "
                            "cell tag (e.g. nbval-ignore-output) instead")
    problems += trained_output_problems(cells)
    experiments = any(EXPERIMENT.search(source(cell)) for cell in cells)
    if experiments and not any(is_claim_cell(cell) for cell in cells):
        problems.append("trains a model or draws a comparison but has no claim cell "
                        "(a code cell tagged remove-cell that asserts the conclusions)")
    return problems


def markdown_text(path):
    """The Markdown of a page: a `.md` file, or a notebook's Markdown cells."""
    path = pathlib.Path(path)
    if path.suffix != ".ipynb":
        return path.read_text()
    notebook = json.loads(path.read_text())
    return "\n\n".join(source(c) for c in notebook["cells"] if c["cell_type"] == "markdown")


def headings(text):
    """The Markdown headings of `text` as (level, title), outside fenced blocks."""
    found, fence = [], None
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None and line.strip().startswith(fence) and not line.strip(fence[0]).strip():
            fence = None
        elif fence is None and (match := HEADING.match(line)):
            found.append((len(match.group(1)), match.group(2)))
    return found


def page_problems(path):
    """List the ways a chapter page breaks the conventions: it must end with a summary."""
    found = headings(markdown_text(path))
    if not found or found[-1] != (2, "Summary"):
        last = f"'{found[-1][1]}'" if found else "none"
        return [f"does not end with a '## Summary' section (last heading: {last})"]
    return []


def chapters():
    return sorted(p for p in BOOK.iterdir() if p.is_dir() and CHAPTER.match(p.name))


def chapter_pages(folder):
    return sorted(p for p in pathlib.Path(folder).iterdir()
                  if p.suffix in (".md", ".ipynb") and p.is_file())


def chapter_problems(folder):
    """List the ways a chapter's index and pages break the conventions."""
    folder = pathlib.Path(folder)
    index = folder / "index.md"
    if not index.is_file():
        return ["has no index.md"]
    text = index.read_text()
    problems = []
    if not OBJECTIVES.search(text):
        problems.append("index.md states no objectives (a 'What you will learn' heading)")
    if not EXERCISE.search(text):
        problems.append("index.md has no exercises (an {exercise} directive)")
    if folder.name in MODEL_CHAPTERS and not any(
            LIVE_SOURCE.search(markdown_text(page)) for page in chapter_pages(folder)):
        problems.append("no page includes the package's live source "
                        "(a {literalinclude} of ../../companion/...)")
    return problems


def all_problems():
    """Every convention problem in the book, as 'path: problem' lines."""
    lines = []
    for path in all_notebooks():
        lines += [f"{path.relative_to(ROOT)}: {p}" for p in convention_problems(path)]
    for folder in chapters():
        lines += [f"{folder.relative_to(ROOT)}: {p}" for p in chapter_problems(folder)]
        for page in chapter_pages(folder):
            lines += [f"{page.relative_to(ROOT)}: {p}" for p in page_problems(page)]
    return lines


def sync():
    """Make every notebook's first code cell the bootstrap cell, hidden, and give
    every `trained-output` cell the tag that keeps its digits out of nbval."""
    wanted = bootstrap_source()
    for path in all_notebooks():
        notebook = json.loads(path.read_text())
        cells = code_cells(notebook)
        untagged = [c for c in cells if TRAINED in tags(c) and IGNORE_OUTPUT not in tags(c)]
        for cell in untagged:
            cell["metadata"]["tags"] = tags(cell) + [IGNORE_OUTPUT]
        if cells and "Bootstrap" in source(cells[0]):
            if source(cells[0]) == wanted and HIDDEN in tags(cells[0]) and not untagged:
                continue
            cells[0]["source"] = wanted
            cells[0].setdefault("metadata", {})
            cells[0]["metadata"]["tags"] = [HIDDEN] + [t for t in tags(cells[0]) if t != HIDDEN]
        else:
            notebook["cells"].insert(0, _new_code_cell(wanted))
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        print(f"synced {path.relative_to(ROOT)}")


def _new_code_cell(text):
    return {"cell_type": "code", "execution_count": None, "metadata": {"tags": [HIDDEN]},
            "outputs": [], "source": text}


def execute_one(path):
    """Execute one notebook in place (called in a child process)."""
    import nbclient
    import nbformat

    path = pathlib.Path(path)
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=1800, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    nbformat.write(notebook, path)


def record_stored(path, record_file):
    """Rewrite the ``stored=`` literals of a notebook's reproduces(...) calls with
    the figures its run wrote to `record_file` (one JSON object a line)."""
    import nbformat

    from companion.claims import stored_literal

    recorded = {}
    for line in pathlib.Path(record_file).read_text().splitlines():
        entry = json.loads(line)
        if entry["name"] in recorded:
            raise SystemExit(f"{path}: reproduces({entry['name']!r}, ...) ran twice; "
                             "each figure needs its own name")
        recorded[entry["name"]] = entry["value"]
    notebook = nbformat.read(path, as_version=4)
    used = set()

    def replace(call):
        if call["name"] not in recorded:
            raise SystemExit(f"{path}: reproduces({call['name']!r}, ...) did not run")
        used.add(call["name"])
        return call.group(1) + stored_literal(recorded[call["name"]])

    for cell in code_cells(notebook):
        cell["source"] = CLAIM_CALL.sub(replace, source(cell))
    if set(recorded) - used:
        raise SystemExit(f"{path}: no literal reproduces(...) call for "
                         f"{sorted(set(recorded) - used)}")
    nbformat.write(notebook, path)
    return recorded


def execute(paths, record=False):
    """Execute notebooks one by one, each in a fresh process; report time and memory.

    Each row also gives the 1-minute load average before the notebook started:
    a load near or above the number of cores means other processes shared the
    CPU, and the wall time is longer than the machine's.

    With `record`, the hidden reproduces(...) checks record their figures instead
    of comparing them, and each notebook's ``stored=`` values are rewritten with
    this run's (for a change of result that is meant; review the diff).
    """
    from companion.claims import RECORD_VARIABLE

    paths = [pathlib.Path(p).resolve() for p in paths] or all_notebooks()
    total, failed = 0.0, []
    print(f"{'notebook':48s} {'wall s':>8s} {'peak MiB':>9s} {'load':>6s}   "
          f"({os.cpu_count()} cores)")
    for path in paths:
        load = os.getloadavg()[0]
        environment = dict(os.environ)
        record_file = pathlib.Path(tempfile.gettempdir()) / f"record-{os.getpid()}-{path.stem}.jsonl"
        record_file.unlink(missing_ok=True)
        if record:
            environment[RECORD_VARIABLE] = str(record_file)
        start = time.perf_counter()
        child = subprocess.run(
            [sys.executable, __file__, "_execute_one", str(path)],
            capture_output=True, text=True, env=environment,
        )
        wall = time.perf_counter() - start
        total += wall
        peak = _peak_mib(child.stdout)
        name = str(path.relative_to(ROOT))
        status = "" if child.returncode == 0 else "  FAILED"
        print(f"{name:48s} {wall:8.1f} {peak:9.0f} {load:6.2f}{status}", flush=True)
        if child.returncode:
            failed.append(name)
            print(child.stderr[-3000:], file=sys.stderr)
        elif record:
            recorded = record_stored(path, record_file) if record_file.exists() else {}
            print(f"  recorded {len(recorded)} stored figures", flush=True)
        record_file.unlink(missing_ok=True)
    print(f"{'total':48s} {total:8.1f}")
    return 1 if failed else 0


def _peak_mib(stdout):
    match = re.search(r"PEAK_KIB=(\d+)", stdout)
    return int(match.group(1)) / 1024 if match else float("nan")


def main(argv):
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "sync":
        sync()
        return 0
    if command == "execute":
        record = "--record" in args
        return execute([a for a in args if a != "--record"], record=record)
    if command == "check":
        problems = all_problems()
        print("\n".join(problems) or "no problems")
        return 1 if problems else 0
    if command == "_execute_one":
        execute_one(args[0])
        # The kernel is our reaped child: its peak RSS is RUSAGE_CHILDREN's.
        print(f"PEAK_KIB={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
