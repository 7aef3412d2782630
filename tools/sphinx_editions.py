"""Sphinx extension: the book's English and Chinese editions, built from one source.

Sphinx translates a page message by message: the gettext builder extracts every
paragraph, heading, caption and table cell into a catalogue, and a build with
``language`` set replaces each message by its translation from
``locales/<language>/LC_MESSAGES/``. Two things are kept out of the catalogues,
because they are code, not prose, and both editions show them as they are:

- the outputs of notebook cells (a table a cell printed changes whenever the
  notebook is executed again), and
- the package's docstrings (the API reference shows what ``help()`` shows);

and so is text with nothing to translate: numbers (with their units, such as
"18 s" in a table of times), code and maths alone. What Sphinx alone would leave
in English is translated too: the titles of exercises and of their solutions
(sphinx-exercise), and the captions of the table of contents (Jupyter Book).

Every HTML page also links to the same page in the other edition: the English
edition sits at the site's root and the Chinese one under ``zh/``.
"""

import os
import re

from docutils import nodes
from sphinx import addnodes
from sphinx.locale import init as init_locale
from sphinx.transforms import SphinxTransform
from sphinx.util.i18n import docname_to_domain

# Each edition: its language code, the folder it sits in, the name of its link.
EDITIONS = {"en": ("", "English"), "zh_CN": ("zh/", "中文")}
CODE = (nodes.literal, nodes.math, nodes.math_block, nodes.literal_block)
# A number with its unit: "18 s", "1.5 GiB", "2.0x", "95 %".
QUANTITY = re.compile(r"[-+~≈]?\d[\d,.]*\s*(s|ms|min|h|x|×|%|KiB|MiB|GiB|kB|MB|GB)?\b")


def is_translated(config):
    """Whether the build is of an edition other than the English one."""
    return config.language not in (None, "en")


def is_output(node):
    """Whether `node` holds the outputs of a notebook cell."""
    return isinstance(node, nodes.container) and "cell_output" in node.get("classes", [])


def is_documented_object(node):
    """Whether `node` documents an object of the package (autodoc's output)."""
    return isinstance(node, addnodes.desc)


def is_docstring(node):
    """Whether `node` was read from a docstring of the package (autodoc)."""
    return "docstring of " in (node.source or "")


def has_words(node):
    """Whether `node` has letters outside its code, maths and quantities: anything to translate."""
    def words(element):
        if isinstance(element, CODE):
            return ""
        if isinstance(element, nodes.Text):
            return str(element)
        return "".join(words(child) for child in element.children)
    return any(character.isalpha() for character in QUANTITY.sub("", words(node)))


class KeepCodeAsItIs(SphinxTransform):
    """Mark outputs, docstrings and wordless text as not translatable."""

    # Before sphinx.transforms.i18n.Locale (20), which translates the messages.
    default_priority = 15

    def apply(self, **kwargs):
        kept = set()
        for container in self.document.findall(
                lambda node: is_output(node) or is_documented_object(node)):
            kept.update(container.findall(nodes.TextElement))
        for node in self.document.findall(nodes.TextElement):
            if is_docstring(node) and not isinstance(node, nodes.Inline):
                node["classes"].append("docstring")  # English in both editions
            if node in kept or is_docstring(node) or not has_words(node):
                node["translatable"] = False


class TranslateTocCaptions(SphinxTransform):
    """Translate the captions of the table of contents ("Chapters", "Reference", ...).

    Jupyter Book inserts the toctrees (sphinx-external-toc's InsertToctrees, priority
    100) after Sphinx has translated the page (20): their captions, extracted with
    the page's messages, are translated here from the same catalogue.
    """

    default_priority = 101

    def apply(self, **kwargs):
        if not is_translated(self.config):
            return
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        folders = [os.path.join(self.env.srcdir, d) for d in self.config.locale_dirs]
        catalogue, found = init_locale(folders, self.config.language, domain)
        if not found:
            return
        for toctree in self.document.findall(addnodes.toctree):
            if toctree.get("caption"):
                toctree["caption"] = catalogue.gettext(toctree["caption"])
                toctree["rawcaption"] = toctree["caption"]


class OfferExerciseTitles(SphinxTransform):
    """Offer the titles of exercises for translation, as Sphinx offers a heading.

    sphinx-exercise leaves a title without the source that Sphinx needs to
    translate it, and rebuilds it after the page is read (a post-transform), so
    the gettext builder never sees it. Its text goes into a translatable inline
    node, which the rebuilt title keeps. The titles hold no markup
    (tests/test_translations.py checks), so their text is their source.
    """

    default_priority = 15

    def apply(self, **kwargs):
        for subtitle in self.document.findall(nodes.subtitle):
            if subtitle.source is None and subtitle.astext().strip():
                title, children = subtitle.astext(), list(subtitle.children)
                subtitle.clear()
                text = nodes.inline(title, "", *children, translatable=True)
                text.source, text.line = self.document["source"], subtitle.line
                subtitle += text


class KeepTranslatedExercises(SphinxTransform):
    """Let solutions show their exercise's translated title.

    sphinx-exercise titles a solution from the copy of its exercise that it keeps
    in a registry, made before Sphinx translated the page: the copy is renewed here.
    """

    default_priority = 21  # after sphinx.transforms.i18n.Locale (20)

    def apply(self, **kwargs):
        registry = getattr(self.env, "sphinx_exercise_registry", {})
        if not is_translated(self.config) or not registry:
            return
        for node in self.document.findall(nodes.Admonition):
            entry = registry.get(node.get("label"))
            if entry and entry.get("docname") == self.env.docname and "exercise" in entry["type"]:
                entry["node"] = node.deepcopy()


def other_edition(pagename, language):
    """The other edition's copy of `pagename`: (relative URL, language, link text)."""
    other = "zh_CN" if language == "en" else "en"
    up = "../" * (pagename.count("/") + EDITIONS[language][0].count("/"))
    folder, name = EDITIONS[other]
    return f"{up}{folder}{pagename}.html", other, name


def add_edition_link(app, pagename, templatename, context, doctree):
    """Put a link to the other edition at the top of every page with a body."""
    if doctree is None or "body" not in context:
        return
    language = app.config.language if app.config.language in EDITIONS else "en"
    url, other, name = other_edition(pagename, language)
    code = other.replace("_", "-")
    context["body"] = (
        f'<p class="edition-switch"><a href="{url}" hreflang="{code}" lang="{code}">'
        f"{name}</a></p>\n" + context["body"])
    context["metatags"] = context.get("metatags", "") + (
        f'\n<link rel="alternate" hreflang="{code}" href="{url}" />')


def setup(app):
    app.add_transform(KeepCodeAsItIs)
    app.add_transform(OfferExerciseTitles)
    app.add_transform(KeepTranslatedExercises)
    app.add_transform(TranslateTocCaptions)
    app.connect("html-page-context", add_edition_link)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
