"""The short way of converting record files (quickrecords) against the usual one (a YNode
tree, then records.to_interactions, to_customer...): whenever it converts a file, it must
make exactly the records the usual way makes (fields and positions), and the usual way must
report nothing; on anything else it must give up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custsite import quickrecords, records, validate
from custsite.build import load_config
from custsite.config import Config
from custsite.fields import Context
from custsite.model import Interaction
from custsite.parse import Document, parse_yaml
from custsite.sources import discover

REPO = Path(__file__).resolve().parent.parent
PATH = "records/interactions/c-1.yaml"


def usual_way(text: str) -> tuple[list[Interaction] | None, list[Any]]:
    problems: list[Any] = []
    root = parse_yaml(text, PATH, problems=problems)
    if root is None:
        return None, problems
    return records.to_interactions(Document(PATH, root, None, 0), "c-1",
                                   Context(problems)), problems


def same_as_usual(text: str) -> bool:
    """Whether the short way converted the text (the assertion is that it did so right)."""
    quick = quickrecords.interactions(text, PATH, "c-1", Context([]))
    slow, problems = usual_way(text)
    if quick is not None:
        assert problems == [], text
        assert quick == slow, text
        assert slow is not None and [i.locs for i in quick] == [i.locs for i in slow], text
    return quick is not None


FILE = """\
# Interactions with Ada
- customer: c-1
  date: 2025-11-16
  kind: note
  summary: Account note
  notes: Mentioned they may sell the house in two years.

-   customer: "c-1"
    id: c-1-call
    date: 2025-12-24 10:30
    kind: call
    direction: in
    notes: "Called after the storm: water stain on the ceiling."
- customer: c-1
  date: 2026-01-30
  kind: purchase
  amount: 12500.50
  currency: eur
  quantity: 2
  rating: 5
  due: 2026-02-01
  done: true
  summary: "Quote: roof repair"
