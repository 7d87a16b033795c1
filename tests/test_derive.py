"""The stage engine at its edges, relationship, born-again, advocates, RFM and roll-ups;
the order interactions are kept in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custsite.build import CheckResult
from custsite.config import load_config
from custsite.derive import Contact, DeriveMemo, _quintile_scores, derive, rfm_segment
from custsite.errors import Problem
from custsite.model import Interaction, sort_interactions
from custsite.validate import FileCache, load_portfolio

from .conftest import ScratchFactory

AS_OF = dt.date(2026, 6, 1)


def _days_ago(n: int) -> str:
    return (AS_OF - dt.timedelta(days=n)).isoformat()


def _portfolio(events: list[str], config: str = "", customer: str = "name: Ann\n",
               personas: dict[str, str] | None = None) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {
        "records/customers/ann.yaml": customer,
        "records/interactions/ann.yaml": "\n".join(events) + "\n" if events else "[]\n",
    }
    if config:
        files["custsite.yaml"] = config
    for pid, text in (personas or {}).items():
        files[f"personas/{pid}.md"] = text
    return files


def _purchase(days: int, amount: int = 100, extra: str = "") -> str:
    return (f"- {{customer: ann, date: {_days_ago(days)}, kind: purchase, amount: {amount},"
            f" summary: 'Job {days}'{extra}}}")


def _event(days: int, kind: str, extra: str = "") -> str:
    return f"- {{customer: ann, date: {_days_ago(days)}, kind: {kind}, summary: '{kind} {days}'" \
           f"{extra}}}"


STAGE_CASES = [
    ("no interactions: lead", [], "lead"),
    ("outbound only: lead", [_event(10, "email"), _event(5, "call")], "lead"),
    ("incoming email: prospect", [_event(10, "email", ", direction: in")], "prospect"),
    ("meeting: prospect", [_event(10, "meeting")], "prospect"),
    ("quote: prospect", [_event(10, "quote")], "prospect"),
    ("one purchase: customer", [_purchase(10)], "customer"),
    ("exactly repeat_after purchases: repeat", [_purchase(20), _purchase(10)], "repeat"),
    ("one below repeat_after: customer", [_purchase(10)], "customer"),
    ("exactly lapse_after_days old: still customer", [_purchase(365)], "customer"),
    ("one day older: lapsed", [_purchase(366)], "lapsed"),
    ("active subscription keeps a customer", [_purchase(800, extra=", recurring: yearly")],
     "customer"),
    ("cancelled subscription lapses", [_purchase(800, extra=", recurring: yearly"),
                                       _event(700, "cancellation")], "lapsed"),
    ("cancellation of another product does not end it",
     [_purchase(800, extra=", recurring: yearly, product: Plan"),
      _event(700, "cancellation", ", product: Other")], "customer"),
    ("future-dated purchase is ignored", [_event(10, "meeting"), _purchase(-5)], "prospect"),
    ("future-dated purchase does not save a lapsed one", [_purchase(400), _purchase(-30)],
     "lapsed"),
]


@pytest.mark.parametrize(("events", "stage"), [c[1:] for c in STAGE_CASES],
                         ids=[c[0] for c in STAGE_CASES])
def test_stage(events: list[str], stage: str, checked: Callable[..., CheckResult]) -> None:
    result = checked(_portfolio(events), AS_OF)
    assert result.derived.contacts["ann"].stage == stage


def test_repeat_after_is_configurable(checked: Callable[..., CheckResult]) -> None:
    events = [_purchase(30), _purchase(20)]
    config = "stages: {repeat_after: 3}\n"
    assert checked(_portfolio(events, config), AS_OF).derived.contacts["ann"].stage == "customer"
    events.append(_purchase(10))
    assert checked(_portfolio(events, config), AS_OF).derived.contacts["ann"].stage == "repeat"


def test_stage_reasons(checked: Callable[..., CheckResult]) -> None:
    c = checked(_portfolio([_purchase(10)]), AS_OF).derived.contacts["ann"]
    assert c.stage_reason == f"customer since {_days_ago(10)}: purchase 'Job 10'"
    c = checked(_portfolio([_purchase(400)]), AS_OF).derived.contacts["ann"]
    assert c.stage_reason.startswith(f"lapsed since {_days_ago(34)}: last purchase 'Job 400'")
    c = checked(_portfolio([_event(3, "email", ", direction: in")]), AS_OF).derived.contacts["ann"]
    assert c.stage_reason == f"prospect since {_days_ago(3)}: incoming email 'email 3'"


def test_suspect_fits_a_persona(checked: Callable[..., CheckResult]) -> None:
    persona = "---\nname: Roofers\nmatch:\n  sector: roofing\n---\nStory.\n"
    files = _portfolio([], customer="name: Ann\nsector: roofing\n", personas={"roofers": persona})
    c = checked(files, AS_OF).derived.contacts["ann"]
    assert c.stage == "suspect"
    assert c.personas == ("roofers",)
    assert "fits the persona 'Roofers'" in c.stage_reason
    # Engagement wins over fit.
    files = _portfolio([_event(5, "demo")], customer="name: Ann\nsector: roofing\n",
                       personas={"roofers": persona})
    assert checked(files, AS_OF).derived.contacts["ann"].stage == "prospect"


def test_segment_rules_see_the_stage_and_personas_persona_matching_gave(
        checked: Callable[..., CheckResult]) -> None:
    """A lead who fits a persona is a suspect of that persona when the segments' rules are
    asked, and only then (the values they read are those matching left)."""
    persona = "---\nname: Roofers\nmatch:\n  sector: roofing\n---\nStory.\n"
    config = ("segments:\n  fitting:\n    where: {stage: suspect, persona: roofers}\n"
              "  leads:\n    where: {stage: lead}\n")
    for sector, segments in (("roofing", ("fitting",)), ("bakery", ("leads",))):
        files = _portfolio([], config, customer=f"name: Ann\nsector: {sector}\n",
                           personas={"roofers": persona})
        c = checked(files, AS_OF).derived.contacts["ann"]
        assert tuple(s for s in c.segments if s in ("fitting", "leads")) == segments


def test_persona_rules_cannot_use_stage(checked: Callable[..., CheckResult]) -> None:
    persona = "---\nname: P\nmatch:\n  stage: lead\n---\n"
    result = checked(_portfolio([], personas={"p": persona}), AS_OF)
    assert [(p.code, p.location.line) for p in result.problems] == [("invalid-rule", 4)]


RELATIONSHIP_CASES = [
    ("non-buyer", [_event(5, "meeting")], "none"),
    ("one purchase", [_purchase(10)], "one-time"),
    ("three purchases over 180 days", [_purchase(200), _purchase(100), _purchase(20)], "client"),
    ("three purchases within 179 days", [_purchase(199), _purchase(100), _purchase(21)],
     "one-time"),
    ("active subscription", [_purchase(30, extra=", recurring: monthly")], "client"),
    ("lapsed client", [_purchase(900), _purchase(700), _purchase(400)], "one-time"),
]


@pytest.mark.parametrize(("events", "relationship"), [c[1:] for c in RELATIONSHIP_CASES],
                         ids=[c[0] for c in RELATIONSHIP_CASES])
def test_relationship(events: list[str], relationship: str,
                      checked: Callable[..., CheckResult]) -> None:
    assert checked(_portfolio(events), AS_OF).derived.contacts["ann"].relationship == relationship


def test_born_again(checked: Callable[..., CheckResult]) -> None:
    again = checked(_portfolio([_purchase(800), _purchase(10)]), AS_OF).derived.contacts["ann"]
    assert again.born_again and again.stage == "repeat"
    assert "born-again" in again.segments
    steady = checked(_portfolio([_purchase(300), _purchase(10)]), AS_OF).derived.contacts["ann"]
    assert not steady.born_again
    subscribed = checked(_portfolio([_purchase(800, extra=", recurring: yearly"), _purchase(10)]),
                         AS_OF).derived.contacts["ann"]
    assert not subscribed.born_again


def test_advocates_and_b2b(checked: Callable[..., CheckResult]) -> None:
    files = _portfolio([_purchase(10)])
    files["records/customers/bea.yaml"] = "name: Bea\nreferred_by: ann\norganization: acme\n"
    files["records/customers/cid.yaml"] = "name: Cid\nkind: company\n"
    files["records/organizations/acme.yaml"] = "name: ACME\n"
    d = checked(files, AS_OF).derived
    assert d.contacts["ann"].advocate and d.contacts["ann"].referrals == ("bea",)
    assert not d.contacts["bea"].advocate
    assert [d.contacts[c].b2b for c in ("ann", "bea", "cid")] == [False, True, True]
    assert d.segments["b2b"].members == ("bea", "cid")


def test_organization_rollup(checked: Callable[..., CheckResult]) -> None:
    files: dict[str, str | bytes] = {
        "records/organizations/acme.yaml": "name: ACME\n",
        "records/customers/a.yaml": "name: A\norganization: acme\nrole: decision-maker\n",
        "records/customers/b.yaml": "name: B\norganization: acme\nrole: ally\n",
        "records/interactions/x.yaml": (
            f"- {{customer: a, date: {_days_ago(500)}, kind: purchase, amount: 100}}\n"
            f"- {{customer: b, date: {_days_ago(20)}, kind: meeting}}\n"),
    }
    d = checked(files, AS_OF).derived
    account = d.accounts["acme"]
    assert d.contacts["a"].stage == "lapsed" and d.contacts["b"].stage == "prospect"
    assert account.stage == "lapsed"  # a lapsed buyer has come further than a prospect
    assert account.revenue == 100 and account.decision_makers == ("a",) and account.open_deal


def test_rfm_map() -> None:
    expected = {
        (5, 5): "champions", (5, 4): "champions", (4, 5): "loyal", (3, 4): "loyal",
        (5, 3): "potential-loyalists", (4, 2): "potential-loyalists", (5, 1): "new",
        (4, 1): "promising", (3, 3): "need-attention", (3, 2): "about-to-sleep",
        (3, 1): "about-to-sleep", (2, 3): "at-risk", (1, 4): "at-risk", (2, 5): "cant-lose",
        (1, 5): "cant-lose", (2, 2): "hibernating", (1, 1): "hibernating",
    }
    assert {k: rfm_segment(*k) for k in expected} == expected


def test_quintiles_share_scores_on_ties() -> None:
    scores = _quintile_scores([(f"c{i}", v) for i, v in enumerate([1, 1, 1, 1, 2, 3, 4, 5, 6, 7])])
    assert [scores[f"c{i}"] for i in range(10)] == [1, 1, 1, 1, 3, 3, 4, 4, 5, 5]


def test_rfm_thresholds_below_min_buyers(checked: Callable[..., CheckResult]) -> None:
    d = checked(_portfolio([_purchase(20, 600), _purchase(10, 600)]), AS_OF).derived
    rfm = d.contacts["ann"].rfm
    assert rfm is not None and d.rfm_method == "thresholds"
    assert (rfm.r, rfm.f, rfm.m, rfm.segment) == (5, 2, 4, "potential-loyalists")


def test_rfm_quintiles(checked: Callable[..., CheckResult]) -> None:
    files: dict[str, str | bytes] = {"custsite.yaml": "rfm: {min_buyers: 5}\n"}
    lines = []
    for n in range(10):
        files[f"records/customers/c{n}.yaml"] = f"name: C{n}\n"
        for k in range(n + 1):
            lines.append(f"- {{customer: c{n}, date: {_days_ago(300 - 30 * n + k)}, "
                         f"kind: purchase, amount: {10 * (n + 1)}}}")
    files["records/interactions/all.yaml"] = "\n".join(lines) + "\n"
    d = checked(files, AS_OF).derived
    assert d.rfm_method == "quintiles"
    scores = [(d.contacts[f"c{n}"].rfm.r, d.contacts[f"c{n}"].rfm.f)  # type: ignore[union-attr]
              for n in range(10)]
    assert scores == [(1, 1), (1, 1), (2, 2), (2, 2), (3, 3), (3, 3), (4, 4), (4, 4), (5, 5),
                      (5, 5)]
    assert d.contacts["c9"].rfm.segment == "champions"  # type: ignore[union-attr]
    assert d.contacts["c0"].rfm.segment == "hibernating"  # type: ignore[union-attr]


def test_as_of_is_the_only_clock(checked: Callable[..., CheckResult]) -> None:
    files = _portfolio([_purchase(100)])
    assert checked(files, AS_OF).derived.contacts["ann"].stage == "customer"
    later = AS_OF + dt.timedelta(days=300)
    assert checked(files, later).derived.contacts["ann"].stage == "lapsed"


def test_renewals_are_one_subscription(checked: Callable[..., CheckResult]) -> None:
    events = [_purchase(700, extra=", recurring: yearly, product: Plan"),
              _purchase(335, extra=", recurring: yearly, product: Plan"),
              _purchase(300, extra=", recurring: monthly, product: Watch")]
    c = checked(_portfolio(events), AS_OF).derived.contacts["ann"]
    assert [(s.product, s.day.isoformat()) for s in c.active_subscriptions] == [
        ("Plan", _days_ago(335)), ("Watch", _days_ago(300))]
    events.append(_event(100, "cancellation", ", product: Plan"))
    c = checked(_portfolio(events), AS_OF).derived.contacts["ann"]
    assert [s.product for s in c.active_subscriptions] == ["Watch"]
    assert c.relationship == "client"


@pytest.mark.parametrize("as_of", ["2026-11-15", "2026-08-01", "2025-12-31"])
def test_recent_contacts_of_a_shorter_window_are_those_of_a_longer_one(as_of: str) -> None:
    from custsite import insights
    from custsite.build import check

    from .conftest import REPO

    derived = check(REPO, as_of=dt.date.fromisoformat(as_of)).derived
    longer = insights.new_contacts(derived, 90)
    for days in (7, 30, 60):
        assert insights.seen_within(longer, derived.as_of, days) == \
            insights.new_contacts(derived, days), days
    assert longer  # the example has recent contacts at these dates


def test_a_contact_that_fits_as_before_stays_the_same_object(
        scratch_portfolio: ScratchFactory) -> None:
    """After a persona's rule is edited every contact is matched again; one who fits the same
    personas as before stays the very object it was (so all that is kept for it by identity,
    its page's hash and its table rows, is taken as it is), one whose fit changed is new."""
    root = scratch_portfolio({
        "records/customers/ann.yaml": "name: Ann\nsector: roofing\n",
        "records/customers/bob.yaml": "name: Bob\n",
        "personas/p.md": "---\nname: P\nmatch: {kind: person}\n---\nStory.\n"})
    files: FileCache = {}  # unchanged files stay the same objects, as in a warm build
    memo = DeriveMemo()

    def contacts() -> dict[str, Contact]:
        problems: list[Problem] = []
        config = load_config(root, problems)
        return derive(load_portfolio(config, problems, cache=files), AS_OF, memo).contacts

    before = contacts()
    persona = root / "personas/p.md"
    persona.write_text(persona.read_text().replace("{kind: person}",
                                                   "{kind: person, sector: roofing}"))
    after = contacts()
    assert after["ann"] is before["ann"] and after["ann"].personas == ("p",)
    assert before["bob"].personas == ("p",) and after["bob"].personas == ()


# A few days only, so that many interactions share one (the order's ties), and any day.
_DAYS = (dt.date(2024, 2, 28), dt.date(2024, 3, 1))
_DAYS_ALONE = st.one_of(st.dates(*_DAYS), st.dates())
_MOMENTS = st.one_of(
    _DAYS_ALONE,
    st.datetimes(dt.datetime(2024, 2, 28), dt.datetime(2024, 3, 1, 23, 59),
                 timezones=st.one_of(st.none(), st.timezones())),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(*(st.lists(st.tuples(when, st.text(min_size=1, max_size=4)), max_size=12)
                   for when in (_DAYS_ALONE, _MOMENTS))))
def test_interactions_sort_by_day_then_time_then_id(moments: list[tuple[Any, str]]) -> None:
    """Interaction.sort_key's order (the day, then the time, a date alone before any time of
    that day, then the id), whether every interaction is dated by a day alone (sorted so by
    two passes) or not."""
    made = [Interaction(id=rid, path="a.yaml", customers=("a",), date=when, kind="call")
            for when, rid in moments]
    key = Interaction.sort_key
    assert [key(i) for i in sort_interactions(made)] == sorted(map(key, made))
