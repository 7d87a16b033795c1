"""The common shape of record files, read without libyaml: the same trees, 1.6 times faster.

Most record files are block mappings and lists of them, with plain or quoted one-line values,
short flow lists and mappings (`[a, b]`, `{city: X}`) and `|` notes. Composing them with
libyaml costs a Python node and two marks per value, then the conversion into YNodes walks
them again: half of reading a portfolio. `parse` reads such a file line by line straight into
the YNodes that `parse.parse_yaml` would make (same texts, tags, styles, lines and columns), and
gives up (None) on anything outside that shape, however valid: the caller then composes the
file with PyYAML as before, which also reports every problem. It is a fast path, not a second
YAML parser; tests/test_quickyaml.py holds it to PyYAML on generated documents in and around
that shape. (No maintained library reads YAML with positions faster than libyaml does.)
"""

from __future__ import annotations

import re
from typing import Any

from .ynodes import MAX_DEPTH, MAX_NODES, STR_TAG, YMap, YNode, YScalar, YSeq

# Characters libyaml reads as line breaks or refuses, tabs (indentation rules), a byte order
# mark, and "\r" (decode normalises line ends): any of them and the file goes to PyYAML.
UNUSUAL = re.compile("[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
                     "\U00010000-\U0010ffff]")
# The characters UNUSUAL finds in ASCII text: the controls but "\n", and DEL.
_ASCII_UNUSUAL = bytes([*range(0x0a), *range(0x0b, 0x20), 0x7f])


def unusual(text: str) -> bool:
    """Whether the text holds a character UNUSUAL finds. Nearly every record file is ASCII:
    its controls are deleted by bytes.translate in a tenth of the time the pattern takes to
    look at every character (a sixth of reading the lines)."""
    if text.isascii():
        data = text.encode("ascii")
        return len(data.translate(None, _ASCII_UNUSUAL)) != len(data)
    return UNUSUAL.search(text) is not None


# A plain scalar in block context: no indicator first, no ": " or " #" inside, no ":" or
# space last (an indicator starts one only before a character that is not ":" either: "-: x",
# ":: x"). Runs of other characters and of spaces are taken whole, never given back: the
# pattern that takes one character at a time ("(?:[^:#\n]|:(?! |$)|(?<! )#)*(?<![ :])",
# which tests/test_quickyaml.py holds it to) took a quarter of reading a portfolio's lines.
_PLAIN = (r"(?:[^\s\-?:,\[\]{}#&*!|>'\"%@`]|[-?:][^\s,\[\]{}#:])"
          r"(?: *+(?:[^:#\n ]++|:(?! |$)|(?<! )#))*+")
# Every line: its indentation, a list entry's dash with the spaces after it, a key with its
# colon and spaces, then the value: a double-quoted text without escapes, a plain text, or
# anything else (left to `_scalar`).
LINE = re.compile(r"^( *)(- +)?(?:([A-Za-z_][A-Za-z0-9_-]*)(:(?: +|$)))?"
                  r'(?:(")([^"\\\n]*)" *|(' + _PLAIN + r') *|(.*))$', re.M)
_PLAIN_VALUE = re.compile(_PLAIN + "$")
# Inside a flow collection: neither "," nor brackets nor ":" nor "#", nor quotes.
_FLOW_PLAIN = re.compile(r"[^\s\-?:,\[\]{}#&*!|>'\"%@`][^,\[\]{}:#'\"]*+(?<! )")
_DOUBLE = re.compile(r'"([^"\\]*+)" *$')
_SINGLE = re.compile(r"'((?:[^']|'')*+)' *$")
_FLOW_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*): +")


class _Outside(Exception):
    """The text is not of the shape read here: PyYAML reads it."""


def parse(text: str, path: str, line_offset: int = 0) -> YNode | None:
    """The YNode tree of a block mapping or list of the common shape; None for any other."""
    if unusual(text):
        return None
    try:
        return _read(text, path, line_offset + 1)
    except _Outside:
        return None
    except Exception:  # a case this reader did not foresee: PyYAML's path is always right
        return None


# An open mapping or list: [indentation, items, line, column, is a mapping, keys seen, the
# key waiting for the block below it (mappings)]; a list, for speed.
_Open = list[Any]


