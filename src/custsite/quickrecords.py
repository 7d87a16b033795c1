"""Interaction files of the common shape, converted in one pass over their lines.

Interactions are most of a portfolio's records (about ten per contact), nearly always written
as a list of flat mappings with one-line values. The usual way reads such a file into a YNode
tree (quickyaml) and then converts the tree (fields.convert_mapping): every value is walked
twice and costs three objects. Here the lines are read with quickyaml's own line pattern and
each value is converted as it is met, by the schema's own converters, whose clean results are
kept by text: most values recur (kinds, dates, amounts, the file's customer), and a value a
converter made without reporting anything depends only on its text.

Anything else gives up (None), and the file takes the usual way, which reports every problem:
any line outside the shape, an unknown or repeated field, an empty value, a value its
converter reports, an item without its required fields. So the records made here are those
the usual way makes whenever it reports nothing; tests/test_quickrecords.py holds the two ways
to that.
"""

from __future__ import annotations

from typing import Any

from .errors import Locs
from .fields import AS_WRITTEN, Context, Converter
from .model import Interaction
from .quickyaml import LINE, UNUSUAL
from .records import INTERACTION_SCHEMA, interaction
from .ynodes import MAX_NODES, NULL_TEXTS, STR_TAG, YScalar

_GAVE_UP = object()
_CONVERTERS = {name: spec.convert for name, spec in INTERACTION_SCHEMA.items()}
_REQUIRED = frozenset(name for name, spec in INTERACTION_SCHEMA.items() if spec.required)
MAX_KEPT = 50_000  # clean values kept per field and style; beyond, converted each time


class _Clean:
    """What each field's converter made of a text without reporting anything, by field, for
    one conversion context (its default region and sectors: converters read them)."""

    def __init__(self, ctx: Context) -> None:
        self.probe = Context([], ctx.default_region, ctx.sectors)
        self.plain: dict[str, dict[str, Any]] = {key: {} for key in INTERACTION_SCHEMA}
        self.quoted: dict[str, dict[str, Any]] = {key: {} for key in INTERACTION_SCHEMA}

    def value(self, key: str, convert: Converter, text: str, plain: bool, path: str,
              line: int, col: int) -> Any:
        """What `convert` makes of this text, kept; _GAVE_UP when it reports anything."""
        node = YScalar(text, "" if plain else STR_TAG, plain, path, line, col)
        value = convert(node, self.probe, key)
        if self.probe.problems:
            self.probe.problems.clear()
            return _GAVE_UP
        kept = (self.plain if plain else self.quoted)[key]
        if len(kept) < MAX_KEPT:
            kept[text] = value
        return value


_CLEAN: dict[tuple[str | None, tuple[str, ...]], _Clean] = {}


def interactions(text: str, path: str, stem: str, ctx: Context) -> list[Interaction] | None:
    """The interactions of a `.yaml` file holding a list of flat mappings, as
    records.to_interactions makes them when it reports nothing; None for any other file."""
    if UNUSUAL.search(text):
        return None
    tokens = LINE.findall(text)
    if len(tokens) != text.count("\n") + 1 or len(tokens) > MAX_NODES // 3:
        return None  # a line the pattern cannot read; a file PyYAML's path would refuse
    clean = _CLEAN.get((ctx.default_region, ctx.sectors))
    if clean is None:
        clean = _CLEAN[(ctx.default_region, ctx.sectors)] = _Clean(ctx)
    converters = _CONVERTERS
    as_written = AS_WRITTEN
    plain_kept, quoted_kept = clean.plain, clean.quoted
    out: list[Interaction] = []
    dash_at = key_at = -1  # the items' dash and key columns (0-based)
    values: dict[str, Any] = {}
    names: list[str] = []
    spots: list[int] = []
    line = 0
    for indent_s, dash, key, sep, quote, quoted, plain, other in tokens:
        line += 1
        if not key:
            if dash or quote or plain or (other and other[0] != "#"):
                return None  # a scalar, a list item without a key, a document marker...
            continue  # blank or a comment
        if dash:
            if dash_at < 0:
                dash_at = len(indent_s)
            elif len(indent_s) != dash_at:
                return None
            if names and not _finish(values, names, spots, path, f"{stem}-{len(out) + 1}",
                                     out):
                return None
            key_at = dash_at + len(dash)
            values, names, spots = {}, [""], [line, key_at + 1]
        elif len(indent_s) != key_at:
            return None  # a key outside the item above, or a block below a key
        convert = converters.get(key)
        if convert is None or key in values:
            return None  # an unknown field; a repeated one
        if quote:
            if convert in as_written:
                value = quoted
            else:
                value = quoted_kept[key].get(quoted, _GAVE_UP)
                if value is _GAVE_UP:
                    value = clean.value(key, convert, quoted, False, path, line,
                                        key_at + len(key) + len(sep) + 1)
        elif plain and plain not in NULL_TEXTS:
            value = plain_kept[key].get(plain, _GAVE_UP)
            if value is _GAVE_UP:
                value = clean.value(key, convert, plain, True, path, line,
                                    key_at + len(key) + len(sep) + 1)
        else:
            return None  # empty or null; a block, a flow collection
        if value is _GAVE_UP:
            return None
        values[key] = value
        names.append(key)
        spots.append(line)
        spots.append(key_at + len(key) + len(sep) + 1)
    if not names or not _finish(values, names, spots, path, f"{stem}-{len(out) + 1}", out):
        return None
    return out


def _finish(values: dict[str, Any], names: list[str], spots: list[int], path: str,
            default_id: str, out: list[Interaction]) -> bool:
    """Make the item just read; False when it lacks what the usual way would report."""
    customer = values.pop("customer", None)
    if customer is None or "customers" in values or not values.keys() >= _REQUIRED:
        return False
    out.append(interaction(values, Locs(path, tuple(names), tuple(spots)), path,
                           (customer,), default_id))
    return True
