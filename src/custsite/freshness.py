"""Whether a build has anything to do: the fingerprint of everything a site is made from.

A build records, in the cache folder, the fingerprint of its inputs (every record, persona
and template file by path, size and modification time; `custsite.yaml`; the build date; the
git commit; the version of custsite and of the libraries that shape the pages) together with
the output folder it wrote and that folder's identity. When a later build finds the same
fingerprint and the very same output folder, the site is already what it would write, and the
build only reports the problems it found last time. Anything else builds as usual: a missing or
damaged record of the last build, an output folder replaced by another build, a changed file.

A build has a forked process `look` for changes while it reads the memos of the last one (see
build.build): taking the fingerprint of 21,000 files was a tenth of a build after an edit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import cast

from .cache import Signature, read_json, write_json
from .config import CONFIG_FILE, Config
from .errors import Location, Problem, Severity
from .forking import Background, give_way
from .gitinfo import history_state
from .output import MARKER, levelled_telling

STATE_FILE = "last-build.json"
LIBRARIES = ("jinja2", "markdown", "nh3", "pyyaml", "phonenumbers", "email-validator",
             "pycountry", "numpy", "scipy")


@dataclass(frozen=True)
class LastBuild:
    fingerprint: str
    output: str
    folder: tuple[int, int]  # (device, inode) of the output folder it wrote
    files: int
    contacts: int
    problems: tuple[Problem, ...]


def _files(folder: Path, seen: dict[str, Signature] | None = None) -> list[tuple[str, int, int]]:
    """Every file below `folder` (links followed to files, not to folders), with its size
    and modification time; into `seen`, each one's signature by its path."""
    found = []
    top = str(folder)
    for base, dirs, names in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")  # Python's, not ours
        # os.path.relpath and os.path.join, without their cost per file (20,000 files).
        prefix = base[len(top) + 1:]
        here = base if base.endswith(os.sep) else base + os.sep
        inside = prefix + os.sep if prefix else ""
        for name in sorted(names):
            path = here + name
            try:
                st = os.stat(path)
            except OSError:
                continue
            found.append((inside + name, st.st_size, st.st_mtime_ns))
            if seen is not None:
                seen[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
    return found


@functools.cache
def code_version() -> str:
    """The hash of the code that makes a site: custsite's own files (an edited checkout
    counts as a new version), its version, and those of the libraries that shape the pages.
    Once per process: the code that runs is the code it started with (and a build asks for
    it four times: its fingerprint, the record store, the pages' hashes, the templates)."""
    versions = [metadata.version("custsite")]
    for name in LIBRARIES:
        try:
            versions.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}=?")
    package = Path(str(resources.files("custsite")))
    return hashlib.sha256(repr((versions, _files(package))).encode()).hexdigest()


def fingerprint(config: Config, as_of: dt.date, output: Path,
                seen: dict[str, Signature] | None = None) -> str:
    """The hash of everything the site at `output` is made from. Into `seen`, the
    signature of each file looked at, by its path (os.fspath of the folder it is in, and its
    name): a build that goes on need not look at them again (see memos.verify)."""
    digest = hashlib.sha256()
    digest.update(repr((code_version(), as_of.isoformat(), str(output.resolve()),
                        history_state(config.root))).encode())
    config_file = config.root / CONFIG_FILE
    digest.update(config_file.read_bytes() if config_file.is_file() else b"")
    p = config.paths
    for folder in (p.customers, p.organizations, p.interactions, p.personas, p.templates):
        digest.update(repr((folder, _files(config.root / folder, seen))).encode())
    return digest.hexdigest()


def _state_path(config: Config) -> Path:
    return config.root / config.paths.cache / STATE_FILE


def folder_id(output: Path) -> tuple[int, int] | None:
    try:
        st = output.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if (output / MARKER).is_file() else None


def last_recorded(config: Config) -> bool:
    """Whether a last build is recorded at all (`up_to_date` may find it the same)."""
    return _state_path(config).is_file()


def up_to_date(config: Config, stamp: str, output: Path) -> LastBuild | None:
    """The last build, when the site at `output` is exactly what this build would write."""
    data = read_json(_state_path(config))
    if not isinstance(data, dict):
        return None
    try:
        last = LastBuild(data["fingerprint"], data["output"], tuple(data["folder"]),
                         int(data["files"]), int(data["contacts"]),
                         tuple(Problem(Location(q["path"], q["line"], q["col"]), q["code"],
                                       q["message"], Severity(q["severity"]))
                               for q in data["problems"]))
    except (ValueError, KeyError, TypeError):
        return None
    if last.fingerprint != stamp or last.output != str(output.resolve()) or \
            folder_id(output) != last.folder:
        return None
    return last


def forget(config: Config) -> None:
    """Before a site is swapped in: until the new state is written, no build may skip."""
    with contextlib.suppress(OSError):
        _state_path(config).unlink(missing_ok=True)


def remember(config: Config, stamp: str, output: Path, files: int, contacts: int,
             problems: list[Problem]) -> None:
    folder = folder_id(output)
    if folder is None:
        return
    write_json(_state_path(config), {
        "fingerprint": stamp, "output": str(output.resolve()), "folder": list(folder),
        "files": files, "contacts": contacts,
        "problems": [{"path": q.location.path, "line": q.location.line, "col": q.location.col,
                      "code": q.code, "message": q.message, "severity": q.severity.value}
                     for q in problems]})


# What the forked process of `look` tells first: the fingerprint of the site's inputs, the
# signature of each file it looked at (see fingerprint), and the last build if it
# made the very same site.
Looked = tuple[str, dict[str, Signature], LastBuild | None]


def look(config: Config, day: dt.date, out: Path, planned: tuple[Path, Path] | None,
         builder: int, tell: Callable[[object], None], *, again: bool = False) -> bool:
    """Tell what `Looked` holds; then, unless nothing changed (or `again`, whatever did),
    level the spare `planned` (see output.Level), telling the live site's listing. Forked
    from the `builder` process, it gives way to it once it told whether anything changed:
    what it told decides whether there is a build at all (at 100,000 contacts, looking took
    seconds), what it does next the build only needs when it writes."""
    seen: dict[str, Signature] = {}
    stamp = fingerprint(config, day, out, seen)
    last = up_to_date(config, stamp, out)
    tell((stamp, seen, last))
    if (last is not None and not again) or planned is None:
        return False
    if os.getpid() != builder:
        give_way()
    return levelled_telling(*planned, tell)


def nothing_changed(looking: Background, config_problems: list[Problem]) -> bool:
    """Whether the forked process of `look` told already that the site is as it would be
    made."""
    found = looking.told(0) if looking.heard(0) else None
    return isinstance(found, tuple) and found[2] is not None and not config_problems


def looked_at(looking: Background, config: Config, day: dt.date, out: Path) -> Looked:
    """What `look` told (waiting for it); looked at here if it failed."""
    found = looking.told(0)
    if isinstance(found, tuple):
        return cast("Looked", found)
    seen: dict[str, Signature] = {}
    stamp = fingerprint(config, day, out, seen)
    return stamp, seen, up_to_date(config, stamp, out)
