"""Writing the site so that it is never half-written: build beside it, then swap it in.

The new site is written into a hidden folder next to the output folder, then exchanged with
the old one in a single step (Linux `renameat2(RENAME_EXCHANGE)`), so that whenever the
process dies, `site/` is the complete old site or the complete new one. Where the exchange is
not available, two renames are used, with the old site put back if the second fails. Builds
of one output folder take turns (a lock on its parent folder), and leftovers of killed builds
are removed by the next one. A file whose bytes are those of the previous site is a hard link
to it rather than written again.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from .errors import CustsiteError
from .render import Page

# Written into every generated site; a folder without it is never deleted or replaced.
MARKER = ".custsite-site"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _safe_target(out: Path, rel: str) -> Path:
    """Refuse any page path that would leave the output folder."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or "\\" in rel:
        raise CustsiteError(f"refusing to write '{rel}' outside the site folder")
    return out.joinpath(*pure.parts)


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


@contextlib.contextmanager
def _turn(folder: Path) -> Iterator[None]:
    """One build at a time per output folder: an advisory lock on its parent folder."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _clean_leftovers(out: Path) -> None:
    for leftover in out.parent.glob(f".{out.name}.new-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in out.parent.glob(f".{out.name}.old-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _link_same(old: Path, new: Path, content: bytes) -> bool:
    """Link `new` to the previous site's file when that holds these very bytes: only files
    whose bytes changed are written (cheaper for the disk, and their times tell a deploy
    tool what changed). False when it cannot, and nothing was done."""
    try:
        st = os.lstat(old)
        if not stat.S_ISREG(st.st_mode) or st.st_size != len(content) or \
                old.read_bytes() != content:
            return False
        os.link(old, new, follow_symlinks=False)
    except OSError:  # gone, unreadable, or a file system without hard links
        return False
    return True


def write_site(pages: Iterable[Page], out: Path, *, root: Path) -> int:
    """Write every page into a fresh folder next to `out`, then swap it in for `out`."""
    out = out.resolve()
    root = root.resolve()
    if out == root or root.is_relative_to(out):
        raise CustsiteError(f"the output folder {out} would contain the portfolio itself; "
                            "choose another one")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with _turn(out.parent):
            return _write_locked(pages, out)
    except OSError as exc:
        raise CustsiteError(f"cannot write the site into {out}: {exc.strerror or exc}") from exc


def _write_locked(pages: Iterable[Page], out: Path) -> int:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and
                                              not (out / MARKER).exists())):
        raise CustsiteError(f"{out} exists and was not made by custsite; refusing to replace "
                            "it (remove it or choose another output folder)")
    _clean_leftovers(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    old = out if (out / MARKER).is_file() else None
    count = 0
    try:
        for page in pages:
            target = _safe_target(tmp, page.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if page.kept:
                if old is None:
                    raise CustsiteError(f"{page.path} was to be kept from a site that is gone")
                os.link(_safe_target(old, page.path), target, follow_symlinks=False)
            elif old is None or not _link_same(_safe_target(old, page.path), target,
                                               page.content):
                target.write_bytes(page.content)
            count += 1
        (tmp / MARKER).write_text("generated by custsite; this folder is replaced on each "
                                  "build\n", encoding="utf-8")
        tmp.chmod(0o755)
        if out.exists() and _exchange(tmp, out):
            shutil.rmtree(tmp, ignore_errors=True)  # now holds the old site
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
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count
