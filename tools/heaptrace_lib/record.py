"""Plain data classes without the dataclasses module: importing it (with
inspect, ast and dis behind it) costs more than a small report's whole
work. @record gives a class with annotated fields an __init__ taking them in
order (a class attribute is the default; Factory(f) calls f for each new
object), __post_init__ called when defined, a __repr__ and, unless
eq=False, an __eq__ comparing the fields, as @dataclass does."""


class Factory:
    """A default made anew for each object (dataclasses' default_factory)."""

    def __init__(self, make):
        self.make = make


_NONE = object()  # no default; and the Factory fields' "not given"


def record(cls=None, *, eq=True):
    if cls is None:
        return lambda c: record(c, eq=eq)
    names = list(cls.__dict__.get("__annotations__", {}))
    params, body, scope = [], [], {"_NONE": _NONE}
    for name in names:
        default = cls.__dict__.get(name, _NONE)
        if isinstance(default, Factory):
            scope[f"_make_{name}"] = default.make
            params.append(f"{name}=_NONE")
            body.append(f"self.{name} = _make_{name}() if {name} is _NONE else {name}")
            delattr(cls, name)
        else:
            if default is not _NONE:
                scope[f"_default_{name}"] = default
                params.append(f"{name}=_default_{name}")
            else:
                params.append(name)
            body.append(f"self.{name} = {name}")
    if "__post_init__" in cls.__dict__:
        body.append("self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n    " + "\n    ".join(body or ["pass"])
    exec(source, scope)
    cls.__init__ = scope["__init__"]
    cls.__init__.__qualname__ = f"{cls.__qualname__}.__init__"

    def __repr__(self):
        return f"{type(self).__qualname__}(" + ", ".join(
            f"{n}={getattr(self, n)!r}" for n in names if not n.startswith("_")) + ")"

    cls.__repr__ = __repr__
    if eq:
        def __eq__(self, other):
            if other.__class__ is not self.__class__:
                return NotImplemented
            return all(getattr(self, n) == getattr(other, n) for n in names)

        cls.__eq__ = __eq__
        cls.__hash__ = None
    return cls
