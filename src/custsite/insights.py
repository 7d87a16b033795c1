"""The figures of the dashboard and the list pages, computed from the derived portfolio.

Pure functions of `Derived`: the build date comes from it, nothing reads the clock.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import overload

from .derive import CONTACT_ID, Contact, Derived
from .model import STAGES, Interaction, dated_until

FUNNEL = ("lead", "suspect", "prospect", "customer", "repeat")
ABOUT_TO_LAPSE_DAYS = 60  # how long before lapsing a customer shows on the watch list
RECENT = 12
BUYER_STAGES = ("customer", "repeat", "lapsed")


@dataclass(frozen=True)
class FunnelStep:
    stage: str
    count: int  # contacts at this stage now
    reached: int  # contacts at this stage or further
    rate: float | None  # reached / reached at the previous step


@dataclass(frozen=True)
class MonthRevenue:
    month: str  # YYYY-MM
    amount: Decimal


@dataclass(frozen=True)
class FollowUp:
    reminder: Interaction
    contact: Contact
    overdue_days: int


@dataclass(frozen=True)
class Satisfaction:
    ratings: int
    average_rating: float | None
    answers: int
    nps: int | None
    promoters: int
    passives: int
    detractors: int


@dataclass(frozen=True)
class PersonaStats:
    id: str
    name: str
    matches: int
    share: float
    by_stage: dict[str, int]
    conversion: float | None  # share of matching contacts who bought
    targets: tuple[str, ...]  # leads, suspects, prospects that fit, contactable


def _furthest(contact: Contact, repeat_after: int) -> int:
    """Index in FUNNEL of the furthest step a contact has reached (lapsed buyers included)."""
    n = len(contact.purchases)
    if n >= repeat_after:
        return 4
    if n:
        return 3
    return FUNNEL.index(contact.stage)


def funnel_steps(derived: Derived) -> list[FunnelStep]:
    repeat_after = derived.config.stages.repeat_after
    furthest = [_furthest(c, repeat_after) for c in derived.contacts.values()]
    now = Counter(c.stage for c in derived.contacts.values())
    steps: list[FunnelStep] = []
    for i, stage in enumerate(FUNNEL):
        reached = sum(1 for f in furthest if f >= i)
        previous = steps[-1].reached if steps else None
        rate = reached / previous if previous else None
        steps.append(FunnelStep(stage, now[stage], reached, rate))
    return steps


def stage_counts(derived: Derived) -> dict[str, int]:
    counts = Counter(c.stage for c in derived.contacts.values())
    return {s: counts[s] for s in STAGES}


def _months_back(as_of: dt.date, n: int) -> list[str]:
    year, month = as_of.year, as_of.month
    out = []
    for _ in range(n):
        out.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return out[::-1]


def revenue_by_month(derived: Derived, months: int = 12) -> list[MonthRevenue]:
    """Purchases in the portfolio's currency over the last `months` months, oldest first."""
    keys = _months_back(derived.as_of, months)
    totals: dict[str, Decimal] = dict.fromkeys(keys, Decimal(0))
    currency = derived.config.currency
    for p in _purchases(derived):
        key = p.day.strftime("%Y-%m")
        if key in totals and (p.currency or currency) == currency and p.amount is not None:
            totals[key] += p.amount
    return [MonthRevenue(k, totals[k]) for k in keys]


def _past(derived: Derived) -> Sequence[Interaction]:
    """The interactions up to the build date: sorted by date, they are a prefix."""
    everything = derived.portfolio.interactions
    return everything[:dated_until(everything, derived.as_of)]


def _purchases(derived: Derived) -> Iterable[Interaction]:
    """Every purchase up to the build date, once even when shared by several customers."""
    return (i for i in _past(derived) if i.kind == "purchase")


def revenue_by_currency(derived: Derived) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for p in _purchases(derived):
        if p.amount is not None:
            totals[p.currency or derived.config.currency] += p.amount
    return dict(sorted(totals.items()))


def first_seen(contact: Contact) -> dt.date | None:
    """When the contact became known: `created`, else the first interaction."""
    if contact.customer.created:
        return contact.customer.created
    return contact.interactions[0].day if contact.interactions else None


def new_contacts(derived: Derived, days: int) -> list[Contact]:
    start, end = derived.as_of - dt.timedelta(days=days), derived.as_of
    found = []
    for c in derived.contacts.values():
        seen = first_seen(c)
        if seen is not None and start < seen <= end:
            found.append((seen, c.customer.id, c))
    found.sort(key=lambda f: f[:2], reverse=True)
    return [c for _, _, c in found]


