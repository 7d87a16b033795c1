"""Making and copying the frozen dataclasses of records and contacts, fast.

A frozen dataclass's generated `__init__` sets every field through `object.__setattr__`:
5.8 µs for a contact, 3 µs for an interaction; derive makes 70,000 copies of contacts at
10,000 contacts, and reading makes 100,000 interactions. `replace` and `make` here fill the new
instance's `__dict__` directly, for the plain classes custsite defines (no `__post_init__`, no
`InitVar`, no slots), in about 0.9 µs. `sparse_reduce` pickles such an instance without
the fields that hold their default.
"""

from __future__ import annotations

import copyreg
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T")

_NAMES: dict[type, frozenset[str]] = {}
# Per class: every field with its default (None for a required one), in the order of the
# fields; the names of all of them; the required ones; those made by a factory, with it; and
# those with a default value (not a factory), with it.
_Shape = tuple[tuple[tuple[str, Any], ...], frozenset[str], frozenset[str],
               tuple[tuple[str, Callable[[], Any]], ...], tuple[tuple[str, Any], ...]]
_SHAPES: dict[type, _Shape] = {}


def _plain(cls: type) -> None:
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__} is not a plain dataclass")


def _shape(cls: type) -> _Shape:
    _plain(cls)
    defaults: list[tuple[str, Any]] = []
    required: set[str] = set()
    made: list[tuple[str, Callable[[], Any]]] = []
    valued: list[tuple[str, Any]] = []
    for f in fields(cls):
        if f.default is not MISSING:
            defaults.append((f.name, f.default))
            valued.append((f.name, f.default))
            continue
        defaults.append((f.name, None))
        if f.default_factory is not MISSING:
            made.append((f.name, f.default_factory))
        else:
            required.add(f.name)
    shape = _SHAPES[cls] = (tuple(defaults), frozenset(name for name, _ in defaults),
                            frozenset(required), tuple(made), tuple(valued))
    return shape


def make(cls: type[T], values: dict[str, Any], /) -> T:
    """`cls(**values)`. The fields are set in their order, one by one (a dict updated from
    another dict at once would get a table of keys of its own: the instances of a class
    share one, which holds half of each one's memory)."""
    defaults, names, required, made, _ = _SHAPES.get(cls) or _shape(cls)
    if not values.keys() <= names or not required <= values.keys():
        given, missing = values.keys() - names, required - values.keys()
        raise TypeError(f"{cls.__name__}: unknown fields {sorted(given)}, "
                        f"missing {sorted(missing)}")
    new = object.__new__(cls)
    state = new.__dict__
    state.update(defaults)
    state.update(values)
    for name, factory in made:
        if name not in values:
            state[name] = factory()
    return new


def _names(cls: type) -> frozenset[str]:
    _plain(cls)
    names = _NAMES[cls] = frozenset(f.name for f in fields(cls))
    return names


def replace(obj: T, /, **changes: Any) -> T:
    """`dataclasses.replace(obj, **changes)` for classes without cached properties (their
    cached values would be copied with the fields)."""
    cls = type(obj)
    names = _NAMES.get(cls) or _names(cls)
    if not changes.keys() <= names:
        raise TypeError(f"{cls.__name__} has no field {sorted(changes.keys() - names)}")
    new = object.__new__(cls)
    state = new.__dict__
    state.update(obj.__dict__)  # in the same order: the copies share one table of keys
    state.update(changes)
    return new


def sparse_reduce(obj: object) -> tuple[Callable[..., Any], tuple[type], dict[str, Any]]:
    """The pickle reduction of a plain dataclass instance (see `make`) without the fields
    that hold their default itself: read back, such a field is the class attribute the
    dataclass set to that default. An interaction leaves out about half of its fields, so
    it is a quarter faster to unpickle (a warm build unpickles 100,000 of them); the
    instances still share their class's table of keys."""
    cls = type(obj)
    state = obj.__dict__.copy()
    for name, default in (_SHAPES.get(cls) or _shape(cls))[4]:
        if state.get(name, state) is default:
            del state[name]
    return (copyreg.__newobj__, (cls,), state)  # type: ignore[attr-defined]
