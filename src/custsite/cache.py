"""The cache folder (`.custsite-cache/` by default): results worth keeping between builds.

Everything here is safe to delete and never trusted blindly: each entry's key holds what it
was computed from, including the version of the computation, so a changed portfolio or a new
custsite simply misses. A cache that cannot be read or written is ignored, never an error:
the build computes again.
"""

from __future__ import annotations

import contextlib
import copyreg
import hashlib
import hmac
import json
import logging
import os
import pickle
import shutil
import signal
import tempfile
from collections.abc import Callable, Generator, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, cast

from . import forking
from .config import Config
from .forking import Background
from .lifetime import ESTIMATES
from .model import RECORD_REDUCERS
from .parse import content_digest

log = logging.getLogger(__name__)

FITS_FILE = "lifetime-fits.json"
MAX_FITS = 8  # the fits of the last few versions of the records are enough to go back


def read_json(path: Path) -> object:
    """A cache file's data; None when it is missing, unreadable or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _texts(data: object) -> dict[str, str]:
    """The text entries of a JSON object, nothing else."""
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


class FitStore(dict[str, str]):
    """Lifetime model fits by the key of the histories they were made from (see
    lifetime.fit), read from and saved to the cache folder."""

    def __init__(self, path: Path) -> None:
        super().__init__(_texts(read_json(path)))
        self.path = path
        self.saved = dict(self)

    def save(self) -> None:
        """Write the newest entries if anything was added: fits, and the estimates made
        with the newest one (see lifetime.estimate); failures only log."""
        if dict(self) == self.saved:
            return
        fits = [k for k in self if not k.startswith(ESTIMATES)]  # insertion order: newest last
        estimates = [k for k in self if k.startswith(ESTIMATES)]
        keep = {k: self[k] for k in self if k in fits[-MAX_FITS:] or k in estimates[-1:]}
        if write_json(self.path, keep):
            self.saved = keep


def fit_store(config: Config) -> FitStore:
    return FitStore(config.root / config.paths.cache / FITS_FILE)


def write_json(path: Path, data: object) -> bool:
    """Write atomically (a temporary file renamed over the old one); False on failure."""
    return write_bytes(path, json.dumps(data, ensure_ascii=False,
                                        separators=(",", ":")).encode("utf-8"))


def write_bytes(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write atomically (a temporary file renamed over the old one); False on failure."""
    return _write_atomically(path, lambda out: out.write(data), mode)


def _write_atomically(path: Path, fill: Callable[[BinaryIO], object], mode: int) -> bool:
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            fill(out)
        os.chmod(tmp, mode)  # mkstemp makes it private; most cache files need not be
        os.replace(tmp, path)
        return True
    except OSError as exc:
        log.debug("cannot write the cache %s: %s", path, exc)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return False


class NoteStore:
    """Markdown notes rendered to sanitised HTML, by a hash of their text: converting 100,000
    notes is most of a build's time, and most notes do not change between builds (nor differ
    from each other: "Left a voicemail."). The file name carries what the HTML depends on
    (the versions of the Markdown library, of the sanitiser and of the conversion), so an
    upgrade starts afresh; only the notes of the last build are kept. The HTML goes into pages
    as it is, so the file is signed like the record store: a planted one (a committed cache
    folder) would inject script into the site."""

    def __init__(self, path: Path, render: Callable[[str], str]) -> None:
        self.path = path
        self.render = render
        self.known = _texts(read_signed_pickle(path))
        self.used: dict[str, str] = {}
        self.order: list[str] = []  # the keys of `used`, in the order they came

    def html(self, text: str) -> str:
        key = content_digest(text.encode("utf-8"))
        found = self.used.get(key)
        if found is None:
            found = self.known.get(key)
            if found is None:
                found = self.render(text)
            self.used[key] = found
            self.order.append(key)
        return found

    def since(self, mark: int) -> tuple[dict[str, str], list[str]]:
        """What this store used after the first `mark` keys of `order`: the notes it rendered
        and the keys of the cached ones it used; a rendering process hands them to the
        parent's store."""
        fresh = self.order[mark:]
        return ({k: self.used[k] for k in fresh if k not in self.known},
                [k for k in fresh if k in self.known])

    def merge(self, rendered: dict[str, str], reused: list[str]) -> None:
        """Take in what another process's copy of this store used (see `since`)."""
        for key, html in rendered.items():
            if key not in self.used:
                self.order.append(key)
            self.used[key] = html
        for key in reused:
            if key not in self.used:
                self.order.append(key)
            self.used[key] = self.known[key]

    def save(self) -> None:
        """Keep the notes of this build (if any was new or any is gone), and only those:
        the notes files of other versions (and the unsigned ones of older custsites) go."""
        if self.used.keys() != self.known.keys() and write_signed_pickle(self.path, self.used):
            self.known = dict(self.used)
        with contextlib.suppress(OSError):
            for other in self.path.parent.glob(f"{NOTES_PREFIX}*"):
                if other != self.path and other.suffix in (".pickle", ".json"):
                    other.unlink(missing_ok=True)