def seen_within(contacts: list[Contact], as_of: dt.date, days: int) -> list[Contact]:
    """Those of `new_contacts` (newest first) first seen within a shorter number of days."""
    start = as_of - dt.timedelta(days=days)
    return [c for c in contacts if (first_seen(c) or dt.date.min) > start]


def reminders_due(derived: Derived) -> tuple[tuple[Interaction, str, int], ...]:
    """Open reminders, dated up to the build date, whose due date has come: each with a
    customer it names and how many days overdue it is, the most overdue first."""
    as_of = derived.as_of
    due = [(i, cid, (as_of - i.due).days) for i in _past(derived)
           if i.kind == "reminder" and not i.done and i.due and i.due <= as_of
           for cid in dict.fromkeys(i.customers)]
    return tuple(sorted(due, key=lambda d: (-d[2], d[1], d[0].id)))


class FollowUps(Sequence[FollowUp]):
    """Open reminders whose due date has come, with the contacts they name, most overdue
    first: each made when asked for (the dashboard shows 15 of thousands, and how many)."""

    def __init__(self, due: list[tuple[Interaction, str, int]],
                 contacts: dict[str, Contact]) -> None:
        self.due, self.contacts = due, contacts

    def __len__(self) -> int:
        return len(self.due)

    def _made(self, found: tuple[Interaction, str, int]) -> FollowUp:
        return FollowUp(found[0], self.contacts[found[1]], found[2])

    @overload
    def __getitem__(self, k: int) -> FollowUp: ...

    @overload
    def __getitem__(self, k: slice) -> list[FollowUp]: ...

    def __getitem__(self, k: int | slice) -> FollowUp | list[FollowUp]:
        if isinstance(k, slice):
            return [self._made(found) for found in self.due[k]]
        return self._made(self.due[k])


def follow_ups_due(derived: Derived,
                   reminders: Iterable[tuple[Interaction, str, int]]) -> FollowUps:
    """Open reminders whose due date has come (those of `reminders_due`, kept while the
    interactions do not change), with the contacts they name, most overdue first."""
    contacts = derived.contacts
    return FollowUps([found for found in reminders if found[1] in contacts], contacts)


def about_to_lapse(derived: Derived, days: int = ABOUT_TO_LAPSE_DAYS) -> list[Contact]:
    """Buyers without a subscription who lapse within `days` unless they buy again."""
    end = derived.as_of + dt.timedelta(days=days)
    found = [c for c in derived.contacts.values()
             if c.stage in ("customer", "repeat") and c.lapses_on is not None
             and derived.as_of < c.lapses_on <= end]
    return sorted(found, key=lambda c: (c.lapses_on or dt.date.max, c.id))


def _most_valuable(found: list[Contact]) -> list[Contact]:
    """Those who spent the most first, then by id: sorted by id, then by revenue (a stable
    sort), with keys made in C rather than a negated amount for each."""
    found.sort(key=CONTACT_ID)
    found.sort(key=_REVENUE, reverse=True)
    return found


_REVENUE = attrgetter("revenue")


def win_back(derived: Derived) -> list[Contact]:
    """Lapsed customers, the most valuable first."""
    return _most_valuable([c for c in derived.contacts.values() if c.stage == "lapsed"])


@dataclass(frozen=True)
class InteractionFigures:
    """The dashboard's figures that only the interactions, the build date and the currency
    decide: the dev server keeps them while no interaction changes."""

    months: list[MonthRevenue]
    revenue: dict[str, Decimal]
    satisfaction: Satisfaction
    reminders_due: tuple[tuple[Interaction, str, int], ...]


def interaction_figures(derived: Derived) -> InteractionFigures:
    return InteractionFigures(revenue_by_month(derived), revenue_by_currency(derived),
                              satisfaction(derived.portfolio.interactions, derived.as_of),
                              reminders_due(derived))


def satisfaction(interactions: Iterable[Interaction], as_of: dt.date) -> Satisfaction:
    ratings: list[int] = []
    scores: list[int] = []
    for i in interactions:
        if i.kind == "feedback" and i.day <= as_of:
            if i.rating is not None:
                ratings.append(i.rating)
            if i.nps is not None:
                scores.append(i.nps)
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    nps = round(100 * (promoters - detractors) / len(scores)) if scores else None
    average = sum(ratings) / len(ratings) if ratings else None
    return Satisfaction(len(ratings), average, len(scores), nps, promoters,
                        len(scores) - promoters - detractors, detractors)


def recent_interactions(derived: Derived, limit: int = RECENT) -> list[Interaction]:
    """The latest interactions up to the build date, newest first.

    The portfolio keeps its interactions sorted by `Interaction.sort_key` (date first), so the
    past is a prefix found by bisection: no pass over a million interactions per page.
    """
    past = _past(derived)
    return list(past[max(len(past) - limit, 0):][::-1])


