"""`custsite serve`: build, serve from memory, watch the sources, rebuild what changed, and
reload open pages.

After mkdocs' livereload: the site is served from an in-memory snapshot that a rebuild
replaces as a whole, so a request never sees a half-built site (requests wait while a build
runs); pages long-poll an epoch counter and reload when it moves; the reload script exists
only here, never in `custsite build` output. After lektor: when the records are broken, every
page shows the problems instead of stale content, and the next good save restores the site.
"""

from __future__ import annotations

import datetime as dt
import errno
import gc
import html
import http.server
import json
import logging
import mimetypes
import signal
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import click
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from .config import CONFIG_FILE, Paths, load_config
from .errors import CustsiteError
from .incremental import BuildReport, Session, SiteSnapshot
from .report import format_text
from .sources import _skipped, ignored

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.02  # editors' writes of one save come within a few milliseconds
MAX_PATH = 2048
LONG_POLL_SECONDS = 20.0
RELOAD_JS = b"""(function () {
  "use strict";
  var me = document.currentScript, epoch = Number(me.getAttribute("data-epoch"));
  function poll() {
    fetch("/__custsite/epoch?since=" + epoch, {cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(function (d) { if (d.epoch > epoch) { location.reload(); } else { poll(); } })
      .catch(function () { setTimeout(poll, 1000); });
  }
  poll();
}());
"""


class DevServer:
    """The shared state of the HTTP handlers and the watcher."""

    def __init__(self, root: Path, *, as_of: dt.date | None = None) -> None:
        self.root = root
        self.session = Session(root, as_of=as_of)
        self.changed = threading.Condition()
        self.building = False
        self.report: BuildReport | None = None

    @property
    def paths(self) -> Paths:
        derived = self.session.derived
        return derived.config.paths if derived else load_config(self.root, []).paths

    def watched_dirs(self) -> list[Path]:
        p = self.paths
        return [self.root / d for d in (p.customers, p.organizations, p.interactions,
                                        p.personas, p.templates)]

    @property
    def snapshot(self) -> SiteSnapshot:
        return self.session.snapshot

    def rebuild(self, changed: list[str] | None = None) -> BuildReport:
        start = time.perf_counter()
        with self.changed:
            self.building = True
        try:
            if self.session.needs_full(changed):
                gc.unfreeze()  # what a full rebuild drops may be collected again
            report = self.session.rebuild(changed)
            # Millions of objects stay alive between rebuilds: kept out of the collector's
            # passes, a full collection costs milliseconds instead of a second at 10,000
            # contacts, and never lands between a save and the page that shows it.
            gc.freeze()
        finally:
            with self.changed:
                self.building = False
                self.changed.notify_all()
        if self.report is None or report.epoch != self.report.epoch:
            self.report = report  # a save signalled twice must not hide what the build did
        # The pages left for later, while requests are answered (one may render its own first).
        late = self.session.finish()
        gc.freeze()
        if late is not None:
            self.report = report = late
            with self.changed:
                self.changed.notify_all()  # open pages reload into the error page
        elif report is self.report:
            self.report = report = replace(report, finished=time.perf_counter() - start)
        return report

    def wait_for_build(self, timeout: float = 60.0) -> SiteSnapshot:
        """The snapshot once no build is running (a request never sees a build half-done)."""
        with self.changed:
            self.changed.wait_for(lambda: not self.building, timeout=timeout)
            return self.session.snapshot

    def wait_for_epoch(self, since: int, timeout: float) -> int:
        with self.changed:
            self.changed.wait_for(lambda: self.session.snapshot.epoch > since, timeout=timeout)
            return self.session.snapshot.epoch


def site_path(raw: str) -> str | None:
    """The file a request path names inside the site, or None when it must be refused:
    encoded or plain `..`, backslashes, NUL bytes, absolute or overlong paths."""
    if len(raw) > MAX_PATH or raw.startswith("//"):
        return None
    path = unquote(urlsplit(raw).path)
    if "\x00" in path or "\\" in path or not path.startswith("/"):
        return None
    parts = PurePosixPath(path).parts[1:]
    if any(part in ("..", ".") or part.startswith("/") for part in parts):
        return None
    rel = "/".join(parts)
    if path.endswith("/") or rel == "":
        rel = f"{rel}/index.html" if rel else "index.html"
    return rel


