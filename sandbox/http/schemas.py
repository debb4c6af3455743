"""jsonschema validators built once per schema for the life of the process, with the rules
the sandbox adds to Draft 4: integers that fit in 64 bits, and a `oneOf` that goes straight to
the branch an OpenAPI discriminator names (schemas are never changed once loaded); and their
errors explained as `InvalidRequest`s naming the failing field and the rule it broke."""

from __future__ import annotations

from typing import Any

from connexion.json_schema import Draft4RequestValidator, Draft4ResponseValidator
from jsonschema import Draft4Validator, ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import extend

from sandbox.core.errors import InvalidRequest
from sandbox.core.memo import per_object
from sandbox.http.fastcheck import INT64

_VALIDATORS: dict[int, tuple[Any, Any]] = {}
_BOUNDED: dict[Any, Any] = {}


def _int64(cls: Any) -> Any:
    """`cls` whose `integer` type also requires the value to fit in 64 bits, and whose `oneOf`
    goes straight to the branch an OpenAPI discriminator names."""
    if cls not in _BOUNDED:
        base = cls.TYPE_CHECKER

        def is_int64(checker: Any, instance: Any) -> bool:
            return bool(base.is_type(instance, "integer")) and -INT64 <= instance < INT64

        _BOUNDED[cls] = extend(cls, type_checker=base.redefine("integer", is_int64),
                               validators={"oneOf": _discriminated(cls.VALIDATORS["oneOf"])})
    return _BOUNDED[cls]


def _discriminated(one_of: Any) -> Any:
    """`oneOf` that, when a discriminator value selects a branch and the other branches all
    require a different value of it, checks that branch alone: valid there means valid under
    exactly one. Anything else, and every failure, goes to the standard keyword, so the
    errors are the same as ever. (A body's `oneOf` over import types was a sixth of a request.)"""

    def discriminated_one_of(validator: Any, subschemas: Any, instance: Any,
                             schema: Any) -> Any:
        shortcut = _branches(schema, subschemas)
        if shortcut is not None and isinstance(instance, dict):
            disc, table = shortcut
            value = instance.get(disc)
            branch = table.get(value) if _is_scalar(value) else None
            if branch is not None and validator.evolve(schema=branch).is_valid(instance):
                return
        yield from one_of(validator, subschemas, instance, schema)

    return discriminated_one_of


_BRANCHES: dict[int, tuple[Any, tuple[str, dict[Any, Any]] | None]] = {}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _branches(schema: Any, subschemas: Any) -> tuple[str, dict[Any, Any]] | None:
    """(discriminator, value -> its branch) when every branch requires the discriminator with
    values no other branch allows; None when the shortcut would not be exact."""
    hit = _BRANCHES.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    found: tuple[str, dict[Any, Any]] | None = None
    disc = ((schema.get("discriminator") or {}).get("propertyName")
            if isinstance(schema, dict) else None)
    if isinstance(disc, str) and isinstance(subschemas, list):
        table: dict[Any, Any] = {}
        for sub in subschemas:
            prop = ((sub.get("properties") or {}).get(disc) or {}) if isinstance(sub, dict) else {}
            values = prop.get("enum")
            if not (isinstance(values, list) and disc in (sub.get("required") or ())
                    and all(_is_scalar(v) and v not in table for v in values)):
                break
            table.update(dict.fromkeys(values, sub))
        else:
            found = (disc, table)
    _BRANCHES[id(schema)] = (schema, found)
    return found


def compiled(schema: dict[str, Any], cls: Any = Draft4RequestValidator) -> Any:
    """One validator per schema object for the life of the process (schemas are immutable)."""
    hit = _VALIDATORS.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    validator = _int64(cls)(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


def _response_validator(schema: dict[str, Any]) -> Any:
    return Draft4ResponseValidator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)


compiled_response = per_object(_response_validator)


def field_path(parts: Any, prefix: str = "") -> str:
    out = prefix
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


def explain(error: ValidationError, prefix: str = "") -> InvalidRequest:
    """Turn a jsonschema error into InvalidRequest naming the deepest relevant field."""
    error = _focus(error)
    path = list(error.absolute_path)
    rule = str(error.validator)
    message = error.message
    if rule == "required" and isinstance(error.validator_value, list) and isinstance(
            error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        if missing:
            path.append(missing[0])
            message = "is required"
    elif rule == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((error.schema or {}).get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        if extra:
            path.append(extra[0])
            message = "is not an allowed property"
    elif rule in {"oneOf", "anyOf"} and _only_required(error.validator_value):
        names = [n for clause in error.validator_value for n in clause["required"]]
        quantity = "exactly one" if rule == "oneOf" else "at least one"
        message = f"provide {quantity} of: {', '.join(names)}"
        path.append(names[0])
    elif rule == "type" and type(error.instance) is int and not -INT64 <= error.instance < INT64:
        message = "is out of range (integers are signed 64-bit)"
    elif rule in {"maxItems", "minItems", "maxLength", "minLength"} and isinstance(
            error.instance, (list, str)):
        # jsonschema repeats the whole value (2001 ids, a 20 MB string): say the size instead.
        unit = "items" if isinstance(error.instance, list) else "characters"
        size = f"{len(error.instance)} {unit}"
        if rule.startswith("max"):
            message = f"is too long: {size}, at most {error.validator_value} allowed"
        elif not error.instance:
            message = "should be non-empty"
        else:
            message = f"is too short: {size}, at least {error.validator_value} required"
    field = field_path(path, prefix) or (prefix or "body")
    return InvalidRequest(f"{field}: {message}", field=field, rule=rule)


def _only_required(clauses: Any) -> bool:
    return isinstance(clauses, list) and all(
        isinstance(c, dict) and set(c) <= {"required"} and c.get("required") for c in clauses)


def _focus(error: ValidationError) -> ValidationError:
    """For oneOf/anyOf, pick the branch the client evidently meant (OpenAPI discriminator, or
    jsonschema's best match) so the message names a real field, not 'not valid under any'."""
    while error.validator in {"oneOf", "anyOf"} and error.context:
        if _only_required(error.validator_value):
            return error
        schema = error.schema if isinstance(error.schema, dict) else {}
        disc = (schema.get("discriminator") or {}).get("propertyName")
        instance = error.instance
        if disc and isinstance(instance, dict):
            value = instance.get(disc)
            options = []
            for idx, sub in enumerate(error.validator_value):
                enum = ((sub.get("properties") or {}).get(disc) or {}).get("enum", [])
                options.extend(enum)
                if value in enum:
                    branch = [e for e in error.context if e.relative_schema_path
                              and e.relative_schema_path[0] == idx]
                    if branch:
                        error = best_match(branch)
                        break
            else:
                return ValidationError(
                    f"{value!r} is not one of {options}" if value is not None
                    else "is required", validator="enum" if value is not None else "required",
                    path=[*error.absolute_path, disc], validator_value=options,
                    instance=value, schema={})
            continue
        error = best_match(error.context)
    return error
