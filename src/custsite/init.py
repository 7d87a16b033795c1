"""`custsite init DIR`: a new portfolio with a small sample, git ignores, a CI workflow and a
pre-commit configuration. It never overwrites a file."""

from __future__ import annotations

import json
from pathlib import Path

from . import __version__
from .errors import CustsiteError

CONFIG = """\
# custsite configuration: every key is optional. See the README of custsite.
title: Our customers
currency: EUR
default_region: FR
segments:
  big-accounts:
    title: Big accounts
    description: Buyers who spent at least 10,000.
    where:
      revenue: {gte: 10000}
"""

SAMPLE = {
    "records/organizations/acme.yaml": "name: ACME Roofing\nsector: construction\n"
                                       "website: https://acme.example.com\n",
    "records/customers/jane-doe.yaml": 'name: Jane Doe\norganization: acme\nrole: decision-maker\n'
                                       'email: jane.doe@example.com\nphone: "+33 6 12 34 56 78"\n'
                                       "tags: [newsletter]\n",
    "records/customers/john-smith.md": "---\nname: John Smith\nemail: john@example.com\n"
                                       "location: {city: Lyon, country: FR}\n---\n"
                                       "Met at the spring fair; wants a quote in June.\n",
    "records/interactions/2026.yaml": (
        "- customer: jane-doe\n  date: 2026-01-15\n  kind: meeting\n"
        "  summary: First visit\n  by: Sam\n"
        "- customer: jane-doe\n  date: 2026-02-03\n  kind: purchase\n  amount: 12500\n"
        "  product: Roof renovation\n  summary: Roof renovation\n"
        "- customer: john-smith\n  date: 2026-03-10\n  kind: email\n  direction: in\n"
        "  summary: Asked for a quote\n"),
    "personas/small-business-owner.md": (
        "---\nname: Small-business owner\nheadline: Runs a company of 5 to 50 people and "
        "decides alone.\nprofile:\n  company size: 5–50\n  role: owner\ngoals:\n"
        "  - Predictable costs\npains:\n  - No time for paperwork\nchannels: [trade fairs, "
        "LinkedIn]\nmatch:\n  b2b: true\n---\nThey sign quickly when the offer is clear.\n"),
}

GITIGNORE = "/site/\n/.custsite-cache/\n"

WORKFLOW = """\
# Written by custsite init. On pull requests: validates the records (annotations on the
# changed lines) and summarises what changes (custsite diff). On main: builds and uploads
# the site.
name: custsite
on:
  pull_request:
  push:
    branches: [main]
jobs:
  validate:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      # custsite from your package index or repository: adjust to how your team installs it.
      - run: pip install "custsite==VERSION"
      - run: custsite validate
      - name: What this pull request changes
        run: custsite diff "origin/${{ github.base_ref }}" HEAD >> "$GITHUB_STEP_SUMMARY"
  site:
    if: github.event_name == 'push'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - run: pip install "custsite==VERSION"
      - run: custsite build
      - uses: actions/upload-artifact@v4
        with:
          name: site
          path: site/
""".replace("VERSION", __version__)

PRE_COMMIT = """\
repos:
  - repo: local
    hooks:
      - id: custsite-validate
        name: custsite validate
        entry: custsite validate
        language: system
        pass_filenames: false
        files: ^(records/|personas/|templates/|custsite\\.yaml$)
"""


MODELINES = {"records/customers/": "customer", "records/organizations/": "organization",
             "records/interactions/": "interaction"}


def files(target: Path) -> dict[str, str]:
    """Every file of a new portfolio; YAML records start with the line that points editors
    to their JSON Schema (written under schemas/)."""
    from .config import Config
    from .records import record_schemas

    schemas = record_schemas(Config(root=target))
    out = {"custsite.yaml": CONFIG, ".gitignore": GITIGNORE,
           ".github/workflows/custsite.yml": WORKFLOW, ".pre-commit-config.yaml": PRE_COMMIT}
    out.update({f"schemas/{kind}.schema.json": json.dumps(doc, indent=2) + "\n"
                for kind, doc in schemas.items()})
    for rel, text in SAMPLE.items():
        kind = next((k for prefix, k in MODELINES.items() if rel.startswith(prefix)), None)
        if kind and rel.endswith(".yaml"):
            text = f"# yaml-language-server: $schema=../../schemas/{kind}.schema.json\n{text}"
        out[rel] = text
    return out


def init(target: Path) -> list[Path]:
    """Write the new portfolio; refuse, writing nothing, if any of its files exists."""
    planned = {target / rel: text for rel, text in files(target).items()}
    existing = sorted(str(p) for p in planned if p.exists())
    if existing:
        raise CustsiteError("refusing to overwrite existing files: " + ", ".join(existing))
    for path, text in planned.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as f:
            f.write(text)
    return sorted(planned)
