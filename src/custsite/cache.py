"""The cache folder (`.custsite-cache/` by default): results worth keeping between builds.

Everything here is safe to delete and never trusted blindly: each entry's key holds what it
was computed from, including the version of the computation, so a changed portfolio or a new
custsite simply misses. A cache that cannot be read or written is ignored, never an error:
the build computes again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .config import Config

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
        """Write the newest entries if anything was added; failures only log."""
        if dict(self) == self.saved:
            return
        keep = dict(list(self.items())[-MAX_FITS:])  # insertion order: the newest last
        if write_json(self.path, keep):
            self.saved = keep


def fit_store(config: Config) -> FitStore:
    return FitStore(config.root / config.paths.cache / FITS_FILE)


def write_json(path: Path, data: object) -> bool:
    """Write atomically (a temporary file renamed over the old one); False on failure."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False, separators=(",", ":"))
        os.chmod(tmp, 0o644)  # as any file the build writes (mkstemp makes it private)
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
    upgrade starts afresh; only the notes of the last build are kept."""

    def __init__(self, path: Path, render: Callable[[str], str]) -> None:
        self.path = path
        self.render = render
        self.known = _texts(read_json(path))
        self.used: dict[str, str] = {}

    def html(self, text: str) -> str:
        key = hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
        found = self.used.get(key)
        if found is None:
            found = self.known.get(key)
            if found is None:
                found = self.render(text)
            self.used[key] = found
        return found

    def since(self, before: set[str]) -> tuple[dict[str, str], list[str]]:
        """What this store used beyond the keys `before`: the notes it rendered and the keys
        of the cached ones it used; a rendering process hands them to the parent's store."""
        fresh = [k for k in self.used if k not in before]
        return ({k: self.used[k] for k in fresh if k not in self.known},
                [k for k in fresh if k in self.known])

    def merge(self, rendered: dict[str, str], reused: list[str]) -> None:
        """Take in what another process's copy of this store used (see `since`)."""
        self.used.update(rendered)
        for key in reused:
            self.used[key] = self.known[key]

    def save(self) -> None:
        """Keep the notes of this build (if any was new or any is gone)."""
        if self.used.keys() != self.known.keys() and write_json(self.path, self.used):
            self.known = dict(self.used)


def note_store(config: Config, render: Callable[[str], str], version: str) -> NoteStore:
    return NoteStore(config.root / config.paths.cache / f"notes-{version}.json", render)