def note_store(config: Config, render: Callable[[str], str], version: str) -> NoteStore:
    return NoteStore(config.root / config.paths.cache / f"{NOTES_PREFIX}{version}.pickle", render)


NOTES_PREFIX = "notes-"


def _secret() -> bytes | None:
    """This user's key for signing pickled caches, made on first use, kept outside any
    portfolio (`$XDG_CACHE_HOME/custsite/`); None when it cannot be kept."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "custsite" / "signing-key"
    try:
        data = path.read_bytes()
        if len(data) == 32:
            return data
    except OSError:
        pass
    if not write_bytes(path, os.urandom(32), mode=0o600):
        return None
    try:
        data = path.read_bytes()  # another build may have made it at the same moment
    except OSError:
        return None
    return data if len(data) == 32 else None


MAC_SIZE = 32  # bytes of HMAC-SHA256, in front of a signed cache file


class _Signing:
    """A file written through, with the signature of what went through."""

    def __init__(self, out: BinaryIO, secret: bytes) -> None:
        self.out = out
        self.mac = hmac.new(secret, digestmod="sha256")

    def write(self, data: bytes) -> int:
        self.mac.update(data)
        return self.out.write(data)


def write_signed(path: Path, fill: Callable[[BinaryIO], object]) -> bool:
    """Write atomically what `fill` writes into the file it is given, signed with this
    user's key (the signature first; see `read_signed`); False on failure. Written as it is
    made: a large cache is never in memory twice."""
    secret = _secret()
    if secret is None:
        return False

    def body(out: BinaryIO) -> None:
        out.write(bytes(MAC_SIZE))
        signing = _Signing(out, secret)
        fill(cast(BinaryIO, signing))  # writing is all anyone does with it
        out.seek(0)
        out.write(signing.mac.digest())

    return _write_atomically(path, body, 0o600)


def signed_payload(data: bytes, secret: bytes | None = None) -> memoryview | None:
    """What `write_signed` wrote, checked (and not copied): None when signed by any other
    key, or not at all."""
    secret = secret or _secret()
    if secret is None:
        return None
    view = memoryview(data)
    payload = view[MAC_SIZE:]
    if not hmac.compare_digest(view[:MAC_SIZE].tobytes(),
                               hmac.new(secret, payload, "sha256").digest()):
        return None
    return payload


def read_signed(path: Path, secret: bytes | None = None) -> memoryview | None:
    """A cache file's payload, if this user's key signed it."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return signed_payload(data, secret)


def _signed(data: BinaryIO, secret: bytes) -> bool:
    """Whether the open cache file holds this user's signature of the rest of it; read
    with pread, so that the file's position stays where it was (a checking process shares
    it: see _Ahead)."""
    fd = data.fileno()
    mac = os.pread(fd, MAC_SIZE, 0)
    signing = hmac.new(secret, digestmod="sha256")
    at = MAC_SIZE
    while chunk := os.pread(fd, READ_CHUNK, at):
        signing.update(chunk)
        at += len(chunk)
    return hmac.compare_digest(mac, signing.digest())


def _signed_readable(data: BinaryIO, secret: bytes) -> bool:
    """`_signed`, an unreadable file being as good as one signed by no one."""
    try:
        return _signed(data, secret)
    except Exception:
        return False


def _payload(data: BinaryIO, signed: bool) -> BinaryIO | None:
    """The open cache file at the start of its payload if `signed`; else closed, None."""
    if signed:
        data.seek(MAC_SIZE)
        return data
    data.close()
    return None


def _checked(path: Path | str, secret: bytes) -> BinaryIO | None:
    """The signed cache file at `path`, opened and checked, at the start of its payload;
    None when missing or not signed by this user's key. Cache files are written by renaming
    new ones into place (see write_bytes), so the file opened stays the one checked."""
    data = _opened(path)
    return _payload(data, _signed_readable(data, secret)) if data is not None else None


