"""Every operator of the rule language, its combinators, and its compile-time errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import yaml

from custsite.config import Config
from custsite.errors import Problem
from custsite.parse import parse_yaml
from custsite.rules import Rule

AS_OF = dt.date(2026, 6, 1)
VALUES: dict[str, Any] = {
    "name": "Ann Lee", "sector": "roofing", "tags": ("vip", "homeowner"), "purchases": 3,
    "revenue": Decimal("1250.50"), "last_purchase": dt.date(2026, 5, 20), "b2b": False,
    "stage": "repeat", "location.country": "FR", "age": None, "fields.plan": "gold",
    "persona": (),
}


def _compile(text: str, config: Config | None = None) -> tuple[Rule | None, list[Problem]]:
    problems: list[Problem] = []
    node = parse_yaml(text, "custsite.yaml", problems=problems)
    assert node is not None and problems == []
    config = config or Config(root=__import__("pathlib").Path("."))
    rule = config.rule_compiler(config.context(problems)).compile(node)
    return rule, problems


MATCH_CASES = [
    ("sector: roofing", True), ("sector: plumbing", False),
    ("sector: [plumbing, roofing]", True), ("sector: {ne: roofing}", False),
    ("sector: {in: [a, b]}", False), ("sector: {not_in: [a, b]}", True),
    ("tags: vip", True), ("tags: gold", False), ("tags: {contains: homeowner}", True),
    ("tags: [gold, vip]", True), ("tags: {not_in: [vip]}", False),
    ("name: {contains: lee}", True), ("name: {matches: '^Ann\\b'}", True),
    ("name: {matches: '^Lee'}", False),
    ("purchases: {gt: 2}", True), ("purchases: {gt: 3}", False), ("purchases: {gte: 3}", True),
    ("purchases: {lt: 3}", False), ("purchases: {lte: 3}", True),
    ("revenue: {gte: 1250.5}", True), ("revenue: {gt: 1250.5}", False),
    ("last_purchase: {within_days: 12}", True), ("last_purchase: {within_days: 11}", False),
    ("last_purchase: {older_than_days: 11}", True),
    ("last_purchase: {older_than_days: 12}", False),
    ("last_purchase: {gte: 2026-05-20}", True), ("last_purchase: {lt: 2026-05-20}", False),
    ("b2b: false", True), ("b2b: true", False),
    ("age: {exists: false}", True), ("age: {exists: true}", False),
    ("sector: {exists: true}", True), ("age: {gte: 18}", False), ("age: {ne: 18}", True),
    ("persona: {exists: false}", True),
    ("stage: repeat", True), ("location.country: FR", True),
    ("fields.plan: gold", True),
    ("{sector: roofing, purchases: {gte: 5}}", False),
    ("any: [{sector: plumbing}, {purchases: {gte: 3}}]", True),
    ("all: [{sector: roofing}, {purchases: {gte: 4}}]", False),
    ("not: {sector: plumbing}", True),
    ("{purchases: {gte: 1, lte: 5}}", True),
]


@pytest.mark.parametrize(("text", "expected"), MATCH_CASES, ids=[c[0] for c in MATCH_CASES])
def test_operator(text: str, expected: bool) -> None:
    rule, problems = _compile(text)
    assert problems == [] and rule is not None
    assert rule.matches(VALUES, AS_OF) is expected


ERROR_CASES = [
    ("sectr: roofing", "unknown-rule-field", (1, 1), "did you mean 'sector'?"),
    ("purchases: {gteq: 1}", "unknown-rule-operator", (1, 13), "did you mean 'gte'?"),
    ("purchases: {gte: many}", "wrong-type", (1, 18), "expected a whole number"),
    ("purchases: {gte: '3'}", "wrong-type", (1, 18), "remove the quotes"),
    ("sector: {gt: 3}", "invalid-rule", (1, 10), "'gt' compares numbers or dates"),
    ("purchases: {within_days: 3}", "invalid-rule", (1, 13), "'within_days' applies to dates"),
    ("name: {matches: '(a'}", "invalid-rule", (1, 17), "invalid regular expression"),
    ("stage: custmer", "invalid-value", (1, 8), "did you mean 'customer'?"),
    ("sector: {in: roofing}", "invalid-rule", (1, 14), "'in' expects a list"),
    ("any: {sector: a}", "invalid-rule", (1, 6), "expects a non-empty list of rules"),
    ("last_purchase: {gte: 2026-02-30}", "invalid-date", (1, 22), "not a real date"),
    ("b2b: yes", "yaml-implicit-type", (1, 6), "write b2b: true"),
    ("- sector: a", "invalid-rule", (1, 1), "expected a rule"),
]


@pytest.mark.parametrize(("text", "code", "where", "message"), ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
def test_rule_errors(text: str, code: str, where: tuple[int, int], message: str) -> None:
    rule, problems = _compile(text)
    assert rule is None
    assert [(p.code, (p.location.line, p.location.col)) for p in problems] == [(code, where)]
    assert message in problems[0].message


def test_declared_custom_fields_are_typed(tmp_path: Any) -> None:
    config = Config(root=tmp_path, custom_fields={"seats": {"type": "integer"}})
    rule, problems = _compile("fields.seats: {gte: 10}", config)
    assert rule is not None and rule.matches({"fields.seats": 12}, AS_OF)
    _, problems = _compile("fields.plan: gold", config)
    assert [p.code for p in problems] == ["unknown-rule-field"]


def test_no_eval_anywhere() -> None:
    rule, _ = _compile("name: {matches: '__import__'}")
    assert rule is not None and not rule.matches(VALUES, AS_OF)
    # The YAML of a rule is composed, never constructed: tags cannot build objects.
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load("!!python/object/apply:os.system ['true']")
