"""validation.json_media_type: a JSON body's Content-Type rewritten to application/json when
Connexion would not parse it as JSON, the scope and its headers left alone otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.http.validation import json_media_type


def reference(scope: dict[str, Any]) -> dict[str, Any]:
    headers = list(scope.get("headers", []))
    for i, (name, value) in enumerate(headers):
        if name == b"content-type":
            media, sep, params = value.partition(b";")
            media = media.strip().lower()
            if media.startswith(b"application/") and (media == b"application/json"
                                                       or media.endswith(b"+json")):
                return scope
            headers[i] = (name, b"application/json" + sep + params)
            return {**scope, "headers": headers}
    return scope


@pytest.mark.parametrize("headers", [
    [], [(b"x", b"1")], [(b"content-type", b"application/json")],
    [(b"content-type", b"Application/JSON; charset=utf-8")],
    [(b"content-type", b"application/problem+json")], [(b"content-type", b"text/json")],
    [(b"a", b"b"), (b"content-type", b"text/json; charset=latin-1"), (b"content-type", b"x/y")],
    ((b"content-type", b"text/plain"),),
])
def test_json_media_type_is_the_copying_version(headers: Any) -> None:
    scope = {"type": "http", "headers": headers}
    got, expected = json_media_type(scope), reference(dict(scope))
    assert got == expected
    assert (got is scope) == (expected["headers"] is headers)  # rewritten: a new scope
    assert scope["headers"] is headers  # the request's own headers are never changed
