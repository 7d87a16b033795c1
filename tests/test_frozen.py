"""frozen.replace gives what dataclasses.replace gives."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from custsite.frozen import replace
from custsite.model import Customer, Place


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
