"""One deliberately broken portfolio per rule code: the exact code, place and message."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from custsite.build import CheckResult
from custsite.errors import RULES

BASE: dict[str, str | bytes] = {
    "records/customers/ann.yaml": """
        name: Ann Lee
        email: ann@example.com
    """,
    "records/customers/bob.yaml": "name: Bob Stone\n",
    "records/organizations/acme.yaml": "name: ACME\n",
}


@dataclass(frozen=True)
class Case:
    id: str
    code: str
    files: dict[str, str | bytes]
    where: tuple[str, int, int]
    message: str


CUST = "records/customers/"
INT = "records/interactions/"
CASES = [
    Case("yaml-syntax", "yaml-syntax", {CUST + "x.yaml": "name: [Ann\nemail: a@b.co\n"},
         (CUST + "x.yaml", 2, 6), "did not find expected ',' or ']'"),
    Case("file-unreadable", "file-unreadable", {CUST + "x.yaml": b"name: Andr\xe9\n"},
         (CUST + "x.yaml", 1, 11), "expected UTF-8 text, found byte 0xe9"),
    Case("front-matter", "front-matter", {CUST + "x.md": "name: X\n"}, (CUST + "x.md", 1, 1),
         "start with a '---' line"),
    Case("duplicate-key", "duplicate-key", {CUST + "x.yaml": "name: X\nname: Y\n"},
         (CUST + "x.yaml", 2, 1), "duplicate key 'name' (first at line 1)"),
    Case("yaml-alias", "yaml-alias", {CUST + "x.yaml": "name: X\ntags: &a [" + ",".join(
        ["x"] * 10) + "]\n" + "".join(f"f{n}: &a{n} [" + ",".join(
            [f"*a{n - 1 if n > 1 else ''}"] * 10) + "]\n" for n in range(1, 8))},
         (CUST + "x.yaml", 2, 15), "refusing to read it"),
    Case("unknown-field", "unknown-field", {CUST + "x.yaml": "name: X\nemial: x@y.co\n"},
         (CUST + "x.yaml", 2, 1), "unknown field 'emial' for a customer (did you mean 'email'?)"),
    Case("missing-field", "missing-field", {CUST + "x.yaml": "email: x@y.co\n"},
         (CUST + "x.yaml", 1, 1), "missing required field 'name'"),
    Case("wrong-type", "wrong-type", {CUST + "x.yaml": "name: X\ntags: vip\n"},
         (CUST + "x.yaml", 2, 7), "expected a list, found 'vip'; write tags: [vip]"),
    Case("invalid-value", "invalid-value", {CUST + "x.yaml": "name: X\nkind: persn\n"},
         (CUST + "x.yaml", 2, 7), "found 'persn' (did you mean 'person'?)"),
    Case("rating-out-of-range", "invalid-value",
         {INT + "f.yaml": "customer: bob\ndate: 2026-01-02\nkind: feedback\nrating: 6\n"},
         (INT + "f.yaml", 4, 9), "expected a number from 1 to 5, found 6"),
    Case("reserved-name", "invalid-id", {CUST + "con.yaml": "name: Con\n"},
         (CUST + "con.yaml", 1, 1), "reserved device name on Windows"),
    Case("interaction-file-id", "invalid-id", {INT + "Q1 calls.yaml": "[]\n"},
         (INT + "Q1 calls.yaml", 1, 1), "rename it to 'q1-calls.yaml'"),
    Case("unquoted-phone", "yaml-implicit-type",
         {CUST + "x.yaml": "name: X\nphone: 0612345678\n"},
         (CUST + "x.yaml", 2, 8), "quote it: phone: \"0612345678\""),
    Case("plus-phone", "yaml-implicit-type",
         {CUST + "x.yaml": "name: X\nphone: +4412345678\n"},
         (CUST + "x.yaml", 2, 8), "'+4412345678' is unquoted, so YAML reads it as the number "
                                  "4412345678"),
    Case("country-no", "yaml-implicit-type",
         {CUST + "x.yaml": "name: X\nlocation:\n  country: NO\n"},
         (CUST + "x.yaml", 3, 12), "reads it as the boolean false; quote it: country: \"NO\""),
    Case("zip-octal", "yaml-implicit-type",
         {CUST + "x.yaml": "name: X\nfields:\n  zip: 02134\n"},
         (CUST + "x.yaml", 3, 8), "the octal number 1116; quote it: zip: \"02134\""),
    Case("sexagesimal", "yaml-implicit-type",
         {INT + "a.yaml": "customer: bob\ndate: 2026-01-02\nkind: call\nsummary: 1:20\n"},
         (INT + "a.yaml", 4, 10), "the base-60 number 80"),
    Case("invalid-date", "invalid-date", {CUST + "x.yaml": "name: X\ncreated: 2025-02-30\n"},
         (CUST + "x.yaml", 2, 10), "'2025-02-30' is not a real date"),
    Case("invalid-email", "invalid-email", {CUST + "x.yaml": "name: X\nemail: x@@y\n"},
         (CUST + "x.yaml", 2, 8), "'x@@y' is not a valid e-mail address"),
    Case("invalid-phone", "invalid-phone", {CUST + "x.yaml": "name: X\nphone: \"+33 12\"\n"},
         (CUST + "x.yaml", 2, 8), "is not a valid phone number"),
    Case("invalid-country", "invalid-country",
         {CUST + "x.yaml": "name: X\nlocation: {country: France}\n"},
         (CUST + "x.yaml", 2, 21), "found 'France' (use 'FR')"),
    Case("invalid-currency", "invalid-currency",
         {INT + "a.yaml": "customer: bob\ndate: 2026-01-02\nkind: purchase\namount: 5\n"
                          "currency: EURO\n"},
         (INT + "a.yaml", 5, 11), "expected an ISO 4217 currency code"),
    Case("invalid-url", "invalid-url",
         {"records/organizations/o.yaml": "name: O\nwebsite: o.example.com\n"},
         ("records/organizations/o.yaml", 2, 10), "did you mean 'https://o.example.com'?"),
    Case("invalid-id", "invalid-id", {CUST + "Jane Doe.yaml": "name: Jane Doe\n"},
         (CUST + "Jane Doe.yaml", 1, 1), "rename it to 'jane-doe.yaml'"),
    Case("duplicate-id", "duplicate-id", {CUST + "bob.md": "---\nname: Bob Two\n---\n"},
         (CUST + "bob.yaml", 1, 1),
         "customer id 'bob' is already used by records/customers/bob.md"),
    Case("duplicate-email", "duplicate-email",
         {CUST + "x.yaml": "name: X\nemail: ANN@example.com\n"},
         (CUST + "x.yaml", 2, 8), "also the address of 'ann'"),
    Case("unknown-reference", "unknown-reference",
         {INT + "a.yaml": "- customer: bobb\n  date: 2026-01-02\n  kind: call\n"},
         (INT + "a.yaml", 1, 13), "no customer with id 'bobb' (did you mean 'bob'?)"),
    Case("unknown-organization", "unknown-reference",
         {CUST + "x.yaml": "name: X\norganization: acm\n"},
         (CUST + "x.yaml", 2, 15), "no organization with id 'acm' (did you mean 'acme'?)"),
    Case("missing-file", "missing-file",
         {"personas/p.md": "---\nname: P\nphoto: p.png\n---\n"},
         ("personas/p.md", 3, 8), "photo 'p.png' does not exist"),
    Case("unsafe-path", "unsafe-path",
         {"personas/p.md": "---\nname: P\nphoto: ../../etc/passwd\n---\n"},
         ("personas/p.md", 3, 8), "must be a path inside the personas folder"),
    Case("hidden-file", "hidden-file", {CUST + ".x.yaml": "name: X\n"},
         (CUST + ".x.yaml", 1, 1), "hidden files are not read, so this record is not in the "
                                   "portfolio; rename it to 'x.yaml'"),
    Case("status-mismatch", "status-mismatch", {CUST + "x.yaml": "name: X\nstatus: customer\n"},
         (CUST + "x.yaml", 2, 9), "declared status 'customer' but the records say 'lead'"),
    Case("future-interaction", "future-interaction",
         {INT + "a.md": "---\ncustomer: bob\ndate: 2027-01-01\nkind: call\n---\n"},
         (INT + "a.md", 3, 7), "after the build date 2026-06-01"),
    Case("before-created", "before-created",
         {CUST + "x.yaml": "name: X\ncreated: 2026-01-10\n",
          INT + "a.yaml": "customer: x\ndate: 2026-01-02\nkind: call\n"},
         (INT + "a.yaml", 2, 7), "before 'x' was created (2026-01-10)"),
    Case("missing-amount", "missing-amount",
         {INT + "a.yaml": "customer: bob\ndate: 2026-01-02\nkind: purchase\n"},
         (INT + "a.yaml", 3, 7), "a purchase needs an 'amount'"),
    Case("mixed-currencies", "mixed-currencies",
         {INT + "a.yaml": "- {customer: bob, date: 2026-01-02, kind: purchase, amount: 5}\n"
                          "- {customer: bob, date: 2026-02-02, kind: purchase, amount: 5,"
                          " currency: USD}\n"},
         (INT + "a.yaml", 2, 74), "purchase in USD, but 'bob' already bought in EUR"),
    Case("misplaced-field", "misplaced-field",
         {INT + "a.yaml": "customer: bob\ndate: 2026-01-02\nkind: call\namount: 12\n"},
         (INT + "a.yaml", 4, 9), "'amount' applies to purchase, not to a call"),
    Case("no-decision-maker", "no-decision-maker",
         {CUST + "x.yaml": "name: X\norganization: acme\nrole: ally\n",
          INT + "a.yaml": "customer: x\ndate: 2026-01-02\nkind: meeting\n"},
         ("records/organizations/acme.yaml", 1, 1), "'ACME' has open deals"),
    Case("unknown-rule-field", "unknown-rule-field",
         {"custsite.yaml": "segments:\n  s:\n    where:\n      sectr: roofing\n"},
         ("custsite.yaml", 4, 7), "unknown field path 'sectr' in rule (did you mean 'sector'?)"),
    Case("unknown-rule-operator", "unknown-rule-operator",
         {"custsite.yaml": "segments:\n  s:\n    where:\n      purchases: {gteq: 1}\n"},
         ("custsite.yaml", 4, 19), "unknown operator 'gteq' (did you mean 'gte'?)"),
    Case("invalid-rule", "invalid-rule",
         {"custsite.yaml": "segments:\n  s:\n    where:\n      name: {matches: '[a-'}\n"},
         ("custsite.yaml", 4, 23), "invalid regular expression '[a-'"),
    Case("builtin-segment-name", "invalid-value",
         {"custsite.yaml": "segments:\n  lapsed:\n    where: {b2b: true}\n"},
         ("custsite.yaml", 2, 3), "'lapsed' is the name of a built-in segment"),
    Case("not-a-portfolio", "missing-file", {"custsite.yaml": "paths: {customers: people}\n"},
         ("people", 0, 0), "no 'people' folder"),
    Case("config-unknown-key", "unknown-field", {"custsite.yaml": "title: T\ncurency: USD\n"},
         ("custsite.yaml", 2, 1), "unknown field 'curency' for custsite.yaml (did you mean "
                                  "'currency'?)"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_code(case: Case, checked: Callable[..., CheckResult]) -> None:
    result = checked({**BASE, **case.files})
    found = [p for p in result.problems if p.code == case.code]
    assert found, f"no {case.code}; got {[p.format() for p in result.problems]}"
    first = found[0]
    loc = first.location
    assert (loc.path, loc.line, loc.col) == case.where, first.format()
    assert case.message in first.message
    assert first.severity == RULES[case.code].severity


def test_every_rule_code_has_a_broken_fixture() -> None:
    # template-error is raised by rendering, not by checking: tests/test_cli.py covers it.
    assert {c.code for c in CASES} | {"template-error"} == set(RULES)


def test_base_portfolio_is_clean(checked: Callable[..., CheckResult]) -> None:
    assert checked(BASE).problems == []


def test_every_problem_of_every_file_in_one_run(checked: Callable[..., CheckResult]) -> None:
    files: dict[str, str | bytes] = {
        **BASE,
        CUST + "a.yaml": "name: [A\n",
        CUST + "b.yaml": "name: B\nemial: b@example.com\n",
        CUST + "c.yaml": "name: C\nemail: c@@example.com\nlocation: {country: France}\n",
        INT + "i.yaml": "- {customer: nobody, date: 2026-01-02, kind: call}\n"
                        "- {customer: bob, date: 2026-01-03, kind: purchase}\n",
    }
    result = checked(files)
    assert [(p.location.path, p.location.line, p.code) for p in result.problems] == [
        (CUST + "a.yaml", 2, "yaml-syntax"),
        (CUST + "b.yaml", 2, "unknown-field"),
        (CUST + "c.yaml", 2, "invalid-email"),
        (CUST + "c.yaml", 3, "invalid-country"),
        (INT + "i.yaml", 1, "unknown-reference"),
        (INT + "i.yaml", 2, "missing-amount"),
    ]
