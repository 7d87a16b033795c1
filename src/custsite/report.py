"""Printing problems for people (text) and for tools (json)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .errors import RULES, Problem, Severity


def _source_line(root: Path, problem: Problem, cache: dict[str, list[str]]) -> str:
    path = problem.location.path
    if path not in cache:
        try:
            text = (root / path).read_bytes().decode("utf-8-sig", errors="replace")
            cache[path] = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        except OSError:
            cache[path] = []
    lines = cache[path]
    line = problem.location.line
    return lines[line - 1] if 0 < line <= len(lines) else ""


def _window(line: str, col: int, width: int = 100) -> tuple[str, int]:
    """A long line cut to `width` characters around the column, and the caret's new column."""
    if len(line) <= width:
        return line, col
    start = max(0, min(col - width // 2, len(line) - width))
    cut = line[start:start + width]
    prefix = "…" if start else ""
    suffix = "…" if start + width < len(line) else ""
    return prefix + cut + suffix, col - start + len(prefix)


def format_text(problems: Sequence[Problem], root: Path) -> str:
    """Compiler-style lines with the offending source line and a caret under the column."""
    out: list[str] = []
    cache: dict[str, list[str]] = {}
    for p in problems:
        out.append(p.format())
        source = _source_line(root, p, cache)
        if source.strip():
            shown, caret = _window(source.expandtabs(1), max(p.location.col, 1))
            out.append(f"    {shown}")
            out.append("    " + " " * (caret - 1) + "^")
    errors = sum(p.severity is Severity.ERROR for p in problems)
    warnings = len(problems) - errors
    if problems:
        out.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(out)


def format_json(problems: Sequence[Problem]) -> str:
    """A stable document for tools: one object per problem."""
    items = [{
        "path": p.location.path, "line": p.location.line, "column": p.location.col,
        "severity": p.severity.value, "code": p.code, "message": p.message,
        "rule": RULES[p.code].summary,
    } for p in problems]
    errors = sum(p.severity is Severity.ERROR for p in problems)
    return json.dumps({"version": 1, "errors": errors, "warnings": len(problems) - errors,
                       "problems": items}, indent=2, ensure_ascii=False)