def _opened(path: Path | str) -> BinaryIO | None:
    try:
        return open(path, "rb")
    except OSError:
        return None


def read_signed_pickle(path: Path, secret: bytes | None = None) -> object:
    """The object `write_signed_pickle` kept; None when missing, not signed by this user's
    key, or not loadable (a class renamed by an edited checkout, say). The file is checked,
    then unpickled, as it is read, never held in memory whole (the kept rows and notes are
    tens of megabytes at 10,000 contacts, the memos at 100,000); or, when checked ahead
    (see check_ahead), taken as it was checked."""
    signed = _signed_file(path, secret)
    if signed is None:
        return None
    try:
        with signed as data:
            return pickle.load(data)  # signed by us: made by this code
    except Exception:
        return None


def _signed_file(path: Path, secret: bytes | None = None) -> BinaryIO | None:
    """The cache file at `path` opened at the start of its payload, checked ahead (see
    check_ahead) or here; None when missing or not signed by this user's key."""
    ahead = _AHEAD.take(path) if _AHEAD is not None else _NOT_AHEAD
    if ahead is _NOT_AHEAD:
        secret = secret or _secret()
        ahead = _checked(path, secret) if secret is not None else None
    return cast("BinaryIO | None", ahead)


def read_signed_pickles(path: Path) -> Generator[object, None, None]:
    """The objects `write_signed` kept with one pickler, dumped one after the other (what
    they share stays shared), as each is read; none when missing or not signed by this
    user's key, and no more once one cannot be loaded. Checked as `read_signed_pickle`."""
    signed = _signed_file(path)
    if signed is None:
        return
    with signed as data:
        unpickler = pickle.Unpickler(data)  # signed by us: made by this code
        while True:
            try:
                found = unpickler.load()
            except Exception:  # the end, or a part not loadable
                return
            yield found


READ_CHUNK = 1 << 20
_NOT_AHEAD: Any = object()


class _Ahead:
    """Signed cache files opened here and checked by a forked process, in the order they
    will be read, while the build does other work. After an edit at 10,000 contacts, the
    record store, the memos and the kept rows are 75 MB, whose hashing was a twentieth of
    the build; a thread would hash them without the interpreter's lock, but handing the lock
    back and forth with the unpickling of each shard cost as much. The process tells, one
    byte per file, whether it is signed; it reads with pread, so the files opened here stay
    at their start."""

    def __init__(self, paths: list[Path], secret: bytes) -> None:
        self.secret = secret
        self.files = {os.fspath(p): (k, _opened(p)) for k, p in enumerate(paths)}
        self.told = bytearray()  # each file's answer, in order, as read so far
        self.reader: int | None = None
        self.pid = 0
        reader, writer = os.pipe()
        try:
            with forking.forked():
                self.pid = os.fork()
        except OSError:
            os.close(reader)
            os.close(writer)
            return
        if self.pid == 0:  # the checking process: nothing else runs in it
            try:
                os.close(reader)
                forking.give_way()
                for _, data in self.files.values():
                    good = data is not None and _signed_readable(data, secret)
                    os.write(writer, b"\1" if good else b"\0")
            finally:
                os._exit(0)
        os.close(writer)
        self.reader = reader

    def _told(self, k: int) -> bool | None:
        """What the process told of the k-th file; None if it ended before it did."""
        while len(self.told) <= k and self.reader is not None:
            got = os.read(self.reader, 4096)
            if not got:
                break
            self.told += got
        return self.told[k] == 1 if len(self.told) > k else None

    def take(self, path: Path | str) -> Any:
        """The file checked (None: missing or not signed), or _NOT_AHEAD if it is not one
        of those checked ahead; each is taken once."""
        k, data = self.files.pop(os.fspath(path), (-1, None))
        if k < 0:
            return _NOT_AHEAD
        if data is None:
            return None
        good = self._told(k)
        if good is None:  # not told: checked here
            good = _signed_readable(data, self.secret)
        return _payload(data, good)

    def close(self) -> None:
        for _, data in self.files.values():
            if data is not None:
                data.close()
        self.files.clear()
        if self.reader is not None:
            os.close(self.reader)
            self.reader = None
        if self.pid:
            # Still checking files no one will read (a build with nothing to do stops
            # early): it only reads, and is stopped wherever it is.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = 0


