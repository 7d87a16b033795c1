"""Which pages the site has, and what each one's template is given.

Every page is a `PageSpec`: an output path, a template name, its context, and for list pages a
JSON twin (the same list as data, linked from the page with `<link rel="alternate">`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, partial
from operator import attrgetter
from typing import Any, Protocol

from markupsafe import Markup

from . import charts, insights
from .data import JsonText, RecordsJson, json_array
from .derive import CONTACT_ID, Account, Contact, Derived
from .lifetime import model_data
from .model import STAGES, Interaction, Persona

RECENT_ACTIVITY = 200
INTERACTIONS = "interactions"  # the dependency key of pages that list interactions
LIFETIME = "lifetime"  # ... and of the page of the lifetime model
CONTACTS = "contacts"  # ... and of pages that show how many contacts there are
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

STAGE_DEFINITIONS = {
    "lead": "A known contact, nothing more: no engagement yet, and no persona fits.",
    "suspect": "A lead who fits a buyer persona's match rule but has not engaged yet.",
    "prospect": "Has engaged in both directions: replied, called or wrote to us, met us, or "
                "asked for a demo or a quote; has not bought yet.",
    "customer": "Has bought at least once, recently enough not to be lapsed.",
    "repeat": "Has bought at least `repeat_after` times and is not lapsed.",
    "lapsed": "Was a customer, but the last purchase is older than `lapse_after_days` and no "
              "subscription is active: the people to win back.",
}
FACETS = (("stage", "Stage"), ("segment", "Segment"), ("persona", "Persona"), ("tag", "Tag"),
          ("owner", "Owner"), ("organization", "Organization"))


@dataclass(frozen=True)
class PageSpec:
    path: str
    template: str
    context: Callable[[], dict[str, Any]] = dict
    # For list pages: makes the JSON-able data written beside the page as index.json (a
    # function, so that pages the dev server does not re-render cost nothing).
    twin: Callable[[], Any] | None = None
    # What the page shows: contact ids, "org:<id>", "persona:<id>", "segment:<id>",
    # INTERACTIONS, LIFETIME, CONTACTS; "*" for pages that summarise everything. The dev server
    # re-renders a page only when one changed.
    deps: frozenset[str] = frozenset({"*"})

    @property
    def twin_path(self) -> str | None:
        if self.twin is None:
            return None
        return self.path.removesuffix(".html") + ".json"


@dataclass(frozen=True)
class FacetValue:
    value: str
    label: str
    count: int


_NAME = attrgetter("customer.name")


def _by_name(contacts: dict[str, Contact], ids: Any = None) -> list[Contact]:
    """By name (case left aside), then id. The keys are made in C, not by a function per
    contact: the customers table sorts 10,000 of them at every build."""
    chosen = list(contacts.values() if ids is None else map(contacts.__getitem__, ids))
    keyed = sorted(zip(map(str.casefold, map(_NAME, chosen)), map(CONTACT_ID, chosen),
                       range(len(chosen)), strict=True))
    return [chosen[k] for _, _, k in keyed]


def _rows(records: RecordsJson, members: list[Contact]) -> JsonText:
    return json_array(records(members))


def _members_twin(records: RecordsJson, key: str, value: str,
                  members: Callable[[], list[Contact]]) -> dict[str, Any]:
    return {key: value, "contacts": _rows(records, members())}


def facet_row(c: Contact, derived: Derived) -> dict[str, Any]:
    """The values a contact has in each facet of the customers table, and its search text."""
    cust = c.customer
    org = derived.accounts.get(cust.organization) if cust.organization else None
    return {
        # Stage segments would repeat the stage facet.
        "stage": [c.stage], "segment": [s for s in c.segments if s not in STAGES],
        "persona": list(c.personas),
        "tag": list(cust.tags), "owner": [cust.owner] if cust.owner else [],
        "organization": [cust.organization] if cust.organization else [],
        "q": " ".join(filter(None, [cust.name, cust.email or "",
                                    org.organization.name if org else "",
                                    *cust.tags])).casefold(),
    }


def _facets(derived: Derived, counts: dict[str, Counter[str]]) -> dict[str, list[FacetValue]]:
    """Per facet, its values with their counts."""
    labels: dict[str, dict[str, str]] = {
        "stage": {s: s for s in STAGES},
        "segment": {s.id: s.title for s in derived.segments.values()},
        "persona": {p.id: p.name for p in derived.portfolio.personas.values()},
        "organization": {o: a.organization.name for o, a in derived.accounts.items()},
    }
    facets = {}
    for name, _ in FACETS:
        names = labels.get(name, {})
        values = [FacetValue(v, names.get(v, v), n) for v, n in counts[name].items() if n > 0]
        if name == "stage":
            values.sort(key=lambda fv: STAGES.index(fv.value))
        else:
            values.sort(key=lambda fv: (-fv.count, fv.label.casefold(), fv.value))
        facets[name] = values
    return facets


def _interaction_row(i: Interaction, derived: Derived) -> dict[str, Any]:
    return {"id": i.id, "date": i.date, "kind": i.kind, "summary": i.title,
            "customers": list(i.customers), "amount": i.amount,
            "currency": (i.currency or derived.config.currency) if i.amount is not None
            else None, "by": i.by}


def customer_deps(c: Contact) -> frozenset[str]:
    """A customer page shows its own contact, and the names of the records it links to."""
    cust = c.customer
    deps = {cust.id, *c.referrals, *(f"persona:{p}" for p in c.personas),
            *(i.consumer for i in c.purchases if i.consumer)}
    if cust.referred_by:
        deps.add(cust.referred_by)
    if cust.organization:
        deps.add(f"org:{cust.organization}")
    return frozenset(deps)


def dashboard_context(derived: Derived, stats: Callable[[], dict[str, insights.PersonaStats]],
                      parts: Parts) -> dict[str, Any]:
    steps = insights.funnel_steps(derived)
    figures = parts.figures()
    new_90 = insights.new_contacts(derived, 90)
    months = figures.months
    currency = derived.config.currency
    return {
        "steps": steps,
        "funnel_svg": charts.funnel_chart([(s.stage, s.reached, s.rate) for s in steps],
                                          title="Funnel: contacts who reached each stage"),
        "stage_counts": insights.stage_counts(derived),
        "months": months,
        "revenue_svg": charts.bar_chart([MONTHS[int(m.month[5:]) - 1] for m in months],
                                        [m.amount for m in months],
                                        title=f"Revenue by month, last 12 months, in {currency}",
                                        unit=f" {currency}"),
        "revenue_total": figures.revenue,
        "new_30": insights.seen_within(new_90, derived.as_of, 30),
        "new_90": new_90,
        "follow_ups": insights.follow_ups_due(derived, figures.reminders_due),
        "about_to_lapse": insights.about_to_lapse(derived),
        "win_back": insights.win_back(derived),
        "satisfaction": figures.satisfaction,
        "persona_stats": list(stats().values()),
        "uncovered": insights.uncovered(derived),
        "recent": insights.recent_interactions(derived),
        "about_to_lapse_days": insights.ABOUT_TO_LAPSE_DAYS,
        "lifetime": derived.lifetime,
        "at_risk": insights.valuable_at_risk(derived),
    }


def _customers_context(derived: Derived, everyone: list[Contact],
                       parts: Parts) -> dict[str, Any]:
    rows = parts.facet_rows(everyone)
    # The rows as the `tojson` filter would write them, joined from each row's JSON.
    facet_json = Markup("[" + ", ".join(text for _, text in rows) + "]")
    return {"members": everyone, "facet_json": facet_json,
            "facets": _facets(derived, parts.facet_counts(everyone)), "facet_names": FACETS}


def _customer_context(contact: Contact, derived: Derived) -> dict[str, Any]:
    return {"contact": contact, "rfm_lines": insights.rfm_explanation(contact, derived),
            "lifetime": derived.lifetime,
            "lifetime_line": insights.lifetime_explanation(contact, derived)}


P_ALIVE_BANDS = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.01))


def _model_context(derived: Derived) -> dict[str, Any]:
    """The fitted models, what their parameters mean, and what they say of the buyers."""
    estimates = [c.lifetime for c in derived.contacts.values() if c.lifetime]
    bands = [(lo, min(hi, 1.0), sum(1 for e in estimates if lo <= e.p_alive < hi))
             for lo, hi in P_ALIVE_BANDS]
    values = [e.clv for e in estimates if e.clv is not None]
    return {"model": derived.lifetime, "bands": bands, "estimated": len(estimates),
            "expected_total": sum(e.expected_purchases for e in estimates),
            "clv_total": sum(values, Decimal(0)) if values else None}


def _with_members(members: Callable[[], list[Contact]], **context: Any) -> dict[str, Any]:
    return {**context, "members": members()}


def _persona_context(persona: Persona, stats: Callable[[], dict[str, insights.PersonaStats]],
                     contacts: dict[str, Contact],
                     members: Callable[[], list[Contact]]) -> dict[str, Any]:
    stat = stats()[persona.id]
    return {"members": members(), "persona": persona, "stat": stat,
            "targets": [contacts[c] for c in stat.targets]}


def _members_of(contacts: dict[str, Contact], everyone: list[Contact],
                rank: Callable[[], dict[str, int]], ids: tuple[str, ...]) -> list[Contact]:
    if len(ids) * 16 < len(everyone):  # a few: sorting them is cheaper than a lookup table
        return _by_name(contacts, ids)
    places = rank()
    return [everyone[i] for i in sorted({places[cid] for cid in ids})]


def _sorted_members(contacts: dict[str, Contact], everyone: list[Contact],
                    rank: Callable[[], dict[str, int]],
                    ids: Iterable[str]) -> Callable[[], list[Contact]]:
    """The members sorted by name, in everyone's order (`rank`: each id's place there),
    computed once and only if a page or its twin needs it."""
    return _Once(partial(_members_of, contacts, everyone, rank, tuple(ids)))


class _Once:
    """What a function returns, made on the first call only (functools.cache, for a
    function without arguments, at a tenth of the cost of making one: a site has one such
    function per organization)."""

    __slots__ = ("made", "make")

    def __init__(self, make: Callable[[], list[Contact]]) -> None:
        self.make = make
        self.made: list[Contact] | None = None

    def __call__(self) -> list[Contact]:
        if self.made is None:
            self.made = self.make()
        return self.made


class Parts(Protocol):
    """What pages need from the renderer beyond the derived portfolio: pieces it makes once
    and keeps while what they show stays the same."""

    def records_json(self, contacts: list[Contact]) -> list[str]: ...

    def facet_rows(self, contacts: list[Contact]) -> list[tuple[Any, str]]: ...

    def facet_counts(self, everyone: list[Contact]) -> dict[str, Counter[str]]: ...

    def figures(self) -> insights.InteractionFigures: ...


def customer_path(cid: str) -> str:
    return f"customers/{cid}/index.html"


def organization_path(oid: str) -> str:
    return f"organizations/{oid}/index.html"


def organization_deps(account: Account) -> frozenset[str]:
    """An organization's page shows its account and its contacts."""
    return frozenset({f"org:{account.organization.id}", *account.contacts})


