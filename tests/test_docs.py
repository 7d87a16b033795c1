"""The README documents every rule code, command and option."""

from __future__ import annotations

import click

from custsite.cli import main
from custsite.errors import RULES

from .conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_rule_code_is_documented() -> None:
    for rule in RULES.values():
        row = f"| `{rule.code}` | {rule.severity.value} | {rule.summary} | {rule.rationale} |"
        assert row in README, rule.code


def test_every_command_and_option_is_documented() -> None:
    assert isinstance(main, click.Group)
    for name, command in main.commands.items():
        assert f"custsite {name}" in README, name
        for param in command.params:
            for opt in param.opts:
                assert opt in README, f"{name} {opt}"
    for param in main.params:
        for opt in param.opts:
            assert opt in README, opt
