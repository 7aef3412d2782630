"""The Chinese edition's catalogues: complete, current, with their markup and terms intact.

`python tools/translations.py check` is what CI runs here: the English messages
are extracted afresh from the pages, and every one must have a Chinese
translation that is not fuzzy and keeps the maths, code and references of its
English. What is code (cell outputs, docstrings) is never offered for translation.
"""

import pathlib
import re
import sys

import pytest
from babel.messages.pofile import read_po, write_po

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import sphinx_editions  # noqa: E402
import translations  # noqa: E402

CATALOGUES = translations.CATALOGUES
# Terms the book does not use (the glossary says which it uses instead), except
# where it quotes the original document: in 「」, where the English quotes the term
# too, or on the glossary and errata pages.
AVOIDED_TERMS = ("递归神经网络", "模式崩灭", "反卷积", "鉴别器", "对抗生成网络",
                 "变分自动编码器", "潜在空间", "隐空间", "批量归一化")
QUOTING_PAGES = ("book/appendix/glossary.po", "book/appendix/errata.po")


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """The pages' English messages, extracted afresh (one .pot a page)."""
    return translations.extract(tmp_path_factory.mktemp("gettext"))


def _catalogue(path):
    with open(path, "rb") as file:
        return read_po(file)


@pytest.mark.slow
def test_every_message_is_translated_and_current(templates):
    """No untranslated, fuzzy or missing message; markup kept (CI's catalogue check)."""
    problems = translations.catalogue_problems(templates)
    assert not problems, "\n".join(problems[:40]) + (
        "\n\nAfter editing a page: `python3 tasks.py translations`, then translate the "
        "messages listed (empty or '#, fuzzy') in locales/zh_CN and remove the fuzzy marks.")


@pytest.mark.slow
def test_outputs_and_docstrings_are_not_offered_for_translation(templates):
    comparison = {m.id for m in _catalogue(templates / "book/05_analysis/comparison.pot")}
    assert "The families side by side" in comparison
    # Cells of the table the notebook prints, and wordless text, stay out.
    assert not {"205.7", "0.3786", "rel. confidence"} & comparison
    api = {m.id for m in _catalogue(templates / "book/appendix/api.pot") if m.id}
    assert "API reference" in api
    assert not [m for m in api if "binarisation" in m], api  # docstrings of companion.data
    assert len(api) < 60


def test_the_catalogues_cover_every_page_of_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    pages = set(re.findall(r"file: (\S+)", toc)) | {re.search(r"root: (\S+)", toc).group(1)}
    catalogues = {p.relative_to(CATALOGUES).with_suffix("").as_posix()
                  for p in CATALOGUES.rglob("*.po")}
    assert pages == catalogues


def test_one_term_per_concept():
    """The terms the glossary avoids appear only where the original is quoted."""
    found = []
    for path in sorted(CATALOGUES.rglob("*.po")):
        if path.relative_to(CATALOGUES).as_posix() in QUOTING_PAGES:
            continue
        for message in _catalogue(path):
            unquoted = re.sub(r"「[^」]*」", "", message.string or "")
            found += [(path.name, term) for term in AVOIDED_TERMS
                      if term in unquoted and term not in message.id]
    assert not found, found


def test_the_glossary_names_the_originals_wrong_terms():
    glossary = (ROOT / "book/appendix/glossary.md").read_text(encoding="utf-8")
    original = (ROOT.parent / "shared/seed/000_104f80ca5449eeef.txt")
    for term in ("递归神经网络", "模式崩灭"):
        assert term in glossary
        if original.exists():
            assert term in original.read_text(encoding="utf-8")


def test_exercise_titles_hold_no_markup():
    """tools/sphinx_editions.py offers an exercise's title text as its source."""
    titles = [title for page in (ROOT / "book").rglob("*.*") if page.suffix in (".md", ".ipynb")
              for title in re.findall(r"\{exercise\} ?([^\n\\]*)", page.read_text("utf-8"))]
    assert len(titles) >= 30
    assert not [title for title in titles if set(title) & set("$`*{[")], titles


def test_markup_must_be_kept():
    english = ("The **generator** $G$ of {cite:p}`goodfellow2014gan` (see "
               "{ref}`the theory <gan-theory>`, `fit` and [Keras](https://keras.io)).")
    good = ("{cite:p}`goodfellow2014gan` 的**生成器** $G$（见 {ref}`理论 <gan-theory>`、"
            "`fit` 和 [Keras](https://keras.io)）。")
    assert translations.markup_problems(english, good) == []
    for broken in (good.replace("$G$", "$g$"), good.replace("gan-theory", "theory"),
                   good.replace("`fit`", "fit"), good.replace("keras.io", "keras.cn"),
                   good.replace("**生成器**", "**生成器")):
        assert translations.markup_problems(english, broken), broken
    # A translated heading is parsed alone: "2. ..." would become a numbered list.
    assert translations.markup_problems("2. Vanishing gradients", "2. 梯度消失")
    assert not translations.markup_problems("2. Vanishing gradients", "2\\. 梯度消失")


def test_the_check_names_untranslated_fuzzy_and_broken_messages(tmp_path):
    catalogue = _catalogue(CATALOGUES / "book" / "intro.po")
    messages = [m for m in catalogue if m.id]
    with_markup = next(m for m in messages[2:] if translations.kept_parts(m.id))
    messages[0].string = ""
    messages[1].flags.add("fuzzy")
    with_markup.string = with_markup.string.replace("`", "")
    path = tmp_path / "intro.po"
    with open(path, "wb") as file:
        write_po(file, catalogue, width=79)
    problems = translations.problems_of(path)
    assert len(problems) == 3, problems
    assert "not translated" in problems[0] and "fuzzy" in problems[1]
    assert "markup differs" in problems[2]


@pytest.mark.parametrize("pagename, language, expected", [
    ("book/02_gan/theory", "en", ("../../zh/book/02_gan/theory.html", "zh_CN", "中文")),
    ("book/02_gan/theory", "zh_CN", ("../../../book/02_gan/theory.html", "en", "English")),
    ("index", "en", ("zh/index.html", "zh_CN", "中文")),
    ("search", "zh_CN", ("../search.html", "en", "English")),
])
def test_each_page_links_to_its_copy_in_the_other_edition(pagename, language, expected):
    assert sphinx_editions.other_edition(pagename, language) == expected


def test_only_text_with_words_is_offered_for_translation():
    from docutils import nodes

    def paragraph(*children):
        return nodes.paragraph("", "", *children)

    assert sphinx_editions.has_words(paragraph(nodes.Text("The generator")))
    assert sphinx_editions.has_words(paragraph(nodes.Text("生成器")))
    assert not sphinx_editions.has_words(paragraph(nodes.Text("0.3786")))
    assert not sphinx_editions.has_words(paragraph(nodes.Text("18 s")))
    assert sphinx_editions.has_words(paragraph(nodes.Text("18 s (first run)")))
    assert not sphinx_editions.has_words(paragraph(nodes.literal("", "companion.data")))
    assert not sphinx_editions.has_words(
        paragraph(nodes.math("", "x"), nodes.Text(" = 1.5, ")))
