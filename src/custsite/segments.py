"""Built-in segments: one per stage, B2B/B2C, clients, one-time customers, born-again, advocates,
do-not-contact and one per RFM segment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .model import STAGES
from .rules import RFM_SEGMENTS

if TYPE_CHECKING:
    from .derive import Contact

RFM_TITLES = {
    "champions": "Champions", "loyal": "Loyal", "potential-loyalists": "Potential loyalists",
    "new": "New customers", "promising": "Promising", "need-attention": "Need attention",
    "about-to-sleep": "About to sleep", "at-risk": "At risk", "cant-lose": "Can't lose them",
    "hibernating": "Hibernating",
}


@dataclass(frozen=True)
class Builtin:
    id: str
    title: str
    description: str
    test: Callable[[Contact], bool]


STAGE_TITLES = {"lead": "Leads", "suspect": "Suspects", "prospect": "Prospects",
                "customer": "Customers", "repeat": "Repeat customers",
                "lapsed": "Lapsed customers"}


def _stage(stage: str) -> Builtin:
    return Builtin(stage, STAGE_TITLES[stage], f"Contacts at the {stage} stage.",
                   lambda c: c.stage == stage)


def _rfm(name: str) -> Builtin:
    return Builtin(f"rfm-{name}", f"RFM: {RFM_TITLES[name]}",
                   f"Buyers whose recency and frequency scores map to '{RFM_TITLES[name]}'.",
                   lambda c: c.rfm is not None and c.rfm.segment == name)


BUILTINS: tuple[Builtin, ...] = (
    *(_stage(s) for s in STAGES),
    Builtin("b2b", "B2B", "Contacts that belong to an organization or are companies.",
            lambda c: c.b2b),
    Builtin("b2c", "B2C", "Individuals buying for themselves.", lambda c: not c.b2b),
    Builtin("clients", "Clients", "Buyers with an ongoing relationship: an active subscription, "
            "or repeated purchases over a long enough span.",
            lambda c: c.relationship == "client"),
    Builtin("one-time-customers", "One-time customers",
            "Buyers without an ongoing relationship.", lambda c: c.relationship == "one-time"),
    Builtin("born-again", "Born-again", "Contacts who lapsed and then bought again.",
            lambda c: c.born_again),
    Builtin("advocates", "Advocates", "Buyers who referred at least one other contact.",
            lambda c: c.advocate),
    Builtin("do-not-contact", "Do not contact", "Contacts who asked not to be contacted.",
            lambda c: c.customer.do_not_contact),
    *(_rfm(name) for name in RFM_SEGMENTS),
)
BUILTIN_IDS = frozenset(b.id for b in BUILTINS)
