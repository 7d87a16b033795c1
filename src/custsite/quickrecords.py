"""Record files of the common shape, converted in one pass over their lines.

Nearly every record file is a flat mapping (a customer, an organization) or a list of them
(interactions, ten per contact), with one-line values. The usual way reads a file into a
YNode tree (quickyaml) and then converts the tree (fields.convert_mapping): every value is
walked twice and costs three objects. Here the lines are read with quickyaml's own line
pattern and each value is converted as it is met, by the schema's own converters. A value's
clean result is kept by text: most values recur (kinds, dates, amounts, the file's customer,
places and tags), and what a converter makes of a text without reporting anything depends on
the text alone (and on the conversion context, which the kept values are filed under); those
of flow lists and mappings are kept only when immutable, as they are then shared. Whole lines
recur too (`  kind: call`, a date, the file's customer): what a line says, apart from where it
stands, is kept by its text, and such a line is neither matched nor converted again.

Anything else gives up (None), and the file takes the usual way, which reports every problem:
any line outside the shape, an unknown or repeated field, an empty value, a value its
converter reports, a record without its required fields. So the records made here are those
the usual way makes whenever it reports nothing; tests/test_quickrecords.py holds the two ways
to that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from . import quickyaml
from .errors import pack
from .fields import AS_WRITTEN, Context, Converter, Field
from .model import Customer, Interaction, Organization
from .records import INTERACTION_SCHEMA, ORGANIZATION_SCHEMA, interaction, record
from .ynodes import MAX_NODES, NULL_TEXTS, STR_TAG, YMap, YScalar

_GAVE_UP = object()
MAX_KEPT = 50_000  # clean values kept per converter and style; beyond, converted each time
MAX_CONTEXTS = 8
Schema = Mapping[str, Field]
Item = tuple[dict[str, Any], list[str], list[int]]  # values, field names, their positions
# A field's converter, the clean values it made of plain and of quoted texts, and whether it
# takes quoted text as written; then the clean values it made of other texts (flow lists and
# mappings, single-quoted texts), each with the nodes its text counts for.
_Field = tuple[Converter, dict[str, Any], dict[str, Any], bool, dict[str, tuple[Any, int]]]
# What one line says, wherever it stands: its indentation, the width of its list dash with
# the spaces after it (0: none), its key (None: a blank line or a comment), its value's
# column, the value converted, and the nodes that value counts for beyond its key's.
_Line = tuple[int, int, str | None, int, Any, int]
_BLANK: _Line = (0, 0, None, 0, None, 0)
_Table = tuple[dict[str, _Field], dict[str, _Line]]


class _Clean:
    """What each converter made of a text without reporting anything, for one conversion
    context (its settings, such as the default region: converters read them). By converter
    rather than by field: a field's converter changes with custsite.yaml (custom fields),
    and a clean value does not depend on the field's name (converters use it in messages
    only)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.plain: dict[Converter, dict[str, Any]] = {}
        self.quoted: dict[Converter, dict[str, Any]] = {}
        self.other: dict[Converter, dict[str, tuple[Any, int]]] = {}
        self.tables: dict[int, tuple[Schema, _Table]] = {}

    def table(self, schema: Schema) -> _Table:
        """Each field's converter with the values kept for it (one lookup per field read),
        and the lines of this schema's files kept by their text."""
        found = self.tables.get(id(schema))
        if found is None or found[0] is not schema:
            found = self.tables[id(schema)] = (schema, ({
                key: (spec.convert, self.plain.setdefault(spec.convert, {}),
                      self.quoted.setdefault(spec.convert, {}), spec.convert in AS_WRITTEN,
                      self.other.setdefault(spec.convert, {}))
                for key, spec in schema.items()}, {}))
        return found[1]

    def value(self, key: str, convert: Converter, node: YScalar) -> Any:
        """What `convert` makes of this scalar, kept; _GAVE_UP when it reports anything."""
        value = self.converted(key, convert, node)
        if value is not _GAVE_UP:
            kept = (self.plain if node.plain else self.quoted)[convert]
            if len(kept) < MAX_KEPT:
                kept[node.text] = value
        return value

    def converted(self, key: str, convert: Converter, node: Any) -> Any:
        """What `convert` makes of this node; _GAVE_UP when it reports anything (into a
        context of its own: the dev server may convert in more than one thread)."""
        problems: list[Any] = []
        value = convert(node, Context(problems, **self.settings), key)
        return _GAVE_UP if problems else value


