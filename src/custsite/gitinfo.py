"""The only module that runs `git`: when each record file last changed, and by whom.

One `git log` pass over the portfolio. Without git, outside a repository, or in a shallow
clone (whose oldest commit would claim every file) the answer is simply empty.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .errors import CustsiteError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    date: str  # ISO 8601 with the author's offset
    author: str
    commit: str


def _git(root: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        proc = subprocess.run([git, "-C", str(root), *args], capture_output=True, text=True,
                              timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("git failed: %s", exc)
        return None
    return proc.stdout if proc.returncode == 0 else None


def last_changes(root: Path, folders: list[str]) -> dict[str, Change]:
    """For each file under `folders` (relative to `root`), its last commit."""
    if _git(root, "rev-parse", "--is-shallow-repository") != "false\n":
        return {}
    out = _git(root, "-c", "core.quotepath=off", "log", "--relative", "--no-renames", "--name-only",
               "--format=%x00%H%x09%aI%x09%an", "--", *folders)
    if not out:
        return {}
    changes: dict[str, Change] = {}
    for block in out.split("\x00")[1:]:
        header, _, names = block.partition("\n")
        parts = header.split("\t")
        if len(parts) != 3:
            continue
        commit, date, author = parts
        for name in names.splitlines():
            if name and name not in changes:  # newest first: the first mention is the last
                changes[name] = Change(date, author, commit)
    return changes


def history_state(root: Path) -> str:
    """What git's answers depend on: the commit checked out, and whether the clone is
    shallow; empty without git or outside a repository."""
    return "".join(_git(root, "rev-parse", "HEAD", "--is-shallow-repository") or "")


def export_revision(root: Path, rev: str, dest: Path) -> None:
    """Write the portfolio folder `root` as it was at git revision `rev` into `dest`."""
    if _git(root, "rev-parse", "--is-inside-work-tree") != "true\n":
        raise CustsiteError(f"{root} is not inside a git repository")
    if _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}") is None:
        shallow = _git(root, "rev-parse", "--is-shallow-repository") == "true\n"
        hint = (" This clone is shallow: fetch more history (in GitHub Actions, "
                "actions/checkout with fetch-depth: 0)." if shallow else "")
        raise CustsiteError(f"revision '{rev}' is not in this repository.{hint}")
    prefix = (_git(root, "rev-parse", "--show-prefix") or "").strip()
    git = shutil.which("git")
    assert git is not None  # checked by _git above
    archive = subprocess.run([git, "-C", str(root), "archive", "--format=tar", f"{rev}:{prefix}"],
                             capture_output=True, check=False, timeout=300)
    if archive.returncode != 0:
        raise CustsiteError(f"cannot read revision '{rev}': "
                            f"{archive.stderr.decode(errors='replace').strip()}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")  # "data": no links out, no absolute paths


def changed_files(root: Path, rev: str) -> set[str]:
    """Files (relative to `root`) changed since `rev`: committed, staged, modified or new."""
    if _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}") is None:
        raise CustsiteError(f"revision '{rev}' is not in this repository (or this is not a "
                            "git repository); in a shallow CI checkout, fetch more history")
    changed = _git(root, "-c", "core.quotepath=off", "diff", "--name-only", "--relative", rev)
    new = _git(root, "-c", "core.quotepath=off", "ls-files", "--others", "--exclude-standard")
    return {line for text in (changed or "", new or "") for line in text.splitlines() if line}
