"""The position-carrying YAML trees record files are read into (see parse), and what YAML 1.1
says of their plain scalars."""

from __future__ import annotations

from typing import NamedTuple, Union

import yaml

from .errors import Location

NULL_TAG = "tag:yaml.org,2002:null"
STR_TAG = "tag:yaml.org,2002:str"
SEQ_TAG = "tag:yaml.org,2002:seq"
MAP_TAG = "tag:yaml.org,2002:map"

# The safe loader's implicit resolvers by a scalar's first character, with those that apply
# to any first character after them, in PyYAML's order.
_ANY_FIRST = tuple(yaml.resolver.Resolver.yaml_implicit_resolvers.get(None, []))
_BY_FIRST = {first: (*found, *_ANY_FIRST)
             for first, found in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
             if first is not None}


# The spellings YAML 1.1 reads as null (the safe loader's null pattern, first characters and all).
NULL_TEXTS = frozenset({"", "~", "null", "Null", "NULL"})


def resolve_plain(text: str) -> str:
    """The tag YAML 1.1's safe loader gives an untagged plain scalar: PyYAML's implicit
    resolvers, tried in PyYAML's order, written for the safe loader alone (PyYAML's general
    version looks at path resolvers and concatenates a list per call)."""
    for tag, regexp in _BY_FIRST.get(text[:1], _ANY_FIRST):
        if regexp.match(text):
            return str(tag)
    return STR_TAG


MAX_NODES = 100_000  # aliases may expand a small file exponentially; refuse beyond this
MAX_DEPTH = 100
MAX_FILE_BYTES = 5 * 1024 * 1024


# Named tuples rather than frozen dataclasses: a portfolio has millions of these nodes. Each
# holds its position as plain ints beside the file's (shared) path: a Location is made only
# when one is asked for, for a problem or a record's field positions (see errors.Locs).
class YScalar(NamedTuple):
    text: str
    given: str  # the tag written or implied by quotes; "" for a plain scalar without one
    plain: bool  # written without quotes or block style
    path: str
    line: int
    col: int

    @property
    def tag(self) -> str:
        """The tag YAML 1.1 resolves for this text (str for quoted scalars)."""
        return self.given or resolve_plain(self.text)

    @property
    def is_null(self) -> bool:
        return self.plain and (self.given == NULL_TAG if self.given else self.text in NULL_TEXTS)

    @property
    def loc(self) -> Location:
        return Location(self.path, self.line, self.col)


class YSeq(NamedTuple):
    items: tuple[YNode, ...]
    path: str
    line: int
    col: int

    @property
    def loc(self) -> Location:
        return Location(self.path, self.line, self.col)


class YMap(NamedTuple):
    items: tuple[tuple[YScalar, YNode], ...]
    path: str
    line: int
    col: int

    @property
    def loc(self) -> Location:
        return Location(self.path, self.line, self.col)

    def get(self, key: str) -> YNode | None:
        for k, v in self.items:
            if k.text == key:
                return v
        return None

    def keys(self) -> list[str]:
        return [k.text for k, _ in self.items]


YNode = Union[YScalar, YSeq, YMap]  # noqa: UP007 - runtime alias used in isinstance-free unions


def describe(node: YNode) -> str:
    """Words for what was found, for "expected X, found Y" messages."""
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    if node.is_null:
        return "nothing"
    return f"'{node.text}'" if len(node.text) <= 60 else f"'{node.text[:57]}...'"