def _read(text: str, path: str, first_line: int) -> YNode:
    """One pass over the lines with a stack of open blocks: no recursion and, for the most
    frequent line (`key: value` in the mapping being read), a handful of operations; this is
    the hot loop of reading a portfolio."""
    tokens = LINE.findall(text)
    total = len(tokens)
    if total != text.count("\n") + 1:
        raise _Outside
    stack: list[_Open] = []
    top: _Open | None = None
    lines: list[str] | None = None  # the text's lines, split once for its first `|` block
    count = 0
    n = -1
    while n + 1 < total:
        n += 1
        indent_s, dash, key, sep, quote, quoted, plain, other = tokens[n]
        indent = len(indent_s)
        if key and not dash and top is not None and top[0] == indent and top[4] and \
                top[6] is None and (quote or plain):
            # A key and its one-line value in the mapping being read.
            line = n + first_line
            seen = top[5]
            if key in seen:
                raise _Outside  # a duplicate key: PyYAML's path reports it
            seen.add(key)
            at = indent + len(key) + len(sep) + 1
            top[1].append((YScalar(key, "", True, path, line, indent + 1),
                           YScalar(quoted, STR_TAG, False, path, line, at) if quote else
                           YScalar(plain, "", True, path, line, at)))
            count += 2
            continue
        if not (dash or key or quote or plain) and (not other or other[0] == "#"):
            continue  # blank or a comment
        rest = '"' + quoted + '"' if quote else plain or other
        line = n + first_line
        if not indent and not dash and not key and (rest[:3] in ("---", "...") or
                                                    rest[:1] == "%"):
            raise _Outside  # document markers, directives
        if top is None:  # the first line
            if not dash and not key:
                raise _Outside  # a scalar document
            top = [indent, [], line, indent + 1, not dash, None if dash else set(), None]
            stack.append(top)
        while top[0] > indent or (top[0] == indent and not top[4] and not dash):
            # Blocks more indented end, and a list at its mapping's indentation.
            if len(stack) == 1:
                raise _Outside  # the root block ends before the text does
            count = _close(stack, path, count)
            top = stack[-1]
        if top[4] and top[6] is not None:  # the block below a key
            if (indent > top[0] and (dash or key)) or (indent == top[0] and dash):
                top = [indent, [], line, indent + 1, not dash, None if dash else set(), None]
                stack.append(top)
                if len(stack) > MAX_DEPTH // 2:
                    raise _Outside
            else:
                raise _Outside  # an empty value, or a scalar below its key
        elif top[0] != indent:
            raise _Outside
        if dash:
            if top[4]:
                raise _Outside  # a dash among a mapping's keys
            col = indent + len(dash)
            if not key:
                top[1].append(_scalar(rest, path, line, col))
                count += 1
                continue
            top = [col, [], line, col + 1, True, set(), None]
            stack.append(top)
            if len(stack) > MAX_DEPTH // 2:
                raise _Outside
        else:
            col = indent
            if not top[4] or not key:
                raise _Outside  # a key in a list, or a line without a key in a mapping
        if key in top[5]:
            raise _Outside  # a duplicate key: PyYAML's path reports it
        top[5].add(key)
        name = YScalar(key, "", True, path, line, col + 1)
        count += 2
        if not rest:
            top[6] = name
            continue
        at = col + len(key) + len(sep)
        value: YNode
        if rest[0] == "|":
            lines = lines if lines is not None else text.split("\n")
            value, n = _literal(lines, n, rest, top[0], path, line, at)
        else:
            value = _scalar(rest, path, line, at)
        if isinstance(value, YMap):
            count += 2 * len(value.items)
        elif isinstance(value, YSeq):
            count += len(value.items)
        top[1].append((name, value))
        if count > MAX_NODES:
            raise _Outside
    if not stack:
        raise _Outside
    while len(stack) > 1:
        count = _close(stack, path, count)
    if stack[0][6] is not None or count + 1 > MAX_NODES:
        raise _Outside
    return _node(stack[0], path)


def _node(block: _Open, path: str) -> YNode:
    if block[4]:
        return YMap(tuple(block[1]), path, block[2], block[3])
    return YSeq(tuple(block[1]), path, block[2], block[3])


