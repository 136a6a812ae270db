"""Building the frozen dataclasses normalize returns, fast.

A frozen dataclass's `__init__` sets each field with `object.__setattr__(self, name, value)` (its own `__setattr__`
refuses), which looks the slot up by name every time: for `Finding`'s 37 fields that was a third of normalizing a
finding. `constructor(cls)` makes the same object by calling each slot's descriptor directly, from a function written
once per class the way dataclasses writes `__init__`: the same parameters, defaults and default factories, no
validation (the dataclass has none: no `__post_init__`). The result equals what `cls(...)` makes, and stays frozen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_NO_DEFAULT = object()


def constructor(cls: type[T]) -> Callable[..., T]:
    """`cls(...)` for a frozen slots dataclass without `__post_init__`, about twice as fast (keyword or positional
    arguments, as `cls` takes them)."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__ or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: a slots dataclass without __post_init__ is needed")
    fields = [f for f in dataclasses.fields(cls) if f.init]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_NO_DEFAULT": _NO_DEFAULT}
    parameters = []
    body = ["    self = _new(_cls)"]
    for i, field in enumerate(fields):
        name = field.name
        namespace[f"_set{i}"] = cls.__dict__[name].__set__
        if field.default is not dataclasses.MISSING:
            namespace[f"_default{i}"] = field.default
            parameters.append(f"{name}=_default{i}")
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory{i}"] = field.default_factory
            parameters.append(f"{name}=_NO_DEFAULT")
            body.append(f"    if {name} is _NO_DEFAULT: {name} = _factory{i}()")
        else:
            parameters.append(name)
        body.append(f"    _set{i}(self, {name})")
    body.append("    return self")
    source = f"def make({', '.join(parameters)}):\n" + "\n".join(body) + "\n"
    exec(compile(source, f"<{cls.__name__} constructor>", "exec"), namespace)  # noqa: S102 (our own source, as dataclasses does)
    make: Callable[..., T] = namespace["make"]
    make.__doc__ = f"A {cls.__name__}, as {cls.__name__}(...) makes it (normalize/_build.py)."
    return make
