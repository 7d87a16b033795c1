"""The site's data files: the computed portfolio as JSON and CSV, and the JSON twins of
list pages, for analysis in other tools."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from . import __version__
from .derive import Contact, Derived
from .gitinfo import Change

_FORMULA_RE = re.compile(r"^[=+\-@\t\r]")
_NUMERIC_RE = re.compile(r"^[+-]?[\d][\d\s().-]*$")


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, tuple | set | frozenset):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


class JsonText(str):
    """JSON already encoded: `to_json` writes it as it is. Lists of 10,000 contact records
    are joined from each contact's JSON, made once per content (see `json_array`)."""


def _dumps(value: Any) -> str:
    # Compact on purpose: with `indent`, the json module falls back from its C encoder to a
    # Python one that is ten times slower on a list of 10,000 contacts.
    return json.dumps(value, default=json_default, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))


def json_text(value: Any) -> JsonText:
    """One value as deterministic JSON text, to be joined into a larger document."""
    return JsonText(_dumps(value))


def json_array(items: Iterable[str]) -> JsonText:
    return JsonText("[" + ",".join(items) + "]")


def to_json(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, ISO dates, exact decimals as numbers; the values of a
    top-level object may be `JsonText`, the same bytes as if they had been encoded here."""
    if isinstance(value, dict) and any(isinstance(v, JsonText) for v in value.values()):
        text = "{" + ",".join(f"{_dumps(k)}:{v if isinstance(v, JsonText) else _dumps(v)}"
                              for k, v in sorted(value.items())) + "}"
    else:
        text = _dumps(value)
    return (text + "\n").encode("utf-8")


def contact_record(c: Contact, hide: frozenset[str] = frozenset(),
                   change: Change | None = None) -> dict[str, Any]:
    """The flat, computed view of a contact; hidden fields are left out entirely, and the last
    change from git is there only when git knows it."""
    cust = c.customer
    row: dict[str, Any] = {
        "id": c.id, "name": cust.name, "kind": cust.kind, "email": cust.email,
        "phone": cust.phone, "organization": cust.organization, "role": cust.role,
        "sector": cust.sector, "country": cust.location.country if cust.location else None,
        "owner": cust.owner, "tags": list(cust.tags), "source": cust.source,
        "referred_by": cust.referred_by, "do_not_contact": cust.do_not_contact,
        "stage": c.stage, "stage_since": c.stage_since, "stage_reason": c.stage_reason,
        "relationship": c.relationship, "b2b": c.b2b, "born_again": c.born_again,
        "advocate": c.advocate, "purchases": len(c.purchases), "revenue": c.revenue,
        "currency": c.currency, "first_purchase": c.first_purchase,
        "last_purchase": c.last_purchase, "last_interaction": c.last_interaction,
        "rfm": c.rfm.code if c.rfm else None,
        "rfm_segment": c.rfm.segment if c.rfm else None,
        "personas": list(c.personas), "segments": list(c.segments),
        "p_alive": c.lifetime.p_alive if c.lifetime else None,
        "expected_purchases": c.lifetime.expected_purchases if c.lifetime else None,
        "clv": c.lifetime.clv if c.lifetime else None,
    }
    if change is not None:
        row.update({"last_changed": change.date, "last_changed_by": change.author})
    for name in hide:
        row.pop(name, None)
    if "location" in hide:
        row.pop("country", None)
    return row


def csv_cell(value: Any) -> Any:
    """Spreadsheet-friendly cells: lists joined by ';', lowercase booleans, ISO dates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = ";".join(value)
    if isinstance(value, Decimal | dt.date):
        return json_default(value)
    if isinstance(value, str) and _FORMULA_RE.match(value) and not _NUMERIC_RE.match(value):
        # A cell starting like a formula would run in a spreadsheet (CSV injection).
        return "'" + value
    return value


# The JSON records (or CSV lines) of contacts, in their order: each made once per content.
RecordsJson = Callable[[list[Contact]], list[str]]
GIT_COLUMNS = ("last_changed", "last_changed_by")


def portfolio_json(derived: Derived, ordered: list[Contact], records_json: RecordsJson) -> bytes:
    """The data file of the whole portfolio; `ordered`: every contact, by id."""
    return to_json({
        "generator": f"custsite {__version__}", "as_of": derived.as_of,
        "title": derived.config.title,
        "contacts": json_array(records_json(ordered)),
        "segments": {s.id: list(s.members) for s in derived.segments.values()},
        "personas": {k: list(v) for k, v in derived.persona_matches.items()},
    })


def csv_line(values: Iterable[Any]) -> str:
    """One CSV line of cells (see `csv_cell`)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([csv_cell(v) for v in values])
    return buf.getvalue()


def csv_table(rows: Sequence[dict[str, Any]]) -> bytes:
    """A CSV file of rows that all have the keys of the first, in its order."""
    if not rows:
        return b""
    columns = list(rows[0])
    lines = [csv_line(columns), *(csv_line(row[k] for k in columns) for row in rows)]
    return "".join(lines).encode("utf-8")


def csv_columns(record: dict[str, Any], *, git: bool) -> tuple[str, ...]:
    """The columns of the contacts CSV: every row has git's columns as soon as git knows one
    file (empty where it knows nothing), so that rows always match the header."""
    names = [k for k in record if k not in GIT_COLUMNS]
    return (*names, *GIT_COLUMNS) if git else tuple(names)


def customers_csv(ordered: list[Contact], columns: tuple[str, ...],
                  lines_of: RecordsJson) -> bytes:
    """The contacts CSV of every contact, by id (`ordered`); `lines_of` gives contacts' rows
    in `columns`."""
    lines = lines_of(ordered)
    return (csv_line(columns) + "".join(lines)).encode("utf-8") if lines else b""
