"""`custsite new`: write a valid new record with a free, readable id. It only ever creates
files, never changes one."""

from __future__ import annotations

import datetime as dt
import os
import re
import unicodedata
from pathlib import Path
from typing import Any

import yaml

from .config import Config
from .errors import CustsiteError
from .fields import ID_RE
from .model import INTERACTION_KINDS


def slug(text: str) -> str:
    """A readable id from a name: 'Zoë O'Neill' → 'zoe-o-neill'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return cleaned[:60].rstrip("-") or "record"


def free_id(folder: Path, base: str) -> str:
    """`base`, or `base-2`, `base-3` ... whichever no record file uses yet."""
    n = 1
    candidate = base
    while any((folder / f"{candidate}{suffix}").exists() for suffix in (".yaml", ".yml", ".md")):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _yaml(fields: dict[str, Any]) -> str:
    """YAML that every tool reads the same way: PyYAML quotes NO, 0612, 1:20 and the like."""
    return yaml.safe_dump(fields, sort_keys=False, allow_unicode=True, width=100)


def _modeline(config: Config, kind: str, path: Path) -> str:
    """The yaml-language-server line, when `custsite schema --write` has written the schema:
    editors then complete and check the fields while typing."""
    schema = config.root / "schemas" / f"{kind}.schema.json"
    if not schema.is_file():
        return ""
    rel = os.path.relpath(schema, path.parent).replace(os.sep, "/")
    return f"# yaml-language-server: $schema={rel}\n"


def _create(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as f:  # "x": never overwrite
            f.write(text)
    except FileExistsError as exc:
        raise CustsiteError(f"{path} already exists; nothing was written") from exc
    return path


def new_customer(config: Config, name: str, *, organization: str | None = None,
                 email: str | None = None, kind: str = "person") -> Path:
    folder = config.root / config.paths.customers
    rid = free_id(folder, slug(name))
    fields: dict[str, Any] = {"name": name}
    if kind != "person":
        fields["kind"] = kind
    if organization:
        if not ID_RE.match(organization):
            raise CustsiteError(f"'{organization}' is not an organization id")
        fields["organization"] = organization
    if email:
        fields["email"] = email
    fields["created"] = dt.date.today()
    path = folder / f"{rid}.yaml"
    return _create(path, _modeline(config, "customer", path) + _yaml(fields))


def new_organization(config: Config, name: str) -> Path:
    folder = config.root / config.paths.organizations
    path = folder / f"{free_id(folder, slug(name))}.yaml"
    return _create(path, _modeline(config, "organization", path) + _yaml({"name": name}))


def new_interaction(config: Config, customer: str, *, kind: str, summary: str | None,
                    date: dt.date) -> Path:
    if kind not in INTERACTION_KINDS:
        raise CustsiteError(f"unknown kind '{kind}'; kinds are {', '.join(INTERACTION_KINDS)}")
    if not ID_RE.match(customer):
        raise CustsiteError(f"'{customer}' is not a customer id")
    folder = config.root / config.paths.interactions / str(date.year)
    rid = free_id(folder, f"{date.isoformat()}-{customer}-{kind}")
    fields: dict[str, Any] = {"customer": customer, "date": date, "kind": kind}
    if summary:
        fields["summary"] = summary
    if kind == "purchase":
        fields["amount"] = 0
    body = "Notes about this interaction, in Markdown.\n"
    return _create(folder / f"{rid}.md", f"---\n{_yaml(fields)}---\n{body}")


def new_persona(config: Config, name: str) -> Path:
    folder = config.root / config.paths.personas
    rid = free_id(folder, slug(name))
    fields: dict[str, Any] = {
        "name": name,
        "headline": "One sentence: who they are and what they want.",
        "profile": {"age": "30–50", "job": "to describe", "income": "to describe"},
        "goals": ["What they want to achieve"],
        "pains": ["What gets in their way"],
        "channels": ["Where to find them"],
        "match": {"kind": "person"},
    }
    text = _yaml(fields)
    story = (f"{name}'s story: a day in their life, the problem that makes them look for us, "
             "and what convinces them.\n")
    return _create(folder / f"{rid}.md", f"---\n{text}---\n{story}")
