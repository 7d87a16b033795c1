"""Finding the record files of a portfolio."""

from __future__ import annotations

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
    """Every record file, sorted; symlinks that leave the portfolio are reported, not followed."""
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
        candidates = base.rglob("*") if recursive else base.iterdir()
        for path in candidates:
            rel_parts = path.relative_to(config.root).parts
            if any(_skipped(part) for part in rel_parts):
                continue
            if path.suffix not in RECORD_SUFFIXES or not path.is_file():
                continue
            rel = "/".join(rel_parts)
            if not path.resolve().is_relative_to(root):
                problems.append(problem(Location(rel), "unsafe-path",
                                        "this file is a link to a place outside the "
                                        "portfolio; it is not read"))
                continue
            found.append(SourceFile(kind, rel, path))
    return sorted(found)
