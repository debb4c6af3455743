"""A compiled yes/no check of request bodies in front of jsonschema: a body it passes is valid;
any other body gets jsonschema's full verdict and error, exactly as before.

jsonschema interprets the schema on every request (a fifth of a validated POST); fastjsonschema
(a small pure-Python library, well kept, used by packaging tools) compiles it to Python code
once. The compiled check must never pass what jsonschema refuses, so the schema is first given
the rules Connexion's and the sandbox's validators add to Draft 4: OpenAPI's `nullable`,
integers that fit in 64 bits, and jsonschema's own format checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastjsonschema
from jsonschema import Draft4Validator

from sandbox.core.memo import per_object

Check = Callable[[Any], bool]

# An `integer` in a request is a signed 64-bit one: larger values cannot be stored (SQLite,
# PostgreSQL) and no vendor documents bigger ids, pages or offsets.
INT64 = 2**63
_FORMATS = Draft4Validator.FORMAT_CHECKER


def _compile(schema: dict[str, Any]) -> Check | None:
    formats: set[str] = set()
    try:
        draft4 = _draft4(schema, formats, set())
        validate = fastjsonschema.compile(
            {**draft4, "$schema": "http://json-schema.org/draft-04/schema#"},
            formats={name: _format_check(name) for name in formats},
            use_default=False,  # its default is to fill defaults in: never change a body
            # Only the verdict is read; with details, every failing branch of a oneOf builds
            # the whole schema as a literal for its exception (~6 us of A's POST).
            detailed_exceptions=False)
    except (fastjsonschema.JsonSchemaDefinitionException, RecursionError, TypeError,
            ValueError):
        return None

    def check(body: Any) -> bool:
        try:
            validate(body)
        except (fastjsonschema.JsonSchemaValueException, RecursionError):
            return False
        return True

    return check


# The compiled check for a body or parameter schema (one per schema object), or None when the
# schema cannot be compiled faithfully (the caller then uses jsonschema alone).
fast_check: Callable[[dict[str, Any]], Check | None] = per_object(_compile)


def _format_check(name: str) -> Callable[[Any], bool]:
    def conforms(value: Any) -> bool:
        return bool(_FORMATS.conforms(value, name))

    return conforms


_SCHEMA = ("additionalProperties", "items", "additionalItems", "not")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "items")
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "dependencies")


def _draft4(node: Any, formats: set[str], seen: set[int]) -> Any:
    """The schema with Connexion's `nullable` and the sandbox's int64 rule written as Draft 4
    (only keywords that hold schemas are descended: a property named `type` is a name)."""
    if not isinstance(node, dict):
        return node
    if id(node) in seen:  # a schema that contains itself is left to jsonschema
        raise ValueError("recursive schema")
    seen = seen | {id(node)}
    out = dict(node)
    out.pop("components", None)  # Connexion attaches them for $refs, already resolved in place
    for key in _SCHEMA:
        if isinstance(out.get(key), dict):
            out[key] = _draft4(out[key], formats, seen)
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_draft4(item, formats, seen) for item in out[key]]
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: _draft4(sub, formats, seen) for name, sub in out[key].items()}
    if "$ref" in out:
        raise ValueError("unresolved $ref")
    if isinstance(out.get("format"), str):
        formats.add(out["format"])
    if out.get("nullable") is True or out.get("x-nullable") is True:
        # Connexion lets None through `type` and `enum` only (jsonschema's other keywords
        # ignore a null instance anyway).
        if "type" in out:
            listed = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*listed, "null"]
        if isinstance(out.get("enum"), list):
            out["enum"] = [*out["enum"], None]
    if isinstance(out.get("oneOf"), list) and "anyOf" not in out and _exclusive(out["oneOf"]):
        # Exactly one branch holds if and only if one does; fastjsonschema stops at the first
        # that holds for anyOf, and tries every branch for oneOf.
        out["anyOf"] = out.pop("oneOf")
    types = out.get("type")
    if types == "integer" or (isinstance(types, list) and "integer" in types):
        # jsonschema here refuses an integer outside 64 bits (schemas._int64). Bounds
        # are only tightened: the check may refuse more than jsonschema, never less.
        if not isinstance(out.get("maximum"), (int, float)) or out["maximum"] >= INT64:
            out["maximum"], out["exclusiveMaximum"] = INT64, True
        if not isinstance(out.get("minimum"), (int, float)) or out["minimum"] < -INT64:
            out["minimum"], out["exclusiveMinimum"] = -INT64, False
    return out


def _exclusive(branches: list[Any]) -> bool:
    """Whether no instance can satisfy two of these (Draft 4) schemas: each is an object
    schema that requires one same property and admits only its own values of it (an `enum`
    per branch, no value shared, as an OpenAPI discriminator's branches are)."""
    if not branches or not all(isinstance(b, dict) and b.get("type") == "object"
                               for b in branches):
        return False
    for name in branches[0].get("required") or ():
        taken: dict[Any, None] = {}
        for branch in branches:
            prop = (branch.get("properties") or {}).get(name)
            values = prop.get("enum") if isinstance(prop, dict) else None
            if not (isinstance(branch.get("required"), list) and name in branch["required"]
                    and isinstance(values, list) and all(_distinct(v, taken) for v in values)):
                break
            taken.update(dict.fromkeys(values))
        else:
            return True
    return False


def _distinct(value: Any, taken: dict[Any, None]) -> bool:
    """A scalar equal only to itself (not NaN) and to no value already taken."""
    return (isinstance(value, (str, int, float, bool)) or value is None) and (
        value == value and value not in taken)
