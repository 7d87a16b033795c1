"""Finding the record files of a portfolio."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .errors import Location, Problem, problem

RECORD_SUFFIXES = (".yaml", ".yml", ".md")


@dataclass(frozen=True, order=True)
class SourceFile:
    kind: str  # customer, organization, interaction, persona
    rel: str  # path relative to the portfolio root, with forward slashes
    path: Path

    @property
    def stem(self) -> str:
        return self.path.stem


def _skipped(name: str) -> bool:
    """Hidden files, editors' swap and backup files."""
    return name.startswith((".", "#", "~")) or name.endswith(("~", ".swp", ".swx", ".tmp"))


def discover(config: Config, problems: list[Problem]) -> list[SourceFile]:
    """Every record file, sorted; links that leave the portfolio are reported, not followed.

    Walks with os.scandir: its entries know whether they are files or links without a
    system call each, which matters at 100,000 files.
    """
    root = config.root.resolve()
    found: list[SourceFile] = []
    dirs = [("customer", config.paths.customers, False),
            ("organization", config.paths.organizations, False),
            ("interaction", config.paths.interactions, True),
            ("persona", config.paths.personas, False)]
    for kind, rel_dir, recursive in dirs:
        base = config.root / rel_dir
        if not base.is_dir():
            if kind == "customer":
                problems.append(problem(
                    Location(rel_dir), "missing-file",
                    f"no '{rel_dir}' folder in {config.root}: is this a portfolio? Run "
                    "custsite in the portfolio's root folder, or pass -C DIR"))
            continue
        _walk(kind, base, rel_dir.strip("/"), recursive, root, found, problems)
    return sorted(found)


def _walk(kind: str, folder: Path, rel: str, recursive: bool, root: Path,
          found: list[SourceFile], problems: list[Problem]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if _skipped(entry.name):
            continue
        entry_rel = f"{rel}/{entry.name}"
        if entry.is_symlink() and not Path(entry.path).resolve().is_relative_to(root):
            problems.append(problem(Location(entry_rel), "unsafe-path",
                                    "this is a link to a place outside the portfolio; "
                                    "it is not read"))
            continue
        if entry.is_dir(follow_symlinks=False):  # linked folders are not walked: no loops
            if recursive:
                _walk(kind, Path(entry.path), entry_rel, recursive, root, found, problems)
        elif entry.name.endswith(RECORD_SUFFIXES) and entry.is_file():
            found.append(SourceFile(kind, entry_rel, Path(entry.path)))
