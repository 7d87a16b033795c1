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


def test_export_json_csv_sqlite(tmp_path: object) -> None:
    import csv
    import sqlite3
    from pathlib import Path

    from .conftest import REPO

    out = Path(str(tmp_path))
    assert run("export", "--format", "json", "-o", str(out / "p.json"), root=REPO).exit_code == 0
    doc = json.loads((out / "p.json").read_text())
    assert set(doc) == {"generator", "as_of", "contacts", "organizations", "interactions",
                        "segments", "personas"}
    assert len(doc["contacts"]) == 48 and len(doc["interactions"]) == 312
    marcus = next(c for c in doc["contacts"] if c["id"] == "marcus-bell")
    assert marcus["stage"] == "repeat" and marcus["relationship"] == "client"
    assert marcus["rfm_segment"] == "champions" and "clients" in marcus["segments"]

    assert run("export", "--format", "csv", "-o", str(out / "csv"), root=REPO).exit_code == 0
    with (out / "csv/organizations.csv").open() as f:
        orgs = list(csv.DictReader(f))
    assert {o["id"] for o in orgs} >= {"lakeshore-properties", "great-lakes-logistics"}

    assert run("export", "--format", "sqlite", "-o", str(out / "p.db"), root=REPO).exit_code == 0
    db = sqlite3.connect(out / "p.db")
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("SELECT count(*) FROM contacts WHERE stage = 'lapsed'").fetchone() == (8,)
    row = db.execute("SELECT c.name, o.name FROM contacts c JOIN organizations o "
                     "ON o.id = c.organization WHERE c.id = 'marcus-bell'").fetchone()
    assert row == ("Marcus Bell", "Lakeshore Properties")
    assert db.execute("SELECT typeof(revenue), typeof(purchases) FROM contacts "
                      "WHERE id = 'marcus-bell'").fetchone() == ("real", "integer")
    members = db.execute("SELECT count(*) FROM contact_segments "
                         "WHERE segment = 'illinois-homeowners'").fetchone()
    assert members == (9,)
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"contacts_stage", "interactions_date"} <= indexes
    db.close()


def test_export_leaves_out_hidden_fields(scratch_portfolio: ScratchFactory,
                                         tmp_path: object) -> None:
    from pathlib import Path

    root = scratch_portfolio({"custsite.yaml": "privacy: {hide: [email, phone]}\n",
                              "records/customers/ann.yaml": "name: Ann\nemail: ann@example.com\n"
                                                            "phone: \"+33 6 12 34 56 78\"\n"})
    for fmt, name in (("json", "p.json"), ("sqlite", "p.db"), ("csv", "csv")):
        target = Path(str(tmp_path)) / name
        assert run("export", "--format", fmt, "-o", str(target), root=root).exit_code == 0
        files = [target] if target.is_file() else list(target.iterdir())
        for f in files:
            data = f.read_bytes()
            assert b"ann@example.com" not in data and b"612345678" not in data, f


def test_sarif_is_accepted_by_the_official_schema(scratch_portfolio: ScratchFactory) -> None:
    import os
    from pathlib import Path

    import jsonschema
    import pytest

    from .conftest import REPO

    schema_file = (REPO / "tests/browser/node_modules/@microsoft/jest-sarif/lib/schemas"
                   / "sarif-2.1.0-rtm.5.json")
    if not schema_file.exists():
        if os.environ.get("CI"):
            pytest.fail("the SARIF schema is not installed (npm ci --prefix tests/browser)")
        pytest.skip("the SARIF schema is not installed (npm ci --prefix tests/browser)")
    schema = json.loads(schema_file.read_text())
    doc = json.loads(run("validate", "--format", "sarif",
                         root=scratch_portfolio(BROKEN)).output)
    jsonschema.Draft4Validator(schema).validate(doc)
    clean = json.loads(run("validate", "--format", "sarif", root=Path(REPO)).output)
    jsonschema.Draft4Validator(schema).validate(clean)
