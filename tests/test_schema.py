"""JSON Schemas of the record kinds: the example validates, and schema and validator agree."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from custsite.build import CheckResult
from custsite.config import load_config
from custsite.errors import Severity
from custsite.records import record_schemas

from .conftest import REPO, ScratchFactory, run


class Yaml12Loader(yaml.SafeLoader):
    """What editors (yaml-language-server) read: YAML 1.2 core types, no timestamps, no
    yes/no booleans, no base-60 numbers."""


Yaml12Loader.yaml_implicit_resolvers = {}
for tag, pattern, first in [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", list("~nN")),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^[-+]?[0-9]+$", list("-+0123456789")),
    ("tag:yaml.org,2002:float", r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$",
     list("-+.0123456789")),
]:
    Yaml12Loader.add_implicit_resolver(tag, re.compile(pattern), first)
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^$"), [""])
Yaml12Loader.add_constructor(  # decimal, as in YAML 1.2: 0612 is 612, not octal
    "tag:yaml.org,2002:int", lambda loader, node: int(loader.construct_scalar(node), 10))


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        text = text.split("---\n")[1]
    return yaml.load(text, Loader=Yaml12Loader)


SCHEMAS = record_schemas(load_config(REPO, []))
FOLDERS = {"customer": "records/customers", "organization": "records/organizations",
           "interaction": "records/interactions", "persona": "personas"}


@pytest.mark.parametrize("kind", list(FOLDERS))
def test_example_records_match_their_schema(kind: str) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMAS[kind])
    files = [p for p in (REPO / FOLDERS[kind]).rglob("*") if p.suffix in (".yaml", ".md")]
    assert files
    for path in files:
        errors = [e.message for e in validator.iter_errors(_load(path))]
        assert errors == [], path


def test_schemas_are_valid_draft_2020_12() -> None:
    for schema in SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(schema)


CUSTOMER_CASES = [
    ("kind: company", True), ("kind: persn", False), ("age: 42", True), ("age: 200", False),
    ('age: "42"', False), ("tags: [a, b]", True), ("tags: a", False),
    ("do_not_contact: true", True), ("do_not_contact: maybe", False),
    ("created: 2025-01-02", True), ("created: 02/01/2025", False),
    ("contact_preference: [email, sms]", True), ("contact_preference: [fax]", False),
    ("location: {country: FR, city: Paris}", True), ("location: {country: France}", False),
    ("location: {zip: x}", False), ("emial: a@b.co", False), ("email: x@@y", False),
    ('phone: "+33 6 12 34 56 78"', True), ("phone: 0612345678", False),
    ("role: ally\norganization: acme", True), ("role: boss", False),
    ("status: lead", True), ("status: vip", False), ("organization: Acme Inc", False),
    ("referred_by: bob", True),
]
INTERACTION_CASES = [
    ("kind: call", True), ("kind: party", False), ("kind: feedback\nrating: 5", True),
    ("kind: feedback\nrating: 6", False), ("kind: purchase\namount: 120.5", True),
    ("kind: purchase\namount: -1", False), ("kind: call\ndirection: in", True),
    ("kind: call\ndirection: sideways", False), ("kind: purchase\namount: 1\ncurrency: USD", True),
    ("kind: purchase\namount: 1\ncurrency: DOLLARS", False),
    ("kind: purchase\namount: 1\nrecurring: yearly", True),
    ("kind: purchase\namount: 1\nrecurring: weekly", False),
    ("kind: reminder\ndue: 2026-02-01\ndone: false", True),
    ("kind: reminder\ndue: someday", False), ("kind: call\nnps: 11", False),
    ("kind: purchase\namount: 1\nquantity: 0", False),
]
ORGANIZATION_CASES = [
    ("website: https://acme.example.com", True), ("website: acme.example.com", False),
    ("website: javascript:alert(1)", False), ("size: 40", True), ("size: -3", False),
    ("size: many", False), ("tags: [a]", True), ("location: {country: DE}", True),
    ("notes: text", True), ("colour: red", False),
]


@pytest.mark.parametrize(("extra", "valid"), ORGANIZATION_CASES,
                         ids=[c[0] for c in ORGANIZATION_CASES])
def test_schema_and_validator_agree_on_organizations(extra: str, valid: bool,
                                                     checked: Callable[..., CheckResult]) -> None:
    _agree("organization", "records/organizations/o.yaml", f"name: O\n{extra}\n", valid,
           checked)


@pytest.mark.parametrize(("extra", "valid"), CUSTOMER_CASES, ids=[c[0] for c in CUSTOMER_CASES])
def test_schema_and_validator_agree_on_customers(extra: str, valid: bool,
                                                 checked: Callable[..., CheckResult]) -> None:
    text = f"name: Ann\n{extra}\n"
    _agree("customer", "records/customers/ann.yaml", text, valid, checked)


@pytest.mark.parametrize(("extra", "valid"), INTERACTION_CASES,
                         ids=[c[0] for c in INTERACTION_CASES])
def test_schema_and_validator_agree_on_interactions(extra: str, valid: bool,
                                                    checked: Callable[..., CheckResult]) -> None:
    text = f"customer: bob\ndate: 2026-01-02T10:30\n{extra}\n"
    _agree("interaction", "records/interactions/i.yaml", text, valid, checked)


def _agree(kind: str, rel: str, text: str, valid: bool,
           checked: Callable[..., CheckResult]) -> None:
    files: dict[str, str | bytes] = {
        "records/customers/bob.yaml": "name: Bob\n",
        "records/customers/bob-2.yaml": "name: Bob Two\n",
        "records/organizations/acme.yaml": "name: ACME\n",
        rel: text,
    }
    if "bob" in text and rel.startswith("records/customers/"):
        files["records/customers/ann.yaml"] = text
    result = checked(files)
    errors = [p for p in result.problems
              if p.location.path == rel and p.severity is Severity.ERROR]
    schema_errors = list(jsonschema.Draft202012Validator(SCHEMAS[kind]).iter_errors(
        yaml.load(text, Loader=Yaml12Loader)))
    assert (not errors) is valid, [p.format() for p in errors]
    assert (not schema_errors) is valid, [e.message for e in schema_errors]


def test_schema_command_and_modelines(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({"records/customers/ann.yaml": "name: Ann\n"})
    one = run("schema", "customer", root=root)
    assert one.exit_code == 0 and json.loads(one.output)["title"] == "custsite customer record"
    everything = json.loads(run("schema", root=root).output)
    assert set(everything) == {"customer", "organization", "interaction", "persona"}
    written = run("schema", "--write", root=root)
    assert written.exit_code == 0
    assert (root / "schemas/customer.schema.json").is_file()
    path = run("new", "customer", "Jane Doe", root=root).output.strip()
    first = (root / path).read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../schemas/customer.schema.json"
    assert run("validate", root=root).exit_code == 0