"""


def test_common_files_take_the_short_way() -> None:
    assert same_as_usual(FILE)
    made = quickrecords.interactions(FILE, PATH, "c-1", Context([]))
    assert made is not None
    assert [i.id for i in made] == ["c-1-1", "c-1-call", "c-1-3"]
    assert made[1].loc("notes") == (PATH, 13, 12) and made[1].loc("") == (PATH, 8, 5)
    assert made[2].currency == "EUR" and made[2].done is True and str(made[2].amount) == \
        "12500.50"


def test_a_line_kept_by_its_text_is_placed_where_it_stands() -> None:
    first = "- customer: c-1\n  date: 2025-01-02\n  kind: note\n"
    again = "# later\n\n" + first + first  # the same lines again, further down, twice
    assert same_as_usual(first) and same_as_usual(again)
    made = quickrecords.interactions(again, PATH, "c-1", Context([]))
    assert made is not None
    assert [(i.id, i.loc(""), i.loc("date")) for i in made] == [
        ("c-1-1", (PATH, 3, 3), (PATH, 4, 9)), ("c-1-2", (PATH, 6, 3), (PATH, 7, 9))]
    # The same line below an item whose keys stand further right is outside its mapping.
    assert not same_as_usual("-   customer: c-1\n  date: 2025-01-02\n    kind: note\n")


def test_gives_up_outside_its_shape_or_on_any_problem() -> None:
    item = "- customer: c-1\n  date: 2025-01-02\n  kind: note\n"
    assert same_as_usual(item)
    for text in [
        item + "  colour: red\n",  # an unknown field
        item + "  kind: call\n",  # a repeated one
        item.replace("2025-01-02", "2025-02-30"),  # a value its converter reports
        item.replace("kind: note", "kind: visit"),
        item + "  summary: yes\n",  # YAML 1.1 reads a boolean: reported
        item + "  amount: '12'\n",  # quoted number
        item + "  summary:\n",  # empty
        item + "  summary: ~\n",  # null
        item + "  summary: |\n    two\n    lines\n",  # a block
        item.replace("customer: c-1", "customers: [c-1, c-2]"),  # a flow list
        item + "  notes: a # comment\n",  # a value with a comment
        item.replace("  kind: note\n", ""),  # a required field missing
        item.replace("customer: c-1", "by: Luis"),  # no customer
        item + "   summary: x\n",  # indented below the item
        "customer: c-1\ndate: 2025-01-02\nkind: note\n",  # one mapping
        "---\n" + item,  # a document marker
        item + "- just text\n",
        item + "  notes: \"tab\there\"\n",
        "# nothing\n",
        "",
    ]:
        assert not same_as_usual(text), text


def test_the_portfolio_files_are_converted_the_short_way_and_the_same() -> None:
    """The example portfolio's record files: those of the common shape taken the short way
    (every list of interactions), each file's records (and their checks) as load_file makes
    them the usual way."""
    problems: list[Any] = []
    config = load_config(REPO, problems)
    schema = records.customer_schema(config)
    taken: dict[str, int] = {}
    for source in discover(config, problems):
        if source.rel.endswith(".yaml") and quickrecords.records(
                source.kind, source.path.read_text(encoding="utf-8"), source.rel,
                source.stem, schema, config.context([])):
            taken[source.kind] = taken.get(source.kind, 0) + 1
        elif source.kind == "interaction" and source.rel.endswith(".yaml"):
            raise AssertionError(f"{source.rel} is a list of interactions")
        quick = validate.load_file(source, config, schema)
        original = quickrecords.records
        try:
            quickrecords.records = lambda *args: None  # type: ignore[assignment]
            slow = validate.load_file(source, config, schema)
        finally:
            quickrecords.records = original
        assert quick == slow, source.rel
        for kind in ("customers", "organizations", "interactions"):
            assert [r.locs for r in getattr(quick, kind)] == \
                [r.locs for r in getattr(slow, kind)], source.rel
    assert taken["interaction"] > 20 and taken["customer"] > 5, taken
    validate.read_files(config, [(s, validate.signature(s.file))
                                 for s in discover(config, problems)][:50], jobs=1)
    assert not quickrecords._CLEAN and not quickrecords._REQUIRED  # let go after reading


CUSTOMER = """\
# A customer
name: Ada Lovelace
email: ada@example.com
kind: person
phone: "+33 6 12 34 56 78"
location: {city: Zürich, region: ZH, country: ch}
tags: [vip, newsletter]
contact_preference: [email]
age: 36
sector: logistics
created: 2024-01-02
do_not_contact: false
fields: {size: large}
notes: 'It''s fine.'
"""


def customer_both_ways(text: str, config: Config | None = None) -> bool:
    """Whether the short way converted a customer file; it must be as the usual way."""
    config = config or Config(root=REPO)
    schema = records.customer_schema(config)
    path = "records/customers/ada.yaml"
    quick = quickrecords.records("customer", text, path, "ada", schema, config.context([]))
    problems: list[Any] = []
    root = parse_yaml(text, path, problems=problems)
    slow = records.to_customer(Document(path, root, None, 0), "ada", schema,
                               config.context(problems)) if root is not None else None
    if quick is not None:
        assert problems == [], text
        assert quick == {"customers": (slow,)}, text
        assert slow is not None and quick["customers"][0].locs == slow.locs, text
    return quick is not None


def test_customers_of_the_common_shape_take_the_short_way() -> None:
    assert customer_both_ways(CUSTOMER)
    config = Config(root=REPO, default_region="FR", sectors=("logistics",))
    assert customer_both_ways(CUSTOMER.replace('"+33 6 12 34 56 78"', '"06 12 34 56 78"'),
                              config)
    for text in [
        CUSTOMER.replace("ada@example.com", "ada@@example.com"),  # reported
        CUSTOMER.replace('"+33 6 12 34 56 78"', '"06 12 34 56 78"'),  # no default region
        CUSTOMER.replace("country: ch", "country: Switzerland"),  # inside a flow mapping
        CUSTOMER.replace("[vip, newsletter]", "[vip, [newsletter]]"),
        CUSTOMER.replace("name: Ada Lovelace\n", ""),  # required
        CUSTOMER + "notes: twice\n",
        "- " + CUSTOMER.replace("\n", "\n  "),  # a list
        "  " + CUSTOMER.replace("\n", "\n  "),  # indented
    ]:
        assert not customer_both_ways(text), text
    # Kept values are filed under the conversion context: a sector listed in one
    # custsite.yaml is no sector of another.
    assert not customer_both_ways(CUSTOMER, Config(root=REPO, sectors=("retail",)))


# Values each field takes, and others (anything at all, for any field) now and then.
GOOD = {"customer": ["c-1", "c-2", '"c-3"'],
        "date": ["2025-01-02", "2025-01-02 10:30", '"2025-3-4"'],
        "kind": ["note", "call", '"demo"'], "summary": ["Ada", "Demo number 1", "x#y", '"a: b"'],
        "amount": ["12", "12.50", "0"], "notes": ["Done.", '"Said: fine"', "a -b"],
        "direction": ["in", "out"], "quantity": ["2"], "rating": ["5"], "nps": ["10"],
        "due": ["2025-02-01"], "done": ["true", "False"], "currency": ["eur", "USD"],
        "id": ["c-1-a"], "by": ["Luis", "Zürich"]}
OTHERS = ["C-1", "2025-13-01", "2025-01-02T25:00", "sideways", "-3", "1e3", "11", "no", "yes",
          "XXX", "a: b", "a #b", "null", "~", "", "[c-1]", "{a: b}", "'quoted'",
          '"esc\\"aped"', "|", "- x", "2025-01-02"]
REQUIRED = ["customer", "date", "kind"]


@st.composite
def files(draw: st.DrawFn) -> str:
    lines = []
    dash = draw(st.sampled_from(["- ", "- ", "-   "]))
    pad = " " * len(dash)
    for _ in range(draw(st.integers(1, 3))):
        keys = draw(st.lists(st.sampled_from([*GOOD, "customers", "colour"]), max_size=4,
                             unique=draw(st.integers(0, 5)) > 0))
        if draw(st.integers(0, 9)):  # mostly items that may be whole
            keys = REQUIRED + [k for k in keys if k not in REQUIRED]
        for n, key in enumerate(keys):
            value = draw(st.sampled_from(GOOD.get(key, ["x"]) if draw(st.integers(0, 30))
                                         else OTHERS))
            lines.append(f"{dash if n == 0 else pad}{key}: {value}".rstrip(" "))
        if not keys:
            lines.append(dash.rstrip(" "))
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))),
                     draw(st.sampled_from(["", "# note", "  # indented", "   ", "  x: y"])))
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(files())
def test_same_records_as_the_usual_way(text: str) -> None:
    same_as_usual(text)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(["c-1", "c-2"]), st.sampled_from(["note", "call"]),
                          st.dates().map(str)), min_size=1, max_size=4))
def test_whole_items_are_converted_the_short_way(items: list[tuple[str, str, str]]) -> None:
    text = "".join(f"- customer: {c}\n  kind: {k}\n  date: {d}\n" for c, k, d in items)
    assert same_as_usual(text)


CUSTOMER_VALUES = {"email": ["a@b.org", "c@d.example.com", "a@b.org", "a@", "x"],
                   "kind": ["person", "company", "thing"], "age": ["36", "0", "-1", "x"],
                   "location": ["{city: X}", "{city: X, country: fr}", "{}", "{a: b}", "[a]"],
                   "tags": ["[a, b]", "[]", "[a, b]", "a", "{a: b}"], "created": ["2024-01-02"],
                   "owner": ["Luis", "Luis", "~", ""], "fields": ["{a: b}", "{a: [b]}"],
                   "colour": ["red"], "role": ["champion", "decision_maker", "boss"]}
NAMES = ["Ada", '"Ada B"', "Ada: B", "yes", "12", "Bob Lee 1"]


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(NAMES), st.lists(st.sampled_from(sorted(CUSTOMER_VALUES)), max_size=5,
                                        unique=True).flatmap(lambda keys: st.tuples(*(
                                            st.tuples(st.just(k),
                                                      st.sampled_from(CUSTOMER_VALUES[k]))
                                            for k in keys))))
def test_same_customers_as_the_usual_way(name: str, pairs: tuple[tuple[str, str], ...]) -> None:
    customer_both_ways("".join(f"{k}: {v}\n".replace(" \n", "\n")
                               for k, v in [("name", name), *pairs]))


def test_only_values_nobody_can_change_are_shared() -> None:
    """The same flow text in two files gives the very same place or tags (kept), but never
    the same dict of custom fields: a change to one record's would show in the other."""
    config = Config(root=REPO)
    schema = records.customer_schema(config)
    made = [quickrecords.records("customer", CUSTOMER, f"records/customers/{cid}.yaml", cid,
                                 schema, config.context([])) for cid in ("ada", "bea")]
    ada, bea = (m["customers"][0] for m in made if m is not None)
    assert ada.location is bea.location and ada.tags is bea.tags
    assert ada.fields == bea.fields == {"size": "large"} and ada.fields is not bea.fields
