"""Citations, the bibliography and the errata appendix hold together.

- every entry of `references.bib` is well formed and cited somewhere in `book/`;
- every ``{cite...}`key` `` in `book/` (Markdown pages and notebook Markdown cells)
  names an entry of `references.bib`;
- the errata entries are numbered E1, E2, ... without gaps, each has at least one
  link, the summary table's total matches, and every ``{doc}`` link in the errata
  and the other pages of this test's scope resolves to a page of the book;
- every link to a test file points into this repository's `tests/` folder and to a
  file that exists.

A ``{doc}`` target that does not exist yet is tolerated only if it is one of the
book's planned pages (the fixed layout every chapter follows): those are reported
with ``pytest.skip`` until the chapter lands, after which the test is strict. Any
other missing target fails at once. Standard library and pytest only.
"""

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
BIB = ROOT / "references.bib"
ERRATA = BOOK / "appendix" / "errata.md"

# Pages whose {doc} links this test checks (the others are checked by the strict
# book build): the errata, the FAQ, the summary and the bibliography page.
DOC_LINK_SCOPE = (
    "appendix/errata.md",
    "appendix/bibliography.md",
    "06_faq/index.md",
    "06_faq/faq.ipynb",
    "07_summary/index.md",
)

# The book's fixed page layout (see CONTRIBUTING.md); a link to one of these may
# precede the page itself.
PLANNED_PAGES = {
    "book/intro",
    "book/01_background/index", "book/01_background/data",
    "book/01_background/generative_modelling",
    "book/02_gan/index", "book/02_gan/theory", "book/02_gan/dcgan",
    "book/03_vae/index", "book/03_vae/theory", "book/03_vae/conv_vae",
    "book/03_vae/rate_distortion",
    "book/04_rnn/index", "book/04_rnn/theory", "book/04_rnn/row_models",
    "book/04_rnn/video",
    "book/05_analysis/index", "book/05_analysis/gan_dynamics",
    "book/05_analysis/vae_rnn_diagnostics", "book/05_analysis/comparison",
    "book/06_faq/index", "book/06_faq/faq",
    "book/07_summary/index",
    "book/appendix/errata", "book/appendix/bibliography", "book/appendix/api",
    "book/appendix/performance", "book/appendix/command_line",
}

CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
DOC = re.compile(r"\{doc\}`([^`]+)`")
BIB_ENTRY = re.compile(r"^@(\w+)\s*\{\s*([^,\s]+)\s*,", re.M)
ERRATA_HEADING = re.compile(r"^### (E(\d+))\b.*$", re.M)
MARKDOWN_LINK = re.compile(r"\]\((\S+?)\)")


def _markdown_of(path):
    """The Markdown text of a page: the file, or a notebook's Markdown cells."""
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    notebook = json.loads(path.read_text(encoding="utf-8"))
    parts = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            source = cell["source"]
            parts.append("".join(source) if isinstance(source, list) else source)
    return "\n\n".join(parts)


def _book_pages():
    return sorted(
        p for p in BOOK.rglob("*")
        if p.suffix in (".md", ".ipynb")
        and "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts
    )


def _bib_entries():
    """(type, key, body) for every entry of references.bib."""
    text = BIB.read_text(encoding="utf-8")
    matches = list(BIB_ENTRY.finditer(text))
    entries = []
    for match, following in zip(matches, matches[1:] + [None]):
        end = following.start() if following else len(text)
        entries.append((match.group(1).lower(), match.group(2), text[match.end():end]))
    return entries


def _cited_keys():
    """{key: [pages citing it]} over the whole book."""
    cited = {}
    for page in _book_pages():
        for group in CITE.findall(_markdown_of(page)):
            for key in group.split(","):
                cited.setdefault(key.strip(), []).append(str(page.relative_to(ROOT)))
    return cited


def _repository_url():
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    match = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", text, re.M)
    assert match, "_config.yml has no repository.url"
    return match.group(1).strip("\"'").rstrip("/")


def _doc_target(link, page):
    """The docname a {doc} link points to, e.g. 'book/02_gan/dcgan'."""
    match = re.search(r"<([^>]+)>\s*$", link)
    target = (match.group(1) if match else link).strip()
    if target.startswith("/"):
        return target.lstrip("/")
    return (page.parent / target).resolve().relative_to(ROOT).as_posix()


def _page_exists(docname):
    return any((ROOT / f"{docname}{suffix}").exists() for suffix in (".md", ".ipynb"))


def _errata_entries():
    """[(label, number, body)] of the errata, in order."""
    text = ERRATA.read_text(encoding="utf-8")
    headings = list(ERRATA_HEADING.finditer(text))
    entries = []
    for heading, following in zip(headings, headings[1:] + [None]):
        end = following.start() if following else len(text)
        body = text[heading.end():end].split("\n## ")[0]
        entries.append((heading.group(1), int(heading.group(2)), body))
    return entries


# Bibliography ----------------------------------------------------------------------