def targets(contacts: Sequence[Contact]) -> tuple[str, ...]:
    """Who to go after next: leads, suspects and prospects that may be contacted."""
    order = {"prospect": 0, "suspect": 1, "lead": 2}
    found = [c for c in contacts if c.stage in order and not c.customer.do_not_contact]
    return tuple(c.id for c in sorted(found, key=lambda c: (order[c.stage], c.customer.name,
                                                              c.id)))


def persona_stats(derived: Derived) -> list[PersonaStats]:
    total = len(derived.contacts) or 1
    out = []
    for pid, members in derived.persona_matches.items():
        persona = derived.portfolio.personas[pid]
        contacts = [derived.contacts[c] for c in members]
        by_stage = Counter(c.stage for c in contacts)
        buyers = sum(by_stage[s] for s in BUYER_STAGES)
        out.append(PersonaStats(
            pid, persona.name, len(contacts), len(contacts) / total,
            {s: by_stage[s] for s in STAGES},
            buyers / len(contacts) if contacts else None, targets(contacts)))
    return out


def uncovered(derived: Derived) -> int:
    """Contacts who fit no persona: a hint that a persona is missing."""
    return sum(1 for c in derived.contacts.values() if not c.personas)


RFM_MEANINGS = {
    "champions": "bought recently and buy often",
    "loyal": "buy often, and fairly recently",
    "potential-loyalists": "bought recently, more than once",
    "new": "made a first purchase very recently",
    "promising": "bought recently, but only once",
    "need-attention": "average recency and frequency",
    "about-to-sleep": "below-average recency and few purchases",
    "at-risk": "bought often, but not for a long time",
    "cant-lose": "were among the most frequent buyers, but not for a long time",
    "hibernating": "bought rarely, and long ago",
}


def rfm_explanation(contact: Contact, derived: Derived) -> list[str]:
    """Why the contact has its RFM scores and segment, in words."""
    rfm = contact.rfm
    if rfm is None:
        return []
    settings = derived.config.rfm
    if rfm.method == "quintiles":
        # No buyer count here: it would make every buyer's page depend on every purchase.
        method = "Scores are fifths among all buyers: 5 is the best fifth."
    else:
        def bounds(values: Iterable[object]) -> str:
            return " / ".join(str(v) for v in values)
        method = (f"With fewer than {settings.min_buyers} buyers, fixed thresholds give the "
                  f"scores 2 to 5: recency within {bounds(settings.recency_days)} days, "
                  f"at least {bounds(settings.frequency)} purchases, at least "
                  f"{bounds(settings.monetary)} {contact.currency} in all.")
    money = f"{rfm.monetary:,.2f}".removesuffix(".00")
    plural = "s" if rfm.frequency != 1 else ""
    return [
        f"Recency {rfm.r}: last purchase {rfm.recency_days} days before {derived.as_of}.",
        f"Frequency {rfm.f}: {rfm.frequency} purchase{plural}.",
        f"Money {rfm.m}: {money} {contact.currency} in all.",
        method,
        f"R{rfm.r} with F{rfm.f} is the '{rfm.segment}' segment: buyers who "
        f"{RFM_MEANINGS[rfm.segment]}.",
    ]


def _span(value: float, unit: str) -> str:
    """A duration in whole units, in words: '1 week', '30 weeks', 'less than a week'."""
    n = round(value)
    singular = unit.removesuffix("s")
    if n == 0:
        return f"less than a {singular}"
    return f"1 {singular}" if n == 1 else f"{n} {unit}"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def lifetime_explanation(contact: Contact, derived: Derived) -> str | None:
    """The model's figure in words: 'bought 6 times in 40 weeks, last 30 weeks ago: 22%
    likely still active'."""
    estimate, model = contact.lifetime, derived.lifetime
    if estimate is None or model is None:
        return None
    h, unit = estimate.history, model.settings.time_unit
    if h.x == 0:
        bought = f"bought once, {_span(h.T, unit)} ago"
    else:
        bought = (f"bought {_times(h.x + 1)} in {_span(h.T, unit)}, "
                  f"last {_span(h.T - h.t_x, unit)} ago")
    return f"{bought}: {estimate.p_alive:.0%} likely still active"


def valuable_at_risk(derived: Derived, limit: int = 10) -> list[Contact]:
    """Buyers the model gives less than `lifetime.at_risk_below` chance of still being active,
    those who spent the most first: what the business stands to lose."""
    model = derived.lifetime
    if model is None or not model.fitted:
        return []
    below = model.settings.at_risk_below
    found = [c for c in derived.contacts.values()
             if c.lifetime is not None and c.lifetime.p_alive < below]
    return _most_valuable(found)[:limit]
