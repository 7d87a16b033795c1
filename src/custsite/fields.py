"""Typed conversion of YAML nodes through a declarative schema.

Every value is converted from the text the user wrote (kept by `parse.py`), never from what
YAML 1.1 made of it; where YAML 1.1 (or 1.2) would read the text differently, the value is
still reported, because other tools reading the same file will get it wrong.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

import pycountry

from .errors import Location, Locs, Problem, did_you_mean, problem
from .ynodes import STR_TAG, YMap, YNode, YScalar, YSeq, describe

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*\Z")  # \Z: `$` would let a final newline in
_INT_RE = re.compile(r"^-?(0|[1-9][0-9]*)$")
_NUMBER_RE = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$")
# What YAML 1.2 core schema tools (js-yaml, ruamel, Go yaml.v3) read as numbers, beyond 1.1.
_YAML12_NUMBER_RE = re.compile(r"^[-+]?([0-9]+|[0-9]*\.[0-9]+|[0-9]+\.[0-9]*)([eE][-+]?[0-9]+)?$")
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}


class Invalid:
    """Marker for a value that failed conversion (its problem is already reported)."""

    _instance: Invalid | None = None

    def __new__(cls) -> Invalid:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "INVALID"


INVALID = Invalid()


@dataclass
class Context:
    """What conversions need beyond the node: config values and the problem sink."""

    problems: list[Problem]
    default_region: str | None = None
    sectors: tuple[str, ...] = ()

    def report(self, loc: Location, code: str, message: str) -> Invalid:
        self.problems.append(problem(loc, code, message))
        return INVALID


Converter = Callable[[YNode, Context, str], Any]

# The JSON Schema of what each converter accepts, for `custsite schema` and editors: kept
# beside the converters so that the schema and the validator describe the same rules.
_JSON_SCHEMAS: dict[Callable[..., Any], dict[str, Any]] = {}


F = TypeVar("F", bound=Callable[..., Any])


def described(schema: dict[str, Any]) -> Callable[[F], F]:
    def register(convert: F) -> F:
        _JSON_SCHEMAS[convert] = schema
        return convert

    return register


def json_schema_of(convert: Converter) -> dict[str, Any]:
    return dict(_JSON_SCHEMAS.get(convert, {}))


STRING: dict[str, Any] = {"type": "string"}
ID_PATTERN = "^[a-z0-9][a-z0-9_-]*$"
DATE_PATTERN = r"^\d{4}-\d{1,2}-\d{1,2}$"


@dataclass(frozen=True)
class Field:
    """How one field converts: `convert(node, ctx, key)` returns a value or INVALID."""

    convert: Converter
    required: bool = False


def _yaml11_reading(s: YScalar) -> str:
    """What YAML 1.1 makes of a plain scalar, in words."""
    tag = s.tag.rsplit(":", 1)[-1]
    if tag == "bool":
        low = s.text.lower()
        return f"the boolean {'true' if low in {'yes', 'y', 'true', 'on'} else 'false'}"
    if tag == "int":
        value: Any
        try:
            import yaml

            value = yaml.safe_load(s.text)
        except Exception:  # pragma: no cover - the text matched YAML's own int pattern
            value = s.text
        if ":" in s.text:
            return f"the base-60 number {value}"
        if re.match(r"^[-+]?0[0-7_]+$", s.text):
            return f"the octal number {value}"
        return f"the number {value}"
    if tag == "float":
        return "a number"
    if tag == "timestamp":
        return "a date"
    if tag == "null":
        return "null (nothing)"
    return f"a {tag}"


def implicit_type_message(s: YScalar, key: str) -> str | None:
    """A message when an unquoted scalar is read as something else than its text, else None."""
    if not s.plain:
        return None
    if s.tag != STR_TAG:
        reading = _yaml11_reading(s)
    elif _YAML12_NUMBER_RE.match(s.text):
        reading = f"the number {s.text.lstrip('+').lstrip('0') or '0'}" if "." not in s.text \
            else "a number"
        reading += " by YAML 1.2 tools"
    else:
        return None
    return (f"'{s.text}' is unquoted, so YAML reads it as {reading}; "
            f'quote it: {key}: "{s.text}"')


def _mangles_text(s: YScalar) -> bool:
    """True when YAML 1.1 would turn this plain scalar into something that loses its text."""
    if s.tag == STR_TAG:
        return False
    if s.tag.endswith(":bool"):
        return s.text not in _TRUE | _FALSE
    if s.tag.endswith(":int"):
        return not _INT_RE.match(s.text)
    if s.tag.endswith(":float"):
        return not _NUMBER_RE.match(s.text)
    return False


def _scalar(node: YNode, ctx: Context, expected: str) -> YScalar | Invalid:
    if type(node) is YScalar and not node.is_null:
        return node
    return ctx.report(node.loc, "wrong-type", f"expected {expected}, found {describe(node)}")


# --- converters ---------------------------------------------------------------------------


def _text(node: YNode, ctx: Context, key: str, *, reported: Callable[[YScalar], bool],
          expected: str = "text") -> str | Invalid:
    """Text as written; an unquoted spelling that `reported` flags is reported with its fix."""
    if type(node) is YScalar and not node.plain:  # quoted: nothing to report (most notes)
        return node.text
    s = _scalar(node, ctx, expected)
    if isinstance(s, Invalid):
        return s
    if reported(s):
        msg = implicit_type_message(s, key)
        if msg:
            ctx.report(s.loc, "yaml-implicit-type", msg)
    return s.text


@described(STRING)
def text(node: YNode, ctx: Context, key: str) -> str | Invalid:
    """Text that YAML 1.1 must not read as anything else (an e-mail, a country, a sector)."""
    return _text(node, ctx, key, reported=lambda s: s.tag != STR_TAG)


@described({"type": ["string", "number", "boolean"]})
def loose_text(node: YNode, ctx: Context, key: str) -> str | Invalid:
    """Text where numbers are fine (a product, a summary); only mangled spellings are reported."""
    return _text(node, ctx, key, reported=_mangles_text)


@described(STRING)
def strict_text(node: YNode, ctx: Context, key: str) -> str | Invalid:
    """Text that looks like a number (phone, zip): any unquoted numeric spelling is reported."""
    return _text(node, ctx, key, reported=lambda s: True, expected="quoted text")


@described({"type": "string", "pattern": ID_PATTERN})
def identifier(node: YNode, ctx: Context, key: str) -> str | Invalid:
    s = _scalar(node, ctx, "an id")
    if isinstance(s, Invalid):
        return s
    if not ID_RE.match(s.text):
        return ctx.report(s.loc, "invalid-id",
                          f"expected an id (lowercase letters, digits, '-' and '_'), "
                          f"found {s.text!r}")  # repr: a newline shows as \n
    return sys.intern(s.text)  # ids recur (each interaction names its customer): one string


def integer(lo: int | None = None, hi: int | None = None) -> Converter:
    def convert(node: YNode, ctx: Context, key: str) -> int | Invalid:
        s = _scalar(node, ctx, "a whole number")
        if isinstance(s, Invalid):
            return s
        if not s.plain:
            return ctx.report(s.loc, "wrong-type",
                              f"expected a whole number, found the text '{s.text}'; "
                              "remove the quotes")
        if not _INT_RE.match(s.text):
            if s.tag.endswith(":int"):
                return ctx.report(s.loc, "yaml-implicit-type",
                                  f"'{s.text}' is read by YAML as {_yaml11_reading(s)}; "
                                  "write the number in plain decimal digits")
            return ctx.report(s.loc, "wrong-type",
                              f"expected a whole number, found {describe(s)}")
        value = int(s.text)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
            return ctx.report(s.loc, "invalid-value", f"expected a number {bounds}, found {value}")
        return value

    bounds = {k: v for k, v in (("minimum", lo), ("maximum", hi)) if v is not None}
    _JSON_SCHEMAS[convert] = {"type": "integer", **bounds}
    return convert


def decimal(lo: Decimal | None = None) -> Converter:
    def convert(node: YNode, ctx: Context, key: str) -> Decimal | Invalid:
        s = _scalar(node, ctx, "a number")
        if isinstance(s, Invalid):
            return s
        if not s.plain:
            return ctx.report(s.loc, "wrong-type",
                              f"expected a number, found the text '{s.text}'; remove the quotes")
        if not _NUMBER_RE.match(s.text):
            return ctx.report(s.loc, "wrong-type",
                              f"expected a number such as 1250 or 99.90, found {describe(s)}")
        try:
            value = Decimal(s.text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
            return ctx.report(s.loc, "wrong-type", f"expected a number, found {describe(s)}")
        if not value.is_finite() or abs(value) > Decimal("1e15"):
            return ctx.report(s.loc, "invalid-value", f"'{s.text}' is too large to be an amount")
        if lo is not None and value < lo:
            return ctx.report(s.loc, "invalid-value", f"expected a number ≥ {lo}, found {s.text}")
        return value

    _JSON_SCHEMAS[convert] = {"type": "number",
                              **({"minimum": float(lo)} if lo is not None else {})}
    return convert


@described({"type": "boolean"})
def boolean(node: YNode, ctx: Context, key: str) -> bool | Invalid:
    s = _scalar(node, ctx, "true or false")
    if isinstance(s, Invalid):
        return s
    if s.plain and s.text in _TRUE:
        return True
    if s.plain and s.text in _FALSE:
        return False
    if s.plain and s.tag.endswith(":bool"):
        word = "true" if s.text.lower() in {"yes", "y", "on"} else "false"
        return ctx.report(s.loc, "yaml-implicit-type",
                          f"'{s.text}' is a boolean only in YAML 1.1; write {key}: {word}")
    return ctx.report(s.loc, "wrong-type", f"expected true or false, found {describe(s)}")


_DATE_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}[Tt ]\d")


def _parse_date_text(s: YScalar, ctx: Context, allow_time: bool) -> dt.date | dt.datetime | Invalid:
    t = s.text.strip()
    m = _DATE_RE.match(t)
    if m:
        try:
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError as exc:
            return ctx.report(s.loc, "invalid-date", f"'{t}' is not a real date: {exc}")
    if allow_time and _DATETIME_RE.match(t):
        try:
            value = dt.datetime.fromisoformat(t.replace("Z", "+00:00").replace("t", "T"))
        except ValueError as exc:
            return ctx.report(s.loc, "invalid-date",
                              f"'{t}' is not a real date-time: {exc}")
        return value
    shape = "YYYY-MM-DD or YYYY-MM-DDTHH:MM" if allow_time else "YYYY-MM-DD"
    return ctx.report(s.loc, "invalid-date", f"expected a date as {shape}, found {describe(s)}")


@described({"type": "string", "pattern": DATE_PATTERN})
def date(node: YNode, ctx: Context, key: str) -> dt.date | Invalid:
    s = _scalar(node, ctx, "a date (YYYY-MM-DD)")
    if isinstance(s, Invalid):
        return s
    value = _parse_date_text(s, ctx, allow_time=False)
    return value


@described({"type": "string", "pattern": r"^\d{4}-\d{1,2}-\d{1,2}([Tt ]\d.*)?$"})
def date_or_datetime(node: YNode, ctx: Context, key: str) -> dt.date | dt.datetime | Invalid:
    s = _scalar(node, ctx, "a date (YYYY-MM-DD) or date-time")
    if isinstance(s, Invalid):
        return s
    return _parse_date_text(s, ctx, allow_time=True)


def choice(choices: Sequence[str]) -> Converter:
    canonical = {c: c for c in choices}  # the one string of each value, for every record

    def convert(node: YNode, ctx: Context, key: str) -> str | Invalid:
        s = _scalar(node, ctx, "one of " + ", ".join(choices))
        if isinstance(s, Invalid):
            return s
        found = canonical.get(s.text)
        if found is None:
            return ctx.report(s.loc, "invalid-value",
                              f"expected one of {', '.join(choices)}, found '{s.text}'"
                              + did_you_mean(s.text, choices))
        return found

    _JSON_SCHEMAS[convert] = {"enum": list(choices)}
    return convert


@described(STRING)
def sector(node: YNode, ctx: Context, key: str) -> str | Invalid:
    value = text(node, ctx, key)
    if isinstance(value, str) and ctx.sectors and value not in ctx.sectors:
        return ctx.report(node.loc, "invalid-value",
                          f"expected a sector listed in custsite.yaml, found '{value}'"
                          + did_you_mean(value, ctx.sectors))
    return value


@described({"type": "string", "format": "email", "pattern": "^[^@\\s]+@[^@\\s]+$"})
def email(node: YNode, ctx: Context, key: str) -> str | Invalid:
    value = text(node, ctx, key)
    if isinstance(value, Invalid):
        return value
    problem = email_problem(value)
    if problem is not None:
        return ctx.report(node.loc, "invalid-email",
                          f"'{value}' is not a valid e-mail address: {problem}")
    return value


# An address of plain ASCII (words of letters, digits, "_", "+" and "-" joined by dots, an
# @, a domain of such labels with no IDNA "xn--" one) no longer than RFC 5321's 254 is one
# email_validator accepts whenever it accepts its domain (without `strict`, the library
# limits the whole address only, and such an address has the same length in every form it
# checks). Its domain is checked by the library once, with the first such address, then
# known good: the library checks a domain character by character against the IDNA tables,
# most of its time, and a portfolio's addresses share their domains. Any other address goes
# to the library whole.
_PLAIN_EMAIL = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
                          r"@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_GOOD_DOMAINS: set[str] = set()
MAX_GOOD_DOMAINS = 100_000
# Phone numbers written as E.164, as phonenumbers normalised them when it accepted them (see
# `known_good`).
_GOOD_PHONES: set[str] = set()


def known_good(emails: Iterable[str | None], phones: Iterable[str | None]) -> None:
    """Take these addresses and numbers as checked: values that records converted by this
    same custsite, with the same libraries and settings (a record store's: see
    cache.RecordStore), hold, which are only ever there once accepted. A build after an
    edit converts the edited file again, whose address and number are most often those it
    had: neither email_validator nor phonenumbers is then imported (each costs a hundredth
    of such a build, its regular expressions and tables made at import)."""
    for value in emails:  # as email_problem tells a plain address
        if not value or len(value) > 254 or len(_GOOD_DOMAINS) >= MAX_GOOD_DOMAINS:
            continue
        plain = _PLAIN_EMAIL.fullmatch(value)
        if plain is not None and "xn--" not in value.lower():
            _GOOD_DOMAINS.add(plain[1])
    _GOOD_PHONES.update(value for value in phones if value)


def email_problem(value: str) -> str | None:
    """What email_validator finds wrong with this address (without asking the DNS)."""
    plain = _PLAIN_EMAIL.fullmatch(value)
    domain = plain[1] if plain is not None and len(value) <= 254 and \
        "xn--" not in value.lower() else None
    if domain in _GOOD_DOMAINS:
        return None
    import email_validator  # here: a build with nothing to do, which reads no record, need not

    try:
        email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        return str(exc)
    if domain is not None and len(_GOOD_DOMAINS) < MAX_GOOD_DOMAINS:
        _GOOD_DOMAINS.add(domain)
    return None


@described(STRING)
def phone(node: YNode, ctx: Context, key: str) -> str | Invalid:
    """A phone number normalised to E.164 (`+33612345678`)."""
    value = strict_text(node, ctx, key)
    if isinstance(value, Invalid) or value in _GOOD_PHONES:  # E.164 already, and accepted
        return value
    import phonenumbers  # here, like email_validator

    try:
        number = phonenumbers.parse(value, ctx.default_region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            return ctx.report(node.loc, "invalid-phone",
                              f"'{value}' has no country code and custsite.yaml sets no "
                              "default_region; write it as +<country code> ... or set "
                              "default_region")
        return ctx.report(node.loc, "invalid-phone",
                          f"'{value}' is not a phone number: {str(exc._msg).rstrip('.')}")
    if not phonenumbers.is_valid_number(number):
        return ctx.report(node.loc, "invalid-phone",
                          f"'{value}' is not a valid phone number"
                          f" for region {phonenumbers.region_code_for_number(number) or '?'}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@described({"type": "string", "pattern": "^[A-Za-z]{2}$"})
def country(node: YNode, ctx: Context, key: str) -> str | Invalid:
    s = _scalar(node, ctx, "a country code such as FR")
    if isinstance(s, Invalid):
        return s
    if s.plain and s.tag.endswith(":bool"):
        ctx.report(s.loc, "yaml-implicit-type", implicit_type_message(s, key) or "")
    code = s.text.strip()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code.upper()) is None:
        found = pycountry.countries.get(name=code) if len(code) > 3 else None
        hint = f" (use '{found.alpha_2}')" if found else ""
        return ctx.report(s.loc, "invalid-country",
                          f"expected an ISO 3166-1 alpha-2 country code such as FR, found "
                          f"'{code}'{hint}")
    return code.upper()


@described({"type": "string", "pattern": "^[A-Za-z]{3}$"})
def currency(node: YNode, ctx: Context, key: str) -> str | Invalid:
    value = text(node, ctx, key)
    if isinstance(value, Invalid):
        return value
    if len(value) != 3 or pycountry.currencies.get(alpha_3=value.upper()) is None:
        return ctx.report(node.loc, "invalid-currency",
                          f"expected an ISO 4217 currency code such as EUR, found '{value}'")
    return value.upper()


@described({"type": "string", "pattern": "^https?://[^\\s]+$"})
def url(node: YNode, ctx: Context, key: str) -> str | Invalid:
    value = text(node, ctx, key)
    if isinstance(value, Invalid):
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        hint = f"; did you mean 'https://{value}'?" if not parts.scheme and "." in value else ""
        return ctx.report(node.loc, "invalid-url",
                          f"expected an http(s) URL, found '{value}'{hint}")
    return value


def list_of(item: Converter) -> Converter:
    def convert(node: YNode, ctx: Context, key: str) -> tuple[Any, ...] | Invalid:
        if not isinstance(node, YSeq):
            hint = f"; write {key}: [{node.text}]" if isinstance(node, YScalar) and \
                not node.is_null else ""
            return ctx.report(node.loc, "wrong-type",
                              f"expected a list, found {describe(node)}{hint}")
        values = [item(n, ctx, key) for n in node.items]
        return tuple(v for v in values if not isinstance(v, Invalid))

    _JSON_SCHEMAS[convert] = {"type": "array", "items": json_schema_of(item)}
    return convert


@described({"type": ["string", "number", "boolean"]})
def any_scalar(node: YNode, ctx: Context, key: str) -> str | Invalid:
    """An undeclared custom field: kept as written; mangled spellings are reported."""
    return loose_text(node, ctx, key)


# The converters that give a quoted scalar's text as written and report nothing (see _text):
# most notes are quoted, and are taken so without a call (see quickrecords).
AS_WRITTEN: frozenset[Converter] = frozenset({text, loose_text, strict_text, any_scalar})


@described({"type": "object",
            "additionalProperties": {"anyOf": [STRING, {"type": "array", "items": STRING}]}})
def string_mapping(node: YNode, ctx: Context, key: str) -> dict[str, Any] | Invalid:
    """A free mapping of labels to text or lists of text (persona identity cards)."""
    if not isinstance(node, YMap):
        return ctx.report(node.loc, "wrong-type", f"expected a mapping, found {describe(node)}")
    out: dict[str, Any] = {}
    for k, v in node.items:
        out[k.text] = (list_of(loose_text)(v, ctx, k.text) if isinstance(v, YSeq)
                       else loose_text(v, ctx, k.text))
    return out


class Converted(NamedTuple):
    values: dict[str, Any]
    locs: Locs  # where each field was written ("" for the mapping itself)
    complete: bool  # every required field was given a valid value


def convert_mapping(node: YNode, schema: Mapping[str, Field], ctx: Context, *,
                    what: str) -> Converted | None:
    """Convert a mapping node through a schema: its values and their positions, or None when
    the node is not a mapping. Run for every record: kept to one pass over the fields."""
    if not isinstance(node, YMap):
        ctx.report(node.loc, "wrong-type", f"expected a mapping of fields for {what}, "
                                           f"found {describe(node)}")
        return None
    values: dict[str, Any] = {}
    names = [""]
    spots = [node.line, node.col]
    for k, v in node.items:
        name = k.text
        spec = schema.get(name)
        if spec is None:
            ctx.report(k.loc, "unknown-field",
                       f"unknown field '{name}' for {what}" + did_you_mean(name, schema))
            continue
        names.append(name)
        spots.append(v.line)
        spots.append(v.col)
        if type(v) is YScalar and v.is_null:
            if spec.required:
                ctx.report(v.loc, "missing-field", f"'{name}' must not be empty")
            continue
        value = spec.convert(v, ctx, name)
        if value is not INVALID:
            values[name] = value
    complete = True
    for name, spec in schema.items():
        if spec.required and name not in values:
            complete = False
            if name not in names:
                ctx.report(node.loc, "missing-field",
                           f"missing required field '{name}' for {what}")
    return Converted(values, Locs(node.path, tuple(names), tuple(spots)), complete)


def submapping(schema: Mapping[str, Field], what: str) -> Converter:
    def convert(node: YNode, ctx: Context, key: str) -> dict[str, Any] | Invalid:
        result = convert_mapping(node, schema, ctx, what=what)
        return INVALID if result is None else result.values

    _JSON_SCHEMAS[convert] = object_schema(schema)
    return convert


def object_schema(schema: Mapping[str, Field]) -> dict[str, Any]:
    """The JSON Schema of a mapping converted by `convert_mapping` with `schema`."""
    out: dict[str, Any] = {
        "type": "object",
        "properties": {name: json_schema_of(spec.convert) for name, spec in schema.items()},
        "additionalProperties": False,
    }
    required = [name for name, spec in schema.items() if spec.required]
    if required:
        out["required"] = required
    return out


@described({"type": "object"})
def keep_node(node: YNode, ctx: Context, key: str) -> YNode:
    """Rules are compiled later (`rules.py`), with their positions; keep the node."""
    return node


def mapping_of(value: Converter, *, key_is_id: bool = True) -> Converter:
    """A mapping whose keys are names chosen by the user (segment ids, custom field names)."""

    def convert(node: YNode, ctx: Context, key: str) -> dict[str, Any] | Invalid:
        if not isinstance(node, YMap):
            return ctx.report(node.loc, "wrong-type", f"expected a mapping, found {describe(node)}")
        out: dict[str, Any] = {}
        for k, v in node.items:
            if key_is_id and not ID_RE.match(k.text):
                ctx.report(k.loc, "invalid-id",
                           f"expected a name of lowercase letters, digits, '-' and '_', "
                           f"found '{k.text}'")
                continue
            converted = value(v, ctx, k.text)
            if not isinstance(converted, Invalid):
                out[k.text] = converted
        return out

    _JSON_SCHEMAS[convert] = {"type": "object", "additionalProperties": json_schema_of(value)}
    return convert
