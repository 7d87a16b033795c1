"""Rendering the computed portfolio into pages with Jinja, and Markdown into safe HTML."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import PurePosixPath
from typing import Any

import jinja2
import markdown as md
import nh3
from markupsafe import Markup

from . import __version__
from .derive import Contact, Derived, funnel
from .errors import CustsiteError
from .model import STAGES, Customer

_FORMULA_RE = re.compile(r"^[=+\-@\t\r]")
_NUMERIC_RE = re.compile(r"^[+-]?[\d][\d\s().-]*$")


@dataclass(frozen=True)
class Page:
    """One output file: its path inside the site, and its bytes."""

    path: str
    content: bytes


_MD = md.Markdown(extensions=["extra", "sane_lists"], output_format="html")
_ALLOWED_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em",
                 "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol",
                 "p", "pre", "s", "small", "strong", "sub", "sup", "table", "tbody", "td",
                 "tfoot", "th", "thead", "tr", "ul"}


def markdown_to_html(text: str) -> Markup:
    """Markdown with any raw HTML sanitised: a record can never inject script into the site."""
    if not text:
        return Markup("")
    _MD.reset()
    html = _MD.convert(text)
    clean = nh3.clean(html, tags=_ALLOWED_TAGS, url_schemes={"http", "https", "mailto", "tel"},
                      link_rel="noopener noreferrer nofollow")
    return Markup(clean)


def money(amount: Decimal | int | None, currency: str = "") -> str:
    if amount is None:
        return ""
    value = Decimal(amount).quantize(Decimal("0.01"))
    text = f"{value:,.2f}"
    if text.endswith(".00"):
        text = text[:-3]
    return f"{text} {currency}".strip()


def _environment(derived: Derived) -> jinja2.Environment:
    config = derived.config
    loaders: list[jinja2.BaseLoader] = []
    user = config.root / config.paths.templates
    if user.is_dir():
        loaders.append(jinja2.FileSystemLoader(str(user)))
    loaders.append(jinja2.PackageLoader("custsite", "templates"))
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["markdown"] = markdown_to_html
    env.filters["money"] = money
    return env


def public_customer(c: Customer, hide: frozenset[str]) -> Customer:
    """The customer as it may appear in the site: `privacy.hide` fields removed."""
    if not hide:
        return c
    changes: dict[str, Any] = {}
    for name in hide:
        if name == "fields":
            changes["fields"] = {}
        elif name == "notes":
            changes["notes"] = ""
        else:
            changes[name] = None
    return dataclasses.replace(c, **changes)


def _public(derived: Derived) -> dict[str, Contact]:
    hide = derived.config.hide
    return {cid: dataclasses.replace(c, customer=public_customer(c.customer, hide))
            for cid, c in derived.contacts.items()}


def _root(path: str) -> str:
    depth = path.count("/")
    return "../" * depth


def _pages(derived: Derived) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(output path, template, page context) for every page of the site."""
    contacts = _public(derived)
    p = derived.portfolio
    ordered = sorted(contacts.values(), key=lambda c: (c.customer.name.lower(), c.id))
    yield "index.html", "index.html", {"funnel": funnel(derived), "contacts": contacts}
    yield "customers/index.html", "customers.html", {"contacts": ordered}
    for c in ordered:
        yield f"customers/{c.id}/index.html", "customer.html", {"contact": c,
                                                               "contacts": contacts}
    yield "organizations/index.html", "organizations.html", {"contacts": contacts}
    for oid, account in derived.accounts.items():
        yield f"organizations/{oid}/index.html", "organization.html", {
            "account": account, "contacts": contacts,
            "members": [contacts[c] for c in account.contacts]}
    yield "personas/index.html", "personas.html", {"contacts": contacts}
    for pid, persona in sorted(p.personas.items()):
        yield f"personas/{pid}/index.html", "persona.html", {
            "persona": persona, "contacts": contacts,
            "members": [contacts[c] for c in derived.persona_matches[pid]]}
    yield "segments/index.html", "segments.html", {"contacts": contacts}
    for sid, segment in derived.segments.items():
        yield f"segments/{sid}/index.html", "segment.html", {
            "segment": segment, "members": [contacts[c] for c in segment.members]}
    yield "404.html", "404.html", {}


