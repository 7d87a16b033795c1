"""The command line on the example portfolio and on broken scratch portfolios."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from custsite.errors import RULES

from .conftest import REPO, ScratchFactory, run

GOOD = {
    "records/customers/ann.md": """
        ---
        name: Ann Lee
        email: ann@example.com
        phone: "+33 6 12 34 56 78"
        ---
        Met at the **fair**. <script>alert('x')</script>
        [click](javascript:alert(1)) <img src=x onerror="alert(2)">
    """,
    "records/interactions/ann.yaml": """
        - customer: ann
          date: 2026-01-10
          kind: purchase
          amount: 120
          summary: First order
          notes: "<b onclick='steal()'>Thanks</b>"
    """,
}


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_version_and_module_entry_point() -> None:
    assert run("--version").output.strip() == "custsite, version 0.1.0"
    proc = subprocess.run([sys.executable, "-m", "custsite", "--help"], capture_output=True,
                          text=True, check=True)
    assert "validate" in proc.stdout and "build" in proc.stdout


def test_usage_errors_exit_2() -> None:
    assert run("validate", "--as-of", "yesterday").exit_code == 2
    assert run("build", "--frobnicate").exit_code == 2
    assert run("validate", "--format", "xml").exit_code == 2
    assert run("-C", "/no/such/folder", "validate").exit_code == 2


def test_validate_example_reports_its_warning() -> None:
    result = run("validate", root=REPO)
    assert result.exit_code == 0, result.output
    assert ("records/organizations/great-lakes-logistics.md:2:1: warning: 'Great Lakes "
            "Logistics' has open deals but no contact with role: decision-maker "
            "[no-decision-maker]") in result.output
    assert run("validate", "--strict", root=REPO).exit_code == 1


def test_validate_json(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({"records/customers/x.yaml": "name: X\nemial: a@b.co\n"})
    result = run("validate", "--format", "json", root=root)
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["errors"] == 1 and doc["warnings"] == 0
    assert doc["problems"] == [{
        "path": "records/customers/x.yaml", "line": 2, "column": 1, "severity": "error",
        "code": "unknown-field", "rule": RULES["unknown-field"].summary,
        "message": "unknown field 'emial' for a customer (did you mean 'email'?)"}]


def test_validate_text_shows_the_line_and_a_caret(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({"records/customers/x.yaml": "name: X\nphone: 0612345678\n",
                              "custsite.yaml": "default_region: FR\n"})
    result = run("validate", root=root)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == ("records/customers/x.yaml:2:8: error: '0612345678' is unquoted, so YAML "
                        "reads it as the number 612345678 by YAML 1.2 tools; quote it: "
                        "phone: \"0612345678\" [yaml-implicit-type]")
    assert lines[1] == "    phone: 0612345678"
    assert lines[2] == "           ^"
    assert lines[-1] == "1 error(s), 0 warning(s)"


NASTY = {
    "empty.yaml": "",
    "list.yaml": "- name: A\n",
    "scalar.yaml": "just text\n",
    "binary.yaml": b"\x00\x01\x02\xff",
    "tabs.yaml": "name:\tA\n\temail: x\n",
    "deep.yaml": "name: " + "[" * 5000 + "]" * 5000 + "\n",
    "bom-crlf.yaml": b"\xef\xbb\xbfname: Bom\r\nemail: bom@example.com\r\n",
    "nulls.md": "---\nname:\ntags: [~]\n---\n",
    "weird-types.yaml": "name: {a: 1}\nage: 1e3\ndo_not_contact: maybe\nlocation: [FR]\n",
}


@pytest.mark.parametrize("name", sorted(NASTY))
def test_never_a_traceback(name: str, scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({f"records/customers/{name}": NASTY[name]})
    for command in ("validate", "build"):
        result = run(command, root=root)
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.output
        assert "Traceback" not in result.output
        if name == "bom-crlf.yaml":
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code == 1
            assert re.search(rf"records/customers/{re.escape(name)}:\d+:\d+: error: ",
                             result.output), result.output


def test_build_writes_every_page(example_site: Path) -> None:
    customers = sorted(p.stem for p in (REPO / "records/customers").iterdir())
    for cid in customers:
        assert (example_site / "customers" / cid / "index.html").is_file()
    for sub in ("organizations", "personas"):
        for p in (REPO / "records" / sub if sub != "personas" else REPO / sub).glob("*.*"):
            if p.suffix in (".md", ".yaml"):
                assert (example_site / sub / p.stem / "index.html").is_file()
    for page in ("index.html", "customers/index.html", "segments/index.html",
                 "segments/illinois-homeowners/index.html", "segments/lapsed/index.html",
                 "404.html", "data/portfolio.json", "data/customers.csv",
                 "personas/homeowner-hannah/homeowner-hannah.svg"):
        assert (example_site / page).is_file(), page
    marcus = (example_site / "customers/marcus-bell/index.html").read_text()
    assert "Lakeshore Properties" in marcus and "decision-maker" in marcus
    assert "repeat customer since" in marcus
    assert "https://git.example.com/solstice/crm/edit/main/records/customers/marcus-bell.md" \
        in marcus


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def test_every_internal_link_resolves(example_site: Path) -> None:
    checked = 0
    for page in example_site.rglob("*.html"):
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.links:
            parts = urlsplit(link)
            if link.startswith("#"):
                continue
            if parts.scheme:
                assert parts.scheme in ("https", "mailto", "tel"), link
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.is_file(), f"{page.relative_to(example_site)} -> {link}"
            assert target.is_relative_to(example_site.resolve())
            checked += 1
    assert checked > 1000


def test_builds_are_byte_identical(tmp_path: Path, example_site: Path) -> None:
    out = tmp_path / "again"
    assert run("build", "-o", str(out), root=REPO).exit_code == 0
    assert tree_digest(out) == tree_digest(example_site)


def test_failed_build_leaves_previous_site(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(GOOD)
    assert run("build", "--as-of", "2026-06-01", root=root).exit_code == 0
    site = root / "site"
    before = tree_digest(site)
    (root / "records/customers/bad.yaml").write_text("name: Bad\nemail: nope\n")
    result = run("build", "--as-of", "2026-06-01", root=root)
    assert result.exit_code == 1
    assert "records/customers/bad.yaml:2:8: error:" in result.output
    assert tree_digest(site) == before
    # Nothing left over by the failed build (the cache folder is the first build's).
    assert sorted(p.name for p in root.iterdir() if p.name != ".custsite-cache") == \
        ["records", "site"]


def test_markdown_is_sanitised(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(GOOD)
    assert run("build", "--as-of", "2026-06-01", root=root).exit_code == 0
    html = (root / "site/customers/ann/index.html").read_text()
    assert "<strong>fair</strong>" in html and "<b>Thanks</b>" in html
    for bad in ("<script>alert", "javascript:", "onerror", "onclick"):
        assert bad not in html


def test_privacy_hide_reaches_no_file(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({**GOOD, "custsite.yaml": "privacy:\n  hide: [phone, email]\n"})
    assert run("build", "--as-of", "2026-06-01", root=root).exit_code == 0
    for f in (root / "site").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert b"612345678" not in data and b"ann@example.com" not in data, f


def _written(folder: Path) -> bytes:
    return b"".join(f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file())


def test_do_not_contact_details_reach_no_file(scratch_portfolio: ScratchFactory,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every byte of the site and of every export: the e-mail and phone of a contact who asked
    not to be contacted are nowhere, those of the others are there."""
    root = scratch_portfolio({
        **GOOD,
        "records/customers/zoe.yaml": "name: Zoe Quiet\nemail: zoe@example.com\n"
                                      "phone: \"+33 6 98 76 54 32\"\ndo_not_contact: true\n",
    })
    out = tmp_path_factory.mktemp("exports")
    assert run("build", "--as-of", "2026-06-01", root=root).exit_code == 0
    for fmt, target in (("json", out / "x.json"), ("csv", out / "csv"),
                        ("sqlite", out / "x.sqlite")):
        assert run("export", "--format", fmt, "-o", str(target), "--as-of", "2026-06-01",
                   root=root).exit_code == 0
    for folder in (root / "site", out):
        data = _written(folder)
        assert b"zoe@example.com" not in data and b"698765432" not in data, folder
        assert b"Zoe Quiet" in data and b"ann@example.com" in data, folder
    # A team that keeps them visible says so.
    (root / "custsite.yaml").write_text("privacy:\n  do_not_contact_hide: []\n")
    assert run("build", "--as-of", "2026-06-01", root=root).exit_code == 0
    assert b"zoe@example.com" in _written(root / "site")


