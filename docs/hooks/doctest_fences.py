"""Griffe extension: fence the docstrings' doctest examples as ``pycon`` code.

Markdown would read ``>>>`` as nested block quotes; each run of ``>>>``/``...`` lines and
the output lines after it (up to a blank line) becomes one fenced block at its indentation.
"""

from __future__ import annotations

import griffe


def fence_doctests(text: str) -> str:
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        stripped = lines[i].lstrip()
        if not stripped.startswith(">>>"):
            out.append(lines[i])
            i += 1
            continue
        indent = lines[i][: len(lines[i]) - len(stripped)]
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
