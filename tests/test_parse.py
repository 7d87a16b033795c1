from __future__ import annotations

import os
from pathlib import Path

from custsite.errors import Problem
from custsite.parse import _read_all, decode, parse_yaml, read_document, read_text
from custsite.validate import signature
from custsite.ynodes import YMap, YScalar, YSeq


def _parse(text: str) -> tuple[object, list[Problem]]:
    problems: list[Problem] = []
    return parse_yaml(text, "f.yaml", problems=problems), problems


def test_scalars_keep_text_style_and_position() -> None:
    root, problems = _parse('a: NO\nb: "NO"\nc:\n  - 02134\n')
    assert problems == []
    assert isinstance(root, YMap)
    a, b = root.get("a"), root.get("b")
    assert isinstance(a, YScalar) and a.text == "NO" and a.plain and a.tag.endswith(":bool")
    assert isinstance(b, YScalar) and b.text == "NO" and not b.plain
    assert (a.loc.line, a.loc.col) == (1, 4)
    c = root.get("c")
    assert isinstance(c, YSeq)
    item = c.items[0]
    assert isinstance(item, YScalar) and item.text == "02134"
    assert (item.loc.line, item.loc.col) == (4, 5)


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    root, problems = _parse("name: A\nemail: a@b.c\nname: B\n")
    assert [(p.code, p.location.line, p.location.col) for p in problems] == [
        ("duplicate-key", 3, 1)]
    assert "first at line 1" in problems[0].message
    assert isinstance(root, YMap) and root.keys() == ["name", "email"]


def test_syntax_error_is_located() -> None:
    _, problems = _parse("name: [unclosed\nemail: x\n")
    assert len(problems) == 1
    assert problems[0].code == "yaml-syntax"
    assert problems[0].location.line >= 2


def test_alias_bomb_is_refused() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for n in range(1, 9):
        lines.append(f"a{n}: &a{n} [" + ",".join([f"*a{'' if n == 1 else n - 1}"] * 9) + "]")
    _, problems = _parse("\n".join(lines) + "\n")
    assert [p.code for p in problems] == ["yaml-alias"]


def test_front_matter_lines_are_shifted(tmp_path: Path) -> None:
    f = tmp_path / "jane.md"
    f.write_bytes(b"\xef\xbb\xbf---\r\nname: Jane\r\nemail: x\r\n---\r\nBody *text*\r\n")
    problems: list[Problem] = []
    doc = read_document(f, "jane.md", problems)
    assert problems == []
    assert doc is not None and isinstance(doc.root, YMap)
    email = doc.root.get("email")
    assert isinstance(email, YScalar) and (email.loc.line, email.loc.col) == (3, 8)
    assert doc.body == "Body *text*\n"


def test_unclosed_front_matter(tmp_path: Path) -> None:
    f = tmp_path / "x.md"
    f.write_text("---\nname: X\n")
    problems: list[Problem] = []
    assert read_document(f, "x.md", problems) is None
    assert [p.code for p in problems] == ["front-matter"]


def test_non_utf8_is_located() -> None:
    problems: list[Problem] = []
    assert decode(b"name: ok\nnote: caf\xe9\n", "f.yaml", problems) is None
    assert [(p.code, p.location.line, p.location.col) for p in problems] == [
        ("file-unreadable", 2, 10)]


