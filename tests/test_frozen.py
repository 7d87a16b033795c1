"""frozen.replace and frozen.make give what dataclasses.replace and the class itself give."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
import sys

import pytest

from custsite.frozen import make, replace
from custsite.model import Customer, Interaction, Place


def test_replace_is_dataclasses_replace() -> None:
    base = Customer(id="a", path="a.yaml", name="Ann", tags=("x",), location=Place("Lyon"))
    mine, theirs = replace(base, name="Bob"), dataclasses.replace(base, name="Bob")
    assert mine == theirs and repr(mine) == repr(theirs)
    assert list(mine.__dict__) == list(theirs.__dict__)
    assert pickle.dumps(mine) == pickle.dumps(theirs)
    assert base.name == "Ann" and mine.location is base.location
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.name = "Cy"  # type: ignore[misc]
    with pytest.raises(TypeError, match="no field"):
        replace(base, nmae="Bob")


def test_make_is_the_class_itself() -> None:
    given = {"id": "a-1", "path": "a.yaml", "customers": ("a",), "date": dt.date(2024, 5, 1),
             "kind": "call", "notes": "Called."}
    mine, theirs = make(Interaction, dict(given)), Interaction(**given)
    assert mine == theirs and repr(mine) == repr(theirs)
    assert list(mine.__dict__) == list(theirs.__dict__)  # the fields in their order
    assert pickle.dumps(mine) == pickle.dumps(theirs)
    # Instances still share their class's table of keys: as small as those __init__ makes.
    assert sys.getsizeof(mine.__dict__) == sys.getsizeof(theirs.__dict__)
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.kind = "email"  # type: ignore[misc]


def test_make_fills_defaults_and_factories_and_refuses_what_init_refuses() -> None:
    one, two = make(Customer, {"id": "a", "path": "a.yaml"}), make(Customer, {"id": "b",
                                                                            "path": "b.yaml"})
    assert one == Customer(id="a", path="a.yaml") and one.kind == "person"
    assert one.fields == {} and one.fields is not two.fields  # a dict of its own, as __init__
    with pytest.raises(TypeError, match="missing \\['path'\\]"):
        make(Customer, {"id": "a"})
    with pytest.raises(TypeError, match="unknown fields \\['nmae'\\]"):
        make(Customer, {"id": "a", "path": "a.yaml", "nmae": "Bob"})
