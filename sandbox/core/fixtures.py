"""Fixture documents: the seed data of a new workspace, one YAML format, validated on load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

FIXTURE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["vendor"],
    "properties": {
        "vendor": {"type": "string", "enum": ["inboxapp", "leadlex", "which50", "smartlead"]},
        "description": {"type": "string"},
        "key_field": {"type": "string", "minLength": 1},
        "alt_key_field": {"type": "string", "minLength": 1},
        "lists": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "name"],
                "properties": {
                    "kind": {"type": "string", "enum": ["list", "campaign", "contacts"]},
                    "id": {"type": ["string", "integer"]},
                    "name": {"type": "string", "minLength": 1},
                    "description": {"type": ["string", "null"]},
                    "data": {"type": "object"},
                    "leads": {"type": "array", "items": {"type": "object"}},
                    "fake_leads": {"type": "integer", "minimum": 0, "maximum": 1000},
                },
            },
        },
        "block_list": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["value"],
                "properties": {
                    "value": {"type": "string", "minLength": 1},
                    "client_id": {"type": ["integer", "null"]},
                    "source": {"type": "string"},
                },
            },
        },
        "pacing": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "queue_wait": {"type": "number", "minimum": 0},
                    "start_delay": {"type": "number", "minimum": 0},
                    "rows_per_second": {"type": "number", "exclusiveMinimum": 0},
                },
            },
        },
    },
}

_VALIDATOR = jsonschema.Draft7Validator(FIXTURE_SCHEMA)


class FixtureError(ValueError):
    pass


def validate(doc: Any, origin: str = "fixture") -> dict[str, Any]:
    errors = sorted(_VALIDATOR.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise FixtureError(f"{origin}: {where}: {first.message}")
    assert isinstance(doc, dict)
    return doc


def load_dir(directory: Path) -> list[dict[str, Any]]:
    docs = []
    # libyaml's loader when present: the pure-Python one took 10 ms of every start-up.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in sorted(directory.glob("*.yaml")):
        docs.append(validate(yaml.load(path.read_text(), Loader=loader), str(path)))
    return docs
