"""MkDocs hook: show the docstrings' Sphinx cross-references (``:class:`~pkg.Name```) as code.

The API pages render docstrings as Markdown, where a role such as ``:class:`` would be
printed literally before the code span. ``~`` keeps only the last dotted part, as Sphinx does.
"""

import re

ROLE = re.compile(r":(?:class|mod|func|meth|attr|data|exc|obj):<code>(~?)([\w.]+)</code>")


def _code(match: re.Match) -> str:
    name = match[2].rsplit(".", 1)[-1] if match[1] else match[2]
    return f"<code>{name}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return ROLE.sub(_code, html)
