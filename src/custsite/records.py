"""Record schemas and the conversion of parsed documents into model records."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

from . import fields as f
from .config import Config
from .errors import Locs, Packed
from .fields import Field
from .frozen import make
from .model import (
    CONTACT_CHANNELS,
    INTERACTION_KINDS,
    KINDS,
    RECURRENCES,
    ROLES,
    STAGES,
    Customer,
    Interaction,
    Organization,
    Persona,
    Place,
)
from .parse import Document
from .ynodes import YMap, YNode, YSeq, describe

R = TypeVar("R", Customer, Organization, Interaction)

PLACE = f.submapping({"city": Field(f.loose_text), "region": Field(f.loose_text),
                      "country": Field(f.country)}, "a location")


@f.described(f.json_schema_of(PLACE))
def _place(node: YNode, ctx: f.Context, key: str) -> Any:
    value = PLACE(node, ctx, key)
    return value if isinstance(value, f.Invalid) else Place(**value)


def _custom_converter(spec: dict[str, Any]) -> f.Converter:
    kind = spec.get("type", "text")
    simple: dict[str, f.Converter] = {
        "text": f.loose_text, "integer": f.integer(), "number": f.decimal(), "date": f.date,
        "boolean": f.boolean, "list": f.list_of(f.loose_text), "email": f.email, "url": f.url,
    }
    if kind == "choice":
        return f.choice(tuple(spec.get("choices", ())))
    return simple[kind]


def _custom_fields(config: Config) -> f.Converter:
    if not config.custom_fields:
        return f.mapping_of(f.any_scalar, key_is_id=False)
    schema = {name: Field(_custom_converter(spec), required=bool(spec.get("required")))
              for name, spec in config.custom_fields.items()}

    @f.described(f.object_schema(schema))
    def convert(node: YNode, ctx: f.Context, key: str) -> Any:
        result = f.convert_mapping(node, schema, ctx, what="custom fields (declared in "
                                                          "custsite.yaml)")
        return f.INVALID if result is None else result.values

    return convert


def customer_schema(config: Config) -> dict[str, Field]:
    return {
        "name": Field(f.loose_text, required=True),
        "kind": Field(f.choice(KINDS)),
        "civility": Field(f.loose_text),
        "email": Field(f.email),
        "phone": Field(f.phone),
        "organization": Field(f.identifier),
        "role": Field(f.choice(ROLES)),
        "sector": Field(f.sector),
        "location": Field(_place),
        "age": Field(f.integer(0, 130)),
        "birth_date": Field(f.date),
        "contact_preference": Field(f.list_of(f.choice(CONTACT_CHANNELS))),
        "source": Field(f.loose_text),
        "referred_by": Field(f.identifier),
        "owner": Field(f.loose_text),
        "tags": Field(f.list_of(f.loose_text)),
        "status": Field(f.choice(STAGES)),
        "created": Field(f.date),
        "do_not_contact": Field(f.boolean),
        "fields": Field(_custom_fields(config)),
        "notes": Field(f.loose_text),
    }


ORGANIZATION_SCHEMA = {
    "name": Field(f.loose_text, required=True),
    "sector": Field(f.sector),
    "location": Field(_place),
    "size": Field(f.integer(0)),
    "website": Field(f.url),
    "tags": Field(f.list_of(f.loose_text)),
    "notes": Field(f.loose_text),
}

INTERACTION_SCHEMA = {
    "id": Field(f.identifier),
    "customer": Field(f.identifier),
    "customers": Field(f.list_of(f.identifier)),
    "date": Field(f.date_or_datetime, required=True),
    "kind": Field(f.choice(INTERACTION_KINDS), required=True),
    "direction": Field(f.choice(("in", "out"))),
    "summary": Field(f.loose_text),
    "amount": Field(f.decimal(Decimal(0))),
    "currency": Field(f.currency),
    "product": Field(f.loose_text),
    "quantity": Field(f.integer(1)),
    "consumer": Field(f.loose_text),
    "recurring": Field(f.choice(RECURRENCES)),
    "rating": Field(f.integer(1, 5)),
    "nps": Field(f.integer(0, 10)),
    "due": Field(f.date),
    "done": Field(f.boolean),
    "by": Field(f.loose_text),
    "notes": Field(f.loose_text),
}

PERSONA_SCHEMA = {
    "name": Field(f.loose_text, required=True),
    "headline": Field(f.loose_text),
    "photo": Field(f.loose_text),
    "profile": Field(f.string_mapping),
    "goals": Field(f.list_of(f.loose_text)),
    "pains": Field(f.list_of(f.loose_text)),
    "objections": Field(f.list_of(f.loose_text)),
    "channels": Field(f.list_of(f.loose_text)),
    "match": Field(f.keep_node),
    "notes": Field(f.loose_text),
}


def _with_body(values: dict[str, Any], doc: Document, ctx: f.Context, locs: Locs) -> None:
    body = (doc.body or "").strip("\n")
    if body.strip():
        if "notes" in values:
            ctx.report(locs["notes"], "misplaced-field",
                       "notes are given twice, in 'notes:' and as the Markdown body; "
                       "the body is used")
        values["notes"] = body


def _convert(doc: Document, node: YNode, schema: dict[str, Field], ctx: f.Context,
             what: str) -> tuple[dict[str, Any], Locs] | None:
    result = f.convert_mapping(node, schema, ctx, what=what)
    if result is None or not result.complete:
        return None
    _with_body(result.values, doc, ctx, result.locs)
    return result.values, result.locs


def to_customer(doc: Document, rid: str, schema: dict[str, Field],
                ctx: f.Context) -> Customer | None:
    """`schema` is `customer_schema(config)`, built once per load."""
    assert doc.root is not None
    result = _convert(doc, doc.root, schema, ctx, "a customer")
    return None if result is None else record(Customer, result[0], rid, doc.path,
                                              result[1].packed())


def to_organization(doc: Document, rid: str, ctx: f.Context) -> Organization | None:
    assert doc.root is not None
    result = _convert(doc, doc.root, ORGANIZATION_SCHEMA, ctx, "an organization")
    return None if result is None else record(Organization, result[0], rid, doc.path,
                                              result[1].packed())


def to_persona(doc: Document, rid: str, config: Config, ctx: f.Context) -> Persona | None:
    assert doc.root is not None
    result = _convert(doc, doc.root, PERSONA_SCHEMA, ctx, "a persona")
    if result is None:
        return None
    values, locs = result
    match_node = values.pop("match", None)
    if match_node is not None:
        rule = config.rule_compiler(ctx, for_personas=True).compile(match_node)
        if rule is None:
            return None
        values["match"] = rule
    return Persona(id=rid, path=doc.path, where=locs.packed(), **values)


def _one_interaction(doc: Document, node: YNode, default_id: str,
                     ctx: f.Context) -> Interaction | None:
    result = _convert(doc, node, INTERACTION_SCHEMA, ctx, "an interaction")
    if result is None:
        if isinstance(node, YMap) and node.get("customer") is None and \
                node.get("customers") is None:
            ctx.report(node.loc, "missing-field",
                       "missing required field 'customer' (or 'customers') for an interaction")
        return None
    values, locs = result
    one, many = values.pop("customer", None), values.pop("customers", None)
    given = locs.names  # a tuple: looked into without a call, 400,000 times at 10k contacts
    if ("customer" in given) == ("customers" in given):
        if "customer" in given:
            ctx.report(locs["customers"], "misplaced-field",
                       "give either 'customer' or 'customers', not both")
        else:
            ctx.report(node.loc, "missing-field",
                       "missing required field 'customer' (or 'customers') for an interaction")
        if one is None and many is None:
            return None
    customers = (one,) if one else tuple(many or ())
    if not customers:
        if "customer" in given or "customers" in given:
            ctx.report(locs.get("customer") or locs["customers"], "missing-field",
                       "an interaction needs at least one customer id")
        return None
    # Each referenced id keeps its own position, for the cross-record reference checks.
    if "customers" in given and isinstance(node, YMap):
        seq = node.get("customers")
        if isinstance(seq, YSeq):
            locs = locs.extended([f"customers.{i}" for i in range(len(seq.items))],
                                 [n for item in seq.items for n in (item.line, item.col)])
    return interaction(values, locs.packed(), doc.path, customers, default_id)


def interaction(values: dict[str, Any], where: Packed, path: str, customers: tuple[str, ...],
                default_id: str) -> Interaction:
    """The interaction of these converted fields (less its customers, given apart)."""
    values["customers"] = customers
    return record(Interaction, values, values.pop("id", None) or default_id, path, where)


def record(cls: type[R], values: dict[str, Any], rid: str, path: str, where: Packed) -> R:
    """The record of these converted fields (`values`, which it takes), with its id, file and
    positions (see errors.Packed)."""
    values["id"] = rid
    values["path"] = path
    values["where"] = where
    return make(cls, values)


def to_interactions(doc: Document, stem: str, ctx: f.Context) -> list[Interaction]:
    """One interaction per `.md` file; one or a list of them per `.yaml` file."""
    assert doc.root is not None
    if doc.body is None and isinstance(doc.root, YSeq):
        out = []
        for n, node in enumerate(doc.root.items, start=1):
            if not isinstance(node, YMap):
                ctx.report(node.loc, "wrong-type",
                           f"expected an interaction (a mapping of fields), found {describe(node)}")
                continue
            item = _one_interaction(doc, node, f"{stem}-{n}", ctx)
            if item is not None:
                out.append(item)
        return out
    item = _one_interaction(doc, doc.root, stem, ctx)
    return [item] if item is not None else []



def record_schemas(config: Config) -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12) of each record kind, for editors and tools."""
    base = "https://json-schema.org/draft/2020-12/schema"
    customer = f.object_schema(customer_schema(config))
    sectors = list(config.sectors)
    if sectors:
        customer["properties"]["sector"] = {"enum": sectors}
    organization = f.object_schema(ORGANIZATION_SCHEMA)
    if sectors:
        organization["properties"]["sector"] = {"enum": sectors}
    interaction = f.object_schema(INTERACTION_SCHEMA)
    interaction["anyOf"] = [{"required": ["customer"]}, {"required": ["customers"]}]
    persona = f.object_schema(PERSONA_SCHEMA)
    out = {
        "customer": {**customer, "title": "custsite customer record"},
        "organization": {**organization, "title": "custsite organization record"},
        "interaction": {"title": "custsite interaction file: one interaction or a list",
                        "$defs": {"interaction": interaction},
                        "anyOf": [{"$ref": "#/$defs/interaction"},
                                  {"type": "array", "items": {"$ref": "#/$defs/interaction"}}]},
        "persona": {**persona, "title": "custsite persona (front matter)"},
    }
    return {kind: {"$schema": base, **schema} for kind, schema in out.items()}
