"""A corpus of nasty files (tests/fixtures/nasty/): each gets a clear, located message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import ScratchFactory, run

NASTY = Path(__file__).parent / "fixtures" / "nasty"
EXPECTED = {
    "empty.yaml": ("missing-field", 1),
    "list.yaml": ("wrong-type", 1),
    "tabs.yaml": ("yaml-syntax", 2),
    "not-utf8.yaml": ("file-unreadable", 1),
    "bom-crlf.yaml": (None, 0),
    "alias-bomb.yaml": ("yaml-alias", None),
    "deep.yaml": ("yaml-syntax", 1),
    "con.yaml": ("invalid-id", 1),
    "Ann.yaml": ("invalid-id", 1),
    "nul-byte.yaml": ("file-unreadable", 1),
    ".hidden.yaml": ("hidden-file", 1),  # a warning: not read, and said so
}
WARNINGS = {".hidden.yaml"}


def test_every_nasty_file_has_an_expectation() -> None:
    assert sorted(p.name for p in NASTY.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_nasty_file(name: str, scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({"records/customers/ann.yaml": "name: Ann\n"})
    shutil.copy(NASTY / name, root / "records/customers" / name)
    result = run("validate", "--format", "json", root=root)
    assert "Traceback" not in result.output
    code, line = EXPECTED[name]
    import json

    problems = [p for p in json.loads(result.output)["problems"]
                if p["path"] == f"records/customers/{name}"]
    if code is None:
        assert problems == [] and result.exit_code == 0
        return
    assert result.exit_code == (0 if name in WARNINGS else 1)
    assert problems[0]["code"] == code, problems
    if line is not None:
        assert problems[0]["line"] == line, problems


def test_hidden_records_are_reported_not_read(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({"records/customers/ann.yaml": "name: Ann\n",
                              "records/customers/.bob.yaml": "name: Bob\n",
                              "records/interactions/.old/x.yaml": "customer: bob\n",
                              "records/customers/.#ann.yaml": "emacs lock\n"})
    result = run("validate", root=root)
    assert result.exit_code == 0
    assert "records/customers/.bob.yaml:1:1: warning: '.bob.yaml' starts with a dot: hidden " \
           "files are not read, so this record is not in the portfolio; rename it to " \
           "'bob.yaml' or delete it [hidden-file]" in result.output
    assert ".#ann" not in result.output and ".old" not in result.output
    assert run("validate", "--strict", root=root).exit_code == 1


def test_huge_file_is_refused_without_reading_it(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({"records/customers/ann.yaml": "name: Ann\n"})
    big = root / "records/customers/big.yaml"
    with big.open("wb") as f:  # 50 MB, sparse: the test itself stays light
        f.truncate(50 * 1024 * 1024)
    result = run("validate", root=root)
    assert result.exit_code == 1
    assert "records/customers/big.yaml:1:1: error: file is 52,428,800 bytes" in result.output


@pytest.mark.parametrize(("amount", "code"), [(".nan", "wrong-type"), ("1e400", "invalid-value"),
                                              ("-5", "invalid-value"), ("1_000", "wrong-type")])
def test_hostile_amounts(amount: str, code: str, scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({
        "records/customers/ann.yaml": "name: Ann\n",
        "records/interactions/i.yaml": f"customer: ann\ndate: 2026-01-01\nkind: purchase\n"
                                       f"amount: {amount}\n"})
    result = run("validate", "--as-of", "2026-06-01", root=root)
    assert result.exit_code == 1
    assert "records/interactions/i.yaml:4:9: error: " in result.output
    assert f"[{code}]" in result.output


def test_links_out_of_the_portfolio_are_not_followed(scratch_portfolio: ScratchFactory,
                                                     tmp_path_factory: pytest.TempPathFactory
                                                     ) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.yaml"
    outside.write_text("name: Secret Person\nemail: secret@example.com\n")
    root = scratch_portfolio({"records/customers/ann.yaml": "name: Ann\n"})
    (root / "records/customers/leak.yaml").symlink_to(outside)
    (root / "records/customers/alias.yaml").symlink_to(root / "records/customers/ann.yaml")
    result = run("validate", root=root)
    assert "records/customers/leak.yaml: error: this is a link to a place outside the " \
           "portfolio; it is not read [unsafe-path]" in result.output
    build = run("build", root=root)
    assert build.exit_code == 1
    assert not (root / "site").exists()


@pytest.mark.parametrize("where", ["interaction", "organization"])
def test_an_id_with_a_final_newline_is_refused(where: str,
                                               scratch_portfolio: ScratchFactory) -> None:
    # A double-quoted "\n" ends the text with a newline, which a pattern ending in `$` lets in.
    files = {"records/customers/ann.yaml": "name: Ann\n",
             "records/organizations/acme.yaml": "name: Acme\n",
             "records/interactions/i.yaml": "customer: ann\ndate: 2026-01-01\nkind: call\n"}
    if where == "interaction":
        files["records/interactions/i.yaml"] = 'id: "call-one\\n"\n' \
                                               + files["records/interactions/i.yaml"]
    else:
        files["records/customers/ann.yaml"] = 'name: Ann\norganization: "acme\\n"\n'
    result = run("validate", "--as-of", "2026-06-01", root=scratch_portfolio(files))
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if "[invalid-id]" in x)
    assert line.endswith("error: expected an id (lowercase letters, digits, '-' and '_'), "
                         "found " + ("'call-one\\n'" if where == "interaction" else "'acme\\n'")
                         + " [invalid-id]")
