"""The command line: parses options and calls the library, nothing else."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import click

from . import __version__
from .build import build as build_site
from .build import check, leave_to_exit, with_changes
from .config import Config, load_config
from .errors import Problem, Severity, TemplateFailed, ValidationFailed
from .model import INTERACTION_KINDS
from .report import format_github, format_json, format_sarif, format_text

AS_OF = click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
                     help="The date the build reasons about (default: as_of in custsite.yaml, "
                          "then SOURCE_DATE_EPOCH, then today).")
STRICT = click.option("--strict", is_flag=True, help="Fail on warnings too.")


def _day(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


def run() -> None:
    """The console entry point. It leaves without tearing the interpreter down: after a large
    build, freeing millions of objects one by one takes seconds that nothing needs (mypy
    exits the same way). Output is flushed first; an unexpected exception still shows."""
    from . import build as building

    building.LEFT_TO_EXIT = []  # nothing a command made is freed before the exit below
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    else:  # pragma: no cover - click's standalone mode always exits
        code = 0
    if isinstance(code, str):
        click.echo(code, err=True)
    status = code if isinstance(code, int) else (0 if code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="custsite")
@click.option("-C", "--directory", "root", type=click.Path(file_okay=False, path_type=Path),
              default=".", show_default=True, help="The portfolio's root folder.")
@click.pass_context
def main(ctx: click.Context, root: Path) -> None:
    """Validate plain-text customer records and render them as a static site."""
    if not root.is_dir():
        raise click.BadParameter(f"{root} is not a folder", param_hint="-C/--directory")
    ctx.obj = root


@main.command()
@AS_OF
@STRICT
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github", "sarif"]),
              default=None, help="Output format: text (default), json, github (workflow "
                                 "annotations; the default when GITHUB_ACTIONS=true) or sarif.")
@click.option("--changed-since", "since", metavar="REV", default=None,
              help="Report only problems in files changed since git revision REV (and new or "
                   "uncommitted files); references are still checked against everything.")
@click.pass_obj
def validate(root: Path, as_of: dt.datetime | None, strict: bool, fmt: str | None,
             since: str | None) -> None:
    """Check every record and report every problem; exit 1 on errors."""
    if fmt is None:
        fmt = "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"
    result = check(root, as_of=_day(as_of), problems_only=True)
    leave_to_exit(result)
    if since is not None:
        from .gitinfo import changed_files

        touched = changed_files(root, since)
        result = replace(result, problems=[p for p in result.problems
                                           if p.location.path in touched])
    if fmt == "json":
        click.echo(format_json(result.problems))
    elif fmt == "sarif":
        click.echo(format_sarif(result.problems))
    elif fmt == "github":
        if result.problems:
            click.echo(format_github(result.problems))
    elif result.problems:
        click.echo(format_text(result.problems, root), err=result.failed(strict=strict))
    else:
        n = len(result.derived.portfolio.customers)
        click.echo(f"{n} contacts, {len(result.derived.portfolio.interactions)} interactions: "
                   "no problems")
    if result.failed(strict=strict):
        raise SystemExit(1)


@main.command()
@AS_OF
@STRICT
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: paths.output in custsite.yaml, i.e. site/).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Processes that render pages (default: one per core).")
@click.pass_obj
def build(root: Path, as_of: dt.datetime | None, strict: bool, output: Path | None,
          jobs: int | None) -> None:
    """Validate the records, then write the site; on any error the old site stays."""
    start = time.perf_counter()
    try:
        result = build_site(root, as_of=_day(as_of), strict=strict, output=output, jobs=jobs)
    except ValidationFailed as exc:
        click.echo(format_text(exc.problems, root), err=True)
        raise
    except TemplateFailed as exc:
        click.echo(format_text([exc.problem], root), err=True)
        raise
    if result.problems:
        click.echo(format_text(result.problems, root), err=True)
    seconds = time.perf_counter() - start
    if result.fresh:
        click.echo(f"nothing changed since the last build: {result.output} already holds the "
                   f"{result.files} files for {result.contacts} contacts "
                   f"({seconds:.2f} s, as of {result.as_of})")
    else:
        click.echo(f"built {result.files} files for {result.contacts} contacts into "
                   f"{result.output} in {seconds:.2f} s (as of {result.as_of})")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; the default answers this machine only.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on; 0 picks a free one and prints it.")
@click.option("--open", "open_browser", is_flag=True, help="Open the site in a web browser.")
@click.option("--poll", is_flag=True,
              help="Watch by polling the files (for network mounts and containers where "
                   "file system events do not arrive).")
@AS_OF
@click.pass_obj
def serve(root: Path, host: str, port: int, open_browser: bool, poll: bool,
          as_of: dt.datetime | None) -> None:
    """Build, serve on 127.0.0.1 and rebuild what changed on every save; pages reload."""
    from .serve import serve as run_server

    run_server(root, host=host, port=port, open_browser=open_browser, poll=poll,
               as_of=_day(as_of))


@main.command()
@AS_OF
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.pass_obj
def stats(root: Path, as_of: dt.datetime | None, fmt: str) -> None:
    """Print the funnel, stage counts, segment sizes and revenue."""
    from .stats import stats_json, stats_text

    result = check(root, as_of=_day(as_of))
    if result.failed():
        click.echo(format_text(result.problems, root), err=True)
        raise SystemExit(1)
    click.echo(stats_json(result.derived) if fmt == "json" else stats_text(result.derived))


@main.command()
@AS_OF
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "sqlite"]), required=True,
              help="json: one file; csv: a folder of contacts.csv, organizations.csv and "
                   "interactions.csv; sqlite: one database.")
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), required=True,
              help="The file (json, sqlite) or folder (csv) to write.")
@click.pass_obj
def export(root: Path, as_of: dt.datetime | None, fmt: str, output: Path) -> None:
    """Write the computed portfolio for analysis: contacts, organizations, interactions."""
    from .export import export as write_export

    result = check(root, as_of=_day(as_of))
    if result.failed():
        click.echo(format_text(result.problems, root), err=True)
        raise SystemExit(1)
    for path in write_export(with_changes(result), fmt, output):
        click.echo(f"wrote {path}")


@main.group()
def new() -> None:
    """Write a new, valid record with a free id and print its path."""


def _config(root: Path) -> Config:
    problems: list[Problem] = []
    config = load_config(root, problems)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if errors:
        click.echo(format_text(errors, root), err=True)
        raise SystemExit(1)
    return config


@new.command("customer")
@click.argument("name")
@click.option("--organization", help="Id of the contact's organization.")
@click.option("--email", help="The contact's e-mail address.")
@click.option("--company", is_flag=True, help="The contact is itself a company (kind: company).")
@click.pass_obj
def new_customer(root: Path, name: str, organization: str | None, email: str | None,
                 company: bool) -> None:
    """A new contact named NAME."""
    from .scaffold import new_customer as make

    path = make(_config(root), name, organization=organization, email=email,
                kind="company" if company else "person")
    click.echo(path.relative_to(root))


@new.command("organization")
@click.argument("name")
@click.pass_obj
def new_organization(root: Path, name: str) -> None:
    """A new organization named NAME."""
    from .scaffold import new_organization as make

    click.echo(make(_config(root), name).relative_to(root))


@new.command("interaction")
@click.argument("customer")
@click.option("--kind", type=click.Choice(INTERACTION_KINDS), default="note", show_default=True,
              help="What happened.")
@click.option("--summary", help="One line: the timeline title.")
@click.option("--date", "when", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="When it happened (default: today).")
@click.pass_obj
def new_interaction(root: Path, customer: str, kind: str, summary: str | None,
                    when: dt.datetime | None) -> None:
    """A new interaction with the customer whose id is CUSTOMER."""
    from .scaffold import new_interaction as make

    day = when.date() if when else dt.date.today()
    click.echo(make(_config(root), customer, kind=kind, summary=summary,
                    date=day).relative_to(root))


@new.command("persona")
@click.argument("name")
@click.pass_obj
def new_persona(root: Path, name: str) -> None:
    """A new buyer persona named NAME, with a skeleton to fill in."""
    from .scaffold import new_persona as make

    click.echo(make(_config(root), name).relative_to(root))


SCHEMA_KINDS = ("customer", "organization", "interaction", "persona")


@main.command()
@click.argument("kind", type=click.Choice(SCHEMA_KINDS), required=False)
@click.option("--write", is_flag=True,
              help="Write schemas/<kind>.schema.json for every kind into the portfolio, for "
                   "editors (custsite new then adds the yaml-language-server line).")
@click.pass_obj
def schema(root: Path, kind: str | None, write: bool) -> None:
    """Print the JSON Schema (draft 2020-12) of a record kind, or of all of them."""
    import json

    from .records import record_schemas

    schemas = record_schemas(_config(root))
    if write:
        folder = root / "schemas"
        folder.mkdir(exist_ok=True)
        for name, doc in schemas.items():
            target = folder / f"{name}.schema.json"
            target.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            click.echo(target.relative_to(root))
        return
    click.echo(json.dumps(schemas[kind] if kind else schemas, indent=2))


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Create a new portfolio in DIRECTORY: config, a small sample, CI workflow, pre-commit."""
    from .init import init as make

    for path in make(directory):
        click.echo(f"created {path}")
    click.echo(f"next: cd {directory} && custsite validate && custsite serve")


@main.command()
@click.argument("base")
@click.argument("head", default="HEAD")
@AS_OF
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True, help="Output format.")
@click.pass_obj
def diff(root: Path, base: str, head: str, as_of: dt.datetime | None, fmt: str) -> None:
    """What changed between git revisions BASE and HEAD: contacts, stage moves, segments,
    revenue (read from git, not from the work tree)."""
    from .diff import portfolio_diff, to_json, to_markdown

    result = portfolio_diff(root, base, head, as_of=_day(as_of))
    click.echo(to_json(result) if fmt == "json" else to_markdown(result))