def customer_page(c: Contact, derived: Derived) -> PageSpec:
    return PageSpec(customer_path(c.id), "customer.html", partial(_customer_context, c, derived),
                    deps=customer_deps(c))


def site_pages(derived: Derived, parts: Parts | None, *,
               customers: bool = True) -> Iterator[PageSpec]:
    """Every page of the site, in a stable order; without `customers`, all but the page of
    each customer (the dev server asks for those of the contacts that changed only).

    Contexts and twins are functions: the dev server asks for every page's dependencies,
    but makes the context only of the pages it re-renders; without `parts`, the pages are
    only for their paths and dependencies (see reuse.page_hashes).
    """
    contacts = derived.contacts

    def records(members: list[Contact]) -> list[str]:
        assert parts is not None, "pages without parts are not rendered"
        return parts.records_json(members)

    everyone = _by_name(contacts)
    rank = cache(lambda: {c.customer.id: i for i, c in enumerate(everyone)})
    # Made only if a page that shows them is rendered.
    stats = cache(lambda: {s.id: s for s in insights.persona_stats(derived)})
    yield PageSpec("index.html", "index.html",
                   partial(dashboard_context, derived, stats, parts))  # type: ignore[arg-type]

    yield PageSpec("customers/index.html", "customers.html",
                   partial(_customers_context, derived, everyone, parts),  # type: ignore[arg-type]
                   twin=lambda: {"contacts": _rows(records, everyone)})
    if customers:
        for c in everyone:
            yield customer_page(c, derived)

    accounts = sorted(derived.accounts.values(),
                      key=lambda a: (a.organization.name.casefold(), a.organization.id))
    yield PageSpec("organizations/index.html", "organizations.html",
                   partial(dict, accounts=accounts),
                   twin=lambda: {"organizations": [{
                       "id": a.organization.id, "name": a.organization.name,
                       "sector": a.organization.sector, "stage": a.stage,
                       "contacts": list(a.contacts), "revenue": a.revenue,
                       "currency": a.currency, "decision_makers": list(a.decision_makers),
                       "open_deal": a.open_deal} for a in accounts]},
                   deps=frozenset({*(f"org:{a.organization.id}" for a in accounts),
                                   *(d for a in accounts for d in a.decision_makers)}))
    for account in accounts:
        yield PageSpec(organization_path(account.organization.id), "organization.html",
                       partial(_with_members, _sorted_members(contacts, everyone, rank,
                                                              account.contacts),
                               account=account),
                       deps=organization_deps(account))

    yield PageSpec("personas/index.html", "personas.html", lambda: {"stats": stats()},
                   twin=lambda: {"personas": [{
                       "id": s.id, "name": s.name, "matches": s.matches,
                       "by_stage": s.by_stage, "conversion": s.conversion,
                       "targets": list(s.targets)} for s in stats().values()]})
    for pid, persona in sorted(derived.portfolio.personas.items()):
        matched = derived.persona_matches[pid]
        yield PageSpec(f"personas/{pid}/index.html", "persona.html",
                       partial(_persona_context, persona, stats, contacts,
                               _sorted_members(contacts, everyone, rank, matched)),
                       deps=frozenset({f"persona:{pid}", CONTACTS, *matched}))  # "x% of all"

    segments = list(derived.segments.values())
    yield PageSpec("segments/index.html", "segments.html", partial(dict, segments=segments),
                   twin=lambda: {"segments": [{"id": s.id, "title": s.title, "builtin": s.builtin,
                                               "size": len(s.members)} for s in segments]},
                   deps=frozenset(f"segment:{s.id}" for s in segments))
    for segment in segments:
        members = _sorted_members(contacts, everyone, rank, segment.members)
        yield PageSpec(f"segments/{segment.id}/index.html", "segment.html",
                       partial(_with_members, members, segment=segment),
                       twin=partial(_members_twin, records, "segment", segment.id, members),
                       deps=frozenset({f"segment:{segment.id}", *segment.members}))

    counts = insights.stage_counts(derived)
    yield PageSpec("stages/index.html", "stages.html",
                   lambda: {"counts": counts, "definitions": STAGE_DEFINITIONS,
                            "steps": insights.funnel_steps(derived)},
                   twin=lambda: {"stages": [{"stage": s, "count": counts[s],
                                             "definition": STAGE_DEFINITIONS[s]}
                                            for s in STAGES]})
    by_stage: dict[str, list[Contact]] = {stage: [] for stage in STAGES}
    for c in everyone:
        by_stage[c.stage].append(c)
    for stage, in_stage in by_stage.items():
        yield PageSpec(f"stages/{stage}/index.html", "stage.html",
                       partial(dict, stage=stage, definition=STAGE_DEFINITIONS[stage],
                               members=in_stage),
                       twin=partial(_members_twin, records, "stage", stage,
                                    partial(list, in_stage)),
                       deps=frozenset(map(CONTACT_ID, in_stage)))

    yield PageSpec("model/index.html", "model.html", partial(_model_context, derived),
                   twin=partial(model_data, derived.lifetime), deps=frozenset({LIFETIME}))

    recent = insights.recent_interactions(derived, RECENT_ACTIVITY)
    yield PageSpec("activity/index.html", "activity.html", partial(dict, recent=recent),
                   twin=lambda: {"interactions": [_interaction_row(i, derived) for i in recent]},
                   deps=frozenset({INTERACTIONS, *(c for i in recent for c in i.customers),
                                   *(i.consumer for i in recent if i.consumer)}))
    yield PageSpec("404.html", "404.html", deps=frozenset())
