"""Reading record files into position-carrying YAML trees.

PyYAML's constructors lose the text as written (`NO` becomes False, `0612` becomes 394) and the
position of every value. custsite therefore stops at PyYAML's *composer*: it keeps each scalar's
source text, quoting style, the tag YAML 1.1 would give it, and its line and column. Types are
converted later, through the record schema (see `fields.py`), so nothing the user wrote is lost.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import yaml

from . import quickyaml
from .errors import Location, Problem, problem
from .ynodes import (
    MAP_TAG,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    SEQ_TAG,
    STR_TAG,
    YMap,
    YNode,
    YScalar,
    YSeq,
)

# libyaml's composer is several times faster and gives the same marks.
_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

class _Loader(_Base):  # type: ignore[misc]
    """The safe loader, with tag resolution left for later.

    libyaml calls `resolve` back in Python for every scalar; most scalars are keys and values
    whose tag nothing asks for (ids, dates, choices), so a plain untagged scalar gets the empty
    tag here and `YScalar.tag` resolves it when asked (tests/test_parse.py compares the tags
    with PyYAML's)."""

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            return "" if implicit[0] else STR_TAG
        return SEQ_TAG if kind is yaml.SequenceNode else MAP_TAG


@dataclass(frozen=True)
class Document:
    """One parsed file: its YAML tree (None when empty) and, for Markdown, its body."""

    path: str
    root: YNode | None
    body: str | None
    body_line: int
    digest: str = ""  # of the bytes it was read from (see cache.RecordStore)


class _Converter:
    def __init__(self, path: str, line_offset: int, problems: list[Problem]) -> None:
        self.path = path
        self.offset = line_offset
        self.problems = problems
        self.count = 0
        self.too_big = False

    def loc(self, node: yaml.Node) -> Location:
        mark = node.start_mark
        return Location(self.path, mark.line + 1 + self.offset, mark.column + 1)

    def convert(self, node: yaml.Node, depth: int = 0) -> YNode:
        self.count += 1
        if self.count > MAX_NODES or depth > MAX_DEPTH:
            if not self.too_big:
                self.too_big = True
                what = "nests deeper" if depth > MAX_DEPTH else "expands (through aliases) to more"
                limit = MAX_DEPTH if depth > MAX_DEPTH else MAX_NODES
                self.problems.append(problem(
                    self.loc(node), "yaml-alias",
                    f"this document {what} than {limit:,} levels/values; refusing to read it"))
            raise _TooBig
        mark = node.start_mark
        line, col = mark.line + 1 + self.offset, mark.column + 1
        if isinstance(node, yaml.ScalarNode):  # by far the most frequent: keep this path short
            return YScalar(node.value, node.tag, not node.style, self.path, line, col)
        if isinstance(node, yaml.SequenceNode):
            return YSeq(tuple([self.convert(n, depth + 1) for n in node.value]),
                        self.path, line, col)
        assert isinstance(node, yaml.MappingNode)
        seen: dict[str, YScalar] = {}
        items: list[tuple[YScalar, YNode]] = []
        for knode, vnode in node.value:
            key = self.convert(knode, depth + 1)
            value = self.convert(vnode, depth + 1)
            if not isinstance(key, YScalar):
                self.problems.append(problem(key.loc, "wrong-type",
                                             "expected a plain key, found a complex key"))
                continue
            first = seen.get(key.text)
            if first is not None:
                self.problems.append(problem(
                    key.loc, "duplicate-key",
                    f"duplicate key '{key.text}' (first at line {first.line}); "
                    "YAML keeps only the last value: remove one"))
                continue
            seen[key.text] = key
            items.append((key, value))
        return YMap(tuple(items), self.path, line, col)


class _TooBig(Exception):
    pass


def parse_yaml(text: str, path: str, *, line_offset: int = 0,
               problems: list[Problem]) -> YNode | None:
    """Compose one YAML document into a YNode tree; problems are appended, never raised.
    Most record files take the short way (see quickyaml), the same tree without libyaml."""
    quick = quickyaml.parse(text, path, line_offset)
    if quick is not None:
        return quick
    return compose_yaml(text, path, line_offset=line_offset, problems=problems)


def compose_yaml(text: str, path: str, *, line_offset: int = 0,
                 problems: list[Problem]) -> YNode | None:
    """`parse_yaml` through PyYAML's composer, whatever the text."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line + 1 + line_offset) if mark else 0
        col = (mark.column + 1) if mark else 0
        what = " ".join(s for s in (exc.context, exc.problem) if s) or "invalid YAML"
        if "expected a single document" in what or "but found another document" in what:
            what = "expected a single YAML document, found another one (a second '---')"
        problems.append(problem(Location(path, line, col), "yaml-syntax", what))
        return None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        problems.append(problem(Location(path, 1 + line_offset, 1), "yaml-syntax",
                                f"cannot parse YAML: {exc}"))
        return None
    if node is None:
        return None
    try:
        return _Converter(path, line_offset, problems).convert(node)
    except (_TooBig, RecursionError):
        return None


def content_digest(data: bytes) -> str:
    """What identifies some content from one build to the next: a record file's bytes (see
    cache.RecordStore), a note's text (cache.NoteStore), what a page shows (reuse)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def decode(data: bytes, path: str, problems: list[Problem]) -> str | None:
    """UTF-8 text with a BOM and CRLF accepted; None (and a problem) when it is not text."""
    if len(data) > MAX_FILE_BYTES:
        problems.append(problem(Location(path, 1, 1), "file-unreadable",
                                f"file is {len(data):,} bytes, more than the "
                                f"{MAX_FILE_BYTES:,} a record may hold"))
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        problems.append(problem(Location(path, line, col), "file-unreadable",
                                f"expected UTF-8 text, found byte 0x{data[exc.start]:02x}; "
                                "save the file as UTF-8"))
        return None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        problems.append(problem(Location(path, line, 1), "file-unreadable",
                                "expected text, found a NUL byte (a binary file?)"))
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_front_matter(text: str, path: str,
                       problems: list[Problem]) -> tuple[str, str, int] | None:
    """Split a Markdown record into (front matter, body, body's first line number)."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        problems.append(problem(Location(path, 1, 1), "front-matter",
                                "expected the file to start with a '---' line opening "
                                "the YAML front matter"))
        return None
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1:]), i + 2
    problems.append(problem(Location(path, 1, 1), "front-matter",
                            "the front matter opened on line 1 is never closed by a '---' line"))
    return None


class Text(NamedTuple):
    """A record file's text, the digest of the bytes it was decoded from, and the signature
    (modification time in ns, size, inode) of the file they were read from."""

    text: str
    digest: str
    signature: tuple[int, int, int] = (0, 0, 0)


def read_text(file: str | Path, rel: str, problems: list[Problem]) -> Text | None:
    """A record file's text; None (and a problem) when it cannot be read as text. Read with
    the os module's calls (a portfolio is 100,000 small files: an `open()` file object costs
    more than the reading), its signature taken from the file opened."""
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            st = os.fstat(fd)
            if st.st_size > MAX_FILE_BYTES:  # refused before reading: memory stays bounded
                problems.append(problem(Location(rel, 1, 1), "file-unreadable",
                                        f"file is {st.st_size:,} bytes, more than the "
                                        f"{MAX_FILE_BYTES:,} a record may hold"))
                return None
            data = _read_all(fd, st.st_size)
        finally:
            os.close(fd)
    except OSError as exc:
        problems.append(problem(Location(rel), "file-unreadable",
                                f"cannot read the file: {exc.strerror}"))
        return None
    text = decode(data, rel, problems)
    return None if text is None else Text(text, content_digest(data),
                                          (st.st_mtime_ns, st.st_size, st.st_ino))


def _read_all(fd: int, size: int) -> bytes:
    """The file's bytes to its end, in one read when it is the size it was (a file growing
    meanwhile is read on, to MAX_FILE_BYTES and one byte more, which decode refuses)."""
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    parts = [data]
    read = len(data)
    while read <= MAX_FILE_BYTES and (more := os.read(fd, 1 << 16)):
        parts.append(more)
        read += len(more)
    return b"".join(parts)


def read_document(file: str | Path, rel: str, problems: list[Problem],
                  read: Text | None = None) -> Document | None:
    """Read and parse one record file (`.yaml`/`.yml` or `.md`, as `rel` ends); `read` is
    its text when already read."""
    read = read if read is not None else read_text(file, rel, problems)
    if read is None:
        return None
    text, digest, _ = read
    if rel.endswith(".md"):
        parts = split_front_matter(text, rel, problems)
        if parts is None:
            return None
        front, body, body_line = parts
        root = parse_yaml(front, rel, line_offset=1, problems=problems)
        if root is None and not front.strip():
            root = YMap((), rel, 1, 1)
        return Document(rel, root, body, body_line, digest) if root is not None else None
    before = len(problems)
    root = parse_yaml(text, rel, problems=problems)
    if root is None:
        if len(problems) == before:
            problems.append(problem(Location(rel, 1, 1), "missing-field",
                                    "the file is empty; expected the record's fields"))
        return None
    return Document(rel, root, None, 0, digest)