def error_page(snapshot: SiteSnapshot, root: Path) -> bytes:
    """Every page while the records are broken: the problems, where they are, and how to fix
    them."""
    items = []
    for p in snapshot.problems:
        items.append(
            f'<li><code class="where">{html.escape(str(p.location))}</code> '
            f'<span class="sev">{p.severity.value}</span> {html.escape(p.message)} '
            f"<code>[{html.escape(p.code)}]</code></li>")
    detail = html.escape(format_text(list(snapshot.problems), root))
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>custsite: the site cannot be built</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;"
        "line-height:1.5}h1{color:#b42318}li{margin:.5rem 0}pre{background:#f4f4f5;"
        "padding:1rem;overflow:auto}.where{font-weight:600}.sev{color:#b42318}</style>"
        "</head><body><main><h1>The site cannot be built</h1>"
        f"<p>{len(snapshot.problems)} problem(s) in the records. Fix them and save: this page "
        "reloads by itself.</p>"
        f"<ul id=\"problems\">{''.join(items)}</ul><h2>Details</h2><pre>{detail}</pre>"
        "</main></body></html>").encode()


def with_reload(body: bytes, epoch: int) -> bytes:
    tag = (f'<script src="/__custsite/livereload.js" data-epoch="{epoch}" defer></script>'
           "</body>").encode()
    head, sep, tail = body.rpartition(b"</body>")
    return head + tag + tail if sep else body + tag


