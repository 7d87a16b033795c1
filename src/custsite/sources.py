"""Finding the record files of a portfolio."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter
from pathlib import Path

from .config import Config
from .errors import Location, Problem, problem

RECORD_SUFFIXES = (".yaml", ".yml", ".md")


@dataclass(frozen=True)
class SourceFile:
    kind: str  # customer, organization, interaction, persona
    rel: str  # path relative to the portfolio root, with forward slashes
    file: str  # the path to open (os.fspath of `path`)

    @cached_property
    def path(self) -> Path:
        """Made only for the files read: making 100,000 Paths was most of the walk."""
        return Path(self.file)

    @cached_property
    def stem(self) -> str:
        return os.path.splitext(self.rel.rsplit("/", 1)[-1])[0]  # Path.stem's way

    # Sort key: by kind, then path (a key made in C: generated comparisons, or a method, are
    # slower for 100,000 files).
    order = staticmethod(attrgetter("kind", "rel"))


_NAME = attrgetter("name")


def _skipped(name: str) -> bool:
    """Hidden files, editors' swap and backup files."""
    return name.startswith((".", "#", "~")) or name.endswith(("~", ".swp", ".swx", ".tmp"))


def ignored(name: str) -> bool:
    """Names the watcher and the walk pass over: editors' files, but not hidden records,
    which are reported."""
    return _skipped(name) and not _hidden_record(name)


def _hidden_record(name: str) -> bool:
    """A record file named as a hidden one (`.ann.yaml`): not read, but reported. Emacs' lock
    links (`.#ann.yaml`) are editors' files like the others."""
    return name.startswith(".") and not name.startswith(".#") and \
        name.endswith(RECORD_SUFFIXES)


def _hidden_problem(rel: str) -> Problem:
    name = rel.rsplit("/", 1)[-1]
    return problem(Location(rel, 1, 1), "hidden-file",
                   f"'{name}' starts with a dot: hidden files are not read, so this record is "
                   f"not in the portfolio; rename it to '{name.lstrip('.')}' or delete it")


def _folders(config: Config) -> list[tuple[str, str, bool]]:
    """(kind, folder relative to the root, walked recursively) of each kind of record."""
    p = config.paths
    return [("customer", p.customers.strip("/"), False),
            ("organization", p.organizations.strip("/"), False),
            ("interaction", p.interactions.strip("/"), True),
            ("persona", p.personas.strip("/"), False)]


def discover(config: Config, problems: list[Problem]) -> list[SourceFile]:
    """Every record file, sorted; links that leave the portfolio are reported, not followed.

    Walks with os.scandir: its entries know whether they are files or links without a
    system call each, which matters at 100,000 files.
    """
    root = config.root.resolve()
    found: list[SourceFile] = []
    for kind, rel_dir, recursive in _folders(config):
        base = config.root / rel_dir
        if not base.is_dir():
            if kind == "customer":
                problems.append(problem(
                    Location(rel_dir), "missing-file",
                    f"no '{rel_dir}' folder in {config.root}: is this a portfolio? Run "
                    "custsite in the portfolio's root folder, or pass -C DIR"))
            continue
        _walk(kind, base, rel_dir, recursive, root, found, problems)
    return sorted(found, key=SourceFile.order)


@dataclass
class Sources:
    """The record files found, kept by the dev server between builds so that a save names
    the few paths to look at again instead of a walk over 100,000 files."""

    files: list[SourceFile]
    problems: list[Problem]


def rediscover(config: Config, known: Sources, changed: list[str]) -> Sources | None:
    """`known` updated for the paths (relative to the root) that were created, modified or
    deleted; None when a changed path is a record folder itself, or one of its parents, and
    only a whole walk can tell."""
    folders = _folders(config)
    root = config.root.resolve()
    by_rel = {s.rel: s for s in known.files}
    problems = list(known.problems)
    for rel in changed:
        homes = [f for f in folders if rel.startswith(f[1] + "/")]
        if any(f[1] == rel or f[1].startswith(rel + "/") for f in folders) or len(homes) > 1:
            return None
        inside = rel + "/"
        removed = {k: by_rel.pop(k) for k in [k for k in by_rel
                                              if k == rel or k.startswith(inside)]}
        problems = [p for p in problems
                    if p.location.path != rel and not p.location.path.startswith(inside)]
        if not homes:
            continue
        kind, folder, recursive = homes[0]
        found: list[SourceFile] = []
        _look_at(kind, config.root, folder, rel, recursive, root, found, problems)
        for s in found:  # the same file as before stays the same object
            by_rel[s.rel] = removed[s.rel] if removed.get(s.rel) == s else s
    files = sorted(by_rel.values(), key=SourceFile.order)
    same = len(files) == len(known.files) and all(
        a is b for a, b in zip(files, known.files, strict=True))
    return Sources(known.files if same else files, problems)


def _look_at(kind: str, top: Path, folder: str, rel: str, recursive: bool, root: Path,
             found: list[SourceFile], problems: list[Problem]) -> None:
    """Find what `_walk` would have found at `rel`, inside the record folder `folder`."""
    names = rel[len(folder) + 1:].split("/")
    if any(_skipped(n) for n in names[:-1]) or (len(names) > 1 and not recursive):
        return
    for depth in range(1, len(names)):  # a linked folder is not walked, a missing one is gone
        parent = top / folder / "/".join(names[:depth])
        if parent.is_symlink() or not parent.is_dir():
            return
    path = top / rel
    if os.path.lexists(path):
        _consider(kind, path, rel, link=path.is_symlink(),
                  real_dir=path.is_dir() and not path.is_symlink(), file=path.is_file(),
                  recursive=recursive, root=root, found=found, problems=problems)


def _walk(kind: str, folder: str | Path, rel: str, recursive: bool, root: Path,
          found: list[SourceFile], problems: list[Problem]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=_NAME)
    except OSError:
        return
    inside = f"{rel}/"
    for entry in entries:
        name = entry.name
        # A record file (not a link), what nearly every entry is, is taken here as
        # `_consider` would take it: the walk looks at each of 100,000 files.
        if name.endswith(RECORD_SUFFIXES) and not _skipped(name) and \
                entry.is_file(follow_symlinks=False):
            found.append(SourceFile(kind, inside + name, entry.path))
            continue
        _consider(kind, entry.path, inside + name, link=entry.is_symlink(),
                  real_dir=entry.is_dir(follow_symlinks=False), file=entry.is_file(),
                  recursive=recursive, root=root, found=found, problems=problems)


def _consider(kind: str, path: str | Path, rel: str, *, link: bool, real_dir: bool, file: bool,
              recursive: bool, root: Path, found: list[SourceFile],
              problems: list[Problem]) -> None:
    """What one entry of a record folder is: a record, a folder to walk, a link out of the
    portfolio or a hidden record to report, or nothing. Shared by the walk and by the dev
    server's look at the paths a save named, so that both find the same."""
    name = rel.rsplit("/", 1)[-1]
    if _skipped(name):
        if _hidden_record(name) and not real_dir:
            problems.append(_hidden_problem(rel))
        return
    if link and not Path(path).resolve().is_relative_to(root):
        problems.append(problem(Location(rel), "unsafe-path",
                                "this is a link to a place outside the portfolio; "
                                "it is not read"))
    elif real_dir:  # linked folders are not walked: no loops
        if recursive:
            _walk(kind, path, rel, recursive, root, found, problems)
    elif name.endswith(RECORD_SUFFIXES) and file:
        found.append(SourceFile(kind, rel, os.fspath(path)))
