"""The JSON body validator's own reading of the request (a loop over the messages, no search
for long strings in a short body) answers as Connexion's wrap_receive does: same refusals,
same messages replayed to the handler, same scope."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from sandbox.http.validation import MAX_STRING_CHARS, PARSED_BODY_KEY, VendorJSONBodyValidator
from tests.http.spec_operations import spec_operations


class _ThroughConnexion(VendorJSONBodyValidator):
    """The same validator, taking Connexion's wrap_receive (its _parse is another function)."""

    async def _parse(self, stream: Any, scope: Any) -> Any:
        return await super()._parse(stream, scope)


IMPORT = dict(spec_operations())["inboxapp.yaml POST /lists/{listId}/import-jobs"]
SMALL = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "maxLength": 50}, "tags": {"type": "array"}}}
SCHEMAS: list[tuple[str, dict[str, Any], bool, bool]] = [  # (name, schema, required, nullable)
    ("import", IMPORT.body_schema("application/json"), True, False),
    ("small", SMALL, False, False),
    ("small required", SMALL, True, False),
    ("small nullable", SMALL, False, True),
    ("small with default", {**SMALL, "default": {"name": "d"}}, True, False),
]
CSV = "username\nalice\n"
LONG = "x" * (MAX_STRING_CHARS + 1)
BODIES: list[bytes] = [
    b"", b"   ", b"null", b"{}", b"[]", b"{", b'"text"', b"\xff\xfe",
    json.dumps({"name": "n"}).encode(), json.dumps({"name": "n" * 51}).encode(),
    json.dumps({"name": "a\u0000b"}).encode(), json.dumps({"name": "n", "x": LONG}).encode(),
    json.dumps({"name": "n", LONG: 1}).encode(), json.dumps({"name": "\u00e9" * 10}).encode(),
    json.dumps({"name": "n", "tags": ["\\u0041" * (MAX_STRING_CHARS // 5)]}).encode(),
    json.dumps({"data": {"type": "csv", "content": CSV}}).encode(),
    json.dumps({"data": {"type": "csv", "content": CSV + LONG}}).encode(),
    json.dumps({"data": {"type": "csv", "content": CSV, "fileName": LONG}}).encode(),
    json.dumps({"data": {"type": "likes", "postId": "12"}}).encode(),
    json.dumps({"data": {"type": "nope"}}).encode(),
    b"[" * 100_000,
]


def _messages(raw: bytes, chunks: int) -> list[dict[str, Any]]:
    if chunks == 1 or not raw:
        return [{"type": "http.request", "body": raw, "more_body": False}]
    size = max(1, len(raw) // chunks)
    parts = [raw[i:i + size] for i in range(0, len(raw), size)]
    return [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
            for i, part in enumerate(parts)]


async def _run(validator: Any, raw: bytes, chunks: int, content_length: bool,
               content_type: bytes) -> Any:
    pending = _messages(raw, chunks)

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    headers = [(b"content-type", content_type)]
    if content_length:
        headers.append((b"content-length", str(len(raw)).encode()))
    scope: dict[str, Any] = {"type": "http", "headers": headers}
    try:
        receive_, scope_ = await validator.wrap_receive(receive, scope=scope)
    except Exception as exc:  # the same refusal is part of the same answer
        return ("raised", type(exc), str(exc), getattr(exc, "field", None))
    replayed = []
    while True:
        message = await receive_()
        replayed.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    parsed = scope_.get("extensions", {}).get(PARSED_BODY_KEY, "absent")
    return ("ok", replayed, scope_["headers"], scope["headers"], parsed)


@pytest.mark.parametrize(("name", "schema", "required", "nullable"), SCHEMAS,
                         ids=[s[0] for s in SCHEMAS])
def test_the_validator_reads_requests_as_connexion_does(name: str, schema: dict[str, Any],
                                                        required: bool,
                                                        nullable: bool) -> None:
    def make(cls: type) -> Any:
        return cls(schema=schema, required=required, nullable=nullable, encoding="utf-8",
                   strict_validation=False)

    ours, theirs = make(VendorJSONBodyValidator), make(_ThroughConnexion)
    outcomes = set()
    for raw in BODIES:
        for chunks in (1, 3):
            for content_length in (True, False):
                for content_type in (b"application/json", b"text/json; charset=utf-8"):
                    case = (raw[:60], chunks, content_length, content_type)
                    got = asyncio.run(_run(ours, raw, chunks, content_length, content_type))
                    expected = asyncio.run(_run(theirs, raw, chunks, content_length,
                                                content_type))
                    assert got == expected, case
                    outcomes.add(got[0])
    assert outcomes == {"ok", "raised"}