def test_template_override(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({
        **GOOD,
        "templates/customer.html": "{% extends 'base.html' %}{% block title %}C{% endblock %}"
                                   "{% block content %}<p id=custom>{{ contact.customer.name }}"
                                   "</p>{% endblock %}",
    })
    assert run("build", "--as-of", "2026-06-01", root=root).exit_code == 0
    assert "<p id=custom>Ann Lee</p>" in (root / "site/customers/ann/index.html").read_text()


@pytest.mark.parametrize("row", [
    # The theme's form: a `row` macro, made once per page depth, called per contact.
    "{% from '_macros.html' import contact_link with context %}\n"
    "{% macro row(c) %}<tr class=mine><td>{{ contact_link(c) }} at {{ root }}</td></tr>"
    "{% endmacro %}\n{% if c is defined %}{{ row(c) }}{% endif %}\n",
    # An older override without one: rendered with `c` for each contact.
    "<tr class=mine><td><a href=\"{{ root }}customers/{{ c.id }}/index.html\">"
    "{{ c.customer.name }}</a> at {{ root }}</td></tr>",
], ids=["macro", "plain"])
def test_row_template_override(row: str, scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({**GOOD, "templates/_row_customers.html": row})
    assert run("build", "--as-of", "2026-06-01", root=root).exit_code == 0
    page = (root / "site/customers/index.html").read_text()
    assert '<tr class=mine><td><a href="../customers/ann/index.html">Ann Lee</a> at ../</td>' \
        '</tr>' in page


def test_template_error_is_reported(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({**GOOD, "templates/customer.html": "{{ contact.nope }}"})
    result = run("build", "--as-of", "2026-06-01", root=root)
    assert result.exit_code == 1
    assert "templates/customer.html:1:1: error: in template customer.html: " in result.output
    assert "[template-error]" in result.output
    assert not (root / "site").exists()


def test_refuses_to_replace_a_foreign_folder(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({**GOOD, "notes/keep.txt": "mine"})
    result = run("build", "-o", str(root / "notes"), root=root)
    assert result.exit_code == 1 and "was not made by custsite" in result.output
    assert (root / "notes/keep.txt").read_text() == "mine"
    result = run("build", "-o", str(root), root=root)
    assert result.exit_code == 1


def test_source_date_epoch(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(GOOD)
    result = run("build", root=root, env={"SOURCE_DATE_EPOCH": "1780000000"})
    assert result.exit_code == 0, result.output
    assert "(as of 2026-05-28)" in result.output


def test_wheel_ships_the_theme(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {proc.stderr[-200:]}")
    import zipfile

    (wheel,) = tmp_path.glob("custsite-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (REPO / "src/custsite/templates").iterdir():
        assert f"custsite/templates/{template.name}" in names
    assert "custsite/static/style.css" in names


def test_csv_cells_cannot_run_formulas(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({**GOOD, "records/customers/eve.yaml":
                              "name: \"=HYPERLINK('http://evil.example', 'x')\"\n"
                              "phone: \"+33 6 12 34 56 79\"\ntags: ['@SUM(A1)']\n"})
    assert run("build", "--as-of", "2026-06-01", root=root).exit_code == 0
    csv_text = (root / "site/data/customers.csv").read_text()
    assert "\n\"'=HYPERLINK(" in csv_text or "\n'=HYPERLINK" in csv_text or \
        ",\"'=HYPERLINK(" in csv_text
    assert "'@SUM(A1)" in csv_text
    assert ",+33612345679," in csv_text


def test_template_syntax_error_is_located(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({**GOOD, "templates/_footer.html": "<p>\n{% if %}\n</p>\n"})
    result = run("build", "--as-of", "2026-06-01", root=root)
    assert result.exit_code == 1
    assert "templates/_footer.html:2:1: error: in template _footer.html: " in result.output


def test_only_contacts_with_something_hidden_are_copied_to_be_published(
        scratch_portfolio: ScratchFactory) -> None:
    """Publishing leaves out what a contact hides on a copy of it; a contact with nothing
    hidden is published as the very same object."""
    from custsite.build import check
    from custsite.privacy import publish

    root = scratch_portfolio({
        **GOOD,
        "records/customers/zoe.yaml": "name: Zoe Quiet\nemail: zoe@example.com\n"
                                      "do_not_contact: true\n",
    })
    derived = check(root).derived
    public = publish(derived)
    assert public.contacts["ann"] is derived.contacts["ann"]
    assert public.contacts["zoe"] is not derived.contacts["zoe"]
    assert public.contacts["zoe"].customer.email is None
    assert derived.contacts["zoe"].customer.email == "zoe@example.com"
    assert public.portfolio.customers["zoe"] is public.contacts["zoe"].customer
