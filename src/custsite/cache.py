"""The cache folder (`.custsite-cache/` by default): results worth keeping between builds.

Everything here is safe to delete and never trusted blindly: each entry's key holds what it
was computed from, including the version of the computation, so a changed portfolio or a new
custsite simply misses. A cache that cannot be read or written is ignored, never an error:
the build computes again.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from .config import Config

log = logging.getLogger(__name__)

FITS_FILE = "lifetime-fits.json"
MAX_FITS = 8  # the fits of the last few versions of the records are enough to go back


class FitStore(dict[str, str]):
    """Lifetime model fits by the key of the histories they were made from (see
    lifetime.fit), read from and saved to the cache folder."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict):
            self.update({k: v for k, v in data.items()
                         if isinstance(k, str) and isinstance(v, str)})
        self.saved = dict(self)

    def save(self) -> None:
        """Write the newest entries if anything was added; failures only log."""
        if dict(self) == self.saved:
            return
        keep = dict(list(self.items())[-MAX_FITS:])  # insertion order: the newest last
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".fits-")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(keep, out)
            os.replace(tmp, self.path)
            self.saved = keep
        except OSError as exc:
            log.debug("cannot write the cache %s: %s", self.path, exc)
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)


def fit_store(config: Config) -> FitStore:
    return FitStore(config.root / config.paths.cache / FITS_FILE)
