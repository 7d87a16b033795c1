"""`custsite export`: the computed portfolio for analysis elsewhere — JSON, CSV files, or a
SQLite database with one table per kind, typed columns, foreign keys and indexes (ready for
`sqlite3` or Datasette)."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import __version__
from .data import contact_record, csv_table, json_default, to_json
from .derive import Derived
from .errors import CustsiteError
from .model import Interaction
from .privacy import publish

FORMATS = ("json", "csv", "sqlite")


def organization_record(derived: Derived, oid: str) -> dict[str, Any]:
    a = derived.accounts[oid]
    o = a.organization
    return {"id": o.id, "name": o.name, "sector": o.sector, "size": o.size,
            "website": o.website, "country": o.location.country if o.location else None,
            "tags": list(o.tags), "stage": a.stage, "revenue": a.revenue, "currency": a.currency,
            "contacts": len(a.contacts), "open_deal": a.open_deal}


def interaction_record(i: Interaction, currency: str) -> dict[str, Any]:
    return {"id": i.id, "date": i.date, "kind": i.kind, "customers": list(i.customers),
            "direction": i.direction if i.kind in ("email", "call", "message") else None,
            "summary": i.summary, "product": i.product, "quantity": i.quantity,
            "amount": i.amount, "currency": (i.currency or currency)
            if i.amount is not None else None, "recurring": i.recurring, "rating": i.rating,
            "nps": i.nps, "due": i.due, "done": i.done if i.kind == "reminder" else None,
            "by": i.by, "source": i.path}


def export_data(derived: Derived) -> dict[str, Any]:
    """The documented shape of `export --format json` (see the README)."""
    hide = derived.config.hide
    return {
        "generator": f"custsite {__version__}", "as_of": derived.as_of,
        "contacts": [contact_record(derived.contacts[c], hide,
                                   derived.changes.get(derived.contacts[c].customer.path))
                     for c in sorted(derived.contacts)],
        "organizations": [organization_record(derived, o) for o in sorted(derived.accounts)],
        "interactions": [interaction_record(i, derived.config.currency)
                         for i in derived.portfolio.interactions],
        "segments": [{"id": s.id, "title": s.title, "builtin": s.builtin,
                      "members": list(s.members)} for s in derived.segments.values()],
        "personas": [{"id": pid, "name": derived.portfolio.personas[pid].name,
                      "members": list(members)}
                     for pid, members in derived.persona_matches.items()],
    }


def _with_git_columns(contact: dict[str, Any]) -> dict[str, Any]:
    """Tables need every column in every row: git's fields are None where git knows nothing
    (the JSON export leaves them out instead)."""
    return {"last_changed": None, "last_changed_by": None, **contact}


SCHEMA = """
CREATE TABLE organizations (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, sector TEXT, size INTEGER, website TEXT,
  country TEXT, tags TEXT, stage TEXT, revenue REAL NOT NULL, currency TEXT,
  contacts INTEGER NOT NULL, open_deal INTEGER NOT NULL
);
CREATE TABLE contacts (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, email TEXT, phone TEXT,
  organization TEXT REFERENCES organizations(id), role TEXT, sector TEXT, country TEXT,
  owner TEXT, tags TEXT, source TEXT, referred_by TEXT REFERENCES contacts(id),
  do_not_contact INTEGER NOT NULL, stage TEXT NOT NULL, stage_since TEXT, stage_reason TEXT,
  relationship TEXT NOT NULL, b2b INTEGER NOT NULL, born_again INTEGER NOT NULL,
  advocate INTEGER NOT NULL, purchases INTEGER NOT NULL, revenue REAL NOT NULL,
  currency TEXT NOT NULL, first_purchase TEXT, last_purchase TEXT, last_interaction TEXT,
  rfm TEXT, rfm_segment TEXT, p_alive REAL, expected_purchases REAL, clv REAL,
  last_changed TEXT, last_changed_by TEXT
);
CREATE TABLE interactions (
  id TEXT PRIMARY KEY, date TEXT NOT NULL, kind TEXT NOT NULL, direction TEXT, summary TEXT,
  product TEXT, quantity INTEGER, amount REAL, currency TEXT, recurring TEXT, rating INTEGER,
  nps INTEGER, due TEXT, done INTEGER, by TEXT, source TEXT NOT NULL
);
CREATE TABLE interaction_customers (
  interaction TEXT NOT NULL REFERENCES interactions(id),
  contact TEXT NOT NULL REFERENCES contacts(id), PRIMARY KEY (interaction, contact)
);
CREATE TABLE segments (id TEXT PRIMARY KEY, title TEXT NOT NULL, builtin INTEGER NOT NULL);
CREATE TABLE contact_segments (
  contact TEXT NOT NULL REFERENCES contacts(id), segment TEXT NOT NULL REFERENCES segments(id),
  PRIMARY KEY (contact, segment)
);
CREATE TABLE personas (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE contact_personas (
  contact TEXT NOT NULL REFERENCES contacts(id), persona TEXT NOT NULL REFERENCES personas(id),
  PRIMARY KEY (contact, persona)
);
CREATE INDEX contacts_stage ON contacts(stage);
CREATE INDEX contacts_organization ON contacts(organization);
CREATE INDEX interactions_date ON interactions(date);
CREATE INDEX interaction_customers_contact ON interaction_customers(contact);
CREATE INDEX contact_segments_segment ON contact_segments(segment);
CREATE INDEX contact_personas_persona ON contact_personas(persona);
"""


def _sql(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return ";".join(value)
    if value is None or isinstance(value, int | float | str):
        return value
    return json_default(value)


def _insert(db: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                   f"({', '.join('?' for _ in columns)})",
                   [[_sql(r[c]) for c in columns] for r in rows])


def write_sqlite(data: dict[str, Any], path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA foreign_keys = ON")
        db.executescript(SCHEMA)
        _insert(db, "organizations", data["organizations"])
        contacts = [{k: v for k, v in _with_git_columns(c).items()
                     if k not in ("personas", "segments")} for c in data["contacts"]]
        # Referrals point at contacts inserted later: check foreign keys at commit.
        db.execute("PRAGMA defer_foreign_keys = ON")
        _insert(db, "contacts", contacts)
        _insert(db, "interactions", [{k: v for k, v in i.items() if k != "customers"}
                                     for i in data["interactions"]])
        _insert(db, "interaction_customers", [{"interaction": i["id"], "contact": c}
                                              for i in data["interactions"]
                                              for c in i["customers"]])
        _insert(db, "segments", [{"id": s["id"], "title": s["title"], "builtin": s["builtin"]}
                                 for s in data["segments"]])
        _insert(db, "contact_segments", [{"contact": c, "segment": s["id"]}
                                         for s in data["segments"] for c in s["members"]])
        _insert(db, "personas", [{"id": p["id"], "name": p["name"]} for p in data["personas"]])
        _insert(db, "contact_personas", [{"contact": c, "persona": p["id"]}
                                         for p in data["personas"] for c in p["members"]])
        db.commit()
    finally:
        db.close()


def export(derived: Derived, fmt: str, path: Path) -> list[Path]:
    """Write the export; the files appear whole (written beside, then renamed)."""
    data = export_data(publish(derived))
    path.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def atomically(target: Path, write: Any) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        try:
            write(Path(tmp))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)

    try:
        if fmt == "json":
            atomically(path, lambda t: t.write_bytes(to_json(data)))
        elif fmt == "sqlite":
            def fresh_database(target: Path) -> None:
                target.unlink()  # mkstemp made an empty file; sqlite wants none or its own
                write_sqlite(data, target)

            atomically(path, fresh_database)
        else:
            path.mkdir(parents=True, exist_ok=True)
            tables = {"contacts": [_with_git_columns(c) for c in data["contacts"]],
                      "organizations": data["organizations"],
                      "interactions": data["interactions"]}
            for name, rows in tables.items():
                atomically(path / f"{name}.csv",
                           lambda t, rows=rows: t.write_bytes(csv_table(rows)))
    except OSError as exc:
        raise CustsiteError(f"cannot write the export to {path}: {exc.strerror or exc}") from exc
    return written
