"""Helpers shared by the reliability tests: the vendors' error envelopes checked against their
own specs, one valid request per vendor, and unique workspace keys."""

from __future__ import annotations

import json
import re
import uuid
from functools import cache
from typing import Any

import httpx
import yaml
from connexion.json_schema import Draft4ResponseValidator, resolve_refs

from tests.reliability.conftest import ROOT, auth

VENDORS = ("inboxapp", "leadlex", "which50", "smartlead")


def new_key(label: str = "t") -> str:
    """A fresh workspace key, well formed for every vendor (Leadlex wants `wbk_`)."""
    return f"wbk_{label}_{uuid.uuid4().hex[:12]}"


@cache
def spec(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "openapi" / f"{name}.yaml").read_text())
    resolved: dict[str, Any] = resolve_refs(loaded)
    return resolved


def _operation(name: str, method: str, path: str) -> dict[str, Any]:
    """The spec operation whose templated path matches `path` (the mount prefix removed)."""
    for template, item in spec(name)["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            operation: dict[str, Any] = item[method.lower()]
            return operation
    raise AssertionError(f"{method} {path} is not in {name}.yaml")


def assert_envelope(name: str, method: str, path: str, response: httpx.Response,
                    status: int | None = None) -> dict[str, Any]:
    """A refusal: a 4xx (or exactly `status`), JSON, and a body that validates against the
    spec's answer for that status (else its `default`): the vendor's own error envelope."""
    if status is None:
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    else:
        assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    responses = _operation(name, method, path)["responses"]
    declared = responses.get(str(response.status_code)) or responses["default"]
    schema = declared["content"]["application/json"]["schema"]
    body: dict[str, Any] = json.loads(response.content)
    errors = [e.message for e in Draft4ResponseValidator(schema).iter_errors(body)]
    assert not errors, (errors, body)
    return body


# One create-style request per vendor whose body carries a free-text value: the hostile
# variants are built from it.
TARGETS: dict[str, tuple[str, Any]] = {
    "inboxapp": ("/lists/demolist1/import-jobs",
                 lambda s: {"data": {"type": "csv", "content": f"username,bio\nann,{s}\n"}}),
    "leadlex": ("/v1/import/contacts",
                lambda s: {"rows": [{"email": "ann@example.com", "full_name": s}]}),
    "which50": ("/contactLists/1/import", lambda s: {"FieldNames": ["Email", s]}),
    "smartlead": ("/lead-list/1/import",
                  lambda s: {"leadList": [{"email": "ann@example.com", "first_name": s}],
                             "fileName": "leads.csv"}),
}


def post_raw(client: httpx.Client, vendor: str, key: str, content: bytes,
             content_type: str = "application/json", path: str | None = None) -> httpx.Response:
    kwargs = auth(vendor, key)
    headers = {**kwargs.get("headers", {}), "Content-Type": content_type}
    return client.post(f"/{vendor}{path or TARGETS[vendor][0]}", content=content,
                       headers=headers, params=kwargs.get("params"))


def valid_request_works(client: httpx.Client, vendor: str, key: str) -> None:
    """The server still serves: a well-formed request right after a hostile one succeeds."""
    body = json.dumps(TARGETS[vendor][1]("hello")).encode()
    response = post_raw(client, vendor, key, body)
    assert 200 <= response.status_code < 300, response.text[:300]
