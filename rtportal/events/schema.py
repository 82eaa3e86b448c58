"""A small typed schema language for event payloads.

Types: ``Str`` (a maximum length in UTF-8 bytes), ``Int`` (bounds), ``Bool``,
``Obj`` (named ``Field``s, each required or optional and visible to clients
or not), ``List`` (one item type, a maximum number of items) and ``AnyOf``
(one of several scalar types). JSON
``null`` fits no type: an optional field is left out, not ``null``.

Two operations per type: ``check`` (a write: the value fits exactly, no
unknown field, or ``BadRequest`` naming the path) and ``client_copy`` (a
client's view: a new value holding only the fields declared visible to
clients, recursively; anything that does not fit its declared type is left
out, so a stored value that no longer fits its schema still yields only
declared fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtportal.errors import BadRequest

__all__ = ["MISSING", "AnyOf", "Bool", "Field", "Int", "List", "Obj", "Str", "Type"]


class _Missing:
    """``client_copy``'s answer for a value that does not fit: leave it out."""

    __slots__ = ()


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class Str:
    max_bytes: int

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise BadRequest(f"{path} must be a string")
        if len(value) > self.max_bytes or len(value.encode("utf-8")) > self.max_bytes:
            raise BadRequest(f"{path} is over {self.max_bytes} bytes")

    def client_copy(self, value: Any) -> Any:
        if isinstance(value, str) and len(value.encode("utf-8", "replace")) <= self.max_bytes:
            return value
        return MISSING


@dataclass(frozen=True, slots=True)
class Int:
    min: int = 0
    max: int = 2**53 - 1

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadRequest(f"{path} must be an integer")
        if not self.min <= value <= self.max:
            raise BadRequest(f"{path} must be between {self.min} and {self.max}")

    def client_copy(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if self.min <= value <= self.max:
                return value
        return MISSING


@dataclass(frozen=True, slots=True)
class Bool:
    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            raise BadRequest(f"{path} must be true or false")

    def client_copy(self, value: Any) -> Any:
        return value if isinstance(value, bool) else MISSING


@dataclass(frozen=True, slots=True)
class Field:
    """One field of an ``Obj``: its type, whether a write must set it, and
    whether a client's view carries it (``client``; default: staff only)."""

    type: Type
    required: bool = False
    client: bool = False


@dataclass(frozen=True, slots=True)
class Obj:
    fields: Mapping[str, Field]

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise BadRequest(f"{path} must be a JSON object")
        for key, item in value.items():
            field = self.fields.get(key)
            if field is None:
                known = ", ".join(sorted(self.fields)) or "none"
                raise BadRequest(f"{path}.{key}: unknown field (fields: {known})")
            field.type.check(item, f"{path}.{key}")
        for key, field in self.fields.items():
            if field.required and key not in value:
                raise BadRequest(f"{path}.{key} is required")

    def client_copy(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return MISSING
        view: dict[str, Any] = {}
        for key, field in self.fields.items():
            if field.client and key in value:
                item = field.type.client_copy(value[key])
                if item is not MISSING:
                    view[key] = item
        return view


@dataclass(frozen=True, slots=True)
class List:
    item: Type
    max_items: int

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise BadRequest(f"{path} must be a list")
        if len(value) > self.max_items:
            raise BadRequest(f"{path} has over {self.max_items} items")
        for index, item in enumerate(value):
            self.item.check(item, f"{path}[{index}]")

    def client_copy(self, value: Any) -> Any:
        if not isinstance(value, list):
            return MISSING
        items = (self.item.client_copy(item) for item in value[: self.max_items])
        return [item for item in items if item is not MISSING]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """A value of any one of ``types``: a field whose type changed, so stored
    events of the old type still read (``phase``: a step name, now an id)."""

    types: tuple[Str | Int, ...]

    def check(self, value: Any, path: str) -> None:
        errors = []
        for option in self.types:
            try:
                option.check(value, path)
            except BadRequest as exc:
                errors.append(exc.message)
            else:
                return
        raise BadRequest(" or ".join(errors))

    def client_copy(self, value: Any) -> Any:
        for option in self.types:
            copied = option.client_copy(value)
            if copied is not MISSING:
                return copied
        return MISSING


Type = Str | Int | Bool | Obj | List | AnyOf
