"""The app's middleware stack: Connexion's response validation is a layer only when it is on."""

from __future__ import annotations

from typing import Any

import pytest
from connexion.middleware.response_validation import ResponseValidationMiddleware

from sandbox.app import create_app
from sandbox.settings import Settings
from sandbox.vendors import inboxapp

START = "2025-01-15T10:00:00Z"
KEY = "wbk_test_app_stack"
CSV = "username,company\nprospect00,Company 0\n"


def _create(validate: bool) -> tuple[Any, Any]:
    app = create_app(Settings(validate_responses=validate, clock_start=START,
                              clock_mode="frozen", background_ticker=False))
    with app.test_client() as client:
        answer = client.post("/inboxapp/lists/demolist1/import-jobs",
                             headers={"Authorization": f"Bearer {KEY}"},
                             json={"data": {"type": "csv", "content": CSV}})
    return app, answer


@pytest.mark.parametrize("validate", [False, True])
def test_response_validation_is_in_the_stack_only_when_it_is_on(validate: bool) -> None:
    app, answer = _create(validate)
    assert (ResponseValidationMiddleware in app.middleware.middlewares) is validate
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "queued"


def test_an_answer_off_contract_is_caught_only_with_response_validation_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A job view without its required fields: the layer, when on, refuses to send it.
    monkeypatch.setattr(inboxapp, "job_view", lambda job: {"id": job["id"]})
    _, checked = _create(True)
    _, unchecked = _create(False)
    assert checked.status_code == 500
    assert unchecked.status_code == 200
    assert list(unchecked.json()) == ["id"]
