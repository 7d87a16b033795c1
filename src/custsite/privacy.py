"""`privacy.hide`: fields removed once, before anything is rendered, so no page, data file
or search index can leak them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .derive import Derived
from .model import Customer


def public_customer(c: Customer, hide: frozenset[str]) -> Customer:
    """The customer as it may appear in the site."""
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
    return replace(c, **changes)


def publish(derived: Derived) -> Derived:
    """The derived portfolio with every hidden field removed from every contact."""
    hide = derived.config.hide
    if not hide:
        return derived
    contacts = {cid: replace(c, customer=public_customer(c.customer, hide))
                for cid, c in derived.contacts.items()}
    customers = {cid: c.customer for cid, c in contacts.items()}
    portfolio = replace(derived.portfolio, customers=customers)
    return replace(derived, contacts=contacts, portfolio=portfolio)