def make_handler(server: DevServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "custsite"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

        def _send(self, status: int, body: bytes, content_type: str,
                  extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            raw = self.path
            if raw.startswith("/__custsite/"):
                self._internal(raw)
                return
            rel = site_path(raw)
            if rel is None:
                self._send(400, b"bad request path\n", "text/plain; charset=utf-8")
                return
            snapshot = server.wait_for_build()
            if snapshot.problems and (rel.endswith(".html") or rel not in snapshot.files):
                body = with_reload(error_page(snapshot, server.root), snapshot.epoch)
                self._send(500, body, "text/html; charset=utf-8")
                return
            body_or_none = snapshot.files.get(rel)
            if body_or_none is None:
                if f"{rel}/index.html" in snapshot.files:
                    self._send(301, b"", "text/plain", {"Location": f"/{rel}/"})
                    return
                body = snapshot.files.get("404.html", b"not found\n")
                self._send(404, with_reload(body, snapshot.epoch), "text/html; charset=utf-8")
                return
            content_type = mimetypes.guess_type(rel)[0] or "application/octet-stream"
            if content_type.startswith("text/") or content_type in ("application/json",
                                                                    "image/svg+xml"):
                content_type += "; charset=utf-8"
            if rel.endswith(".html"):
                body_or_none = with_reload(body_or_none, snapshot.epoch)
            self._send(200, body_or_none, content_type)

        def _internal(self, raw: str) -> None:
            url = urlsplit(raw)
            if url.path == "/__custsite/livereload.js":
                self._send(200, RELOAD_JS, "text/javascript; charset=utf-8")
            elif url.path == "/__custsite/epoch":
                try:
                    since = int(parse_qs(url.query).get("since", ["0"])[0])
                except ValueError:
                    since = 0
                epoch = server.wait_for_epoch(since, LONG_POLL_SECONDS)
                self._send(200, json.dumps({"epoch": epoch}).encode(), "application/json")
            elif url.path == "/__custsite/status":
                self._send(200, json.dumps(status(server)).encode(), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")

    return Handler


def status(server: DevServer) -> dict[str, Any]:
    """The last build's report, for people and for tests."""
    r = server.report
    if r is None:
        return {"epoch": 0}
    return {"epoch": r.epoch, "ok": r.ok, "full": r.full, "seconds": round(r.seconds, 4),
            "finished": None if r.finished is None else round(r.finished, 4),
            "changed": None if r.changed is None else list(r.changed),
            "parsed": list(r.parsed), "rendered": list(r.rendered), "removed": list(r.removed),
            "problems": [p.format() for p in r.problems]}


class _Watcher(FileSystemEventHandler):
    """Collects relevant changes and rebuilds once they have settled for a moment."""

    def __init__(self, server: DevServer, on_report: Callable[[BuildReport], None],
                 observer: Any) -> None:
        self.server = server
        self.on_report = on_report
        self.observer = observer
        self.watched: set[Path] = set()
        self.pending: set[str] = set()
        self.writing: set[str] = set()  # files modified and not closed yet (inotify only)
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="custsite-rebuild", daemon=True)
        self.thread.start()

    def relevant(self, path: str) -> str | None:
        try:
            rel = Path(path).resolve().relative_to(self.server.root.resolve()).as_posix()
        except (ValueError, OSError):
            return None
        if rel == CONFIG_FILE:
            return rel
        parts = rel.split("/")
        if any(_skipped(p) for p in parts[:-1]) or ignored(parts[-1]):
            return None
        paths = self.server.paths
        if rel == paths.output or rel.startswith((paths.output + "/", paths.cache + "/")):
            return None
        watched = (paths.customers, paths.organizations, paths.interactions, paths.personas,
                   paths.templates)
        return rel if any(rel == w or rel.startswith(w.rstrip("/") + "/") for w in watched) \
            else None

    def watch(self, folder: Path) -> None:
        if folder.is_dir() and folder not in self.watched:
            self.watched.add(folder)
            self.observer.schedule(self, str(folder), recursive=True)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.is_directory and event.event_type == "modified":
            # A folder "changes" whenever a file in it does: that file has its own event,
            # and naming the whole folder would make the rebuild look at every file in it.
            return
        if event.is_directory and event.event_type == "created":
            created = Path(str(event.src_path))
            if created in self.server.watched_dirs():
                self.watch(created)
        paths = (event.src_path, getattr(event, "dest_path", ""))
        found = {rel for p in paths if p and (rel := self.relevant(str(p)))}
        if not found:
            return
        with self.lock:
            if event.event_type in ("modified", "created") and not event.is_directory:
                self.writing.update(found)
            elif event.event_type == "closed":
                self.writing.difference_update(found)
                if found <= self.pending:
                    self.wake.set()  # the write is complete: no need to wait longer
                    return
            else:  # moved or deleted: done at once
                self.writing.difference_update(found)
            self.pending.update(found)
        self.wake.set()

    def _run(self) -> None:
        while not self.stopped:
            self.wake.wait()
            if self.stopped:
                return
            # Debounce: editors write a file in several steps; wait until they are done,
            # which a file's "closed" event says at once (the polling observer has none).
            while True:
                self.wake.clear()
                with self.lock:
                    if not self.writing:
                        break
                if not self.wake.wait(DEBOUNCE_SECONDS):
                    with self.lock:  # settled: e.g. a file its writer keeps open
                        self.writing.clear()
                    break
            with self.lock:
                changed, self.pending = sorted(self.pending), set()
            try:
                self.on_report(self.server.rebuild(changed))
            except Exception:  # the server must survive anything a rebuild throws
                log.exception("rebuild failed")

    def stop(self) -> None:
        self.stopped = True
        self.wake.set()


def _describe(report: BuildReport) -> str:
    if not report.ok:
        return (f"build failed: {len(report.problems)} problem(s); the pages show them "
                f"({report.seconds:.2f} s)")
    later = "" if report.finished is None or report.full else \
        f", the last in {report.finished:.2f} s"
    return (f"rebuilt in {report.seconds:.2f} s: {len(report.parsed)} file(s) read, "
            f"{len(report.rendered)} page(s) rendered" + (" (everything)" if report.full else "")
            + later)


def serve(root: Path, *, host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False,
          poll: bool = False, as_of: dt.date | None = None,
          echo: Callable[[str], None] = click.echo) -> None:
    """Build, serve and watch until interrupted (Ctrl-C or SIGTERM)."""
    server = DevServer(root, as_of=as_of)

    def on_report(r: BuildReport) -> None:
        if not r.ok:
            echo(format_text(list(r.problems), root))
        echo(_describe(r))

    # Watch before the first build, so that a save during it is not missed.
    observer = PollingObserver(timeout=0.5) if poll else Observer()
    watcher = _Watcher(server, on_report, observer)
    # The root itself without recursion (custsite.yaml, folders created later), and each
    # source folder with it: never the output, the cache, .git or a virtualenv.
    observer.schedule(watcher, str(root), recursive=False)
    for folder in server.watched_dirs():
        watcher.watch(folder)
    observer.start()
    try:
        on_report(server.rebuild(None))
        httpd = http.server.ThreadingHTTPServer((host, port), make_handler(server))
    except OSError as exc:
        watcher.stop()
        observer.stop()
        if exc.errno == errno.EADDRINUSE:
            raise CustsiteError(f"port {port} on {host} is already in use: stop the other "
                                "server, choose another with --port, or use --port 0 for a "
                                "free one") from exc
        raise CustsiteError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    httpd.daemon_threads = True
    # Stopping must not wait for requests: an open page's long poll lasts up to 20 s.
    httpd.block_on_close = False
    url = f"http://{host}:{httpd.server_address[1]}/"
    echo(f"serving {root.resolve()} on {url} (Ctrl-C to stop)")
    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return: call it from another thread.
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    # Ctrl-C too, handled here: a server started in the background inherits SIGINT ignored.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    if open_browser:
        webbrowser.open(url)
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        watcher.stop()
        observer.stop()
        observer.join(timeout=5)
        httpd.server_close()
        echo("stopped")