def test_bibliography_entries_are_unique_and_complete():
    entries = _bib_entries()
    assert len(entries) >= 36, f"only {len(entries)} entries in references.bib"
    keys = [key for _, key, _ in entries]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert not duplicates, f"duplicate keys: {duplicates}"
    for kind, key, body in entries:
        for field in ("author", "title", "year"):
            assert re.search(rf"^\s*{field}\s*=", body, re.M), f"{key} has no {field}"
        venue = {"article": "journal", "inproceedings": "booktitle"}.get(kind)
        if venue:
            assert re.search(rf"^\s*{venue}\s*=", body, re.M), f"{key} has no {venue}"
        year = re.search(r"^\s*year\s*=\s*\{(\d{4})\}", body, re.M)
        assert year and 1950 <= int(year.group(1)) <= 2030, f"{key}: bad year"


def test_every_bibliography_entry_is_cited_in_the_book():
    cited = _cited_keys()
    uncited = sorted(key for _, key, _ in _bib_entries() if key not in cited)
    assert not uncited, f"entries of references.bib cited nowhere in book/: {uncited}"


def test_every_citation_in_the_book_is_in_the_bibliography():
    known = {key for _, key, _ in _bib_entries()}
    unknown = {key: pages for key, pages in _cited_keys().items() if key not in known}
    assert not unknown, f"citations with no entry in references.bib: {unknown}"


def test_the_cite_pattern_finds_multi_key_citations():
    text = "see {cite:p}`goodfellow2014gan, kingma2014vae` and {cite:t}`ho2020ddpm`."
    keys = [k.strip() for group in CITE.findall(text) for k in group.split(",")]
    assert keys == ["goodfellow2014gan", "kingma2014vae", "ho2020ddpm"]


# Errata ----------------------------------------------------------------------------


def test_errata_are_numbered_consecutively_and_many():
    numbers = [number for _, number, _ in _errata_entries()]
    assert numbers == list(range(1, len(numbers) + 1)), f"numbering: {numbers}"
    assert len(numbers) >= 40


def test_errata_summary_total_matches_the_entries():
    text = ERRATA.read_text(encoding="utf-8")
    total = re.search(r"\*\*Total\*\*\s*\|\s*\|\s*\*\*(\d+)\*\*", text)
    assert total, "the summary table has no total row"
    assert int(total.group(1)) == len(_errata_entries())


@pytest.mark.parametrize("field", ["Where", "Original", "What is wrong", "Correction"])
def test_every_erratum_has_each_field(field):
    missing = [label for label, _, body in _errata_entries()
               if f"**{field}:**" not in body]
    assert not missing, f"errata without '{field}': {missing}"


def test_every_erratum_quotes_the_original():
    """Quoted in 「」 (prose, references), as code (listings) or as maths (formulas)."""
    for label, _, body in _errata_entries():
        original = body.split("**Original:**", 1)[1].split("\n- **", 1)[0]
        quoted = re.search(r"「[^」]+」", original) or "`" in original or "$" in original
        assert quoted, f"{label} does not quote the original"


def test_every_erratum_links_where_the_book_demonstrates_it():
    for label, _, body in _errata_entries():
        assert "**Demonstrated in:**" in body, f"{label} has no 'Demonstrated in'"
        demonstrated = body.split("**Demonstrated in:**", 1)[1]
        assert DOC.search(demonstrated) or MARKDOWN_LINK.search(demonstrated), (
            f"{label} links nothing")


def test_doc_links_resolve_to_pages_of_the_book():
    broken, pending = [], set()
    for relative in DOC_LINK_SCOPE:
        page = BOOK / relative
        if not page.exists():
            continue
        for link in DOC.findall(_markdown_of(page)):
            target = _doc_target(link, page)
            if _page_exists(target):
                continue
            if target in PLANNED_PAGES:
                pending.add(target)
            else:
                broken.append(f"{relative}: {link}")
    assert not broken, f"links to pages that are not part of the book: {broken}"
    if pending:
        pytest.skip("links to planned pages that do not exist yet: "
                    + ", ".join(sorted(pending)))


def test_doc_target_resolution():
    page = BOOK / "appendix" / "errata.md"
    assert _doc_target("/book/02_gan/dcgan", page) == "book/02_gan/dcgan"
    assert _doc_target("the errata </book/appendix/errata>", page) == "book/appendix/errata"
    assert _doc_target("bibliography", page) == "book/appendix/bibliography"


def test_links_to_test_files_point_to_existing_tests():
    base = _repository_url() + "/blob/main/"
    for page in _book_pages():
        for url in MARKDOWN_LINK.findall(_markdown_of(page)):
            if "/tests/" not in url and not url.startswith("tests/"):
                continue
            assert url.startswith(base), f"{page.name}: {url} is not under {base}"
            path = ROOT / url[len(base):].split("#")[0]
            assert path.parent == ROOT / "tests", f"{page.name}: {url} is not in tests/"
            assert path.is_file(), f"{page.name}: {url} does not exist"
