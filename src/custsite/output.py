"""Writing the site so that it is never half-written: build beside it, then swap it in.

The new site is written into a hidden folder next to the output folder, then exchanged with
the old one in a single step (Linux `renameat2(RENAME_EXCHANGE)`), so that whenever the
process dies, `site/` is the complete old site or the complete new one. Where the exchange is
not available, two renames are used, with the old site put back if the second fails. Builds
of one output folder take turns (a lock on its parent folder), and leftovers of killed builds
are removed by the next one. A file whose bytes are those of the previous site is a hard link
to it rather than written again.

Making the new folder's directories is most of the cost of a build after a small edit: a site
of 10,000 contacts has 11,000 of them, and on some disks a directory takes half a millisecond
to make and as long to remove. So a build may keep a *spare* (a folder in the cache): the site
before the last one, which the swap left behind. The next build brings the spare up to date
(every file checked, those that differ replaced, never written into: a file there may be the
live site's file under another name) and swaps it in, and the previous site becomes the spare.
A first build makes none (it may well be the only one: CI builds a fresh clone); the second
makes it from nothing, while it reads (see below). A spare left half-updated by a killed build
is only ever read as untrusted: every file of the next site is checked again.

Checking 11,000 files and folders of the spare, and the live file of each, was still a tenth
of a build after an edit. So a build takes its output folder's turn before it reads any
record, and a forked process *levels* the spare meanwhile (see Level): makes it hold the live
site's files, as links, and names them. Holding the turn, the build knows both folders are as
that process left them: it only writes the pages that changed, and swaps.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import itertools
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .cache import write_bytes
from .errors import CustsiteError
from .forking import Background, can_fork

# Written into every generated site; a folder without it is never deleted or replaced.
MARKER = ".custsite-site"


@dataclass(frozen=True)
class Page:
    """One output file: its path inside the site, and its bytes; or, `kept`, the file of the
    same path in the previous site (see reuse); or, `written`, a file a rendering process
    wrote into the new site itself (see Direct)."""

    path: str
    content: bytes
    kept: bool = False
    written: bool = False


@dataclass(frozen=True)
class KeptPages:
    """Many pages kept from the previous site at once (see Page.kept): after an edit, 11,000
    of them, each a Page and a put of its own took a twentieth of the build."""

    paths: tuple[str, ...]


class Direct:
    """Where the processes rendering a site may write its pages themselves: set by
    write_site (`folder`) when the new site is a new folder with no previous site to link
    files from, which is a cold build. Then the main process neither takes in the pages'
    bytes (80 MB at 10,000 contacts, pickled, sent and unpickled) nor writes them: half a
    second less on a healthy disk. (On a disk slow to make files after many were deleted, two
    processes making them take no less time than one: the kernel's allocator is the
    bottleneck either way.)"""

    def __init__(self) -> None:
        self.folder: str | None = None


def write_new(folder: str, rel: str, content: bytes) -> str:
    """Write a page into a new site folder (see Direct), with the folders it needs (another
    process may be making the same ones); its normalised path."""
    rel = _safe_rel(rel)
    parent = rel.rpartition("/")[0]
    if parent:
        os.makedirs(f"{folder}/{parent}", exist_ok=True)
    with open(f"{folder}/{rel}", "xb") as f:  # a new file in a new folder
        f.write(content)
    return rel


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _safe_rel(rel: str) -> str:
    """The page path, normalised; refused if it would leave the output folder."""
    parts = [part for part in rel.split("/") if part not in ("", ".")]
    if rel.startswith("/") or "\\" in rel or "\0" in rel or ".." in parts or not parts:
        raise CustsiteError(f"refusing to write '{rel}' outside the site folder")
    return "/".join(parts)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically; False where the system cannot (then nothing happened)."""
    if not sys.platform.startswith("linux"):
        return False
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False  # an old kernel or a file system without exchange
    raise OSError(code, os.strerror(code), str(b))


_HELD: set[tuple[str, int]] = set()  # the folders whose turn a thread of this process holds


@contextlib.contextmanager
def turn(folder: Path) -> Iterator[None]:
    """One build at a time per output folder: an advisory lock on its parent folder. A
    build holds it from before it looks at the sites (see Level) to its swap; taken again
    by the thread holding it, it is already held (another thread waits, as another process
    does: each takes the lock through a descriptor of its own)."""
    key = (os.path.realpath(folder), threading.get_ident())
    if key in _HELD:
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _HELD.add(key)
        yield
    finally:
        _HELD.discard(key)
        os.close(fd)  # closing releases the lock (once no forked process holds it too)


