"""The Chinese edition's message catalogues: extract, update and check them.

    python tools/translations.py update        # extract the English messages and merge
                                              # them into locales/zh_CN (sphinx-intl)
    python tools/translations.py check [PO..]  # every message translated, none fuzzy,
                                              # the markup of each translation intact

A page's English text is cut into messages (paragraphs, headings, table cells,
captions) by Sphinx's gettext builder; ``locales/zh_CN/LC_MESSAGES/<page>.po``
holds each message with its Chinese translation. When a paragraph of a page
changes, ``update`` keeps the old translation but marks it fuzzy, and ``check``
fails until someone translates the new text and removes the fuzzy mark.
"""

import collections
import pathlib
import re
import subprocess
import sys
import tempfile

from babel.messages.pofile import read_po

from editions import CHINESE, JUPYTER_BOOK, ROOT

LANGUAGE = CHINESE["language"]
CATALOGUES = ROOT / "locales" / LANGUAGE / "LC_MESSAGES"

# The parts of a message a translation must keep exactly: maths, inline code, the
# target of each cross-reference role and of each link.
ROLE = re.compile(r"\{([\w:-]+)\}`([^`]*)`")
MATH = re.compile(r"\$\$.+?\$\$|\$[^$]+\$", re.S)
CODE = re.compile(r"``.+?``|`[^`]+`", re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>]+)>")


def extract(folder):
    """Write the English messages, one template (.pot) a page, under `folder`."""
    subprocess.run(
        [sys.executable, "-c", JUPYTER_BOOK, "build", str(ROOT), "--builder", "custom",
         "--custom-builder", "gettext", "--path-output", str(folder), "--quiet"],
        check=True, cwd=ROOT)
    return pathlib.Path(folder) / "_build" / "gettext"


def update():
    """Merge the English messages of every page into its Chinese catalogue."""
    with tempfile.TemporaryDirectory() as folder:
        templates = extract(folder)
        subprocess.run([sys.executable, "-m", "sphinx_intl", "update", "-p", str(templates),
                        "-l", LANGUAGE, "-d", str(ROOT / "locales"), "-w", "79"],
                       check=True, cwd=ROOT)
    print("Now translate every message of locales/zh_CN whose translation is empty or "
          "marked '#, fuzzy', remove the fuzzy mark, and run "
          "`python tools/translations.py check`.")
    return 0


def role_targets(text):
    """The (role, target) of each role: for `text <target>`, only the target counts."""
    targets = []
    for role, content in ROLE.findall(text):
        match = re.search(r"<([^<>]+)>\s*$", content)
        targets.append((role, match.group(1) if match else content))
    return targets


def kept_parts(text):
    """What a translation of `text` must keep, as a multiset of strings."""
    without_roles = ROLE.sub(" ", text)
    without_maths = MATH.sub(" ", without_roles)
    parts = [f"{role}:{target}" for role, target in role_targets(text)]
    parts += [m.strip() for m in MATH.findall(without_roles)]
    parts += [c.strip("`").strip() for c in CODE.findall(without_maths)]
    parts += ["".join(link) for link in LINK.findall(without_maths)]
    return collections.Counter(parts)


def markup_problems(english, chinese):
    """How the markup of `chinese` differs from that of `english` (empty: it does not)."""
    problems = []
    expected, found = kept_parts(english), kept_parts(chinese)
    if expected != found:
        missing = list((expected - found).elements())
        extra = list((found - expected).elements())
        problems.append(f"markup differs: missing {missing}, unexpected {extra}")
    if chinese.count("**") % 2:
        problems.append("an odd number of '**'")
    if re.match(r"\d+\. ", chinese):
        # Sphinx parses a translated heading on its own: "2. ..." would be a list.
        problems.append("starts like a numbered list: write 'N\\. ' (escaped)")
    return problems


def problems_of(path, templates=None):
    """Every problem of the catalogue at `path`, as lines naming the message.

    With `templates` (a folder of freshly extracted .pot files), a message of the
    page that the catalogue lacks is a problem too.
    """
    with open(path, "rb") as file:
        catalogue = read_po(file)
    relative = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    problems = []
    for message in catalogue:
        if not message.id:
            continue
        english = message.id if isinstance(message.id, str) else message.id[0]
        chinese = message.string if isinstance(message.string, str) else message.string[0]
        head = f"{relative}: {english[:70]!r}"
        if not chinese:
            problems.append(f"{head}: not translated")
        elif message.fuzzy:
            problems.append(f"{head}: fuzzy (the English changed; update the translation "
                            "and remove the '#, fuzzy' line)")
        else:
            problems.extend(f"{head}: {p}" for p in markup_problems(english, chinese))
    if templates is not None:
        template = templates / path.relative_to(CATALOGUES).with_suffix(".pot")
        with open(template, "rb") as file:
            wanted = {m.id for m in read_po(file) if m.id}
        have = {m.id for m in catalogue if m.id}
        problems.extend(f"{relative}: {english[:70]!r}: not in the catalogue (run "
                        "`python3 tasks.py translations`)" for english in wanted - have)
    return problems


def catalogue_problems(templates):
    """Every problem of the catalogues, given the pages' messages under `templates`."""
    pages = {t.relative_to(templates).with_suffix("") for t in templates.rglob("*.pot")}
    catalogues = {c.relative_to(CATALOGUES).with_suffix("") for c in CATALOGUES.rglob("*.po")}
    problems = [f"{CATALOGUES.relative_to(ROOT) / p}.po: missing (run "
                "`python3 tasks.py translations`)" for p in sorted(pages - catalogues)]
    problems += [f"{CATALOGUES.relative_to(ROOT) / p}.po: no such page any more (delete it)"
                 for p in sorted(catalogues - pages)]
    return problems + [p for page in sorted(pages & catalogues)
                       for p in problems_of(CATALOGUES / f"{page}.po", templates)]


def check(*paths):
    """Check the catalogues (all, against freshly extracted messages, by default)."""
    if paths:
        problems = [p for path in paths for p in problems_of(pathlib.Path(path).resolve())]
    else:
        with tempfile.TemporaryDirectory() as folder:
            problems = catalogue_problems(extract(folder))
    print("\n".join(problems) or "Every message is translated.")
    return 1 if problems else 0


def main(argv):
    commands = {"update": update, "check": check}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    return commands[argv[0]](*argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
