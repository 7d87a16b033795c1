"""The short way of reading record files (quickyaml) against PyYAML's composer: whenever it
reads a text, it must give exactly the tree PyYAML's path gives (texts, tags, styles, lines,
columns), with no problem reported; on anything else it must give up."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custsite import quickyaml
from custsite.parse import compose_yaml, parse_yaml
from custsite.ynodes import STR_TAG, YMap, YScalar, YSeq


def same_as_pyyaml(text: str, offset: int = 0) -> bool:
    """Whether the short way read the text (the assertion is that it read it right)."""
    quick = quickyaml.parse(text, "r.yaml", offset)
    problems: list[Any] = []
    slow = compose_yaml(text, "r.yaml", line_offset=offset, problems=problems)
    if quick is not None:
        assert problems == [], text
        assert quick == slow, text
    return quick is not None


RECORD = """\
# A customer, as people write them.
name: "Ada Lovelace"
email: ada@example.com
tags: [vip, newsletter]
location: {city: Zürich, region: ZH, country: CH}

age: 36
notes: |
  Met at the fair.

  Wants a call — before *June*.
status: customer
"""

INTERACTIONS = """\
- customer: c-1
  date: 2025-01-02
  kind: email
  notes: 'It''s done: #1'
- customer: c-2
  date: 2025-01-03 10:30
  customers:
  - c-2
  - c-3
  details:
    amount: 12.50
    due:   2025-02-01
  summary: |-
    two lines
      one indented
