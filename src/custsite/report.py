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


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(problems: Sequence[Problem]) -> str:
    """GitHub Actions workflow commands: each problem becomes an annotation on its line."""
    out = []
    for p in problems:
        props = [f"file={_gh_property(p.location.path)}"]
        if p.location.line:
            props += [f"line={p.location.line}", f"col={max(p.location.col, 1)}"]
        props.append(f"title={_gh_property(p.code)}")
        out.append(f"::{p.severity.value} {','.join(props)}::{_gh_data(p.message)} [{p.code}]")
    return "\n".join(out)


def format_sarif(problems: Sequence[Problem]) -> str:
    """SARIF 2.1.0, for code-scanning dashboards: every rule described, every result located."""
    from urllib.parse import quote

    from . import __version__

    codes = list(RULES)
    rules = [{
        "id": r.code, "name": r.code,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": r.rationale},
        "defaultConfiguration": {"level": r.severity.value},
    } for r in RULES.values()]
    results = []
    for p in problems:
        physical: dict[str, object] = {
            "artifactLocation": {"uri": quote(p.location.path), "uriBaseId": "SRCROOT"}}
        if p.location.line:
            physical["region"] = {"startLine": p.location.line,
                                  "startColumn": max(p.location.col, 1)}
        results.append({
            "ruleId": p.code, "ruleIndex": codes.index(p.code), "level": p.severity.value,
            "message": {"text": p.message}, "locations": [{"physicalLocation": physical}],
        })
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "custsite", "version": __version__,
                                "semanticVersion": __version__, "rules": rules}},
            "originalUriBaseIds": {"SRCROOT": {"description": {
                "text": "The root of the portfolio repository."}}},
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)