def _clean_leftovers(out: Path) -> None:
    for leftover in out.parent.glob(f".{out.name}.new-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in out.parent.glob(f".{out.name}.old-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def write_site(pages: Iterable[Page | KeptPages], out: Path, *, root: Path,
               spare: Path | None = None, direct: Direct | None = None,
               levelled: Level | None = None) -> int:
    """Write every page into a folder next to `out` (or the `spare`, when on the same disk),
    then swap it in for `out`. When the new site is a new folder and there is no previous
    site, `direct` is told where it is before `pages` is first asked for a page. `levelled`:
    the spare, as levelled with the live site (see Level)."""
    out = out.resolve()
    root = root.resolve()
    if out == root or root.is_relative_to(out):
        raise CustsiteError(f"the output folder {out} would contain the portfolio itself; "
                            "choose another one")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with turn(out.parent):
            usable = _usable_spare(spare, out)
            if usable is not None:
                write_bytes(_owner_record(usable), str(out).encode("utf-8"))
            return _write_locked(pages, out, usable, direct, levelled)
    except OSError as exc:
        raise CustsiteError(f"cannot write the site into {out}: {exc.strerror or exc}") from exc


def _owner_record(spare: Path) -> Path:
    """Beside a spare (not in it: the spare becomes the site), the output folder it is for."""
    return spare.with_name(spare.name + ".output")


UNOWNED_SPARE_DAYS = 7  # a spare kept by a version that did not record its output folder


def prune_spares(folder: Path, prefix: str, keep: Path) -> None:
    """Remove the spares in `folder` (named `prefix`…) whose output folder no longer holds a
    site: a spare is as large as its site, and building once into a folder since deleted
    (a preview) must not leave one behind for good. The spare of a site that still exists
    stays (its next build needs it), as does `keep`."""
    try:
        found = list(folder.glob(f"{prefix}*"))
    except OSError:
        return
    for path in found:
        if path == keep or path == _owner_record(keep):
            continue
        if path.name.endswith(".output"):
            if not path.with_name(path.name[:-len(".output")]).exists():
                path.unlink(missing_ok=True)  # its spare is gone
            continue
        record = _owner_record(path)
        try:
            owner = Path(record.read_text(encoding="utf-8"))
            gone = not (owner / MARKER).is_file()
        except (OSError, UnicodeDecodeError, ValueError):
            try:
                gone = path.lstat().st_mtime < time.time() - UNOWNED_SPARE_DAYS * 86400
            except OSError:
                continue
        if gone:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            record.unlink(missing_ok=True)


def _usable_spare(spare: Path | None, out: Path) -> Path | None:
    """The spare, when it can be swapped with `out`: on the same disk, and a folder (not a
    link to one) if it exists."""
    if spare is None:
        return None
    try:
        spare.parent.mkdir(parents=True, exist_ok=True)
        if spare.parent.stat().st_dev != out.parent.stat().st_dev:
            return None
        st = os.lstat(spare)
    except FileNotFoundError:
        return spare
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return spare
    os.unlink(spare)
    return spare


Listing = tuple[set[str], dict[str, int]]  # a folder's folders, and its files' inodes


def _scan(folder: str, *, only_files: bool = False) -> Listing:
    """Every folder (`""` the top) and every other entry below `folder` (ending in "/"),
    with its inode; `only_files`: of the others, only regular files."""
    dirs: set[str] = {""}
    files: dict[str, int] = {}
    todo = [""]  # not recursive: a spare may be nested as deep as anyone made it
    while todo:
        rel = todo.pop()
        with os.scandir(folder + rel) as entries:
            for entry in entries:
                path = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    dirs.add(path)
                    todo.append(path)
                elif not only_files or entry.is_file(follow_symlinks=False):
                    files[path] = entry.inode()  # no system call: from the folder
    return dirs, files


def level(spare: Path, live: Path,
          tell: Callable[[Listing], None] | None = None) -> Listing | bool:
    """Make the spare hold what the live site holds, its files as hard links to the live
    ones (only those that are not already), and name what it holds then: the live site's
    folders and regular files; or `tell` them as soon as they are found, and say True once
    done (not sent twice). A build after a small edit finds the spare as good as its new
    site, and needs to look at nothing but the pages it made (see Level). Interrupted, it
    leaves a spare like any other, checked file by file by the next build."""
    to, of = f"{spare}/", f"{live}/"
    live_dirs, live_files = _scan(of, only_files=True)
    if tell is not None:
        tell((live_dirs, live_files))
    dirs, files = _scan(to)
    for rel in sorted(dirs - live_dirs, key=len):  # in the way of a file, or not in the site
        if rel in live_files:
            shutil.rmtree(to + rel)
    for rel in files.keys() - live_files.keys():
        with contextlib.suppress(FileNotFoundError):  # in a folder that went
            os.unlink(to + rel)
    for rel in sorted(dirs - live_dirs, key=len, reverse=True):
        shutil.rmtree(to + rel, ignore_errors=True)
    for rel in sorted(live_dirs - dirs, key=len):  # each after the folder it is in
        os.mkdir(to + rel)
    for rel, inode in live_files.items():
        if files.get(rel) != inode:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(to + rel)
            os.link(of + rel, to + rel, follow_symlinks=False)
    return True if tell is not None else (live_dirs, live_files)


def levelled_telling(spare: Path, live: Path, tell: Callable[[Listing], None]) -> bool:
    """`level` the spare, telling the live site's listing: whether it did (see
    Level.listing)."""
    return level(spare, live, tell) is True


@dataclass
class Level:
    """The spare being levelled with the live site (see `level`) by a forked process while
    the build reads and derives, under the build's turn (see `turn`), so that neither
    changes before the build writes: after a small edit, neither folder is scanned and no
    file of the live site looked at, but the few pages that changed."""

    spare: Path
    live: Path
    work: Background
    told_as: int = 0  # which news of the work is the live site's listing (see `level`)

    @staticmethod
    def plan(out: Path, spare: Path | None) -> tuple[Path, Path] | None:
        """The spare of `out` to level and the live site, when the next write will go
        through that spare (see _write_locked); None when it will not. A site with no spare
        yet (the first build made none: see _write_locked) gets an empty one, which the
        levelling makes from nothing. The caller holds the output folder's turn."""
        out = out.resolve()
        usable = _usable_spare(spare, out) if out.parent.is_dir() else None
        if usable is None or not (out / MARKER).is_file() or not can_fork():
            return None
        try:
            usable.mkdir(exist_ok=True)
        except OSError:
            return None
        return usable, out

    @classmethod
    def start(cls, out: Path, spare: Path | None) -> Level | None:
        """Level the spare of `out` (see `plan`), in a forked process."""
        planned = cls.plan(out, spare)
        if planned is None:
            return None
        return cls(*planned, Background(partial(levelled_telling, *planned), telling=True))

    def listing(self) -> Listing | None:
        """What the spare holds, as the live site: None if levelling it failed."""
        return self.live_listing() if self.work.wait() is True else None

    def live_listing(self) -> Listing | None:
        """What the live site holds (its folders, and its files' inodes), as soon as the
        levelling process has looked: long before a spare made from nothing is levelled."""
        found = self.work.told(self.told_as)
        return found if isinstance(found, tuple) else None

    def ready(self) -> bool:
        """Whether the spare is levelled: `listing` would not wait (a spare made from
        nothing, after a first build, takes longer than reading the portfolio)."""
        return self.work.done()

    def cancel(self) -> None:
        self.work.cancel()


class _Tree:
    """A folder being made into the new site: what it holds, and the changes that make each
    file the page it must be. A file there may be a hard link to the live site's file: it is
    never written into, only replaced. (Paths are strings: this runs for every page.) Given
    the `level` listing, the folder holds what the live site holds (see `level`)."""

    def __init__(self, folder: Path, live: Path | None, levelled: Listing | None = None) -> None:
        self.folder = f"{folder}/"
        self.live = f"{live}/" if live is not None else None
        self.dev = os.stat(folder).st_dev
        self.levelled = levelled is not None and live is not None
        self.dirs, self.files = levelled if levelled is not None else _scan(self.folder)
        self.wanted: set[str] = set()

    def _parent(self, rel: str) -> None:
        parent = rel.rpartition("/")[0]
        if parent in self.dirs:
            return
        self._parent(parent)
        if parent in self.files:
            os.unlink(self.folder + parent)
            del self.files[parent]
        os.mkdir(self.folder + parent)
        self.dirs.add(parent)

    def _clear(self, rel: str) -> str:
        """Make room for a new file at `rel`: what is there goes (a folder too)."""
        target = self.folder + rel
        if rel in self.dirs:
            shutil.rmtree(target)
            inside = f"{rel}/"
            self.dirs = {d for d in self.dirs if d != rel and not d.startswith(inside)}
            self.files = {f: ino for f, ino in self.files.items() if not f.startswith(inside)}
        elif self.files.pop(rel, None) is not None:
            os.unlink(target)
        return target

    def _is_live(self, rel: str, live: os.stat_result) -> bool:
        """The file here is the live site's (a hard link to the same one)."""
        return self.files.get(rel) == live.st_ino and live.st_dev == self.dev

    def put(self, page: Page) -> None:
        rel = _safe_rel(page.path)
        self.wanted.add(rel)
        if page.written:  # by another process, with its folders (see Direct)
            return
        if page.kept and self.levelled and rel in self.files:
            return  # the live site's file, linked here (see level)
        self._parent(rel)
        source = self.live + rel if self.live is not None else None
        live: os.stat_result | None = None
        if source is not None:
            try:
                live = os.lstat(source)
            except OSError:
                live = None
        if page.kept and (live is None or not stat.S_ISREG(live.st_mode)):
            raise CustsiteError(f"{rel} was to be kept from a site that is gone")
        if source is not None and live is not None and \
                (page.kept or _same_bytes(source, live, page.content)):
            if self._is_live(rel, live):
                return
            try:
                os.link(source, self._clear(rel), follow_symlinks=False)
                return
            except OSError:  # a file system without hard links: written below
                if page.kept:
                    raise
        with open(self._clear(rel), "xb") as f:  # a new file: never one the live site shares
            f.write(page.content)

    def keep(self, paths: tuple[str, ...]) -> None:
        """Each of these pages kept (see Page.kept). Those the levelled folder holds as the
        live site's files are only noted: the scan that named them found them inside it.
        Any other is put."""
        there = self.files.keys() & paths if self.levelled else set()
        self.wanted |= there
        for rel in paths:
            if rel not in there:
                self.put(Page(rel, b"", kept=True))

    def finish(self) -> None:
        """Remove what the new site does not have."""
        for rel in set(self.files) - self.wanted:
            os.unlink(self.folder + rel)
        needed = {""}
        for rel in self.wanted:
            while rel:
                rel = rel.rpartition("/")[0]
                if rel in needed:
                    break
                needed.add(rel)
        for rel in sorted(self.dirs - needed, key=len, reverse=True):
            os.rmdir(self.folder + rel)


def _same_bytes(path: str, st: os.stat_result, content: bytes) -> bool:
    if not stat.S_ISREG(st.st_mode) or st.st_size != len(content):
        return False
    try:
        with open(path, "rb") as f:
            return f.read() == content
    except OSError:
        return False


_MARKER_TEXT = b"generated by custsite; this folder is replaced on each build\n"


# Pages rendered at most, kept in memory while the spare is being levelled (see
# _while_levelling): all those of a build after an edit at 10,000 contacts (55 MB).
AHEAD_BYTES = 128 << 20


def _while_levelling(pages: Iterable[Page | KeptPages],
                     levelled: Level) -> Iterable[Page | KeptPages]:
    """The pages, those rendered while the spare is still being levelled taken first (up
    to AHEAD_BYTES): the build renders while the spare is made rather than wait for it.
    Made from nothing, the spare takes the second build longer than reading the portfolio
    does."""
    if levelled.ready():
        return pages
    made: list[Page | KeptPages] = []
    size = 0
    rest = iter(pages)
    for page in rest:
        made.append(page)
        size += len(page.content) if isinstance(page, Page) else 0
        if size > AHEAD_BYTES or levelled.ready():
            break
    return itertools.chain(made, rest)


def _write_locked(pages: Iterable[Page | KeptPages], out: Path, spare: Path | None,
                  direct: Direct | None = None, levelled: Level | None = None) -> int:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and
                                              not (out / MARKER).exists())):
        raise CustsiteError(f"{out} exists and was not made by custsite; refusing to replace "
                            "it (remove it or choose another output folder)")
    _clean_leftovers(out)
    old = out if (out / MARKER).is_file() else None
    if spare is not None and old is not None and spare.is_dir():
        tmp = spare  # brought up to date below; left as it is if this build fails
    else:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    fresh = tmp != spare
    # Without a previous site, no spare is made: a first build (a fresh clone in CI, say) is
    # often the only one, and making every folder twice was a tenth of its time; the next
    # build makes the spare while it reads (see Level).
    if direct is not None and fresh and old is None:
        direct.folder = str(tmp)  # the rendering processes write into it (see Direct)
    count = 0
    try:
        listing = None
        if levelled is not None and levelled.spare == tmp and levelled.live == old:
            pages = _while_levelling(pages, levelled)
            listing = levelled.listing()
        tree = _Tree(tmp, old, listing)
        for page in itertools.chain(pages, [Page(MARKER, _MARKER_TEXT)]):  # streamed
            if isinstance(page, KeptPages):
                tree.keep(page.paths)
                count += len(page.paths)
                continue
            tree.put(page)
            count += 1
        count -= 1  # the marker
        tree.finish()
        tmp.chmod(0o755)
        if out.exists() and _exchange(tmp, out):  # tmp now holds the old site
            if spare is None:
                shutil.rmtree(tmp, ignore_errors=True)
            elif fresh:
                shutil.rmtree(spare, ignore_errors=True)  # a file or an empty folder, if any
                os.replace(tmp, spare)
            return count
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "site")
        try:
            os.replace(tmp, out)
        except OSError:
            if old is not None:  # put the previous site back before reporting
                os.replace(old / "site", out)
            raise
        # The previous site, if any, is the next spare.
        if spare is not None and old is not None:
            shutil.rmtree(spare, ignore_errors=True)  # left by a build of no site
            with contextlib.suppress(OSError):
                os.replace(old / "site", spare)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if fresh:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count
