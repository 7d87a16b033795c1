"""Where every contact stands: stage and its reason, relationship, RFM, personas, segments, and
the organization roll-ups. Pure: the build date is passed in, nothing reads the clock or disk.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar

from .config import Config
from .errors import Problem, problem
from .fitting import Fitter
from .frozen import replace
from .gitinfo import Change
from .lifetime import UNIT_DAYS, Estimate, History, LifetimeModel, estimate, fit, history
from .model import (
    DIRECTED_KINDS,
    STAGE_ORDER,
    Customer,
    Interaction,
    Organization,
    Persona,
    Portfolio,
    dated_until,
    same_objects,
    sort_interactions,
)
from .segments import BUILTINS


@dataclass(frozen=True)
class Rfm:
    recency_days: int
    frequency: int
    monetary: Decimal
    r: int
    f: int
    m: int
    segment: str
    method: str  # "quintiles" or "thresholds"

    @property
    def code(self) -> str:
        return f"{self.r}{self.f}{self.m}"


@dataclass(frozen=True)
class Stage:
    name: str
    since: dt.date | None
    reason: str


@dataclass(frozen=True)
class Contact:
    """A customer record with everything computed about it at the build date."""

    customer: Customer
    interactions: tuple[Interaction, ...]  # dated on or before as_of, oldest first
    purchases: tuple[Interaction, ...]
    stage: str
    stage_since: dt.date | None
    stage_reason: str
    relationship: str  # client, one-time, none
    b2b: bool
    born_again: bool
    active_subscriptions: tuple[Interaction, ...]
    revenue: Decimal
    currency: str
    referrals: tuple[str, ...] = ()
    rfm: Rfm | None = None
    personas: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    lapses_on: dt.date | None = None
    lifetime: Estimate | None = None  # what the BG/NBD and Gamma-Gamma models say

    @property  # not a cached_property: an attribute set later unshares the instance dicts
    def id(self) -> str:
        return self.customer.id

    @property
    def advocate(self) -> bool:
        return bool(self.purchases) and bool(self.referrals)

    @property
    def first_purchase(self) -> dt.date | None:
        return self.purchases[0].day if self.purchases else None

    @property
    def last_purchase(self) -> dt.date | None:
        return self.purchases[-1].day if self.purchases else None

    @property
    def last_interaction(self) -> dt.date | None:
        return self.interactions[-1].day if self.interactions else None

    def values(self) -> dict[str, Any]:
        """The flat field paths the rule language reads."""
        c = self.customer
        values: dict[str, Any] = {
            "id": c.id, "name": c.name, "kind": c.kind, "civility": c.civility,
            "email": c.email, "phone": c.phone, "organization": c.organization, "role": c.role,
            "sector": c.sector, "age": c.age, "birth_date": c.birth_date,
            "contact_preference": c.contact_preference, "source": c.source,
            "referred_by": c.referred_by, "owner": c.owner, "tags": c.tags,
            "status": c.status, "created": c.created, "do_not_contact": c.do_not_contact,
            "purchases": len(self.purchases), "revenue": self.revenue,
            "first_purchase": self.first_purchase, "last_purchase": self.last_purchase,
            "last_interaction": self.last_interaction, "interactions": len(self.interactions),
            "relationship": self.relationship, "b2b": self.b2b, "born_again": self.born_again,
            "advocate": self.advocate, "referrals": len(self.referrals),
            "stage": self.stage, "persona": self.personas,
        }
        if c.location:
            values.update({"location.city": c.location.city,
                           "location.region": c.location.region,
                           "location.country": c.location.country})
        if self.lifetime:
            values.update({"p_alive": self.lifetime.p_alive,
                           "expected_purchases": self.lifetime.expected_purchases,
                           "clv": self.lifetime.clv})
        if self.rfm:
            values.update({"rfm.segment": self.rfm.segment, "rfm.r": self.rfm.r,
                           "rfm.f": self.rfm.f, "rfm.m": self.rfm.m})
        for key, value in c.fields.items():
            values[f"fields.{key}"] = value
        return values


# A contact's id, got in C (Contact.id is a property: a Python call per contact).
CONTACT_ID = attrgetter("customer.id")


@dataclass(frozen=True)
class Account:
    """An organization with its contacts rolled up."""

    organization: Organization
    contacts: tuple[str, ...]
    stage: str | None
    revenue: Decimal
    currency: str
    decision_makers: tuple[str, ...]
    open_deal: bool


@dataclass(frozen=True)
class Segment:
    id: str
    title: str
    description: str
    builtin: bool
    members: tuple[str, ...]


@dataclass(frozen=True)
class Derived:
    """The computed portfolio."""

    portfolio: Portfolio
    as_of: dt.date
    contacts: dict[str, Contact]
    accounts: dict[str, Account]
    persona_matches: dict[str, tuple[str, ...]]
    segments: dict[str, Segment]
    rfm_method: str
    problems: tuple[Problem, ...]
    changes: dict[str, Change] = field(default_factory=dict)  # file → last commit (gitinfo)
    lifetime: LifetimeModel | None = None

    @property
    def config(self) -> Config:
        return self.portfolio.config


def _active_at(purchases: Sequence[Interaction], cancellations: Sequence[Interaction],
               day: dt.date) -> tuple[Interaction, ...]:
    """The subscriptions running on `day`: the latest recurring purchase of each product,
    unless a cancellation of that product (or one naming no product) came after it.
    """
    latest: dict[str | None, Interaction] = {}  # a renewal replaces the purchase before it
    for p in purchases:
        if p.recurring and p.day <= day:
            latest[p.product or p.summary] = p
    active = []
    for p in latest.values():
        cancelled = any(p.day <= c.day <= day and (c.product is None or c.product == p.product)
                        for c in cancellations)
        if not cancelled:
            active.append(p)
    return tuple(sort_interactions(active))


def _engagement(interactions: Sequence[Interaction], config: Config) -> Interaction | None:
    """The first interaction that shows engagement in both directions."""
    for i in interactions:
        if i.kind in config.stages.engaged_kinds or \
                (i.kind in DIRECTED_KINDS and i.direction == "in"):
            return i
    return None


def _describe(i: Interaction) -> str:
    if i.kind in DIRECTED_KINDS and i.direction == "in":
        return f"incoming {i.kind} '{i.title}'"
    return f"{i.kind} '{i.title}'"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _buyer_stage(purchases: Sequence[Interaction], active: Sequence[Interaction],
                 as_of: dt.date, config: Config) -> Stage:
    last = purchases[-1]
    lapse = config.stages.lapse_after_days
    days = (as_of - last.day).days
    if not active and days > lapse:
        since = last.day + dt.timedelta(days=lapse + 1)
        return Stage("lapsed", since,
                     f"lapsed since {since}: last purchase '{last.title}' on {last.day}, "
                     f"{days} days before {as_of} (more than {lapse}), no active subscription")
    n = config.stages.repeat_after
    if len(purchases) >= n:
        nth = purchases[n - 1]
        return Stage("repeat", nth.day,
                     f"repeat customer since {nth.day}: {_ordinal(n)} purchase '{nth.title}' "
                     f"({len(purchases)} purchases in all)")
    first = purchases[0]
    return Stage("customer", first.day, f"customer since {first.day}: purchase '{first.title}'")


def _born_again(purchases: Sequence[Interaction], cancellations: Sequence[Interaction],
                lapse_after_days: int) -> bool:
    """Lapsed at some point (no purchase for longer than the lapse delay, no subscription
    running) and bought again afterwards."""
    for a, b in itertools.pairwise(purchases):
        if (b.day - a.day).days > lapse_after_days:
            lapsed_on = a.day + dt.timedelta(days=lapse_after_days + 1)
            if not _active_at(purchases, cancellations, lapsed_on):
                return True
    return False


def _quintile_scores(items: Sequence[tuple[str, Any]], *, reverse: bool = False) -> dict[str, int]:
    """Scores 1-5 by quintile of rank; equal values share the score of the first of them,
    and ids break no tie in scores, only the (deterministic) order."""
    ordered = sorted(items, key=lambda kv: (kv[1], kv[0]), reverse=reverse)
    n = len(ordered)
    scores: dict[str, int] = {}
    first_pos: dict[Any, int] = {}
    for pos, (key, value) in enumerate(ordered):
        first = first_pos.setdefault(value, pos)
        scores[key] = 1 + (5 * first) // n
    return scores


def _threshold(value: Any, bounds: Sequence[Any]) -> int:
    return 1 + sum(1 for b in bounds if value >= b)


def rfm_segment(r: int, f: int) -> str:
    """The widely used R/F map of named segments."""
    if r >= 4 and f >= 4:
        return "champions" if r == 5 else "loyal"
    if r == 3 and f >= 4:
        return "loyal"
    if r >= 4 and f >= 2:
        return "potential-loyalists"
    if r == 5:
        return "new"
    if r == 4:
        return "promising"
    if r == 3:
        return "need-attention" if f == 3 else "about-to-sleep"
    if f == 5:
        return "cant-lose"
    return "at-risk" if f >= 3 else "hibernating"


def score_rfm(contacts: Sequence[Contact], as_of: dt.date, config: Config) -> tuple[
        dict[str, Rfm], str]:
    buyers = [c for c in contacts if c.purchases]
    if not buyers:
        return {}, "none"
    recency = {c.id: (as_of - c.purchases[-1].day).days for c in buyers}
    freq = {c.id: len(c.purchases) for c in buyers}
    money = {c.id: c.revenue for c in buyers}
    settings = config.rfm
    if len(buyers) >= settings.min_buyers:
        method = "quintiles"
        r = _quintile_scores(list(recency.items()), reverse=True)
        # Recency sorted oldest first must score lowest: reverse=True puts the largest
        # day counts first, i.e. at the lowest positions.
        f = _quintile_scores(list(freq.items()))
        m: dict[str, int] = {}
        by_currency: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for c in buyers:  # amounts in different currencies are not comparable
            by_currency[c.currency].append((c.id, c.revenue))
        for group in by_currency.values():
            m.update(_quintile_scores(group))
    else:
        method = "thresholds"
        r = {k: 1 + sum(v <= b for b in settings.recency_days) for k, v in recency.items()}
        f = {k: _threshold(v, settings.frequency) for k, v in freq.items()}
        m = {k: _threshold(v, settings.monetary) for k, v in money.items()}
    out = {c.id: Rfm(recency[c.id], freq[c.id], money[c.id], r[c.id], f[c.id], m[c.id],
                     rfm_segment(r[c.id], f[c.id]), method) for c in buyers}
    return out, method


def _base_contact(c: Customer, interactions: Sequence[Interaction], as_of: dt.date,
                  config: Config) -> Contact:
    past = tuple(interactions[:dated_until(interactions, as_of)])  # sorted by date
    purchases = tuple(i for i in past if i.kind == "purchase")
    cancellations = tuple(i for i in past if i.kind == "cancellation")
    active = _active_at(purchases, cancellations, as_of)
    currency = next((p.currency for p in purchases if p.currency), None) or config.currency
    revenue = sum((p.amount or Decimal(0) for p in purchases), Decimal(0))
    b2b = c.kind == "company" or c.organization is not None
    if purchases:
        stage = _buyer_stage(purchases, active, as_of, config)
        s = config.stages
        span = (purchases[-1].day - purchases[0].day).days
        ongoing = bool(active) or (len(purchases) >= s.client_purchases
                                   and span >= s.client_span_days)
        relationship = "client" if ongoing and stage.name != "lapsed" else "one-time"
        lapses_on = None if active else purchases[-1].day + dt.timedelta(
            days=s.lapse_after_days + 1)
    else:
        engaged = _engagement(past, config)
        if engaged:
            stage = Stage("prospect", engaged.day,
                          f"prospect since {engaged.day}: {_describe(engaged)}")
        else:
            since = c.created or (past[0].day if past else None)
            stage = Stage("lead", since, f"lead since {since}: known contact, no engagement yet"
                          if since else "lead: known contact, no engagement yet")
        relationship = "none"
        lapses_on = None
    return Contact(
        customer=c, interactions=past, purchases=purchases, stage=stage.name,
        stage_since=stage.since, stage_reason=stage.reason, relationship=relationship,
        b2b=b2b, born_again=_born_again(purchases, cancellations,
                                         config.stages.lapse_after_days),
        active_subscriptions=active, revenue=revenue, currency=currency, lapses_on=lapses_on,
    )



def _match_personas(contact: Contact, personas: Sequence[Persona],
                    as_of: dt.date) -> tuple[Contact, dict[str, Any]]:
    """The contact with the personas it fits, and its rule values then (see Contact.values):
    the segments' rules read them next, and only the stage and the personas are new (making
    them again was a tenth of deriving)."""
    values = contact.values()
    matched = tuple(p.id for p in personas if p.match is not None and p.match.matches(values,
                                                                                      as_of))
    if matched and contact.stage == "lead":
        first = next(p for p in personas if p.id == matched[0])
        made = replace(contact, personas=matched, stage="suspect",
                       stage_reason=f"suspect: a lead who fits the persona '{first.name}' "
                                    "and has not engaged yet")
    else:
        made = replace(contact, personas=matched)
    values["stage"], values["persona"] = made.stage, made.personas
    return made, values


V = TypeVar("V")
Step = dict[str, tuple[Contact, Any, Contact]]  # id → (input contact, input value, output)


@dataclass
class DeriveMemo:
    """The previous derivation's contacts, for the dev server: a contact whose inputs are the
    very same objects as last time (its file was not read again) is not computed again."""

    key: tuple[dt.date, Config] | None = None
    personas: tuple[Persona, ...] = ()
    base: dict[str, tuple[Customer, tuple[Interaction, ...], tuple[str, ...], Contact]] = \
        field(default_factory=dict)
    final: Step = field(default_factory=dict)  # see _finished
    histories: dict[str, tuple[Contact, History | None]] = field(default_factory=dict)
    lifetime: tuple[list[History], LifetimeModel, dict[str, Estimate]] | None = None
    rfm_inputs: list[tuple[str, dt.date, int, Decimal, str]] = field(default_factory=list)
    rfm: tuple[dict[str, Rfm], str] | None = None
    accounts: dict[str, tuple[Organization, tuple[Contact, ...], Account,
                              tuple[Problem, ...]]] = field(default_factory=dict)


def _step(contacts: list[Contact], before: Step, value_of: Callable[[str], V],
          make: Callable[[Contact, V], Contact], *,
          again: bool = False) -> tuple[list[Contact], Step]:
    """One step of derivation over every contact, done again only for a contact that is a new
    object or whose other input (`value_of` its id) changed, or for all `again`: unchanged
    contacts stay the very same objects, which makes every later step and comparison cheap.
    A contact done again that comes out equal to what it was stays that object too (after
    an edit of a persona's rule, most contacts still fit the same personas)."""
    kept: Step = {}
    out = []
    for c in contacts:
        cid = c.customer.id
        value = value_of(cid)
        previous = before.get(cid)
        if previous is not None and not again and previous[0] is c and previous[1] == value:
            done = previous[2]
        else:
            done = make(c, value)
            if previous is not None and done == previous[2]:
                done = previous[2]
        kept[cid] = (c, value, done)
        out.append(done)
    return out, kept


def _segments_of(contact: Contact, config: Config, as_of: dt.date,
                 values: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The built-in, then the declared segments the contact is in; it alone decides (its
    rule `values`, if made already)."""
    joined = [b.id for b in BUILTINS if b.test(contact)]
    if config.segments:
        values = values if values is not None else contact.values()
        joined.extend(d.id for d in config.segments if d.rule.matches(values, as_of))
    return tuple(joined)


def _buyers(contacts: list[Contact], as_of: dt.date, config: Config,
            memo: DeriveMemo) -> dict[str, History]:
    """Each buyer's history (made again only for a contact that is a new object)."""
    unit = UNIT_DAYS[config.lifetime.time_unit]
    histories: dict[str, tuple[Contact, History | None]] = {}
    for c in contacts:
        before = memo.histories.get(c.customer.id)
        if before is not None and before[0] is c:
            histories[c.customer.id] = before
        else:
            histories[c.customer.id] = (c, history(c.purchases, as_of, unit, c.currency))
    memo.histories = histories
    return {cid: h for cid, (_, h) in histories.items() if h is not None}


def _finished(contact: Contact, lifetime: Estimate | None, score: Rfm | None,
              personas: Sequence[Persona], as_of: dt.date, config: Config) -> Contact:
    """The last steps of one contact's derivation: its lifetime estimate and RFM score, the
    personas it fits (a lead may become a suspect), then its segments (their rules read
    the values matching made). One step for the memo (see _step): each generation kept
    was as many contacts again to keep between builds and to read back."""
    made = replace(contact, rfm=score) if lifetime is None else \
        replace(contact, rfm=score, lifetime=lifetime)
    matched, values = _match_personas(made, personas, as_of)
    return replace(matched, segments=_segments_of(matched, config, as_of, values))


def _with_lifetimes(buyers: dict[str, History], refit: bool, config: Config,
                    memo: DeriveMemo, kept: MutableMapping[str, str],
                    fitter: Fitter | None) -> tuple[dict[str, Estimate], LifetimeModel]:
    """The models fitted on the buyers' histories (again only if `refit`: a history changed;
    by the `fitter`'s process when it was asked to) and each buyer's estimates, by contact;
    `kept` keeps fits."""
    if refit or memo.lifetime is None:
        inputs = list(buyers.values())
        if fitter is not None:  # else lifetime.fit imports numpy and scipy here
            fitter.take(kept)
        model = fit(inputs, config.lifetime, config.currency, kept)
        found = estimate(model, inputs, config.currency, kept)
        memo.lifetime = (inputs, model, dict(zip(buyers, found, strict=False)))
    _, model, estimates = memo.lifetime
    return estimates, model


def _status_checked(contact: Contact) -> bool:
    """Whether matching personas can change a problem about this contact: matching turns a
    lead into a suspect and nothing else, and only a declared status is checked against the
    stage (organizations roll up open deals: prospects)."""
    return contact.stage == "lead" and contact.customer.status is not None


def memo_key(config: Config, as_of: dt.date) -> tuple[dt.date, Config]:
    """What a DeriveMemo holds only for: the date and the settings, wherever the portfolio
    is (`-C DIR` or its folder: the same contacts)."""
    return (as_of, dataclasses.replace(config, root=Path()))


def derive(portfolio: Portfolio, as_of: dt.date, memo: DeriveMemo | None = None, *,
           fits: MutableMapping[str, str] | None = None,
           problems_only: bool = False, fitter: Fitter | None = None) -> Derived:
    """Compute the whole portfolio at `as_of`; `fits` keeps the lifetime models fitted before
    (see lifetime.fit). With `problems_only` (`custsite validate`), what no problem depends
    on is left out: segments, the lifetime models and RFM scores (a lead has neither: no
    purchase), the personas of every contact but the leads with a declared status (see
    _status_checked), and the contacts that neither declare a status nor belong to an
    organization (no problem of derivation can be about them: see _accounts). A `fitter`
    fits the lifetime models if they must be (see fitting); its caller closes it."""
    config = portfolio.config
    memo = memo if memo is not None else DeriveMemo()
    key = memo_key(config, as_of)
    if memo.key != key:
        memo.key, memo.base, memo.final = key, {}, {}
        memo.rfm, memo.lifetime, memo.histories, memo.accounts = None, None, {}, {}
    by_customer = portfolio.by_customer
    referrals: dict[str, list[str]] = defaultdict(list)
    for record in portfolio.customers.values():
        if record.referred_by:
            referrals[record.referred_by].append(record.id)
    contacts = []
    base_memo: dict[str, tuple[Customer, tuple[Interaction, ...], tuple[str, ...], Contact]] = {}
    for cid in sorted(portfolio.customers):
        customer = portfolio.customers[cid]
        if problems_only and customer.status is None and customer.organization is None:
            continue
        mine = by_customer.get(cid, ())
        refs = tuple(sorted(referrals.get(cid, ())))
        previous = memo.base.get(cid)
        if previous and previous[0] is customer and \
                (previous[1] is mine or same_objects(previous[1], mine)) and \
                previous[2] == refs:
            contact = previous[3]
        else:
            contact = replace(_base_contact(customer, mine, as_of, config), referrals=refs)
        base_memo[cid] = (customer, mine, refs, contact)
        contacts.append(contact)
    memo.base = base_memo
    personas = tuple(portfolio.personas[k] for k in sorted(portfolio.personas))
    lifetime_model: LifetimeModel | None = None
    rfm: dict[str, Rfm] = {}
    estimates: dict[str, Estimate] = {}
    method = ""
    if not problems_only:
        buyers = _buyers(contacts, as_of, config, memo)
        kept = fits if fits is not None else {}
        inputs = list(buyers.values())
        refit = memo.lifetime is None or memo.lifetime[0] != inputs
        if refit and fitter is not None:
            fitter.ask(inputs, config.lifetime, config.currency, kept)
        # Scores are fifths among all buyers, yet an edit rarely changes what they rank by.
        # (Made while the fitter fits: they need no lifetime.)
        rfm_inputs = [(c.customer.id, c.purchases[-1].day, len(c.purchases), c.revenue,
                       c.currency) for c in contacts if c.purchases]
        if memo.rfm is None or rfm_inputs != memo.rfm_inputs:
            memo.rfm, memo.rfm_inputs = score_rfm(contacts, as_of, config), rfm_inputs
        rfm, method = memo.rfm
        estimates, lifetime_model = _with_lifetimes(buyers, refit, config, memo, kept, fitter)
    rematch = not same_objects(personas, memo.personas)
    memo.personas = personas
    if problems_only:
        finals = [_match_personas(c, personas, as_of)[0] if _status_checked(c) else c
                  for c in contacts]
    else:
        finals, memo.final = _step(
            contacts, memo.final, lambda cid: (estimates.get(cid), rfm.get(cid)),
            lambda c, inputs: _finished(c, *inputs, personas, as_of, config), again=rematch)
    contact_map = {c.customer.id: c for c in finals}
    lists: dict[str, list[str]] = {b.id: [] for b in BUILTINS}
    lists.update((d.id, []) for d in config.segments)
    for c in finals:
        for seg_id in c.segments:
            lists[seg_id].append(c.customer.id)
    segments = {b.id: Segment(b.id, b.title, b.description, True, tuple(lists[b.id]))
                for b in BUILTINS}
    segments.update((d.id, Segment(d.id, d.title, d.description, False, tuple(lists[d.id])))
                    for d in config.segments)

    problems: list[Problem] = []
    for contact in contact_map.values():
        status = contact.customer.status
        if status and status != contact.stage:
            problems.append(problem(contact.customer.loc("status"), "status-mismatch",
                                    f"declared status '{status}' but the records say "
                                    f"'{contact.stage}' ({contact.stage_reason}); remove "
                                    "'status' or update it"))
    accounts = _accounts(portfolio, contact_map, problems, memo)
    matching: dict[str, list[str]] = {p.id: [] for p in personas}
    for cid, contact in contact_map.items():
        for pid in contact.personas:
            matching[pid].append(cid)
    matches = {pid: tuple(ids) for pid, ids in matching.items()}
    return Derived(portfolio, as_of, contact_map, accounts, matches, segments, method,
                   tuple(problems), lifetime=lifetime_model)


def _open_deal(contact: Contact) -> bool:
    """Engaged and not bought yet, or a quote not followed by a purchase."""
    if contact.stage == "prospect":
        return True
    last_quote = max((i.day for i in contact.interactions if i.kind == "quote"), default=None)
    return last_quote is not None and not any(p.day >= last_quote for p in contact.purchases)


def _accounts(portfolio: Portfolio, contacts: dict[str, Contact], problems: list[Problem],
              memo: DeriveMemo) -> dict[str, Account]:
    """Each organization with its contacts rolled up; an account is computed again only when
    its record or one of its contacts is a new object."""
    by_org: dict[str, list[Contact]] = defaultdict(list)
    for c in contacts.values():
        if c.customer.organization:
            by_org[c.customer.organization].append(c)
    accounts = {}
    kept: dict[str, tuple[Organization, tuple[Contact, ...], Account, tuple[Problem, ...]]] = {}
    for oid in sorted(portfolio.organizations):
        org = portfolio.organizations[oid]
        members = tuple(by_org.get(oid, ()))
        before = memo.accounts.get(oid)
        if before is not None and before[0] is org and same_objects(before[1], members):
            account, found = before[2], before[3]
        else:
            found_list: list[Problem] = []
            account = _account(org, members, portfolio.config.currency, found_list)
            found = tuple(found_list)
        kept[oid] = (org, members, account, found)
        accounts[oid] = account
        problems.extend(found)
    memo.accounts = kept
    return accounts


def _account(org: Organization, members: tuple[Contact, ...], currency: str,
             problems: list[Problem]) -> Account:
    stage = max((c.stage for c in members), key=STAGE_ORDER.__getitem__, default=None)
    currencies = sorted({c.currency for c in members if c.purchases})
    deciders = tuple(c.id for c in members if c.customer.role == "decision-maker")
    open_deal = any(_open_deal(c) for c in members)
    if open_deal and not deciders:
        problems.append(problem(org.loc(), "no-decision-maker",
                                f"'{org.name}' has open deals but no contact with "
                                "role: decision-maker"))
    if len(currencies) > 1:
        problems.append(problem(org.loc(), "mixed-currencies",
                                f"the contacts of '{org.name}' bought in "
                                f"{', '.join(currencies)}; its revenue cannot be totalled"))
    return Account(
        organization=org, contacts=tuple(c.id for c in members), stage=stage,
        revenue=sum((c.revenue for c in members), Decimal(0)),
        currency=currencies[0] if currencies else currency,
        decision_makers=deciders, open_deal=open_deal)
