"""Copying the frozen dataclasses of contacts, fast.

`dataclasses.replace` goes through the generated `__init__`, which sets every field through
`object.__setattr__`: 5.8 µs for a contact, and derive makes 70,000 copies at 10,000 contacts.
`replace` here fills the new instance's `__dict__` directly, for the plain classes custsite
defines (no `__post_init__`, no `InitVar`, no slots), in 0.8 µs.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")

_NAMES: dict[type, frozenset[str]] = {}


def replace(obj: T, /, **changes: Any) -> T:
    """`dataclasses.replace(obj, **changes)` for classes without cached properties (their
    cached values would be copied with the fields)."""
    cls = type(obj)
    names = _NAMES.get(cls)
    if names is None:
        if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
            raise TypeError(f"{cls.__name__} is not a plain dataclass")
        names = _NAMES[cls] = frozenset(f.name for f in fields(cls))  # type: ignore[arg-type]
    if not changes.keys() <= names:
        raise TypeError(f"{cls.__name__} has no field {sorted(changes.keys() - names)}")
    new = object.__new__(cls)
    state = new.__dict__
    state.update(obj.__dict__)  # in the same order: the copies share one table of keys
    state.update(changes)
    return new