_CLEAN: dict[tuple[Any, ...], _Clean] = {}
_SETTINGS = tuple(f.name for f in fields(Context) if f.name != "problems")
_REQUIRED: dict[int, tuple[Schema, frozenset[str]]] = {}


def _immutable(value: Any) -> bool:
    """Whether a value may be shared by the records that wrote the same text: hashable
    (tuples, frozen places), not a dict (custom fields) that code could change."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


def forget() -> None:
    """Let the kept values go, once the files at hand are read: they would otherwise stay
    for the life of the process (tens of megabytes at 100,000 contacts, alongside the
    records while the site renders), with the schemas they were filed under (the dev
    server makes a new customer schema for each rebuild)."""
    _CLEAN.clear()
    _REQUIRED.clear()


def _required(schema: Schema) -> frozenset[str]:
    found = _REQUIRED.get(id(schema))
    if found is None or found[0] is not schema:
        found = _REQUIRED[id(schema)] = (
            schema, frozenset(name for name, spec in schema.items() if spec.required))
    return found[1]


def records(kind: str, text: str, path: str, stem: str, customer_schema: Schema,
            ctx: Context) -> dict[str, tuple[Any, ...]] | None:
    """The records of a `.yaml` file of this kind, as validate.load_file makes them when
    nothing is reported; None for any other file (and for personas, whose rules are
    compiled from their nodes)."""
    if kind == "interaction":
        made = interactions(text, path, stem, ctx)
        return None if made is None else {"interactions": tuple(made)}
    schema = customer_schema if kind == "customer" else ORGANIZATION_SCHEMA \
        if kind == "organization" else None
    if schema is None:
        return None
    items = _read(text, path, schema, ctx, listed=False)
    if items is None:
        return None
    values, names, spots = items[0]
    if not values.keys() >= _required(schema):
        return None
    where = pack(path, tuple(names), tuple(spots))
    if kind == "customer":
        return {"customers": (record(Customer, values, stem, path, where),)}
    return {"organizations": (record(Organization, values, stem, path, where),)}


def interactions(text: str, path: str, stem: str, ctx: Context) -> list[Interaction] | None:
    """The interactions of a `.yaml` file holding a list of flat mappings, as
    records.to_interactions makes them when it reports nothing; None for any other file."""
    items = _read(text, path, INTERACTION_SCHEMA, ctx, listed=True)
    if items is None:
        return None
    required = _required(INTERACTION_SCHEMA)
    out: list[Interaction] = []
    for n, (values, names, spots) in enumerate(items, start=1):
        customer = values.pop("customer", None)
        if customer is None or "customers" in values or not values.keys() >= required:
            return None
        out.append(interaction(values, pack(path, tuple(names), tuple(spots)), path,
                               (customer,), f"{stem}-{n}"))
    return out


def _read(text: str, path: str, schema: Schema, ctx: Context, *,
          listed: bool) -> list[Item] | None:
    """The converted fields of a flat mapping (a list of them, when `listed`), with their
    positions as convert_mapping keeps them (the mapping's first, under "")."""
    if quickyaml.unusual(text):
        return None
    settings = tuple(getattr(ctx, name) for name in _SETTINGS)
    clean = _CLEAN.get(settings)
    if clean is None:
        if len(_CLEAN) >= MAX_CONTEXTS:  # the dev server, through many custsite.yaml edits
            _CLEAN.clear()
        clean = _CLEAN[settings] = _Clean(dict(zip(_SETTINGS, settings, strict=True)))
    table, known = clean.table(schema)
    items: list[Item] = []
    dash_at = -1  # the items' dash column (0-based)
    key_at = -1 if listed else 0  # their keys' column
    values: dict[str, Any] = {}
    names: list[str] = []
    spots: list[int] = []
    count = 1  # nodes, as quickyaml counts them (it leaves files beyond MAX_NODES to PyYAML)
    line = 0
    for raw in text.split("\n"):
        line += 1
        said = known.get(raw)
        if said is None:
            said = _line(raw, path, line, table, clean, known)
            if said is None:
                return None
        indent, dash, key, at, value, nodes = said
        if key is None:
            continue  # blank or a comment
        if dash:
            if not listed or (dash_at >= 0 and indent != dash_at):
                return None
            dash_at = indent
            key_at = indent + dash
            values, names, spots = {}, [""], [line, key_at + 1]
            items.append((values, names, spots))
            count += 1
        elif indent != key_at:
            return None  # a key outside the mapping above, or a block below a key
        elif not names:  # the first key of a mapping that is the whole file
            names, spots = [""], [line, key_at + 1]
            items.append((values, names, spots))
        if key in values:
            return None  # a repeated field
        values[key] = value
        names.append(key)
        spots.append(line)
        spots.append(at)
        count += 2 + nodes
    if not items or count > MAX_NODES:
        return None
    return items


def _line(raw: str, path: str, line: int, table: dict[str, _Field], clean: _Clean,
          known: dict[str, _Line]) -> _Line | None:
    """What a line says (kept in `known` by its text, unless its value is free text taken as
    written, which seldom recurs); None when it is not of the shape read here."""
    found = quickyaml.LINE.fullmatch(raw)
    if found is None:
        return None  # a line the pattern cannot read
    indent_s, dash, key, sep, quote, quoted, plain, other = found.groups("")
    if not key:
        if dash or quote or plain or (other and other[0] != "#"):
            return None  # a scalar, a list item without a key, a document marker...
        if len(known) < MAX_KEPT:
            known[raw] = _BLANK
        return _BLANK
    field = table.get(key)
    if field is None:
        return None  # an unknown field
    convert, plain_kept, quoted_kept, as_written, other_kept = field
    at = len(indent_s) + len(dash) + len(key) + len(sep) + 1
    nodes = 0
    keep = True
    if quote:
        if as_written:
            value, keep = quoted, False
        else:
            value = quoted_kept.get(quoted, _GAVE_UP)
            if value is _GAVE_UP:
                value = clean.value(key, convert, YScalar(quoted, STR_TAG, False, path, line, at))
    elif plain:
        if plain in NULL_TEXTS:
            return None
        value = plain_kept.get(plain, _GAVE_UP)
        if value is _GAVE_UP:
            value = clean.value(key, convert, YScalar(plain, "", True, path, line, at))
    else:  # a flow collection, a single-quoted text...
        kept = other_kept.get(other)
        if kept is not None:
            value, nodes = kept
        else:
            node = quickyaml.value(other, path, line, at - 1) if other else None
            if node is None or (type(node) is YScalar and node.is_null):
                return None  # empty or null; a block
            nodes = len(node.items) * (2 if isinstance(node, YMap) else 1) \
                if not isinstance(node, YScalar) else 0
            value = clean.converted(key, convert, node)
            keep = value is not _GAVE_UP and _immutable(value)  # a place, a list of tags
            if keep and len(other_kept) < MAX_KEPT:
                other_kept[other] = (value, nodes)
    if value is _GAVE_UP:
        return None
    said = (len(indent_s), len(dash), key, at, value, nodes)
    if keep and len(known) < MAX_KEPT:
        known[raw] = said
    return said
