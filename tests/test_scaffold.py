"""`custsite new` and the pre-commit hook definition."""

from __future__ import annotations

import yaml

from custsite.scaffold import slug

from .conftest import REPO, ScratchFactory, run

BASE: dict[str, str | bytes] = {
    "records/customers/jane-doe.yaml": "name: Jane Doe\n",
    "records/organizations/acme.yaml": "name: ACME\n",
}


def test_slugs() -> None:
    assert slug("Zoë O'Neill") == "zoe-o-neill"
    assert slug("  ACME, Inc.  ") == "acme-inc"
    assert slug("李雷") == "record"


def test_new_records_are_valid_and_get_free_ids(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(BASE)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    outputs = [
        run("new", "customer", "Jane Doe", "--organization", "acme", "--email",
            "jane@example.com", root=root),
        run("new", "customer", "NO Limits", "--company", root=root),
        run("new", "organization", "Globex Corporation", root=root),
        run("new", "interaction", "jane-doe", "--kind", "purchase", "--summary", "First order",
            "--date", "2026-05-01", root=root),
        run("new", "persona", "Retail Rita", root=root),
    ]
    assert [r.exit_code for r in outputs] == [0] * 5
    assert [r.output.strip() for r in outputs] == [
        "records/customers/jane-doe-2.yaml", "records/customers/no-limits.yaml",
        "records/organizations/globex-corporation.yaml",
        "records/interactions/2026/2026-05-01-jane-doe-purchase.md", "personas/retail-rita.md"]
    company = yaml.safe_load((root / "records/customers/no-limits.yaml").read_text())
    assert company["name"] == "NO Limits" and company["kind"] == "company"
    for path, data in before.items():  # new only creates files
        assert path.read_bytes() == data
    result = run("validate", "--as-of", "2026-11-24", root=root)
    assert result.exit_code == 0, result.output


def test_new_refuses_bad_input(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(BASE)
    assert run("new", "interaction", "Jane Doe", root=root).exit_code == 1
    assert run("new", "interaction", "jane-doe", "--kind", "party", root=root).exit_code == 2


def test_pre_commit_hook() -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "custsite-validate"
    assert hook["entry"] == "custsite validate"
    assert hook["pass_filenames"] is False and hook["language"] == "python"


def test_init_writes_a_valid_portfolio_and_never_overwrites(tmp_path: object) -> None:
    from pathlib import Path

    target = Path(str(tmp_path)) / "crm"
    result = run("init", str(target))
    assert result.exit_code == 0, result.output
    workflow = yaml.safe_load((target / ".github/workflows/custsite.yml").read_text())
    assert set(workflow["jobs"]) == {"validate", "site"}
    steps = [s.get("run", "") for s in workflow["jobs"]["validate"]["steps"]]
    assert "custsite validate" in steps
    assert any(step.startswith("custsite diff") for step in steps)
    config = yaml.safe_load((target / ".pre-commit-config.yaml").read_text())
    assert config["repos"][0]["hooks"][0]["id"] == "custsite-validate"
    assert "/site/" in (target / ".gitignore").read_text()
    first = (target / "records/customers/jane-doe.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../schemas/customer.schema.json"
    assert (target / "schemas/customer.schema.json").is_file()
    assert run("validate", "--as-of", "2026-11-24", root=target).exit_code == 0
    assert run("build", "--as-of", "2026-11-24", root=target).exit_code == 0
    (target / "custsite.yaml").write_text("title: Mine\n")
    again = run("init", str(target))
    assert again.exit_code == 1 and "refusing to overwrite" in again.output
    assert (target / "custsite.yaml").read_text() == "title: Mine\n"