_AHEAD: _Ahead | None = None


@contextlib.contextmanager
def check_ahead(paths: list[Path]) -> Iterator[None]:
    """Within: `read_signed_pickle` takes these files as a forked process checked them
    (see _Ahead), those that exist among them, in this order. Where processes are not
    forked, each is checked as it is read."""
    global _AHEAD
    secret = _secret() if paths and forking.can_fork() else None
    if secret is None or _AHEAD is not None:
        yield
        return
    _AHEAD = _Ahead(paths, secret)
    try:
        yield
    finally:
        ahead, _AHEAD = _AHEAD, None
        ahead.close()


def write_signed_pickle(path: Path, value: object,
                        reducers: Mapping[type, Callable[[Any], Any]] | None = None) -> bool:
    """Keep `value` pickled and signed (see write_signed), objects of the classes in
    `reducers` reduced by them; False on failure."""
    if not reducers:
        return write_signed(path, partial(pickle.dump, value, protocol=pickle.HIGHEST_PROTOCOL))

    def dump(out: BinaryIO) -> None:
        pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = {**copyreg.dispatch_table, **reducers}
        pickler.dump(value)

    return write_signed(path, dump)


Signature = tuple[int, int, int]  # a file's modification time (ns), size and inode
SETTLED_NS = 2_000_000_000  # the coarsest file system clock's tick (FAT: 2 s)


def settled(signature: Signature | None, read_since: int) -> bool:
    """Whether a file with this signature, read after `read_since` (ns), was last modified
    at least SETTLED_NS before: only then does the same signature mean the same bytes."""
    return signature is not None and 0 < signature[0] < read_since - SETTLED_NS


# The kept pieces of contacts' table rows, in shards (see reuse.RowStore): named here, so
# that a build can have them checked ahead before it imports rendering.
ROWS_FOLDER, ROW_SHARDS = "rows", 16


def row_file(folder: Path, shard: int) -> Path:
    return folder / f"{shard:02d}.pickle"


Entry = tuple[str, Any, Signature | None]


