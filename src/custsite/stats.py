"""`custsite stats`: the funnel, stages, segments and revenue, for the terminal or for tools."""

from __future__ import annotations

import json
from typing import Any

from .data import json_default
from .derive import Derived
from .insights import funnel_steps, revenue_by_currency, stage_counts
from .lifetime import model_data
from .render import money


def stats_data(derived: Derived) -> dict[str, Any]:
    return {
        "title": derived.config.title,
        "as_of": derived.as_of,
        "contacts": len(derived.contacts),
        "funnel": [{"stage": s.stage, "count": s.count, "reached": s.reached,
                    "conversion": None if s.rate is None else round(s.rate, 4)}
                   for s in funnel_steps(derived)],
        "stages": stage_counts(derived),
        "revenue": revenue_by_currency(derived),
        "segments": {s.id: {"title": s.title, "builtin": s.builtin, "size": len(s.members)}
                     for s in derived.segments.values()},
        "lifetime": model_data(derived.lifetime),
    }


def stats_json(derived: Derived) -> str:
    return json.dumps(stats_data(derived), default=json_default, indent=2, ensure_ascii=False)


def stats_text(derived: Derived) -> str:
    """Aligned columns, readable in an 80-column terminal."""
    data = stats_data(derived)
    lines = [f"{data['title']}: {data['contacts']} contacts, as of {data['as_of']}", "",
             f"{'stage':<12}{'now':>7}{'reached':>9}{'conversion':>12}"]
    for step in data["funnel"]:
        rate = "" if step["conversion"] is None else f"{step['conversion']:.0%}"
        lines.append(f"{step['stage']:<12}{step['count']:>7}{step['reached']:>9}"
                     f"{rate:>12}".rstrip())
    lines.append(f"{'lapsed':<12}{data['stages']['lapsed']:>7}")
    lines += ["", "revenue: " + (", ".join(money(v, k) for k, v in data["revenue"].items())
                                 or "none yet"), ""]
    width = max((len(s["title"]) for s in data["segments"].values()), default=10) + 2
    for builtin, heading in ((False, "declared segments"), (True, "built-in segments")):
        rows = [s for s in data["segments"].values() if s["builtin"] == builtin]
        lines.append(heading)
        lines += [f"  {s['title']:<{width}}{s['size']:>7}" for s in rows] or ["  none"]
    lines += ["", *_lifetime_text(data["lifetime"])]
    return "\n".join(lines)


def _lifetime_text(model: dict[str, Any]) -> list[str]:
    if not model["fitted"]:
        return [f"lifetime model: not fitted: {model['reason']}; stages stay rule-based"]
    m = model["bgnbd"]
    lines = [f"lifetime model: fitted on {model['buyers']} buyers "
             f"({model['repeat_buyers']} repeat buyers), time unit {model['time_unit']}",
             f"  BG/NBD      r={m['r']:.4f} alpha={m['alpha']:.4f} a={m['a']:.4f} "
             f"b={m['b']:.4f} log-likelihood={m['log_likelihood']:.1f}"]
    g = model["spend"]
    if g:
        lines.append(f"  Gamma-Gamma p={g['p']:.4f} q={g['q']:.4f} gamma={g['gamma']:.4f} "
                     f"({model['spend_buyers']} repeat buyers)")
    if model["reason"]:
        lines.append(f"  {model['reason']}")
    return lines
