"""The control API through HTTP: armed and per-request failure scenarios, the request journal,
and the control token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import Sandbox
from tests.controlkit import CSV_JOB, create_job, csv_body, ctl, error_of, make_app


@pytest.fixture(scope="module")
def app() -> Any:
    return make_app()

# ---- scenarios ---------------------------------------------------------------------------

def test_an_armed_503_fires_twice_then_calls_succeed(sb: Sandbox) -> None:
    r = ctl(sb, "POST", "/scenarios", json={"operationId": "createImportJob", "status": 503,
                                             "times": 2})
    assert r.status_code == 201, r.text
    assert r.json()["remaining"] == 2 and r.json()["retryAfter"] == 60
    answers = [sb.call("inboxapp", "POST", CSV_JOB, json=csv_body("alice")) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].json() == {"error": {"code": "SERVICE_UNAVAILABLE", "status": 503,
                                           "message": "Service temporarily unavailable"}}
    assert answers[0].headers["Retry-After"] == "60"
    # Other operations were never affected, and nothing is left armed.
    assert sb.call("inboxapp", "GET", CSV_JOB).status_code == 200
    assert ctl(sb, "GET", "/scenarios").json() == {"data": []}
    journal = ctl(sb, "GET", "/requests", params={"operationId": "createImportJob"}).json()
    assert [e["status"] for e in journal["data"]] == [503, 503, 200]


def test_scenarios_are_listed_and_cleared(sb: Sandbox) -> None:
    ctl(sb, "POST", "/scenarios", json={"operationId": "listImportJobs", "status": 500,
                                         "times": 3, "message": "boom"})
    armed = ctl(sb, "GET", "/scenarios").json()["data"]
    assert [(s["operationId"], s["status"], s["remaining"]) for s in armed] == [
        ("listImportJobs", 500, 3)]
    r = sb.call("inboxapp", "GET", CSV_JOB)
    assert r.status_code == 500 and r.json()["error"]["message"] == "boom"
    assert ctl(sb, "DELETE", "/scenarios").json() == {"cleared": 1}
    assert sb.call("inboxapp", "GET", CSV_JOB).status_code == 200


@pytest.mark.parametrize(("body", "field", "says"), [
    ({"operationId": "createImportJobs", "status": 503}, "operationId",
     "did you mean 'createImportJob'"),
    ({"operationId": "createImportJob"}, "status", "status to answer, a delay, or both"),
    ({"operationId": "createImportJob", "status": 200}, "status", "minimum"),
    ({"operationId": "createImportJob", "delay": 61}, "delay", "maximum"),
])
def test_bad_scenarios_are_rejected(sb: Sandbox, body: dict[str, Any], field: str,
                                    says: str) -> None:
    err = error_of(ctl(sb, "POST", "/scenarios", json=body), 400)
    assert err["field"] == field and says in err["message"]


def test_a_scenario_header_answers_429_with_retry_after(sb: Sandbox) -> None:
    r = sb.call("inboxapp", "GET", CSV_JOB, headers={"X-Sandbox-Scenario": "status=429"})
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "60"
    assert r.json() == {"error": {"code": "RATE_LIMITED", "status": 429,
                                  "message": "Rate limit exceeded. Try again in 60 seconds."}}
    r = sb.call("inboxapp", "GET", CSV_JOB,
                headers={"X-Sandbox-Scenario": "status=503; retry_after=5"})
    assert (r.status_code, r.headers["Retry-After"]) == (503, "5")
    r = sb.call("inboxapp", "GET", CSV_JOB, headers={"X-Sandbox-Scenario": "status=soon"})
    assert r.status_code == 400 and "scenario" in r.json()["error"]["message"]
    # The next request without the header is answered normally.
    assert sb.call("inboxapp", "GET", CSV_JOB).status_code == 200


def test_a_scenario_header_delays_the_answer(sb: Sandbox) -> None:
    started = time.monotonic()
    r = sb.call("inboxapp", "GET", CSV_JOB, headers={"X-Sandbox-Scenario": "delay=0.3"})
    assert r.status_code == 200
    assert time.monotonic() - started >= 0.3


# ---- journal -----------------------------------------------------------------------------

def test_the_journal_records_requests_and_filters_them(sb: Sandbox) -> None:
    create_job(sb, "alice")
    bad = sb.call("inboxapp", "POST", CSV_JOB, json={"data": {"type": "csv"}})
    assert bad.status_code == 400
    sb.advance(7)
    sb.call("inboxapp", "GET", CSV_JOB)
    entries = ctl(sb, "GET", "/requests").json()["data"]
    assert [(e["operationId"], e["method"], e["status"], e["at"]) for e in entries] == [
        ("createImportJob", "POST", 200, "2025-01-15T10:00:00.000Z"),
        ("createImportJob", "POST", 400, "2025-01-15T10:00:00.000Z"),
        ("listImportJobs", "GET", 200, "2025-01-15T10:00:07.000Z")]
    first = entries[0]
    assert first["kind"] == "request" and first["vendor"] == "inboxapp"
    assert first["path"] == "/inboxapp/lists/demolist1/import-jobs"
    assert json.loads(first["body"])["data"]["fileName"] == "leads.csv"
    rejected = ctl(sb, "GET", "/requests", params={"status": 400}).json()["data"]
    assert [e["errors"][0]["field"] for e in rejected] == ["data.content"]
    assert len(ctl(sb, "GET", "/requests", params={"operationId": "listImportJobs"})
               .json()["data"]) == 1
    assert ctl(sb, "GET", "/requests", params={"vendor": "leadlex"}).json()["data"] == []
    assert ctl(sb, "GET", "/requests", params={"kind": "webhook"}).json()["data"] == []


def test_the_journal_is_paged_and_cleared(sb: Sandbox) -> None:
    for _ in range(3):
        sb.call("inboxapp", "GET", CSV_JOB)
    page = ctl(sb, "GET", "/requests", params={"limit": 2}).json()
    assert len(page["data"]) == 2 and page["nextCursor"]
    rest = ctl(sb, "GET", "/requests", params={"limit": 2, "cursor": page["nextCursor"]}).json()
    assert len(rest["data"]) == 1 and rest["nextCursor"] is None
    assert rest["data"][0]["seq"] > page["data"][1]["seq"]
    assert ctl(sb, "DELETE", "/requests").json() == {"cleared": 3}
    assert ctl(sb, "GET", "/requests").json() == {"data": [], "nextCursor": None}


# ---- control token -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def guarded() -> Iterator[TestClient]:
    """A sandbox started with --control-token s3cret."""
    with make_app(control_token="s3cret").test_client() as c:
        yield c


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer s3cret"},
                                     {"X-Sandbox-Token": "s3cret"}])
def test_a_control_token_is_accepted_in_either_header(guarded: TestClient,
                                                     headers: dict[str, str]) -> None:
    r = guarded.get("/__sandbox/workspaces/wbk_guarded/clock", headers=headers)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("headers", "says"), [
    ({}, "missing control token"),
    ({"Authorization": "Bearer wrong"}, "invalid control token"),
    ({"X-Sandbox-Token": "wrong"}, "invalid control token"),
])
def test_without_the_control_token_the_control_api_is_closed(
        guarded: TestClient, headers: dict[str, str], says: str) -> None:
    r = guarded.post("/__sandbox/workspaces/wbk_guarded/clock/advance", json={"seconds": 5},
                     headers=headers)
    err = error_of(r, 401)
    assert says in err["message"] and err["field"] == "authorization"


def test_health_and_vendor_requests_need_no_control_token(guarded: TestClient) -> None:
    assert guarded.get("/__sandbox/health").status_code == 200
    r = guarded.get("/inboxapp" + CSV_JOB, headers={"Authorization": "Bearer wbk_guarded"})
    assert r.status_code == 200


def test_without_a_configured_token_any_header_is_accepted(client: TestClient) -> None:
    r = client.get("/__sandbox/workspaces/wbk_open/clock",
                   headers={"Authorization": "Bearer whatever"})
    assert r.status_code == 200
