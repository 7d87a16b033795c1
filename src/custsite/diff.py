"""`custsite diff BASE [HEAD]`: what changed in the computed portfolio between two git
revisions, as Markdown for a pull-request comment or as JSON."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from .build import check
from .config import load_config, source_date
from .data import json_default
from .derive import Derived
from .errors import Severity
from .gitinfo import export_revision
from .insights import revenue_by_currency
from .render import money


def compare(base: Derived, head: Derived) -> dict[str, Any]:
    before, after = base.contacts, head.contacts
    moves: dict[str, list[str]] = defaultdict(list)
    for cid in sorted(before.keys() & after.keys()):
        if before[cid].stage != after[cid].stage:
            moves[f"{before[cid].stage} → {after[cid].stage}"].append(cid)
    segments = {}
    for sid in sorted(base.segments.keys() | head.segments.keys()):
        old = set(base.segments[sid].members) if sid in base.segments else set()
        new = set(head.segments[sid].members) if sid in head.segments else set()
        if old != new:
            title = (head.segments.get(sid) or base.segments[sid]).title
            segments[sid] = {"title": title, "joined": sorted(new - old),
                             "left": sorted(old - new)}
    old_revenue, new_revenue = revenue_by_currency(base), revenue_by_currency(head)
    revenue = {cur: {"base": old_revenue.get(cur, Decimal(0)),
                     "head": new_revenue.get(cur, Decimal(0)),
                     "change": new_revenue.get(cur, Decimal(0)) - old_revenue.get(cur, Decimal(0))}
               for cur in sorted(old_revenue.keys() | new_revenue.keys())}
    names = {cid: c.customer.name for cid, c in {**before, **after}.items()}
    return {
        "contacts": {"base": len(before), "head": len(after)},
        "added": [{"id": c, "name": names[c], "stage": after[c].stage}
                  for c in sorted(after.keys() - before.keys())],
        "removed": [{"id": c, "name": names[c], "stage": before[c].stage}
                    for c in sorted(before.keys() - after.keys())],
        "moves": dict(sorted(moves.items())),
        "segments": segments,
        "revenue": revenue,
        "names": names,
    }


def portfolio_diff(root: Path, base: str, head: str = "HEAD", *,
                   as_of: dt.date | None = None) -> dict[str, Any]:
    """Compare the portfolio at two revisions, both computed at one date: --as-of, else the
    head's configured as_of, else SOURCE_DATE_EPOCH or today."""
    with tempfile.TemporaryDirectory(prefix="custsite-diff-") as tmp:
        base_dir, head_dir = Path(tmp) / "base", Path(tmp) / "head"
        export_revision(root, base, base_dir)
        export_revision(root, head, head_dir)
        day = as_of or load_config(head_dir, []).as_of or source_date()
        checked = {"base": check(base_dir, as_of=day), "head": check(head_dir, as_of=day)}
    out = compare(checked["base"].derived, checked["head"].derived)
    out.update({"base": base, "head": head, "as_of": day,
                "errors": {label: sum(p.severity is Severity.ERROR for p in c.problems)
                           for label, c in checked.items()}})
    return out


def to_json(diff: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in diff.items() if k != "names"}, default=json_default,
                      indent=2, ensure_ascii=False)


def to_markdown(diff: dict[str, Any]) -> str:
    names = diff["names"]

    def who(ids: list[str]) -> str:
        return ", ".join(f"{names[i]} (`{i}`)" for i in ids)

    lines = [f"### custsite: `{diff['base']}` → `{diff['head']}` (as of {diff['as_of']})", ""]
    c = diff["contacts"]
    lines.append(f"**Contacts:** {c['base']} → {c['head']} "
                 f"({len(diff['added'])} added, {len(diff['removed'])} removed)")
    for cur, r in diff["revenue"].items():
        sign = "+" if r["change"] >= 0 else "−"
        lines.append(f"**Revenue:** {money(r['base'], cur)} → {money(r['head'], cur)} "
                     f"({sign}{money(abs(r['change']), cur)})")
    if any(diff["errors"].values()):
        lines.append(f"**Validation errors:** {diff['errors']['base']} at base, "
                     f"{diff['errors']['head']} at head")
    if diff["added"]:
        lines += ["", "#### Added"]
        lines += [f"- {a['name']} (`{a['id']}`): {a['stage']}" for a in diff["added"]]
    if diff["removed"]:
        lines += ["", "#### Removed"]
        lines += [f"- {r['name']} (`{r['id']}`), was {r['stage']}" for r in diff["removed"]]
    if diff["moves"]:
        lines += ["", "#### Stage moves"]
        lines += [f"- **{move}** ({len(ids)}): {who(ids)}" for move, ids in diff["moves"].items()]
    if diff["segments"]:
        lines += ["", "#### Segments", "", "| segment | joined | left |", "|---|---|---|"]
        for s in diff["segments"].values():
            lines.append(f"| {s['title']} | {who(s['joined']) or '—'} | "
                         f"{who(s['left']) or '—'} |")
    if not (diff["added"] or diff["removed"] or diff["moves"] or diff["segments"]):
        lines += ["", "No change in contacts, stages or segments."]
    return "\n".join(lines)