"""


def test_common_records_take_the_short_way() -> None:
    assert same_as_pyyaml(RECORD)
    assert same_as_pyyaml(INTERACTIONS)
    assert same_as_pyyaml("role: ally\nsector: {not_in: x}\n", offset=1)
    assert same_as_pyyaml("a:\n    b:\n        c: 1\n    d: 2\ne: []\nf: {}\n")
    tree = quickyaml.parse(RECORD, "r.yaml")
    assert isinstance(tree, YMap)
    notes = tree.get("notes")
    assert notes == YScalar("Met at the fair.\n\nWants a call — before *June*.\n", STR_TAG,
                            False, "r.yaml", 8, 8)
    loc = tree.get("location")
    assert isinstance(loc, YMap) and loc.items[1][1] == YScalar("ZH", "", True, "r.yaml", 5, 34)
    seq = quickyaml.parse(INTERACTIONS, "r.yaml")
    assert isinstance(seq, YSeq) and len(seq.items) == 2


def test_parse_yaml_takes_the_short_way_and_the_long_one() -> None:
    problems: list[Any] = []
    assert parse_yaml(RECORD, "r.yaml", problems=problems) == \
        compose_yaml(RECORD, "r.yaml", problems=problems)
    assert problems == []
    # Outside the short way's shape: PyYAML reads it, and reports what is wrong.
    assert parse_yaml("a: &x 1\nb: *x\n", "r.yaml", problems=problems) is not None
    assert parse_yaml("a: 1\na: 2\n", "r.yaml", problems=problems) is not None
    assert [p.code for p in problems] == ["duplicate-key"]


OUTSIDE = [
    "a: 1\na: 2\n",  # duplicate key: reported by PyYAML's path
    "a: :: x\n", "a: -: x\n",  # ": " right after an indicator: an error (found by Hypothesis)
    "a:\nb: 1\n",  # an empty value
    "a: |\n  no line break after it",
    "a: >\n  folded\n",
    "a: |+\n  kept\n\n",
    "a: |2\n   explicit\n",
    "- |\n  in a list\n",
    "a: b\n  c\n",  # a plain scalar on two lines
    "a: 'x\n  y'\n",
    'a: "x\\ty"\n',
    "a: &anchor 1\n",
    "a: !!str 1\n",
    "a: 1 # comment\n",
    "---\na: 1\n",
    "a: 1\n...\n",
    "%YAML 1.1\n---\na: 1\n",
    "just a scalar\n",
    "a:\tb\n",
    "a: [x, [y]]\n",
    "a: {b: {c: d}}\n",
    "a: [x, y\n",
    "? a\n: b\n",
    "key with space: 1\n",
    "a: 1\n  b: 2\n",
    "- a\nb: 1\n",
    "a:\n  - x\n  y: 1\n",
    "a: x\u2028y\n",
    "a: x\x85y\n",
    "\ufeffa: 1\n",
    "a: |\n  x\n   \n  y\n",  # a line of spaces inside a block
    "",
    "# only a comment\n",
]


def test_gives_up_outside_its_shape() -> None:
    for text in OUTSIDE:
        assert quickyaml.parse(text, "r.yaml") is None, text


# Texts chosen to sit on the edges of YAML 1.1's plain and quoted scalars.
TRICKY = ["x", "Ada Lovelace", "c-000042", "2025-01-02", "2025-01-02 10:30:00", "12.50",
          "0612", "1_000", "yes", "No", "on", "~", "null", "NULL", "", " ", "-", "-1", "- x",
          "--", "---", "...", "?", "? x", ":", ":x", "a:b", "a: b", "a:", "#", "a #b", "a#b",
          "[x]", "{x}", "x]", "x, y", "'", "''", "it's", '"', 'say "hi"', "\\", "a\\nb", "|",
          ">", "&a", "*a", "!a", "%a", "@a", "`a`", "é", "Zürich", "日本", "😀", "a  b",
          "x ", " x", "a\tb", "http://x.org/a?b=c#d", "tel:+1 555", "100%", "$5", "a=b",
          "<b>", "a|b", "1e3", ".5", "+1", "0x1F", "0o17", ".inf", "-.NaN", "=", "<<"]
# Keys the short way reads, and others PyYAML reads (or refuses).
KEYS = ["a", "name", "b-c", "x_1", "on", "null", "y", "Key", "_k", "k9"] * 3 + \
    ["a b", "-k", "1k", "k:", "'q'", "é"]
NOISE = [": ", ":", "#", " #", "\t", "'", '"', "-", "- ", "|", ">", "\\", "\n", " ", "  ",
         "[", "]", "{", "}", ",", "&", "*", "!", "\u2028", "\x85", "\r", "é", "😀", "---",
         "\n- ", "\n  ", "\n\n", "\n#", "~"]
COMMON = ["x", "Ada", "c-1", "2025-01-02", "a b", "12", "ada@example.com", "Zürich"]

scalars = st.one_of(st.sampled_from(COMMON * 4 + TRICKY),
                    st.text(st.sampled_from("ab :#-'\"[]{},|>\\é 0123456789.\n\t\xa0\u3000😀"),
                            max_size=8))


def entries(values: st.SearchStrategy[Any], min_size: int) -> st.SearchStrategy[Any]:
    """A mapping's entries: distinct keys (PyYAML's path reports duplicates; the damage below
    and OUTSIDE make some)."""
    return st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=min_size, max_size=4,
                    unique_by=lambda kv: kv[0])


def trees() -> st.SearchStrategy[Any]:
    leaf = st.tuples(st.just("s"), scalars, st.sampled_from("ppppdslf"))
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.tuples(st.just("m"), entries(children, 1)),
            st.tuples(st.just("l"), st.lists(children, min_size=1, max_size=3)),
            st.tuples(st.just("fl"), st.lists(scalars, max_size=3)),
            st.tuples(st.just("fm"), entries(scalars, 0))),
        max_leaves=8)


TREES = trees()  # made once: a recursive strategy is slow to build


def scalar_text(text: str, style: str, indent: int) -> str:
    if style == "d":
        return '"' + text + '"'
    if style == "s":
        return "'" + text.replace("'", "''") + "'"
    if style in "lf":
        block = "\n".join((" " * indent + line) if line else "" for line in text.split("\n"))
        return ("|" if style == "l" else "|-") + "\n" + block
    return text


def render(node: Any, indent: int, step: int, same_column_lists: bool) -> tuple[str, bool]:
    """YAML for a tree: (text, whether it goes on the line of its key)."""
    kind = node[0]
    if kind == "s":
        _, text, style = node
        return scalar_text(text, style, indent + step), style not in "lf" or True
    if kind == "fl":
        return "[" + ", ".join(node[1]) + "]", True
    if kind == "fm":
        return "{" + ", ".join(f"{k}: {v}" for k, v in node[1]) + "}", True
    lines = []
    pad = " " * indent
    if kind == "m":
        for key, value in node[1]:
            if value[0] in ("m", "l"):
                inner = indent if value[0] == "l" and same_column_lists else indent + step
                text, _ = render(value, inner, step, same_column_lists)
                lines.append(f"{pad}{key}:\n{text}")
            else:
                text, _ = render(value, indent, step, same_column_lists)
                lines.append(f"{pad}{key}: {text}")
    else:
        for item in node[1]:
            if item[0] == "m":
                text, _ = render(item, indent + 2, step, same_column_lists)
                lines.append(f"{pad}- {text[indent + 2:]}")
            elif item[0] == "l":
                text, _ = render(item, indent + step, step, same_column_lists)
                lines.append(f"{pad}-\n{text}")
            else:
                text, _ = render(item, indent, step, same_column_lists)
                lines.append(f"{pad}- {text}")
    return "\n".join(lines), False


@st.composite
def documents(draw: st.DrawFn) -> str:
    tree = draw(st.one_of(
        st.tuples(st.just("m"), entries(TREES, 1)),
        st.tuples(st.just("l"), st.lists(TREES, min_size=1, max_size=4))))
    text, _ = render(tree, draw(st.integers(0, 2)), draw(st.integers(1, 4)), draw(st.booleans()))
    lines = text.split("\n")
    for _ in range(draw(st.integers(0, 2))):  # comments and blank lines between lines
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, draw(st.sampled_from(["", "# note", "  # indented note", "   "])))
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n", "\n# end\n"]))
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):  # a little damage, anywhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(NOISE)) + text[at + draw(st.integers(0, 1)):]
    return text


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents(), st.integers(0, 3))
def test_same_trees_as_pyyaml(text: str, offset: int) -> None:
    same_as_pyyaml(text, offset)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(["name", "email", "kind", "notes", "due"]),
                          st.sampled_from(["Ada", "a@b.org", "2025-01-02", "x y z", "1"])),
                min_size=1, max_size=5, unique_by=lambda kv: kv[0]))
def test_plain_records_are_read_the_short_way(pairs: list[tuple[str, str]]) -> None:
    text = "".join(f"{k}: {v}\n" for k, v in pairs)
    assert same_as_pyyaml(text)
    listed = "".join(f"- {text.replace(chr(10), chr(10) + '  ').rstrip(' ')}")
    assert same_as_pyyaml(listed)


# The pattern of a plain scalar as first written, one character at a time: quickyaml's own
# takes runs whole (faster), and must find the very same lines.
_PLAIN_BY_CHARACTER = (r"(?:[^\s\-?:,\[\]{}#&*!|>'\"%@`]|[-?:][^\s,\[\]{}#:])"
                       r"(?:[^:#\n]|:(?! |$)|(?<! )#)*(?<![ :])")
_LINE_BY_CHARACTER = re.compile(r"^( *)(- +)?(?:([A-Za-z_][A-Za-z0-9_-]*)(:(?: +|$)))?"
                                r'(?:(")([^"\\\n]*)" *|(' + _PLAIN_BY_CHARACTER +
                                r') *|(.*))$', re.M)
_VALUE_BY_CHARACTER = re.compile(_PLAIN_BY_CHARACTER + "$")
LINE_TEXTS = st.text(st.sampled_from(list(" :#-?,[]{}&*!|>'\"%@`\\\nab1é")), max_size=40)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "- ", "  ", "key: ", "- k:  ", "k:"]),
                          LINE_TEXTS), max_size=6))
def test_lines_are_cut_as_one_character_at_a_time(lines: list[tuple[str, str]]) -> None:
    text = "\n".join(start + rest for start, rest in lines)
    assert quickyaml.LINE.findall(text) == _LINE_BY_CHARACTER.findall(text)
    for _, rest in lines:
        assert bool(quickyaml._PLAIN_VALUE.match(rest)) == bool(_VALUE_BY_CHARACTER.match(rest))


@settings(max_examples=2000, deadline=None)
@given(st.text(st.one_of(st.characters(max_codepoint=0x80), st.sampled_from(
    ["\u2028", "\ufeff", "\ud7ff", "\ue000", "\ufffe", "é", "\U0001f600", "\x85", "\xa0"]))))
def test_unusual_characters_are_found_in_any_text(text: str) -> None:
    assert quickyaml.unusual(text) == (quickyaml.UNUSUAL.search(text) is not None)
