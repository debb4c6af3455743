"""Answers remembered per object: for things built once from objects that are never changed
(parsed spec schemas, decoded job plans, policies), keyed by the object itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

V = TypeVar("V")


def per_object(build: Callable[[Any], V], *, limit: int | None = None) -> Callable[[Any], V]:
    """`build(obj)`, computed once per object. The object is kept with its answer, so its id
    cannot be reused by another object while it is remembered; with `limit`, the memory starts
    afresh when it holds that many objects (for objects that come and go)."""
    remembered: dict[int, tuple[Any, V]] = {}

    def answer(obj: Any) -> V:
        hit = remembered.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        if limit is not None and len(remembered) >= limit:
            remembered.clear()
        value = build(obj)
        remembered[id(obj)] = (obj, value)
        return value

    return answer
