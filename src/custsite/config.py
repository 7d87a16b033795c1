"""`custsite.yaml`: every setting with its default, validated like a record."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import fields as f
from .errors import Location, Problem
from .fields import Field
from .lifetime import UNIT_DAYS, LifetimeSettings
from .model import INTERACTION_KINDS
from .parse import read_document
from .rules import (
    BASE_COMPUTED,
    PERSONA_DEPENDENT,
    RECORD_PATHS,
    FieldType,
    Rule,
    RuleCompiler,
    custom_field_type,
)
from .segments import BUILTIN_IDS
from .ynodes import YMap

CONFIG_FILE = "custsite.yaml"
CUSTOM_TYPES = ("text", "integer", "number", "date", "boolean", "choice", "list", "email", "url")
DO_NOT_CONTACT_HIDE = frozenset({"email", "phone"})
HIDEABLE = ("email", "phone", "civility", "age", "birth_date", "location", "owner", "notes",
            "fields", "source")


@dataclass(frozen=True)
class Paths:
    customers: str = "records/customers"
    organizations: str = "records/organizations"
    interactions: str = "records/interactions"
    personas: str = "personas"
    templates: str = "templates"
    output: str = "site"
    cache: str = ".custsite-cache"


@dataclass(frozen=True)
class StageSettings:
    repeat_after: int = 2
    lapse_after_days: int = 365
    engaged_kinds: tuple[str, ...] = ("meeting", "demo", "quote", "feedback")
    client_purchases: int = 3
    client_span_days: int = 180


@dataclass(frozen=True)
class RfmSettings:
    """Below `min_buyers`, quintiles mean little: fixed lower bounds for scores 2..5 apply."""

    min_buyers: int = 50
    recency_days: tuple[int, ...] = (365, 180, 90, 30)  # at most this many days: 2, 3, 4, 5
    frequency: tuple[int, ...] = (2, 3, 5, 8)  # at least this many purchases: 2, 3, 4, 5
    monetary: tuple[Decimal, ...] = (Decimal(100), Decimal(500), Decimal(1000), Decimal(5000))


@dataclass(frozen=True)
class SegmentDef:
    id: str
    title: str
    description: str
    rule: Rule
    loc: Location


@dataclass(frozen=True)
class Config:
    root: Path
    title: str = "Customer portfolio"
    base_url: str = ""
    as_of: dt.date | None = None
    currency: str = "EUR"
    default_region: str | None = None
    edit_url: str | None = None
    paths: Paths = field(default_factory=Paths)
    stages: StageSettings = field(default_factory=StageSettings)
    rfm: RfmSettings = field(default_factory=RfmSettings)
    lifetime: LifetimeSettings = field(default_factory=LifetimeSettings)
    segments: tuple[SegmentDef, ...] = ()
    sectors: tuple[str, ...] = ()
    custom_fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    hide: frozenset[str] = frozenset()
    # Fields of the contacts who asked not to be contacted that never reach any output.
    hide_do_not_contact: frozenset[str] = DO_NOT_CONTACT_HIDE

    def hidden_for(self, do_not_contact: bool) -> frozenset[str]:
        """The fields of a contact that no output may show."""
        return self.hide | self.hide_do_not_contact if do_not_contact else self.hide

    def rule_paths(self) -> dict[str, FieldType]:
        """Every field path a segment rule may use."""
        paths = {**RECORD_PATHS, **BASE_COMPUTED, **PERSONA_DEPENDENT}
        for name, spec in self.custom_fields.items():
            paths[f"fields.{name}"] = custom_field_type(spec)
        return paths

    def rule_compiler(self, ctx: f.Context, *, for_personas: bool = False) -> RuleCompiler:
        paths = self.rule_paths()
        forbidden = {}
        if for_personas:
            for p in PERSONA_DEPENDENT:
                del paths[p]
                forbidden[p] = (f"a persona rule cannot use '{p}': stages depend on persona "
                                "matches (a suspect is a lead who fits a persona)")
        open_prefixes = () if self.custom_fields else ("fields.",)
        return RuleCompiler(ctx, paths, forbidden=forbidden, open_prefixes=open_prefixes)

    def context(self, problems: list[Problem]) -> f.Context:
        return f.Context(problems, default_region=self.default_region, sectors=self.sectors)


def _positive(node: Any, ctx: f.Context, key: str) -> Any:
    return f.integer(1)(node, ctx, key)


def _path_text(node: Any, ctx: f.Context, key: str) -> Any:
    value = f.text(node, ctx, key)
    if isinstance(value, str) and (value.startswith(("/", "\\")) or ".." in Path(value).parts):
        return ctx.report(node.loc, "unsafe-path",
                          f"'{value}' leaves the portfolio; use a path relative to it")
    return value


def _ascending(conv: f.Converter, n: int = 4) -> f.Converter:
    def convert(node: Any, ctx: f.Context, key: str) -> Any:
        values = f.list_of(conv)(node, ctx, key)
        if isinstance(values, f.Invalid):
            return values
        if len(values) != n or list(values) != sorted(values):
            return ctx.report(node.loc, "invalid-value",
                              f"expected {n} thresholds in order (for scores 2 to 5)")
        return values

    return convert


def _descending_days(node: Any, ctx: f.Context, key: str) -> Any:
    values = f.list_of(f.integer(0))(node, ctx, key)
    if isinstance(values, f.Invalid):
        return values
    if len(values) != 4 or list(values) != sorted(values, reverse=True):
        return ctx.report(node.loc, "invalid-value",
                          "expected 4 day counts, largest first (for scores 2 to 5)")
    return values


def _share(node: Any, ctx: f.Context, key: str) -> Any:
    value = f.decimal(Decimal(0))(node, ctx, key)
    if isinstance(value, Decimal) and value > 1:
        return ctx.report(node.loc, "invalid-value",
                          f"expected a share between 0 and 1, such as 0.5, found {value}")
    return value


def _edit_url(node: Any, ctx: f.Context, key: str) -> Any:
    value = f.url(node, ctx, key)
    if isinstance(value, str) and "{path}" not in value:
        return ctx.report(node.loc, "invalid-value",
                          "edit_url must contain '{path}', where the record's file path goes")
    return value


def _custom_field(node: Any, ctx: f.Context, key: str) -> Any:
    spec = f.submapping({
        "type": Field(f.choice(CUSTOM_TYPES)),
        "choices": Field(f.list_of(f.loose_text)),
        "description": Field(f.loose_text),
        "required": Field(f.boolean),
    }, "a custom field")(node, ctx, key)
    if isinstance(spec, dict) and spec.get("type") == "choice" and not spec.get("choices"):
        return ctx.report(node.loc, "missing-field", f"custom field '{key}' of type choice "
                                                     "needs a list of 'choices'")
    return spec


SEGMENT_SCHEMA = {
    "title": Field(f.loose_text),
    "description": Field(f.loose_text),
    "where": Field(f.keep_node, required=True),
}

CONFIG_SCHEMA: dict[str, Field] = {
    "title": Field(f.loose_text),
    "base_url": Field(f.loose_text),
    "as_of": Field(f.date),
    "currency": Field(f.currency),
    "default_region": Field(f.country),
    "edit_url": Field(_edit_url),
    "paths": Field(f.submapping({k: Field(_path_text) for k in Paths.__dataclass_fields__},
                                "paths")),
    "stages": Field(f.submapping({
        "repeat_after": Field(f.integer(2)),
        "lapse_after_days": Field(_positive),
        "engaged_kinds": Field(f.list_of(f.choice(INTERACTION_KINDS))),
        "client_after": Field(f.submapping({"purchases": Field(_positive),
                                            "span_days": Field(f.integer(0))}, "client_after")),
    }, "stages")),
    "rfm": Field(f.submapping({
        "min_buyers": Field(f.integer(0)),
        "recency_days": Field(_descending_days),
        "frequency": Field(_ascending(f.integer(1))),
        "monetary": Field(_ascending(f.decimal(Decimal(0)))),
    }, "rfm")),
    "lifetime": Field(f.submapping({
        "time_unit": Field(f.choice(tuple(UNIT_DAYS))),
        "horizon_days": Field(_positive),
        "clv_months": Field(_positive),
        "discount_rate": Field(_share),
        "min_buyers": Field(f.integer(1)),
        "min_repeat_buyers": Field(f.integer(1)),
        "at_risk_below": Field(_share),
    }, "lifetime")),
    "segments": Field(f.mapping_of(f.submapping(SEGMENT_SCHEMA, "a segment"))),
    "sectors": Field(f.list_of(f.loose_text)),
    "custom_fields": Field(f.mapping_of(_custom_field)),
    "privacy": Field(f.submapping({"hide": Field(f.list_of(f.choice(HIDEABLE))),
                                   "do_not_contact_hide": Field(f.list_of(f.choice(HIDEABLE)))},
                                  "privacy")),
}


def source_date(as_of: dt.date | None = None, configured: dt.date | None = None) -> dt.date:
    """The date the build reasons about: --as-of, then custsite.yaml, then SOURCE_DATE_EPOCH,
    then today."""
    if as_of:
        return as_of
    if configured:
        return configured
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC).date()
    return dt.date.today()


def load_config(root: Path, problems: list[Problem]) -> Config:
    """Read `custsite.yaml` (optional) under `root`; problems are appended, defaults kept."""
    ctx = f.Context(problems)
    file = root / CONFIG_FILE
    if not file.is_file():
        return Config(root=root)
    doc = read_document(file, CONFIG_FILE, problems)
    if doc is None or doc.root is None:
        return Config(root=root)
    result = f.convert_mapping(doc.root, CONFIG_SCHEMA, ctx, what="custsite.yaml")
    if result is None:
        return Config(root=root)
    v = result.values
    stages = v.get("stages", {})
    client = stages.get("client_after", {})
    default_stages = StageSettings()
    rfm = v.get("rfm", {})
    default_rfm = RfmSettings()
    config = Config(
        root=root,
        title=v.get("title", Config.title),
        base_url=v.get("base_url", ""),
        as_of=v.get("as_of"),
        currency=v.get("currency", Config.currency),
        default_region=v.get("default_region"),
        edit_url=v.get("edit_url"),
        paths=Paths(**v.get("paths", {})),
        stages=StageSettings(
            repeat_after=stages.get("repeat_after", default_stages.repeat_after),
            lapse_after_days=stages.get("lapse_after_days", default_stages.lapse_after_days),
            engaged_kinds=stages.get("engaged_kinds", default_stages.engaged_kinds),
            client_purchases=client.get("purchases", default_stages.client_purchases),
            client_span_days=client.get("span_days", default_stages.client_span_days),
        ),
        rfm=RfmSettings(
            min_buyers=rfm.get("min_buyers", default_rfm.min_buyers),
            recency_days=rfm.get("recency_days", default_rfm.recency_days),
            frequency=rfm.get("frequency", default_rfm.frequency),
            monetary=rfm.get("monetary", default_rfm.monetary),
        ),
        lifetime=_lifetime(v.get("lifetime", {})),
        sectors=tuple(v.get("sectors", ())),
        custom_fields=v.get("custom_fields", {}),
        hide=frozenset(v.get("privacy", {}).get("hide", ())),
        hide_do_not_contact=frozenset(v.get("privacy", {}).get(
            "do_not_contact_hide", DO_NOT_CONTACT_HIDE)),
    )
    segments = []
    compiler = config.rule_compiler(config.context(problems))
    segments_node = doc.root.get("segments") if isinstance(doc.root, YMap) else None
    for seg_id, spec in sorted(v.get("segments", {}).items()):
        rule = compiler.compile(spec["where"])
        node = segments_node.get(seg_id) if isinstance(segments_node, YMap) else None
        loc = node.loc if node is not None else Location(CONFIG_FILE, 1, 1)
        if seg_id in BUILTIN_IDS:
            ctx.report(_key_loc(segments_node, seg_id) or loc, "invalid-value",
                       f"'{seg_id}' is the name of a built-in segment; choose another name")
            continue
        if rule is not None:
            segments.append(SegmentDef(seg_id, spec.get("title") or seg_id.replace("-", " ")
                                       .capitalize(), spec.get("description", ""), rule, loc))
    return replace(config, segments=tuple(segments))


def _lifetime(v: dict[str, Any]) -> LifetimeSettings:
    d = LifetimeSettings()
    return LifetimeSettings(
        time_unit=v.get("time_unit", d.time_unit),
        horizon_days=v.get("horizon_days", d.horizon_days),
        clv_months=v.get("clv_months", d.clv_months),
        discount_rate=float(v.get("discount_rate", d.discount_rate)),
        min_buyers=v.get("min_buyers", d.min_buyers),
        min_repeat_buyers=v.get("min_repeat_buyers", d.min_repeat_buyers),
        at_risk_below=float(v.get("at_risk_below", d.at_risk_below)),
    )


def _key_loc(node: object, key: str) -> Location | None:
    if isinstance(node, YMap):
        for k, _ in node.items:
            if k.text == key:
                return k.loc
    return None