class RecordStore:
    """Converted record files by path and content hash, kept between builds: a warm build
    converts only the files that changed (reading YAML is most of a build's checks).

    Records are Python objects, kept with pickle, which can run code when it reads: a cache
    file is therefore signed (HMAC-SHA256) with a key of this user's kept outside the
    portfolio, and one signed with any other key (say, a `.custsite-cache/` committed to a
    repository) is never unpickled. `key` names what the records were converted with (the
    code and custsite.yaml): a new key misses, and saving removes the others.

    The last build's memos hold the files it read, records and all (see memos): the store
    keeps what they do not, the files converted since by builds that left those memos as
    they were, and what `check` converts (it writes no memos). So a build reads the memos
    and, of the store, only what it looks up. Files are kept in shards by path, each read
    when a path of it is first looked up and written whole when one of its entries changed:
    after an edit, the one shard of the edited file (a few hundred files at 10,000
    contacts; a build whose memos held everything read 21,000 files from 64 shards, a
    fifth of its time). A shard's files are pickled with their records, read back in one
    load (one load per file took half as long again: each finds its classes anew), with
    what its files share (places, tags: see quickrecords) shared still; many are pickled
    and written by a forked process while the build goes on (see save)."""

    PREFIX = "records-"
    SHARDS = 64
    # Shards holding up to this many files are written by the build itself, not a forked
    # process: after an edit at 10,000 contacts, one shard of 330 files, written in 10 ms where
    # forking cost a twentieth of the build.
    WRITTEN_HERE = 4_000
    # Each entry: the file's content digest, what was made of it, and its settled signature.

    def __init__(self, folder: Path, key: str, *, keeping: bool = True) -> None:
        self.folder = folder
        self.key = key
        self.path = self.folder_of(folder, key)
        self.keeping = keeping  # False: only read from (`validate` writes nothing)
        self.secret: bytes | None = None
        self.kept = {int(p.stem) for p in self.files(self.path) if p.stem.isdigit()}
        self.shards: dict[int, dict[str, Entry]] = {}  # those read or made, by number
        self.changed: set[int] = set()  # shards with an entry added or gone

    def _shard(self, rel: str) -> int:
        return int.from_bytes(hashlib.blake2b(rel.encode(), digest_size=2).digest(),
                              "big") % self.SHARDS

    def _entries(self, rel: str) -> dict[str, Entry]:
        """The entries of the shard this path's entry is in."""
        return self._entries_of(self._shard(rel))

    def _entries_of(self, k: int) -> dict[str, Entry]:
        """The entries of shard `k`, read when first needed."""
        found = self.shards.get(k)
        if found is None:
            found = self.shards[k] = self._read(k) if k in self.kept else {}
        return found

    def _read(self, k: int) -> dict[str, Entry]:
        self.secret = self.secret or _secret()
        entries = read_signed_pickle(self.path / f"{k:02d}.pickle", self.secret) \
            if self.secret is not None else None
        return entries if isinstance(entries, dict) else {}  # otherwise: converted afresh

    @classmethod
    def folder_of(cls, cache: Path, key: str) -> Path:
        """Where the shards of records converted with `key` are kept."""
        return cache / f"{cls.PREFIX}{key[:24]}"

    @staticmethod
    def files(path: Path) -> list[Path]:
        """The shards kept at `path`."""
        return sorted(path.glob("*.pickle")) if path.is_dir() else []

    def __bool__(self) -> bool:
        """Whether it may hold anything."""
        return bool(self.kept) or any(self.shards.values())

    def everything(self) -> dict[str, Entry]:
        """Every entry, all shards read."""
        return {rel: entry for k in range(self.SHARDS) if k in self.kept or k in self.shards
                for rel, entry in self._entries_of(k).items()}

    def get(self, rel: str, digest: str) -> Any | None:
        """What was kept for this path when its content had this digest."""
        found = self._entries(rel).get(rel)
        return found[1] if found is not None and found[0] == digest else None

    def last(self, rel: str) -> Any | None:
        """What was kept for this path, whatever its content is now."""
        found = self._entries(rel).get(rel)
        return found[1] if found is not None else None

    def unchanged(self, rel: str, signature: Signature) -> Any | None:
        """What was kept for this path when the file had this signature, without reading
        it: only for a file whose signature was settled when it was read (see keep)."""
        found = self._entries(rel).get(rel)
        return found[1] if found is not None and found[2] == signature else None

    def retain(self, kept: dict[str, str]) -> None:
        """Of the shards read, keep the entries of these files (path: content digest) only,
        while their content is the same: the files of the portfolio. (A shard not read stays
        as it is: what it holds of files gone is only ever looked up by their path.)"""
        for k, entries in self.shards.items():
            gone = [rel for rel, entry in entries.items() if kept.get(rel) != entry[0]]
            for rel in gone:
                del entries[rel]
            if gone:
                self.changed.add(k)

    def keep(self, rel: str, digest: str, value: Any, signature: Signature | None = None,
             *, read_since: int = 0) -> None:
        """Keep `value` for this path's content. Given the file's `signature` (modification
        time, size, inode) and `read_since`, a time (ns) before the file was read, later
        builds trust the signature without reading the file again if it was last modified
        at least SETTLED_NS before that time: a file written twice within one tick of a
        coarse file system clock (up to 2 s) keeps the same signature for other bytes."""
        if not self.keeping:
            return
        trusted = signature if settled(signature, read_since) else None
        self._entries(rel)[rel] = (digest, value, trusted)
        self.changed.add(self._shard(rel))

    def save(self, *, changes: bool = True) -> Background | None:
        """Write the shards that changed, in a forked process (a few small ones here):
        `wait` on what is returned before the build ends. Not `changes`: only remove the
        shards kept with other keys (the memos written hold what was converted). Failures
        only log."""
        if not self.keeping:
            return None
        for other in self.folder.glob(f"{self.PREFIX}*"):  # converted with another key
            if other != self.path:
                shutil.rmtree(other, ignore_errors=True)
        if not changes:
            self.changed = set()
            return None
        shards = {k: dict(self.shards[k]) for k in self.changed}
        self.changed = set()
        self.kept |= {k for k, entries in shards.items() if entries}
        self.kept -= {k for k, entries in shards.items() if not entries}
        if not shards:
            return None
        path = self.path

        def write() -> None:
            for k, entries in shards.items():
                shard = path / f"{k:02d}.pickle"
                if not entries:
                    shard.unlink(missing_ok=True)
                elif not write_signed_pickle(shard, entries, RECORD_REDUCERS):
                    shard.unlink(missing_ok=True)  # not an older shard of other contents

        # A few files changed (an edit): their shards are written here, at once.
        return Background(write, here=sum(map(len, shards.values())) <= self.WRITTEN_HERE)
