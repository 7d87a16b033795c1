"""The last build's reading and derivation, kept for the next build.

After an edit, most of a warm build was making again what the last one had made: the
portfolio assembled, every contact derived and its page hashed anew, for one changed file.
The dev server avoids this by keeping its `Session` memos in memory (validate.AssembleMemo,
derive.DeriveMemo: results reused while their inputs are the very same objects). A build
keeps the same memos in the cache folder, in one signed file pickled by one pickler (so
that the objects they share stay shared when read back: the memos' identity checks hold),
in parts (see FILE_PARTS), with the converted files they were made from, records and all;
the next build reads only the files that changed and derives only what they touch, exactly
as the dev server does. The memos are written by a forked process while the build renders.
(They once named the files of the record store rather than holding them: a build then read
both, and the naming, a call per record, cost as much to read as the memos' own contents:
0.47 s against 0.33 s at 10,000 contacts.)

A kept file is trusted by its signature (modification time, size, inode) only if that was
settled when it was read, like the record store (see cache.SETTLED_NS); any other is read
again and kept if its bytes are the same. Personas are always converted again (cheap: a few
files; what they convert to may depend on other files) and kept if they convert the same.

After a small edit the memos are not written again (see still_kept): the memos kept are the
earlier ones, still good, since what they hold is taken by identity with what is read; the
next build reads the few files changed since from the record store, which keeps what a
build converted while its memos were left as they were (see cache.RecordStore), and derives
their contacts again. Once more files changed, or interactions or a persona, the memos are
written anew.
"""
from __future__ import annotations

import contextlib
import copyreg
import logging
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .cache import Signature, read_signed_pickles, settled, write_signed
from .config import Config
from .derive import Contact, DeriveMemo
from .forking import Background
from .frozen import replace
from .model import RECORD_REDUCERS
from .parse import content_digest
from .records import customer_schema
from .sources import SourceFile
from .validate import AssembleMemo, FileCache, load_file, signature

if TYPE_CHECKING:  # reuse imports rendering, which `validate` never loads
    from .render import KeptFigures
    from .reuse import ContactHashes

log = logging.getLogger(__name__)

PREFIX = "memos-"


@dataclass
class BuildMemos:
    """What a build made that the next one can take while its inputs are the same objects
    (the dev server keeps the same in a Session)."""

    files: FileCache = field(default_factory=dict)
    assembled: AssembleMemo = field(default_factory=AssembleMemo)
    derived: DeriveMemo = field(default_factory=DeriveMemo)
    settled: frozenset[str] = frozenset()  # files whose signature was settled when read
    pages: ContactHashes = field(default_factory=dict)  # see reuse.page_hashes
    figures: KeptFigures | None = None  # see render.kept_figures


def memos_path(config: Config, key: str) -> Path:
    return config.root / config.paths.cache / f"{PREFIX}{key[:24]}.pickle"


def _replaced(before: Contact, changes: dict[str, Any]) -> Contact:
    return replace(before, **changes)


def _steps(derived: DeriveMemo) -> dict[int, tuple[Contact, dict[str, Any]]]:
    """Each contact the last step of derivation made from its first (see derive._step), as
    that one and the fields it changed: pickled so, both generations take little more than
    one."""
    out: dict[int, tuple[Contact, dict[str, Any]]] = {}
    for before, _, after in derived.final.values():
        if after is not before:
            was = vars(before)
            out[id(after)] = (before, {k: v for k, v in vars(after).items()
                                       if was.get(k) is not v})
    return out


class _Pickler(pickle.Pickler):
    """Pickles the memos with the files they hold, records and all (see cache.RecordStore),
    each contact of the last step of derivation as the one before it and the fields that
    step changed (see _steps)."""

    def __init__(self, out: BinaryIO, memos: BuildMemos) -> None:
        super().__init__(out, protocol=pickle.HIGHEST_PROTOCOL)
        # By class, not reducer_override: that is asked of every object pickled (dates,
        # amounts, estimates, …), ten times as many as contacts.
        table = {**copyreg.dispatch_table, **RECORD_REDUCERS}
        table[Contact] = _named(_steps(memos.derived), _replaced)
        self.dispatch_table = table


def _named(places: dict[int, Any], remake: Callable[..., Any]) -> Callable[[Any], Any]:
    """The reducer of a class some of whose objects the memos remake: `remake(*place)` for
    an object in `places` (by its id), the usual reduction for any other."""

    def reduce(obj: Any) -> Any:
        place = places.get(id(obj))
        if place is not None:
            return (remake, place)
        return obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)

    return reduce


