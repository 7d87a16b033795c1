"""frozen.replace and frozen.make give what dataclasses.replace and the class itself give;
frozen.sparse_reduce pickles what pickle would, in fewer bytes."""

from __future__ import annotations

import copyreg
import dataclasses
import datetime as dt
import io
import pickle
import sys

import pytest

from custsite.frozen import make, replace, sparse_reduce
from custsite.model import RECORD_REDUCERS, Customer, Interaction, Place


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


def _sparse_pickle(value: object) -> bytes:
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, **RECORD_REDUCERS}
    pickler.dump(value)
    return out.getvalue()


def test_sparse_reduce_leaves_out_defaults_and_reads_back_equal() -> None:
    call = Interaction(id="a-1", path="a.yaml", customers=("a",), date=dt.date(2024, 5, 1),
                       kind="call", notes="Called.")
    ann = Customer(id="a", path="a.yaml", name="Ann", location=Place("Lyon"),
                   fields={"x": 1})
    for record, unset in ((call, "amount"), (ann, "email")):
        data = _sparse_pickle(record)
        back = pickle.loads(data)
        assert back == record and repr(back) == repr(record)
        assert len(data) < len(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
        # The defaults are the class's; a field made by a factory is the instance's own.
        assert unset not in back.__dict__ and getattr(back, unset) is None
        assert sys.getsizeof(back.__dict__) <= sys.getsizeof(record.__dict__)
    again = pickle.loads(_sparse_pickle(ann))
    assert again.fields == {"x": 1} and again.location == Place("Lyon")
    assert pickle.loads(_sparse_pickle(Customer(id="b", path="b.yaml"))).fields == {}
    # A field that equals its default without being it is kept: the value is the same anyway.
    odd = replace(call, direction="".join(["o", "ut"]))
    assert "direction" in sparse_reduce(odd)[2] and pickle.loads(_sparse_pickle(odd)) == odd
    # Copies of a read-back record have the fields it has, and the defaults still.
    assert replace(back, name="Bo").kind == "person"
