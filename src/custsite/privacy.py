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
    """The derived portfolio with every hidden field removed from every contact: those of
    `privacy.hide`, and for contacts who asked not to be contacted, those of
    `privacy.do_not_contact_hide` too (their e-mail and phone by default)."""
    config = derived.config
    if not config.hide and not any(c.customer.do_not_contact
                                   for c in derived.contacts.values()):
        return derived
    contacts = {}
    for cid, c in derived.contacts.items():
        public = public_customer(c.customer, config.hidden_for(c.customer.do_not_contact))
        # A contact with nothing hidden stays the very same object (what is kept for it
        # between builds is found by identity).
        contacts[cid] = c if public is c.customer else replace(c, customer=public)
    customers = {cid: c.customer for cid, c in contacts.items()}
    portfolio = replace(derived.portfolio, customers=customers)
    return replace(derived, contacts=contacts, portfolio=portfolio)
