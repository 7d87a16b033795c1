"""E-mail addresses are judged by email_validator; custsite only remembers the domains it
accepted (fields.email_problem), which must never change a verdict."""

from __future__ import annotations

import email_validator
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custsite import fields
from custsite.fields import email_problem

LOCALS = st.one_of(
    st.sampled_from(["a", "ada.lovelace", "c-000042", "x+tag", "A_B", "a..b", ".a", "a.",
                     "é", "a b", '"quoted"', "a" * 64, "a" * 65, "a" * 240, "", "a@b"]),
    st.text(st.sampled_from("ab.+-_@ é\"'"), min_size=0, max_size=6))
DOMAINS = st.one_of(
    st.sampled_from(["example.com", "EXAMPLE.com", "mail.example.co.uk", "localhost", "a.test",
                     "x..y.com", "-a.com", "a-.com", "1.2.3.4", "com", "ab.c1", "a.b",
                     "xn--bcher-kva.example", "XN--BCHER-KVA.example", "bücher.example",
                     "a_b.com", "[127.0.0.1]", "example.invalid", "example.com.",
                     ("a" * 63 + ".") * 3 + "com", ("a" * 64) + ".com"]),
    st.text(st.sampled_from("ab.-1_X"), min_size=0, max_size=8))


def library(address: str) -> str | None:
    try:
        email_validator.validate_email(address, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        return str(exc)
    return None


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(LOCALS, DOMAINS), min_size=1, max_size=4))
def test_the_verdict_is_the_library_s(addresses: list[tuple[str, str]]) -> None:
    for local, domain in addresses:  # the first with a domain fills what is remembered
        address = f"{local}@{domain}"
        assert email_problem(address) == library(address), address


def test_a_known_domain_spares_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    assert email_problem("ada@lovelace.example.org") is None
    assert "lovelace.example.org" in fields._GOOD_DOMAINS
    calls: list[str] = []
    original = email_validator.validate_email

    def counting(address: str, **options: object) -> object:
        calls.append(address)
        return original(address, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(email_validator, "validate_email", counting)
    assert email_problem("charles.babbage@lovelace.example.org") is None
    assert email_problem("x@@lovelace.example.org") is not None
    assert email_problem("a" * 250 + "@lovelace.example.org") is not None
    assert calls == ["x@@lovelace.example.org", "a" * 250 + "@lovelace.example.org"]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.tuples(LOCALS, DOMAINS), st.lists(st.tuples(LOCALS, DOMAINS), min_size=1,
                                            max_size=3))
def test_addresses_taken_as_checked_never_change_a_verdict(
        kept: tuple[str, str], addresses: list[tuple[str, str]]) -> None:
    """Addresses a record store holds were accepted when converted (fields.known_good):
    taking their domains as good changes no verdict on any address."""
    address = "@".join(kept)
    if library(address) is None:  # only accepted addresses are ever in a record
        fields.known_good([address], [])
    for local, domain in addresses:
        other = f"{local}@{domain}"
        assert email_problem(other) == library(other), other

