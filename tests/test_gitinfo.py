"""Last changes from git: present in a repository, absent without one or in a shallow clone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from custsite.gitinfo import last_changes

from .conftest import ScratchFactory, run

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
FILES: dict[str, str | bytes] = {
    "custsite.yaml": "as_of: 2026-06-01\n",
    "records/customers/ann.yaml": "name: Ann Lee\n",
    "records/customers/bob.yaml": "name: Bob Stone\n",
}
ENV = {**os.environ, "GIT_AUTHOR_NAME": "Dana Sales", "GIT_AUTHOR_EMAIL": "dana@example.com",
       "GIT_COMMITTER_NAME": "Dana Sales", "GIT_COMMITTER_EMAIL": "dana@example.com"}


def git(root: Path, *args: str, date: str = "2026-03-01T10:00:00+01:00") -> None:
    env = {**ENV, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, env=env)


def repo(scratch_portfolio: ScratchFactory) -> Path:
    root = scratch_portfolio(FILES)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    (root / "records/customers/bob.yaml").write_text("name: Bob Stone\nowner: Sam\n")
    git(root, "commit", "-q", "-am", "bob", date="2026-04-02T09:30:00+02:00")
    return root


def test_last_changes(scratch_portfolio: ScratchFactory) -> None:
    root = repo(scratch_portfolio)
    changes = last_changes(root, ["records/customers"])
    assert {k: (v.date, v.author) for k, v in changes.items()} == {
        "records/customers/ann.yaml": ("2026-03-01T10:00:00+01:00", "Dana Sales"),
        "records/customers/bob.yaml": ("2026-04-02T09:30:00+02:00", "Dana Sales"),
    }


def test_pages_and_exports_show_the_last_change(scratch_portfolio: ScratchFactory) -> None:
    root = repo(scratch_portfolio)
    assert run("build", root=root).exit_code == 0
    page = (root / "site/customers/bob/index.html").read_text()
    assert 'last changed <time datetime="2026-04-02T09:30:00+02:00">2026-04-02</time> by ' \
           "Dana Sales" in page
    assert run("export", "--format", "json", "-o", str(root / "x.json"), root=root).exit_code == 0
    contacts = {c["id"]: c for c in json.loads((root / "x.json").read_text())["contacts"]}
    assert contacts["ann"]["last_changed"] == "2026-03-01T10:00:00+01:00"
    assert contacts["ann"]["last_changed_by"] == "Dana Sales"


def test_absent_without_a_repository_or_in_a_shallow_clone(
        scratch_portfolio: ScratchFactory, tmp_path_factory: pytest.TempPathFactory) -> None:
    root = repo(scratch_portfolio)
    plain = tmp_path_factory.mktemp("plain") / "portfolio"
    shutil.copytree(root, plain, ignore=shutil.ignore_patterns(".git"))
    assert last_changes(plain, ["records/customers"]) == {}
    assert run("build", root=plain).exit_code == 0
    assert "last changed" not in (plain / "site/customers/bob/index.html").read_text()
    shallow = tmp_path_factory.mktemp("shallow") / "portfolio"
    subprocess.run(["git", "clone", "-q", "--depth", "1", root.as_uri(), str(shallow)],
                   check=True, capture_output=True, env=ENV)
    assert last_changes(shallow, ["records/customers"]) == {}


def test_diff_between_revisions(scratch_portfolio: ScratchFactory) -> None:
    root = repo(scratch_portfolio)
    (root / "records/interactions").mkdir()
    (root / "records/interactions/x.yaml").write_text(
        "- {customer: ann, date: 2026-05-01, kind: purchase, amount: 300}\n")
    (root / "records/customers/cleo.yaml").write_text("name: Cleo Ray\n")
    (root / "records/customers/bob.yaml").unlink()
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "sale")
    (root / "records/customers/ann.yaml").write_text("name: broken\nemial: x\n")  # work tree
    result = run("diff", "HEAD~1", root=root)
    assert result.exit_code == 0, result.output
    md = result.output
    assert "### custsite: `HEAD~1` → `HEAD` (as of 2026-06-01)" in md
    assert "**Contacts:** 2 → 2 (1 added, 1 removed)" in md
    assert "**Revenue:** 0 EUR → 300 EUR (+300 EUR)" in md
    assert "- Cleo Ray (`cleo`): lead" in md
    assert "- Bob Stone (`bob`), was lead" in md
    assert "- **lead → customer** (1): Ann Lee (`ann`)" in md
    doc = json.loads(run("diff", "HEAD~1", "HEAD", "--format", "json", root=root).output)
    assert doc["moves"] == {"lead → customer": ["ann"]}
    assert doc["segments"]["customer"]["joined"] == ["ann"]
    assert doc["revenue"]["EUR"] == {"base": 0, "head": 300, "change": 300}


def test_diff_says_when_a_revision_is_missing(scratch_portfolio: ScratchFactory,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    root = repo(scratch_portfolio)
    shallow = tmp_path_factory.mktemp("shallow") / "portfolio"
    subprocess.run(["git", "clone", "-q", "--depth", "1", root.as_uri(), str(shallow)],
                   check=True, capture_output=True, env=ENV)
    result = run("diff", "HEAD~1", root=shallow)
    assert result.exit_code == 1
    assert "revision 'HEAD~1' is not in this repository" in result.output
    assert "shallow" in result.output and "Traceback" not in result.output
    deeper = tmp_path_factory.mktemp("deeper") / "portfolio"  # both revisions present
    subprocess.run(["git", "clone", "-q", "--depth", "2", root.as_uri(), str(deeper)],
                   check=True, capture_output=True, env=ENV)
    assert run("diff", "HEAD~1", root=deeper).exit_code == 0
    plain = tmp_path_factory.mktemp("plain")
    (plain / "records/customers").mkdir(parents=True)
    result = run("diff", "HEAD~1", root=plain)
    assert result.exit_code == 1 and "not inside a git repository" in result.output


def test_validate_changed_since(scratch_portfolio: ScratchFactory) -> None:
    root = repo(scratch_portfolio)
    (root / "records/customers/old.yaml").write_text("name: Old\nemial: x\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "old problem")
    (root / "records/customers/bob.yaml").write_text("name: Bob Stone\nreferred_by: nobody\n")
    (root / "records/customers/new.yaml").write_text("name: New\nkind: persn\n")  # untracked
    everything = run("validate", root=root)
    assert "old.yaml" in everything.output
    result = run("validate", "--changed-since", "HEAD", root=root)
    assert result.exit_code == 1
    assert "old.yaml" not in result.output
    assert "records/customers/bob.yaml:2:14: error: no customer with id 'nobody'" in result.output
    assert "records/customers/new.yaml:2:7: error:" in result.output
    missing = run("validate", "--changed-since", "no-such-rev", root=root)
    assert missing.exit_code == 1 and "revision 'no-such-rev' is not in" in missing.output


def test_site_csv_rows_match_its_header_when_git_knows_only_some_files(
        scratch_portfolio: ScratchFactory) -> None:
    # 'aaron' sorts first and was never committed: its row still has git's (empty) columns.
    root = repo(scratch_portfolio)
    (root / "records/customers/aaron.yaml").write_text("name: Aaron New\n")
    assert run("build", root=root).exit_code == 0
    lines = (root / "site/data/customers.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[-2:] == ["last_changed", "last_changed_by"]
    assert lines[1].startswith("aaron,") and lines[1].endswith(",,")
    bob = next(line for line in lines if line.startswith("bob,"))
    assert bob.endswith(",2026-04-02T09:30:00+02:00,Dana Sales")


def test_a_new_commit_builds_again(scratch_portfolio: ScratchFactory) -> None:
    root = repo(scratch_portfolio)
    assert run("build", root=root).exit_code == 0
    assert "nothing changed" in run("build", root=root).output
    # A commit of the same bytes still moves "last changed": the pages must follow.
    (root / "records/customers/ann.yaml").write_text("name: Ann Lee\nowner: Sam\n")
    git(root, "commit", "-q", "-am", "ann", date="2026-05-05T08:00:00+02:00")
    result = run("build", root=root)
    assert "built " in result.output
    assert "2026-05-05" in (root / "site/customers/ann/index.html").read_text()
    git(root, "commit", "-q", "--allow-empty", "-m", "nothing", date="2026-05-06T08:00:00Z")
    assert "built " in run("build", root=root).output