def render_site(derived: Derived) -> list[Page]:
    """Every file of the site, in memory, sorted by path."""
    env = _environment(derived)
    config = derived.config
    common = {
        "config": config, "derived": derived, "as_of": derived.as_of, "stages": STAGES,
        "version": __version__, "portfolio": derived.portfolio,
    }
    pages: list[Page] = []
    for path, template_name, context in _pages(derived):
        try:
            template = env.get_template(template_name)
            html = template.render(**common, **context, root=_root(path), page_path=path)
        except jinja2.TemplateError as exc:
            where = getattr(exc, "filename", None) or template_name
            line = getattr(exc, "lineno", None)
            raise CustsiteError(f"template error in {where}"
                                f"{':' + str(line) if line else ''}: {exc}") from exc
        pages.append(Page(path, html.encode("utf-8")))
    static = resources.files("custsite") / "static"
    for item in sorted(static.iterdir(), key=lambda t: t.name):
        if item.is_file():
            pages.append(Page(f"static/{item.name}", item.read_bytes()))
    pages.extend(data_files(derived))
    pages.extend(persona_photos(derived))
    return sorted(pages, key=lambda pg: pg.path)


def photo_path(persona_id: str, photo: str) -> str:
    """Where a persona's photo lands in the site: beside its page, under its own name."""
    return f"personas/{persona_id}/{PurePosixPath(photo).name}"


def persona_photos(derived: Derived) -> list[Page]:
    """Copy each persona's photo (checked to exist inside the portfolio) next to its page."""
    out = []
    root = derived.config.root
    for persona in derived.portfolio.personas.values():
        if persona.photo:
            source = root / PurePosixPath(persona.path).parent / persona.photo
            try:
                out.append(Page(photo_path(persona.id, persona.photo), source.read_bytes()))
            except OSError as exc:
                raise CustsiteError(f"cannot read {source}: {exc.strerror}") from exc
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, tuple | set | frozenset):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def contact_record(c: Contact) -> dict[str, Any]:
    """The flat, computed view of a contact for data files."""
    cust = c.customer
    return {
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
        "rfm": f"{c.rfm.r}{c.rfm.f}{c.rfm.m}" if c.rfm else None,
        "rfm_segment": c.rfm.segment if c.rfm else None,
        "personas": list(c.personas), "segments": list(c.segments),
    }


def _csv_cell(value: Any) -> Any:
    """Spreadsheet-friendly cells: lists joined by ';', lowercase booleans, ISO dates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = ";".join(value)
    if isinstance(value, Decimal | dt.date):
        return _json_default(value)
    if isinstance(value, str) and _FORMULA_RE.match(value) and not _NUMERIC_RE.match(value):
        # A cell starting like a formula would run in a spreadsheet (CSV injection).
        return "'" + value
    return value


def data_files(derived: Derived) -> list[Page]:
    contacts = _public(derived)
    hide = derived.config.hide
    rows = [contact_record(contacts[cid]) for cid in sorted(contacts)]
    for row in rows:
        for name in hide:
            row.pop(name, None)
        if "location" in hide:
            row.pop("country", None)
    portfolio = {
        "generator": f"custsite {__version__}", "as_of": derived.as_of,
        "title": derived.config.title, "contacts": rows,
        "segments": {s.id: list(s.members) for s in derived.segments.values()},
        "personas": {k: list(v) for k, v in derived.persona_matches.items()},
    }
    text = json.dumps(portfolio, default=_json_default, indent=1, sort_keys=True,
                      ensure_ascii=False)
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return [Page("data/portfolio.json", (text + "\n").encode("utf-8")),
            Page("data/customers.csv", buf.getvalue().encode("utf-8"))]
