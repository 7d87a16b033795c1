"""The site's data files: the computed portfolio as JSON and CSV, and the JSON twins of
list pages, for analysis in other tools."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable
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


def to_json(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, ISO dates, exact decimals as numbers.

    Compact on purpose: with `indent`, the json module falls back from its C encoder to a
    Python one that is ten times slower on a list of 10,000 contacts.
    """
    text = json.dumps(value, default=json_default, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))
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


Records = Callable[[Contact], dict[str, Any]]


def portfolio_json(derived: Derived, record: Records) -> bytes:
    return to_json({
        "generator": f"custsite {__version__}", "as_of": derived.as_of,
        "title": derived.config.title,
        "contacts": [record(derived.contacts[cid]) for cid in sorted(derived.contacts)],
        "segments": {s.id: list(s.members) for s in derived.segments.values()},
        "personas": {k: list(v) for k, v in derived.persona_matches.items()},
    })


def customers_csv(derived: Derived, record: Records) -> bytes:
    rows = [record(derived.contacts[cid]) for cid in sorted(derived.contacts)]
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return buf.getvalue().encode("utf-8")
