"""Leadlex error matrix through HTTP: every failure answers the documented envelope
{"error":{"code","message","details":{"fields":{...}}}} with the right status and code, and the
message names the field at fault."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.vendors.leadlexkit import SEEDED, V

JSON = {"Content-Type": "application/json"}


def envelope(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["error"]
    error = dict(body["error"])
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return error


def names_field(error: dict[str, Any], field: str, *words: str, named: bool = True) -> None:
    """details.fields names `field`; the message names it too (`named`) and has `words`."""
    if named:
        assert field.lower() in error["message"].lower(), error
    assert list(error["details"]["fields"]) == [field], error
    for word in words:
        assert word in error["message"], (word, error)


# (method, path, request kwargs, status, code, field named, words in the message)
MATRIX: list[tuple[str, str, dict[str, Any], int, str, str, tuple[str, ...]]] = [
    ("POST", "/v1/lists", {"json": {"description": "x"}}, 400, "validation_error", "name",
     ("required",)),
    ("POST", "/v1/contacts", {"json": {"full_name": 5}}, 400, "validation_error", "full_name",
     ("string",)),
    ("POST", "/v1/import/contacts", {"json": {"rows": "jane@acme.com"}}, 400,
     "validation_error", "rows", ("array",)),
    ("GET", "/v1/contacts", {"params": {"per_page": "101"}}, 400, "validation_error",
     "per_page", ("maximum",)),
    ("GET", "/v1/contacts", {"params": {"page": "0"}}, 400, "validation_error", "page",
     ("minimum",)),
    ("GET", "/v1/contacts", {"params": {"per_page": "ten"}}, 400, "validation_error",
     "per_page", ("integer",)),
    ("GET", "/v1/contacts", {"params": {"sort": "name"}}, 400, "validation_error", "sort",
     ("'name'",)),
    ("POST", "/v1/contacts", {"json": {"full_name": "A", "priority": "urgent"}}, 400,
     "validation_error", "priority", ("urgent",)),
    ("POST", "/v1/contacts", {"json": {"email": "jane.example.com"}}, 400, "validation_error",
     "email", ("jane.example.com",)),
    ("POST", "/v1/contacts", {"json": {"phone": "+15551234567"}}, 400, "validation_error",
     "full_name", ("email",)),
    ("POST", "/v1/contacts", {"json": {"full_name": "A", "created_date": "yesterday"}}, 400,
     "validation_error", "created_date", ("date-time",)),
    ("POST", "/v1/import/contacts", {"json": {"rows": [{"email": "a@b.co"}]},
                                     "headers": {"Idempotency-Key": "k" * 256}}, 400,
     "validation_error", "Idempotency-Key", ("long",)),
    ("POST", "/v1/contacts", {"content": b'{"full_name": "Jane"', "headers": JSON}, 400,
     "validation_error", "body", ("malformed JSON",)),
    ("POST", "/v1/contacts", {"content": b'{"full_name": "J\xfcrgen"}', "headers": JSON}, 400,
     "validation_error", "body", ("utf-8",)),
    ("POST", "/v1/contacts", {"content": b"", "headers": JSON}, 400, "validation_error", "body",
     ("empty",)),
    ("POST", "/v1/contacts", {"content": b"full_name=Jane", "headers": {
        "Content-Type": "application/x-www-form-urlencoded"}}, 415, "unsupported_media_type",
     "Content-Type", ("application/json",)),
    ("GET", "/v1/companies", {}, 404, "not_found", "path", ("/v1/companies",)),
    ("GET", "/v1/contacts/123e4567-e89b-12d3-a456-426614174000", {}, 404, "not_found", "path",
     ("/v1/contacts/123e4567",)),
    ("DELETE", "/v1/contacts", {}, 405, "method_not_allowed", "method", ("DELETE",)),
    ("GET", "/v1/import/contacts", {}, 405, "method_not_allowed", "method", ("GET",)),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code", "field", "words"),
                         MATRIX, ids=[f"{m} {p} {c}:{f}" for m, p, _k, _s, c, f, _w in MATRIX])
def test_error_matrix(sb: Any, method: str, path: str, kwargs: dict[str, Any], status: int,
                      code: str, field: str, words: tuple[str, ...]) -> None:
    before = sb.call(V, "GET", "/v1/contacts").json()["meta"]["total"]
    r = sb.call(V, method, path, **kwargs)
    # A 404 names the path it could not route, not the word "path".
    names_field(envelope(r, status, code), field, *words, named=field != "path")
    assert r.headers["X-Request-ID"].startswith("req_")
    assert sb.call(V, "GET", "/v1/contacts").json()["meta"]["total"] == before


def test_neither_rows_nor_csv_is_the_documented_error(sb: Any) -> None:
    r = sb.call(V, "POST", "/v1/import/contacts", json={"update_existing": True})
    error = envelope(r, 400, "validation_error")
    assert error == {"code": "validation_error", "message": "Neither rows nor csv provided",
                     "details": {"fields": {"rows": "Provide either rows or csv"}}}


def test_seed_template_request_is_rejected_naming_the_field(sb: Any) -> None:
    # The placeholder body of the docs' request builder (seeds/002) sends rows AND csv, and
    # objects as tags: a real client would be told which field is wrong.
    template = {"rows": [{}], "csv": "<string>", "has_header": True, "mapping": {},
                "update_existing": True, "tags": [{}]}
    error = envelope(sb.call(V, "POST", "/v1/import/contacts", json=template), 400,
                     "validation_error")
    names_field(error, "tags[0]", "string")


def test_too_many_items(sb: Any) -> None:
    contacts = [{"email": f"c{i}@x.co"} for i in range(501)]
    r = sb.call(V, "POST", "/v1/contacts/bulk", json={"contacts": contacts})
    error = envelope(r, 400, "validation_error")
    assert error == {"code": "validation_error", "message": "More than 500 contacts",
                     "details": {"fields": {"contacts": "Too many items"}}}
    empty = envelope(sb.call(V, "POST", "/v1/contacts/bulk", json={"contacts": []}), 400,
                     "validation_error")
    names_field(empty, "contacts")


@pytest.mark.parametrize(("headers", "words"), [
    ({}, ("missing",)),
    ({"Authorization": "Basic d2JrX3Rlc3Q6"}, ("missing",)),
    ({"Authorization": "Bearer sk_live_0123456789"}, ("wbk_",)),
    ({"Authorization": "Bearer wbk"}, ("wbk_",)),
])
def test_bad_or_missing_key_is_invalid_key(client: Any, headers: dict[str, str],
                                           words: tuple[str, ...]) -> None:
    r = client.post("/leadlex/v1/import/contacts", json={"rows": [{"email": "a@b.co"}]},
                    headers=headers)
    error = envelope(r, 401, "invalid_key")
    assert list(error["details"]["fields"]) == ["Authorization"]
    assert "API key" in error["message"]
    for word in words:
        assert word in error["message"]


def test_payload_too_large(sb: Any) -> None:
    body = json.dumps({"csv": "email\n" + "a@b.co\n" * 3_000_000}).encode()
    assert len(body) > 20 * 1024 * 1024
    r = sb.call(V, "POST", "/v1/import/contacts", content=body, headers=JSON)
    names_field(envelope(r, 413, "payload_too_large"), "body", "exceeds")


@pytest.mark.parametrize(("status", "code"), [(429, "rate_limited"), (500, "internal_error"),
                                              (503, "service_unavailable")])
def test_injected_failures_use_the_envelope(sb: Any, status: int, code: str) -> None:
    r = sb.call(V, "POST", "/v1/contacts", json={"full_name": "A"},
                headers={"X-Sandbox-Scenario": f"status={status}"})
    envelope(r, status, code)
    if status == 429:
        assert r.headers["Retry-After"] == "60"
    assert sb.call(V, "GET", "/v1/contacts").json()["meta"]["total"] == SEEDED


def test_rate_limit_headers_are_sent(sb: Any) -> None:
    first = sb.call(V, "GET", "/v1/contacts")
    second = sb.call(V, "GET", "/v1/contacts")
    assert first.headers["X-RateLimit-Limit"] == "200"  # Org plan, per minute
    assert int(second.headers["X-RateLimit-Remaining"]) == int(
        first.headers["X-RateLimit-Remaining"]) - 1
    assert int(first.headers["X-RateLimit-Reset"]) % 60 == 0
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def change_settings(sb: Any, **changes: Any) -> None:
    r = sb.client.put(f"/__sandbox/workspaces/{sb.key}/settings", json=changes)
    assert r.status_code == 200, r.text


def test_rate_limit_headers_are_optional_when_limits_are_off(sb: Any) -> None:
    # The spec declares the headers not required: this answer passes response validation.
    change_settings(sb, rateLimits="off")
    r = sb.call(V, "GET", "/v1/contacts")
    assert r.status_code == 200, r.text
    assert not [h for h in r.headers if h.lower().startswith("x-ratelimit")]
    assert r.headers["X-Request-ID"].startswith("req_")


def test_starter_plan_is_limited_to_10_requests_a_minute(sb: Any) -> None:
    change_settings(sb, ratePlans={"leadlex": "starter"})
    answers = [sb.call(V, "GET", "/v1/contacts") for _ in range(11)]
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert answers[9].headers["X-RateLimit-Remaining"] == "0"
    error = envelope(answers[10], 429, "rate_limited")
    assert "Rate limit" in error["message"]
    assert answers[10].headers["X-RateLimit-Limit"] == "10"
    assert int(answers[10].headers["Retry-After"]) == 60  # the clock is frozen on a minute
    sb.advance(60)
    assert sb.call(V, "GET", "/v1/contacts").status_code == 200
