"""The Swagger UI layer is consulted only for paths that can reach its routes, and those still
answer exactly as Connexion's Swagger UI does."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from sandbox.http.swagger import DocsPathSwaggerUI
from tests.conftest import Sandbox


def _swagger_layer(app: Any) -> DocsPathSwaggerUI:
    layers = [m for m in app.middleware.middleware_stack if isinstance(m, DocsPathSwaggerUI)]
    assert len(layers) == 1
    return layers[0]


@pytest.mark.parametrize(("path", "status", "location"), [
    ("/inboxapp/__docs/", 200, None),
    ("/inboxapp/__docs", 307, "/inboxapp/__docs/"),
    ("/leadlex/__docs/openapi.json", 200, None),
    ("/which50/__docs/openapi.yaml", 200, None),
    ("/smartlead/__docs/swagger-ui.css", 200, None),
    ("/__sandbox/docs/", 200, None),
    ("/__sandbox/openapi.json", 200, None),
    ("/inboxapp", 307, "/inboxapp/"),  # Starlette's redirect to the mount, as before
])
def test_docs_paths_answer_as_connexion_serves_them(client: TestClient, path: str, status: int,
                                                    location: str | None) -> None:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == status, r.text
    if location is not None:
        assert r.headers["location"].endswith(location)
    if path.endswith("openapi.json"):
        assert r.json()["openapi"] == "3.0.3"


def test_vendor_requests_skip_the_docs_router(sb: Sandbox, app: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    sb.call("inboxapp", "GET", "/lists/demolist1/import-jobs")  # builds the middleware stack
    layer = _swagger_layer(app)
    routed: list[str] = []
    real = layer.router

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        routed.append(scope["path"])
        await real(scope, receive, send)

    monkeypatch.setattr(layer, "router", counting)
    body = {"data": {"type": "csv", "content": "username\nalice\n"}}
    assert sb.call("inboxapp", "POST", "/lists/demolist1/import-jobs", json=body
                   ).status_code == 200
    assert sb.call("inboxapp", "GET", "/lists/demolist1/import-jobs").json()["data"]
    assert sb.call("inboxapp", "GET", "/nowhere").status_code == 404
    assert routed == []
    assert sb.client.get("/inboxapp/__docs/").status_code == 200
    assert routed == ["/inboxapp/__docs/"]
    assert set(layer.docs_prefixes) >= {"/inboxapp/__docs", "/__sandbox/openapi.json",
                                        "/__sandbox/docs"}
