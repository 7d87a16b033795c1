"""Machine formats of `validate`: GitHub workflow annotations and SARIF 2.1.0."""

from __future__ import annotations

import json

from custsite.errors import RULES

from .conftest import ScratchFactory, run

BROKEN: dict[str, str | bytes] = {
    "records/customers/x.yaml": "name: X\nemial: a@b.co\nnotes: \"50%, done\"\n",
    "records/customers/a b.yaml": "name: Spaced\n",
    "records/customers/y.yaml": "name: Y\nstatus: customer\n",
}


def test_github_annotations_are_escaped(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(BROKEN)
    result = run("validate", "--format", "github", root=root)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "::error file=records/customers/x.yaml,line=2,col=1,title=unknown-field::unknown " \
           "field 'emial' for a customer (did you mean 'email'?) [unknown-field]" in lines
    assert any(line.startswith("::warning file=records/customers/y.yaml,line=2,col=9,"
                               "title=status-mismatch::") for line in lines)
    assert all(line.startswith("::") for line in lines)


def test_github_is_the_default_on_actions(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(BROKEN)
    result = run("validate", root=root, env={"GITHUB_ACTIONS": "true"})
    assert result.output.startswith("::error file=")
    assert run("validate", "--format", "text", root=root,
               env={"GITHUB_ACTIONS": "true"}).output.startswith("records/")


def test_github_escapes_property_and_data_characters() -> None:
    from custsite.errors import Location, problem
    from custsite.report import format_github

    p = problem(Location("a,b:c%.yaml", 3, 4), "invalid-value", "100% wrong\nsecond line")
    assert format_github([p]) == ("::error file=a%2Cb%3Ac%25.yaml,line=3,col=4,"
                                  "title=invalid-value::100%25 wrong%0Asecond line "
                                  "[invalid-value]")


def test_sarif(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(BROKEN)
    result = run("validate", "--format", "sarif", root=root)
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["version"] == "2.1.0"
    (run_,) = doc["runs"]
    rules = run_["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    assert all(r["shortDescription"]["text"] and r["fullDescription"]["text"] for r in rules)
    by_rule = {r["ruleId"]: r for r in run_["results"]}
    unknown = by_rule["unknown-field"]
    assert rules[unknown["ruleIndex"]]["id"] == "unknown-field"
    assert unknown["level"] == "error"
    location = unknown["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "records/customers/x.yaml",
                                             "uriBaseId": "SRCROOT"},
                        "region": {"startLine": 2, "startColumn": 1}}
    spaced = by_rule["invalid-id"]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert spaced["uri"] == "records/customers/a%20b.yaml"
    assert by_rule["status-mismatch"]["level"] == "warning"


def test_stats_text_and_json() -> None:
    from .conftest import REPO

    text = run("stats", root=REPO)
    assert text.exit_code == 0
    lines = text.output.splitlines()
    assert lines[0] == "Solstice Roofing & Solar — customers: 48 contacts, as of 2026-11-15"
    assert "suspect           6       42         88%" in lines
    assert "  Illinois homeowners                    9" in lines
    doc = json.loads(run("stats", "--format", "json", root=REPO).output)
    assert doc["stages"] == {"lead": 6, "suspect": 6, "prospect": 10, "customer": 6,
                             "repeat": 12, "lapsed": 8}
    assert doc["funnel"][1] == {"stage": "suspect", "count": 6, "reached": 42,
                                "conversion": 0.875}
    assert doc["segments"]["illinois-homeowners"]["size"] == 9


def test_stats_refuses_a_broken_portfolio(scratch_portfolio: ScratchFactory) -> None:
    result = run("stats", root=scratch_portfolio(BROKEN))
    assert result.exit_code == 1 and "[unknown-field]" in result.output