def test_empty_yaml_file(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("# only a comment\n")
    problems: list[Problem] = []
    assert read_document(f, "x.yaml", problems) is None
    assert [p.code for p in problems] == ["missing-field"]


def test_tags_are_pyyaml_safe_loader_tags() -> None:
    """The tags custsite resolves (when asked, see parse._Loader) are those PyYAML's safe
    loader gives, plain, quoted or tagged; null is what YAML 1.1 reads as null."""
    import yaml

    samples = ["", "~", "null", "Null", "NULL", "nul", "yes", "No", "ON", "off", "y", "n",
               "true", "False", "0", "-1", "+12", "0o17", "017", "0x1F", "0b101", "1_000",
               "190:20:30", "1.5", "-.5", "1e3", "6.8523015e+5", ".inf", "-.Inf", ".NaN",
               "2026-01-31", "2026-1-3", "2001-12-14t21:59:43.10-05:00", "<<", "=", "abc",
               "c-000001", "Ann Lee", "12 Main St", "+44 20 7946 0000", "a@b.example",
               "'@x'", "'`x'", "'%x'", "'!x'", "'-'", ".", "1.2.3", "0.", "1:2", "3:60", "é",
               "日本"]
    written = [*samples, *(f'"{v}"' for v in samples[:40]), "!!str 12", "!!int '12'",
               "!!null ''", "! 12", "!!str null", "!custom x"]
    text = "".join(f"k{n}: {value}\n" for n, value in enumerate(written))
    theirs = yaml.compose(text, Loader=yaml.SafeLoader)
    ours = parse_yaml(text, "x.yaml", problems=[])
    assert isinstance(ours, YMap) and len(ours.items) == len(written) == len(theirs.value)
    for (key, value), (_, node) in zip(ours.items, theirs.value, strict=True):
        assert isinstance(value, YScalar)
        assert value.tag == node.tag, (value.text, node.tag)
        assert value.plain == (not node.style)
        assert value.is_null == (value.plain and node.tag == "tag:yaml.org,2002:null")
        assert key.tag == "tag:yaml.org,2002:str"


def test_records_keep_every_field_position_packed(tmp_path: Path) -> None:
    """Positions are packed per record (names shared by records of one shape) and come back
    as the same Locations, through pickling (the record store) too."""
    import pickle

    from custsite.errors import Location, Locs

    first = Locs("f.yaml", ("", "date", "kind"), (1, 3, 2, 9, 300, 1000))
    second = Locs("f.yaml", tuple(["", "date", "kind"]), (7, 3, 8, 9, 9, 9))
    assert first.names is second.names
    assert first["kind"] == Location("f.yaml", 300, 1000)
    assert first.get("date") == Location("f.yaml", 2, 9)
    assert first.get("amount") is None and "amount" not in first and "date" in first
    assert list(first) == ["", "date", "kind"]
    again = pickle.loads(pickle.dumps(first))
    assert again == first and again["kind"] == first["kind"] and again.names is first.names
    more = first.extended(["customers.0"], [4, 7])
    assert more["customers.0"] == Location("f.yaml", 4, 7) and more["kind"] == first["kind"]
    assert "customers.0" not in first

    doc = tmp_path / "i.yaml"
    doc.write_text("- customer: a\n  date: 2026-01-02\n  kind: call\n  summary: x\n"
                   "- customers: [a, b]\n  date: 2026-01-03\n  kind: call\n  summary: y\n")
    from custsite.config import Config
    from custsite.records import to_interactions

    parsed = read_document(doc, "i.yaml", [])
    assert parsed is not None
    one, two = to_interactions(parsed, "i", Config(root=tmp_path).context([]))
    assert one.locs.get("date") == Location("i.yaml", 2, 9)
    assert one.locs.get("") == Location("i.yaml", 1, 3)
    assert two.locs.get("customers.1") == Location("i.yaml", 5, 18)
    assert one.locs.names is to_interactions(parsed, "i", Config(root=tmp_path).context([]))[
        0].locs.names


def test_read_text_takes_the_signature_of_the_file_it_read(tmp_path: Path) -> None:
    path = tmp_path / "ann.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + b"name: Ann\r\nage: 40\r\n" * 2000)  # BOM, CRLF: 38 KB
    problems: list[Problem] = []
    read = read_text(path, "ann.yaml", problems)
    assert read is not None and not problems
    assert read.text == "name: Ann\nage: 40\n" * 2000  # all of it, in one read
    assert read.signature == signature(path)
    assert read_text(tmp_path / "gone.yaml", "gone.yaml", problems) is None
    assert [p.code for p in problems] == ["file-unreadable"]


def test_a_file_grown_since_its_size_was_taken_is_read_to_its_end(tmp_path: Path) -> None:
    path = tmp_path / "ann.yaml"
    path.write_bytes(b"x" * 200_000)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert _read_all(fd, 10) == b"x" * 200_000
    finally:
        os.close(fd)
