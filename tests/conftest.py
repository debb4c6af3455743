"""Shared fixtures: a fresh app per test (in-memory database, frozen clock at a fixed instant,
Connexion response validation on), a unique workspace key, and helpers to talk to it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from sandbox.app import create_app
from sandbox.settings import Settings

START = "2025-01-15T10:00:00Z"


@pytest.fixture
def settings() -> Settings:
    return Settings(validate_responses=True, clock_start=START, clock_mode="frozen",
                    background_ticker=False)


_APPS: dict[Settings, Any] = {}


@pytest.fixture
def app(settings: Settings) -> Any:
    """One app per distinct Settings for the whole run: building an app parses five specs,
    and every test works in its own workspace (`key`), which isolates it completely. Tests
    that need a brand-new app (restarts, determinism) call create_app themselves."""
    if settings not in _APPS:
        _APPS[settings] = create_app(settings)
    return _APPS[settings]


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with app.test_client() as c:
        yield c


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    """A workspace key unique to the test (well formed for every vendor, Leadlex included)."""
    return "wbk_test_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]


class Sandbox:
    """Thin helpers over the test client: auth for each vendor and the control API."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.key = key

    def headers(self, vendor: str, **extra: str) -> dict[str, str]:
        if vendor == "smartlead":
            return dict(extra)
        return {"Authorization": f"Bearer {self.key}", **extra}

    def params(self, vendor: str) -> dict[str, str]:
        return {"api_key": self.key} if vendor == "smartlead" else {}

    def call(self, vendor: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers(vendor), **kwargs.pop("headers", {})}
        params = {**self.params(vendor), **kwargs.pop("params", {})}
        return self.client.request(method, f"/{vendor}{path}", headers=headers, params=params,
                                   **kwargs)

    def advance(self, seconds: float) -> dict[str, Any]:
        r = self.client.post(f"/__sandbox/workspaces/{self.key}/clock/advance",
                             json={"seconds": seconds})
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture
def sb(client: TestClient, key: str) -> Sandbox:
    return Sandbox(client, key)
