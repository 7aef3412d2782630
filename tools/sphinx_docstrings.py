"""Sphinx extension: render the package's Keras-style docstrings.

The docstrings follow Keras' own style, which fences code with Markdown
(```` ```python ````) inside Google-style sections; reStructuredText has no such
fences. Before napoleon reads a docstring, each fenced block becomes a
``.. code-block::`` directive.
"""

import re

FENCE = re.compile(r"^(?P<indent>\s*)```(?P<language>[\w+-]*)\s*$")


def fences_to_directives(lines):
    """Return `lines` with every Markdown code fence turned into a code-block."""
    converted, indent = [], None
    for line in lines:
        match = FENCE.match(line)
        if match and indent is None:
            indent = match.group("indent")
            language = match.group("language") or "text"
            converted += [f"{indent}.. code-block:: {language}", ""]
        elif match and indent is not None:
            converted.append("")
            indent = None
        elif indent is not None:
            body = line[len(indent):] if line.startswith(indent) else line.lstrip()
            converted.append(f"{indent}   {body}" if line.strip() else "")
        else:
            converted.append(line)
    return converted


def _process(app, what, name, obj, options, lines):
    lines[:] = fences_to_directives(lines)


def setup(app):
    # Before napoleon (priority 500), so it sees ordinary reStructuredText.
    app.connect("autodoc-process-docstring", _process, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
