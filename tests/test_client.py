"""The typed control-API client (sandbox/client.py): against the app in process (its test
client is an httpx.Client) and once against a real server started by the pytest plugin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from sandbox.app import create_app
from sandbox.client import (
    Clock,
    JournalEntry,
    SandboxClient,
    SandboxControlError,
    SeedResult,
)
from sandbox.pytest_plugin import SandboxServer
from sandbox.settings import Settings
from tests.conftest import START

CSV_JOB = "/inboxapp/lists/demolist1/import-jobs"


def settings(**changes: Any) -> Settings:
    return Settings(validate_responses=True, clock_start=START, clock_mode="frozen",
                    background_ticker=False).with_(**changes)


@pytest.fixture(scope="module")
def http() -> Iterator[TestClient]:
    # One app for the module (create_app takes seconds); each test has its own workspace.
    with create_app(settings()).test_client() as c:
        yield c


@pytest.fixture
def sc(http: TestClient) -> SandboxClient:
    return SandboxClient("http://testserver", http=http)


def create_job(http: Any, key: str, *usernames: str) -> str:
    content = "username\n" + "".join(f"{u}\n" for u in usernames or ("alice", "bob"))
    r = http.post(CSV_JOB, headers={"Authorization": f"Bearer {key}"}, json={"data": {
        "type": "csv", "fileName": "leads.csv", "content": content,
        "columnMapping": [{"csvHeader": "username", "targetColumnId": "username"}]}})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def test_health(sc: SandboxClient) -> None:
    health = sc.health()
    assert health.status == "ok"
    assert [v.name for v in health.vendors] == ["inboxapp", "leadlex", "which50", "smartlead"]
    assert health.vendors[0].base_path == "/inboxapp"


def test_workspace_clock_and_jobs_are_typed(sc: SandboxClient, http: TestClient,
                                            key: str) -> None:
    job_id = create_job(http, key, "alice", "bob", "carol")
    assert sc.clock(key) == Clock(now="2025-01-15T10:00:00.000Z", epoch=1736935200.0,
                                  frozen=True, speed=1.0)
    assert sc.advance(key, 60).now == "2025-01-15T10:01:00.000Z"
    ws = sc.workspace(key)
    assert ws.find_list("inboxapp", "demolist1").lead_count == 8
    assert ws.jobs["inboxapp"].by_status == {"completed": 1}
    assert ws.settings.rate_plans["leadlex"] == "org"
    job = sc.job(key, job_id)
    assert (job.status, job.vendor_status, job.counts["added"]) == ("completed", "completed", 3)
    assert job.list_info == {"id": "demolist1", "kind": "list", "name": "Demo list 1"}
    assert key in sc.workspaces()


def test_clock_controls(sc: SandboxClient, key: str) -> None:
    assert sc.resume(key).frozen is False
    assert sc.speed(key, 30).speed == 30
    assert sc.freeze(key).frozen is True
    with pytest.raises(SandboxControlError) as info:
        sc.advance(key, -1)
    assert (info.value.status, info.value.field) == (400, "seconds")


def test_transition_and_a_readable_409(sc: SandboxClient, http: TestClient, key: str) -> None:
    job_id = create_job(http, key)
    assert sc.transition(key, job_id, "running").status == "running"
    failed = sc.transition(key, job_id, "failed", error="Rate limit exceeded")
    assert failed.view["error"] == "Rate limit exceeded"
    with pytest.raises(SandboxControlError) as info:
        sc.transition(key, job_id, "running")
    err = info.value
    assert err.status == 409 and err.code == "conflict"
    assert str(err) == (f"POST /__sandbox/workspaces/{key}/jobs/{job_id}/transition -> 409 "
                        f"conflict: cannot move InboxApp job '{job_id}' from 'failed' to "
                        "'running': from 'failed' it can go to nothing (it is final)")
    assert err.body["error"]["legal"] == []


def test_jobs_pages(sc: SandboxClient, http: TestClient, key: str) -> None:
    ids = [create_job(http, key) for _ in range(3)]
    page = sc.jobs(key, limit=2)
    assert [j.id for j in page.jobs] == ids[:2] and page.next_cursor
    assert [j.id for j in sc.jobs(key, cursor=page.next_cursor).jobs] == ids[2:]
    assert [j.id for j in sc.iter_jobs(key, vendor="inboxapp")] == ids


def test_scenarios_and_journal(sc: SandboxClient, http: TestClient, key: str) -> None:
    armed = sc.arm(key, "createImportJob", status=503, times=2, retry_after=3)
    assert (armed.remaining, armed.retry_after) == (2, 3)
    assert [s.operation_id for s in sc.scenarios(key)] == ["createImportJob"]
    for _ in range(3):
        http.post(CSV_JOB, headers={"Authorization": f"Bearer {key}"}, json={"data": {
            "type": "csv", "content": "username\nalice\n"}})
    calls = sc.requests(key, operation_id="createImportJob")
    assert [c.status for c in calls] == [503, 503, 200]
    assert isinstance(calls[0], JournalEntry) and calls[0].kind == "request"
    assert calls[2].json() == {"data": {"type": "csv", "content": "username\nalice\n"}}
    assert [c.seq for c in sc.requests(key, limit=2)] == [c.seq for c in calls[:2]]
    assert sc.requests(key, status=200, kind="request", vendor="inboxapp") == calls[2:]
    sc.arm(key, "listImportJobs", delay=0.01)
    assert sc.disarm(key) >= 1
    assert sc.scenarios(key) == []
    assert sc.clear_requests(key) == 3
    assert sc.requests(key) == []


def test_settings(sc: SandboxClient, key: str) -> None:
    s = sc.set_pacing(key, "inboxapp.csv", rows_per_second=5)
    assert s.pacing["inboxapp.csv"] == {"queueWait": 2, "startDelay": 1, "rowsPerSecond": 5}
    s = sc.set_rate_limits(key, "off", plans={"leadlex": "pro"})
    assert (s.rate_limits, s.rate_plans["leadlex"]) == ("off", "pro")
    assert sc.settings(key) == s
    with pytest.raises(SandboxControlError, match="'gold' is not a Leadlex plan"):
        sc.set_rate_limits(key, plans={"leadlex": "gold"})


def test_seed_reset_and_delete(sc: SandboxClient, key: str) -> None:
    added = sc.seed(key, {"vendor": "smartlead", "block_list": [{"value": "spam.example"}]})
    assert added == SeedResult(lists=0, leads=0, block_list=1)
    with pytest.raises(SandboxControlError) as info:
        sc.seed(key, {"vendor": "inboxapp", "lists": [{"id": "x"}]})
    assert info.value.field == "lists[0].name"
    sc.advance(key, 10)
    assert sc.reset(key).clock.now == "2025-01-15T10:00:00.000Z"
    sc.delete(key)
    sc.delete(key, missing_ok=True)
    with pytest.raises(SandboxControlError) as info:
        sc.delete(key)
    assert info.value.status == 404


def test_the_control_token_is_sent() -> None:
    with create_app(settings(control_token="s3cret")).test_client() as http:
        assert SandboxClient("http://testserver", "s3cret", http=http).clock("wbk_t").frozen
        with pytest.raises(SandboxControlError, match="401 unauthorized: missing control"):
            SandboxClient("http://testserver", http=http).clock("wbk_t")


def test_an_error_that_is_not_the_sandbox_envelope_still_reads_well() -> None:
    transport = httpx.MockTransport(lambda req: httpx.Response(502, text="Bad gateway"))
    with httpx.Client(transport=transport) as http, pytest.raises(SandboxControlError) as info:
        SandboxClient("http://proxy", http=http).health()
    assert str(info.value) == "GET /__sandbox/health -> 502 http_error: Bad gateway"


def test_against_a_real_server(sandbox_server: SandboxServer) -> None:
    key = "wbk_client_real_server"
    with SandboxClient(sandbox_server.url) as sc, httpx.Client(
            base_url=sandbox_server.url, trust_env=False) as http:
        sc.freeze(key)
        job_id = create_job(http, key)
        rejected = http.post(CSV_JOB, headers={"Authorization": f"Bearer {key}"},
                             json={"data": {"type": "csv"}})
        assert rejected.status_code == 400
        sc.advance(key, 60)
        assert sc.job(key, job_id).status == "completed"
        # Under uvicorn too, the journal knows each operation and why a request was refused.
        entries = sc.requests(key)
        assert [(e.operation_id, e.status) for e in entries] == [
            ("createImportJob", 200), ("createImportJob", 400)]
        assert entries[1].errors[0]["field"] == "data.content"
        sc.delete(key)