def _close(stack: list[_Open], path: str, count: int) -> int:
    block = stack.pop()
    if block[6] is not None:
        raise _Outside  # a key without a value
    node = _node(block, path)
    parent = stack[-1]
    if parent[4]:
        parent[1].append((parent[6], node))
        parent[6] = None
    else:
        parent[1].append(node)
    return count + 1


def value(rest: str, path: str, line: int, col: int) -> YNode | None:
    """The value written on the rest of a line, from `col` (0-based), as `parse` reads it in
    a block mapping: a scalar or a flow collection; None for anything else (a block)."""
    try:
        return _scalar(rest, path, line, col)
    except _Outside:
        return None


def _scalar(rest: str, path: str, line: int, col: int) -> YNode:
    """The value written on the rest of a line, from `col`."""
    if not rest:
        raise _Outside  # an empty list item
    first = rest[0]
    if first == '"':
        m = _DOUBLE.match(rest)
        if m is None:
            raise _Outside
        return YScalar(m.group(1), STR_TAG, False, path, line, col + 1)
    if first == "'":
        m = _SINGLE.match(rest)
        if m is None:
            raise _Outside
        return YScalar(m.group(1).replace("''", "'"), STR_TAG, False, path, line, col + 1)
    if first == "[":
        return _flow_list(rest.rstrip(" "), path, line, col)
    if first == "{":
        return _flow_map(rest.rstrip(" "), path, line, col)
    if not _PLAIN_VALUE.match(rest):
        raise _Outside  # "|" in a list, "- " in a list item, a comment...
    return YScalar(rest, "", True, path, line, col + 1)


def _flow_list(rest: str, path: str, line: int, col: int) -> YSeq:
    if rest[-1] != "]":
        raise _Outside
    items: list[YNode] = []
    inner = rest[1:-1]
    if inner.strip(" "):
        at = col + 1
        for part in inner.split(","):
            item = part.strip(" ")
            if not _FLOW_PLAIN.fullmatch(item):
                raise _Outside
            start = at + len(part) - len(part.lstrip(" "))
            items.append(YScalar(item, "", True, path, line, start + 1))
            at += len(part) + 1
    return YSeq(tuple(items), path, line, col + 1)


def _flow_map(rest: str, path: str, line: int, col: int) -> YMap:
    if rest[-1] != "}":
        raise _Outside
    items: list[tuple[YScalar, YNode]] = []
    seen: set[str] = set()
    inner = rest[1:-1]
    if inner.strip(" "):
        at = col + 1
        for part in inner.split(","):
            item = part.lstrip(" ")
            start = at + len(part) - len(item)
            m = _FLOW_KEY.match(item)
            value = item[m.end():].rstrip(" ") if m else ""
            if m is None or m.group(1) in seen or not _FLOW_PLAIN.fullmatch(value):
                raise _Outside
            seen.add(m.group(1))
            items.append((YScalar(m.group(1), "", True, path, line, start + 1),
                          YScalar(value, "", True, path, line, start + m.end() + 1)))
            at += len(part) + 1
    return YMap(tuple(items), path, line, col + 1)


def _literal(lines: list[str], n: int, header: str, parent: int, path: str, line: int,
             col: int) -> tuple[YScalar, int]:
    """`|` or `|-` on line `n` with the lines below it, more indented than the mapping
    holding it (`parent`); the index of its last line."""
    header = header.rstrip(" ")
    if header not in ("|", "|-"):
        raise _Outside  # folding, keeping, explicit indentation, a comment
    body: list[str] = []
    indent = last = -1
    at = n + 1
    while at < len(lines):
        text_line = lines[at]
        stripped = text_line.lstrip(" ")
        if not stripped:
            if text_line:
                raise _Outside  # a line of spaces: what it holds depends on indentation
            body.append("")
            at += 1
            continue
        here = len(text_line) - len(stripped)
        if indent < 0:
            if here <= parent:
                break
            indent = here
        elif here < indent:
            if here > parent:
                raise _Outside
            break
        body.append(text_line[indent:])
        last = at
        at += 1
    if indent < 0 or last == len(lines) - 1:
        raise _Outside  # no text, or no line break after it: PyYAML's to read
    while not body[-1]:
        body.pop()
    joined = "\n".join(body)
    return YScalar(joined if header == "|-" else joined + "\n", STR_TAG, False, path, line,
                   col + 1), last