# The memos are pickled in parts, one after the other by one pickler (so what they share stays
# shared): the files they hold in FILE_PARTS parts, then the other fields, then the memos
# themselves, which name what the parts made. A build reads them while another process tells
# whether anything changed at all, and stops between two parts if nothing did (see
# build.build): a part is a few hundredths of a second at 10,000 contacts.
FILE_PARTS = 8


def _dump(out: BinaryIO, memos: BuildMemos) -> None:
    pickler = _Pickler(out, memos)
    files = list(memos.files.values())
    for k in range(FILE_PARTS):
        pickler.dump(files[k::FILE_PARTS])
    for part in (memos.assembled, memos.derived, memos.pages, memos.figures):
        pickler.dump(part)
    pickler.dump(memos)


def load_memos(path: Path, stop: Callable[[], bool] | None = None,
               read: list[object] | None = None) -> BuildMemos:
    """The memos kept at `path` (its name holds what they were made with: see
    build.conversion_key); empty ones when there are none this user signed, or when `stop`,
    asked between the parts (see FILE_PARTS), says to. Into `read`, the parts read: a
    caller that stopped may leave them to the exit (see build.leave_to_exit) rather than
    free them (at 100,000 contacts, a gigabyte of objects)."""
    if stop is not None and stop():
        return BuildMemos()
    with contextlib.closing(read_signed_pickles(path)) as parts:
        for part in parts:
            if isinstance(part, BuildMemos):
                return part
            if read is not None:
                read.append(part)
            if stop is not None and stop():
                break
    return BuildMemos()


# Files changed since the memos kept were made, at most, for a build to leave them as they
# are: each later build reads those files again (from the record store) and derives their
# contacts again, as this one did.
STALE_FILES = 16


def still_kept(before: FileCache, memos: BuildMemos, key: object) -> bool:
    """Whether the memos kept on disk, read with the files `before`, may stay as they are
    once this build took its files into `memos` (see the module's docstring): few files
    changed since they were made, each of customers or organizations, whose contacts alone
    are derived again (not interactions: every interaction is sorted again, and the figures
    of all made again; nor personas: every contact is matched again), and derivation starts
    from them (the same date and settings: `key`, see derive.memo_key). Writing them again
    after such an edit cost a forked process a third of the build's time, and the build a
    twentieth of its own."""
    if not before or memos.derived.key != key:
        return False
    files = memos.files
    changed = [rel for rel in before.keys() | files.keys()
               if before.get(rel) is not files.get(rel)]
    if len(changed) > STALE_FILES:
        return False
    return not any(made is not None and (made.interactions or made.personas)
                   for rel in changed for made in (before.get(rel), files.get(rel)))


def verify(memos: BuildMemos, sources: list[SourceFile], config: Config,
           seen: dict[str, Signature] | None = None) -> None:
    """Drop the kept files that cannot be trusted as they are (see the module's docstring);
    those with the same content stay, as the same objects. `seen`: signatures taken just
    before, by file path (see freshness.fingerprint); the others are taken here."""
    schema = None
    seen = seen or {}
    for source in sources:
        kept = memos.files.get(source.rel)
        if kept is None:
            continue
        current = seen.get(source.file) or signature(source.file)
        if source.kind == "persona":
            schema = schema or customer_schema(config)
            again = load_file(source, config, schema, current)
            memos.files[source.rel] = kept if again == kept else again
        elif current != kept.signature:
            del memos.files[source.rel]  # read again (or taken from the record store)
        elif source.rel not in memos.settled:
            data = None
            with contextlib.suppress(OSError):
                data = source.path.read_bytes()
            if data is None or content_digest(data) != kept.digest:
                del memos.files[source.rel]


def save_memos(path: Path, memos: BuildMemos, read_since: int,
               first: Callable[[BuildMemos], object] | None = None) -> Background:
    """Keep the memos at `path`, written by a forked process while the build goes on;
    `wait` on what is returned before the build ends. `read_since`: a time (ns) before this
    build read any file. `first`: what that process makes of the memos before it writes
    them (what the build could leave to it), whose result `wait` returns."""
    memos.settled = frozenset(rel for rel, made in memos.files.items()
                              if settled(made.signature, read_since))
    for other in path.parent.glob(f"{PREFIX}*"):
        if other != path:
            other.unlink(missing_ok=True)

    def write() -> object:
        made = first(memos) if first is not None else None
        if not write_signed(path, partial(_dump, memos=memos)):
            log.debug("cannot keep the build memos at %s", path)
        return made

    return Background(write)
