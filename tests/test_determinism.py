"""Deterministic by default: the same seed and the same requests at the same clock instants give
byte-identical answers (ids, fake profiles, timestamps) in two fresh apps; another seed does not."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.app import create_app
from sandbox.settings import Settings
from tests.conftest import START
from tests.vendors.inboxkit import stored_leads

KEY = "wbk_determinism"
AUTH = {"Authorization": f"Bearer {KEY}"}
CSV = "username,company\nelonmusk,Tesla\njack,Block\nsuspended_sam,X\nada,Analytical\n"


def _script(seed: int) -> tuple[list[tuple[int, bytes]], list[dict[str, Any]]]:
    """Run one fixed scenario on a fresh app; return every answer and the stored prospects."""
    app = create_app(Settings(seed=seed, validate_responses=True, clock_start=START,
                              clock_mode="frozen", background_ticker=False))
    answers: list[tuple[int, bytes]] = []
    with app.test_client() as client:

        def call(method: str, path: str, **kwargs: Any) -> None:
            r = client.request(method, f"/inboxapp{path}", headers=AUTH, **kwargs)
            answers.append((r.status_code, r.content))

        def advance(seconds: float) -> None:
            r = client.post(f"/__sandbox/workspaces/{KEY}/clock/advance",
                            json={"seconds": seconds})
            answers.append((r.status_code, r.content))

        call("POST", "/lists/demolist1/import-jobs", json={"data": {
            "type": "csv", "content": CSV, "fileName": "p.csv", "columnMapping": [
                {"csvHeader": "company", "targetColumnId": "custom_q5cktl47a6pqa74eu06fz89v"}]}})
        advance(1.5)
        call("POST", "/lists/demolist2/import-jobs",
             json={"data": {"type": "followers", "username": "jack", "maxCount": 12}})
        call("POST", "/lists/demolist2/leads", json={"platformIds": ["44196397", "999123"]})
        for step in (1.55, 0.1, 2, 5.5, 30):
            advance(step)
            call("GET", "/lists/demolist1/import-jobs")
            call("GET", "/lists/demolist2/import-jobs", params={"status": ["running", "queued"]})
        call("POST", "/campaigns/v2/democampaign1/leads",
             json={"usernames": ["grace", "deleted_dan"], "platformIds": ["50393960"]})
        call("GET", "/lists/demolist1/import-jobs", params={"limit": 0})  # an error, too
        leads = [p for list_id in ("demolist1", "demolist2")
                 for p in stored_leads(app, KEY, list_id)]
    app.backend.store.dispose()
    return answers, leads


Run = tuple[list[tuple[int, bytes]], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def first() -> Run:
    return _script(1234)


def test_same_seed_same_requests_same_bytes(first: Run) -> None:
    second = _script(1234)
    assert [s for s, _ in first[0]] == [s for s, _ in second[0]]
    for i, (a, b) in enumerate(zip(first[0], second[0], strict=True)):
        assert a == b, i
    assert first[1] == second[1]
    # The scenario did something: jobs progressed, profiles were made.
    assert any(b'"completed"' in body for _, body in first[0])
    assert len(first[1]) >= 5 + 3 + 12 + 1


def test_another_seed_gives_other_ids_and_profiles(first: Run) -> None:
    other = _script(99)
    created, created_other = first[0][0][1], other[0][0][1]
    assert created != created_other
    job_id = created.split(b'"id": "')[1].split(b'"')[0]
    assert job_id not in created_other
    external = {p["externalId"] for p in first[1]}
    assert external.isdisjoint(p["externalId"] for p in other[1])
    names = {p.get("displayName") for p in first[1]}
    assert names != {p.get("displayName") for p in other[1]}
