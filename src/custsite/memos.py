"""The last build's reading and derivation, kept for the next build.

After an edit, most of a warm build was making again what the last one had made: the
portfolio assembled, every contact derived and its page hashed anew, for one changed file.
The dev server avoids this by keeping its `Session` memos in memory (validate.AssembleMemo,
derive.DeriveMemo: results reused while their inputs are the very same objects). A build
keeps the same memos in the cache folder, in one signed pickle (one, so that the objects
they share stay shared when read back: the memos' identity checks hold), which names the
converted files the record store holds rather than repeating them; the next build reads
only the files that changed and derives only what they touch, exactly as the dev server
does. The memos are written by a forked process while the build renders.

A kept file is trusted by its signature (modification time, size, inode) only if that was
settled when it was read, like the record store (see cache.SETTLED_NS); any other is read
again and kept if its bytes are the same. Personas are always converted again (cheap: a few
files; what they convert to may depend on other files) and kept if they convert the same.

After a small edit the memos are not written again (see still_kept): the memos kept are the
earlier ones, still good, since what they hold is taken by identity with what is read; the
next build reads the few files changed since from the record store, which keeps the contents
those memos name beside the new ones (pinned: see cache.RecordStore), and derives their
contacts again. Once more files changed, or interactions or a persona, the memos are written
anew.
"""
from __future__ import annotations

import contextlib
import copyreg
import logging
import pickle
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import count, repeat
from operator import getitem
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .cache import RecordStore, Signature, read_signed_pickle, settled, write_signed
from .config import Config
from .derive import Contact, DeriveMemo
from .forking import Background
from .frozen import replace, sparse_reduce
from .model import RECORD_REDUCERS, Customer, Interaction, Organization, Persona
from .parse import content_digest
from .records import customer_schema
from .sources import SourceFile
from .validate import AssembleMemo, FileCache, FileRecords, load_file, signature

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


RECORD_FIELDS = ("customers", "organizations", "interactions", "personas")


# The record store the memos being read take their files from (see _stored).
_LOADING: ContextVar[RecordStore | None] = ContextVar("custsite_memos_store", default=None)


class _Missing(Exception):
    """The memos name a file the store no longer holds with that content."""


def _stored(rel: str, digest: str) -> FileRecords:
    """A converted file the memos name, from the record store they are read with."""
    store = _LOADING.get()
    found = store.get(rel, digest) if store is not None else None
    if not isinstance(found, FileRecords):
        raise _Missing(rel)
    return found


class _Records:
    """The records of one kind in one converted file, as the memos name them: unpickled by
    `getattr(file, kind)`, once per file (the pickle's memo repeats it), and each record by
    `operator.getitem` of it: built-in calls, no Python frame for each of 100,000 records."""

    __slots__ = ("made", "name")

    def __init__(self, made: FileRecords, name: str) -> None:
        self.made, self.name = made, name

    def __reduce__(self) -> tuple[Any, tuple[FileRecords, str]]:
        return (getattr, (self.made, self.name))


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
    """Pickles the memos with the converted files that the record store holds, and the
    records in them, named rather than written out: only what the memos add (contacts,
    indexes, hashes) is written, a few megabytes at 10,000 contacts instead of the whole
    portfolio again (which took as much memory again in the process writing it). A file is
    named once (by path and content, taken from the store when read), each record once as
    its place in its file; later mentions of either are the pickle's own references. (Not
    persistent ids: those are asked of every object pickled, which took twice the time.)"""

    def __init__(self, out: BinaryIO, memos: BuildMemos, stored: dict[str, str]) -> None:
        super().__init__(out, protocol=pickle.HIGHEST_PROTOCOL)
        files = memos.files
        self.steps = _steps(memos.derived)
        self.files: dict[int, tuple[str, str]] = {}
        self.records: dict[int, tuple[_Records, int]] = {}
        places = self.records
        for rel, made in files.items():  # all alive while the memos are written
            if not made.digest or stored.get(rel) != made.digest:
                continue
            self.files[id(made)] = (rel, made.digest)
            for name in RECORD_FIELDS:
                found = getattr(made, name)
                if found:  # each record's place, by its id: looped over in C
                    places.update(zip(map(id, found), zip(repeat(_Records(made, name)),
                                                         count()), strict=False))
        # By class, not reducer_override: that is asked of every object pickled (dates,
        # amounts, estimates, …), three times as many as these.
        # Records the store does not hold are written out as it writes them.
        table = {**copyreg.dispatch_table, **RECORD_REDUCERS}
        named = _named(self.records, getitem, sparse_reduce)
        table.update({cls: named for cls in (Customer, Organization, Interaction, Persona)})
        table[Contact] = _named(self.steps, _replaced)
        table[FileRecords] = _named(self.files, _stored)
        self.dispatch_table = table


def _named(places: dict[int, Any], remake: Callable[..., Any],
           otherwise: Callable[[Any], Any] | None = None) -> Callable[[Any], Any]:
    """The reducer of a class some of whose objects the memos name: `remake(*place)` for an
    object in `places` (by its id), `otherwise` (default: the usual reduction) for any
    other."""

    def reduce(obj: Any) -> Any:
        place = places.get(id(obj))
        if place is not None:
            return (remake, place)
        return otherwise(obj) if otherwise is not None else \
            obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)

    return reduce


def load_memos(path: Path, store: RecordStore) -> BuildMemos:
    """The memos kept at `path` (its name holds what they were made with: see
    build.conversion_key), with the files they name taken from `store`; empty ones when
    there are none this user signed, or the store no longer holds a file they name."""
    token = _LOADING.set(store)
    try:
        found = read_signed_pickle(path)  # _Missing: None
    finally:
        _LOADING.reset(token)
    return found if isinstance(found, BuildMemos) else BuildMemos()


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
               stored: dict[str, str]) -> Background:
    """Keep the memos at `path`, written by a forked process while the build goes on;
    `wait` on what is returned before the build ends. `read_since`: a time (ns) before this
    build read any file; `stored`: the content digest of each file the record store holds,
    as saved (those are named, not written: see _Pickler)."""
    memos.settled = frozenset(rel for rel, made in memos.files.items()
                              if settled(made.signature, read_since))
    for other in path.parent.glob(f"{PREFIX}*"):
        if other != path:
            other.unlink(missing_ok=True)

    def write() -> None:
        if not write_signed(path, lambda out: _Pickler(out, memos, stored).dump(memos)):
            log.debug("cannot keep the build memos at %s", path)

    return Background(write)
