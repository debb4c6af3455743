"""The control API through HTTP: workspaces, seeding, clocks, jobs and settings, each answer
checked against openapi/sandbox.yaml (response validation on)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from sandbox.core import jobs, webhooks
from sandbox.core.imports import ImportPolicy
from tests.conftest import Sandbox
from tests.controlkit import CSV_JOB, create_job, ctl, error_of, make_app
from tests.webhook_receiver import Receiver, running_receiver


@pytest.fixture(scope="module")
def app() -> Any:
    return make_app()

# ---- health and workspaces ---------------------------------------------------------------

def test_health_lists_every_vendor_and_its_mount_point(client: TestClient) -> None:
    body = client.get("/__sandbox/health").json()
    assert body["status"] == "ok"
    assert {v["name"]: v["basePath"] for v in body["vendors"]} == {
        "inboxapp": "/inboxapp", "leadlex": "/leadlex", "which50": "/which50",
        "smartlead": "/smartlead"}


def test_a_workspace_shows_its_lists_jobs_clock_and_settings(sb: Sandbox) -> None:
    job = create_job(sb, "alice", "bob", "carol")
    ws = ctl(sb, "GET").json()
    assert ws["id"] == sb.key
    assert ws["clock"] == {"now": "2025-01-15T10:00:00.000Z", "epoch": 1736935200.0,
                           "frozen": True, "speed": 1.0}
    demo = {x["id"]: x for x in ws["lists"]["inboxapp"]}["demolist1"]
    assert demo["leadCount"] == 5 and demo["columns"][0]["name"] == "Company"
    assert ws["jobs"]["inboxapp"] == {"total": 1, "byStatus": {"queued": 1}}
    assert ws["settings"]["rateLimits"] == "vendor"
    sb.advance(60)
    ws = ctl(sb, "GET").json()
    assert ws["jobs"]["inboxapp"] == {"total": 1, "byStatus": {"completed": 1}}
    demo = {x["id"]: x for x in ws["lists"]["inboxapp"]}["demolist1"]
    assert demo["leadCount"] == 8
    assert ws["journalEntries"] == 1
    assert job["status"] == "queued"


def test_live_workspaces_are_listed(sb: Sandbox, client: TestClient) -> None:
    create_job(sb)
    client.post("/__sandbox/workspaces/wbk_other_workspace/clock/advance", json={"seconds": 1})
    listed = client.get("/__sandbox/workspaces").json()["data"]
    assert {sb.key, "wbk_other_workspace"} <= {w["id"] for w in listed}
    assert [w["id"] for w in listed][:1] == ["wbk_other_workspace"]  # most recent first
    assert client.get("/__sandbox/workspaces", params={"limit": 1}).json()["data"] == listed[:1]


def test_workspaces_have_separate_clocks_and_data(sb: Sandbox, client: TestClient) -> None:
    other = Sandbox(client, "wbk_someone_else")
    create_job(sb)
    sb.advance(30)
    assert ctl(other, "GET", "/clock").json()["now"] == "2025-01-15T10:00:00.000Z"
    assert ctl(other, "GET").json()["jobs"]["inboxapp"]["total"] == 0
    assert ctl(other, "GET", "/requests").json()["data"] == []


def test_reset_goes_back_to_the_seeded_state(sb: Sandbox) -> None:
    create_job(sb)
    ctl(sb, "POST", "/seed", json={"vendor": "inboxapp", "lists": [{"id": "extra", "name": "X"}]})
    ctl(sb, "PUT", "/settings", json={"rateLimits": "off"})
    sb.advance(120)
    ws = ctl(sb, "POST", "/reset").json()
    assert [x["id"] for x in ws["lists"]["inboxapp"]] == ["demolist1", "demolist2",
                                                          "democampaign1"]
    assert ws["jobs"]["inboxapp"]["total"] == 0 and ws["journalEntries"] == 0
    assert ws["clock"]["now"] == "2025-01-15T10:00:00.000Z"
    assert ws["settings"]["rateLimits"] == "vendor"


def test_delete_removes_the_workspace(sb: Sandbox) -> None:
    create_job(sb)
    r = ctl(sb, "DELETE")
    assert r.status_code == 204 and r.content == b""
    err = error_of(ctl(sb, "DELETE"), 404)
    assert err["field"] == "workspace" and sb.key in err["message"]
    assert error_of(ctl(sb, "POST", "/reset"), 404)["field"] == "workspace"
    # The next request with the key starts over from the seed.
    assert ctl(sb, "GET").json()["jobs"]["inboxapp"]["total"] == 0


def test_a_malformed_workspace_key_is_rejected(client: TestClient) -> None:
    r = client.get("/__sandbox/workspaces/a b/clock")
    assert error_of(r, 400)["field"] == "workspace"


def test_seed_adds_lists_leads_campaigns_and_block_list(sb: Sandbox) -> None:
    doc = {"vendor": "inboxapp", "lists": [
        {"id": "vip", "name": "VIPs", "data": {"columns": [{"id": "custom_a", "name": "Tier",
                                                           "type": "text"}]},
         "leads": [{"platformId": "1234567", "username": "vip_one"}]},
        {"id": "camp2", "kind": "campaign", "name": "Campaign 2", "fake_leads": 3}]}
    r = ctl(sb, "POST", "/seed", json=doc)
    assert r.status_code == 200, r.text
    assert r.json() == {"added": {"lists": 2, "leads": 4, "block_list": 0}}
    lists = {x["id"]: x for x in ctl(sb, "GET").json()["lists"]["inboxapp"]}
    assert lists["vip"]["leadCount"] == 1 and lists["vip"]["columns"][0]["name"] == "Tier"
    assert lists["camp2"]["kind"] == "campaign" and lists["camp2"]["leadCount"] == 3
    # Seeding again adds nothing twice.
    assert ctl(sb, "POST", "/seed", json=doc).json()["added"] == {
        "lists": 0, "leads": 0, "block_list": 0}
    block = {"vendor": "smartlead", "block_list": [{"value": "spam.example"}]}
    assert ctl(sb, "POST", "/seed", json=block).json()["added"]["block_list"] == 1


@pytest.mark.parametrize(("doc", "field"), [
    ({"vendor": "inboxapp", "lists": [{"id": "x"}]}, "lists[0].name"),
    ({"vendor": "nobody"}, "vendor"),
    ({"vendor": "inboxapp", "lists": [{"id": "x", "name": "X", "colour": "red"}]},
     "lists[0].colour"),
    ({"vendor": "inboxapp", "pacing": {"inboxapp.csv": {"rows_per_second": 0}}},
     "pacing.inboxapp.csv.rows_per_second"),
])
def test_a_bad_seed_document_names_the_field(sb: Sandbox, doc: dict[str, Any],
                                             field: str) -> None:
    err = error_of(ctl(sb, "POST", "/seed", json=doc), 400)
    assert err["field"] == field
    assert err["message"].startswith(field + ":")


# ---- clock -------------------------------------------------------------------------------

def test_advance_applies_every_transition_now_due(sb: Sandbox) -> None:
    # inboxapp.csv pacing: 2 s queued, 1 s starting, 20 rows/s.
    job = create_job(sb, "alice", "bob", "carol")
    states = []
    for step in (2, 1, 0.1, 10):
        clock = sb.advance(step)
        got = ctl(sb, "GET", f"/jobs/{job['id']}").json()
        states.append((got["status"], got["processed"]))
    assert states == [("starting", 0), ("running", 0), ("running", 2), ("completed", 3)]
    assert clock["now"] == "2025-01-15T10:00:13.100Z"


def test_a_clock_never_moves_backwards(sb: Sandbox) -> None:
    sb.advance(5)
    err = error_of(ctl(sb, "POST", "/clock/advance", json={"seconds": -1}), 400)
    assert err["field"] == "seconds"
    assert ctl(sb, "GET", "/clock").json()["now"] == "2025-01-15T10:00:05.000Z"
    assert error_of(ctl(sb, "POST", "/clock/advance", json={}), 400)["field"] == "seconds"


def test_freeze_resume_and_speed(sb: Sandbox) -> None:
    clock = ctl(sb, "POST", "/clock/resume").json()
    assert clock["frozen"] is False
    assert ctl(sb, "PUT", "/clock/speed", json={"speed": 60}).json()["speed"] == 60
    assert error_of(ctl(sb, "PUT", "/clock/speed", json={"speed": 0}), 400)["field"] == "speed"
    frozen = ctl(sb, "POST", "/clock/freeze").json()
    assert frozen["frozen"] is True
    assert ctl(sb, "GET", "/clock").json() == frozen
    assert frozen["epoch"] >= clock["epoch"]


# ---- jobs --------------------------------------------------------------------------------

def test_a_job_shows_generic_fields_and_the_vendors_view(sb: Sandbox) -> None:
    job = create_job(sb)
    got = ctl(sb, "GET", f"/jobs/{job['id']}").json()
    assert got["vendor"] == "inboxapp" and got["kind"] == "csv"
    assert got["list"] == {"id": "demolist1", "kind": "list", "name": "Demo list 1"}
    assert got["status"] == got["vendorStatus"] == "queued"
    assert got["nextChangeAt"] == "2025-01-15T10:00:02.000Z"
    assert got["view"] == job
    assert "running" in got["legalTransitions"]
    assert error_of(ctl(sb, "GET", "/jobs/nope"), 404)["field"] == "jobId"
    assert error_of(ctl(sb, "GET", f"/jobs/{job['id']}", params={"vendor": "acme"}),
                    400)["field"] == "vendor"


def test_jobs_are_listed_a_page_at_a_time(sb: Sandbox) -> None:
    ids = [create_job(sb)["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = ctl(sb, "GET", "/jobs", params=params).json()
        seen += [j["id"] for j in page["data"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == ids and pages == 3
    assert ctl(sb, "GET", "/jobs", params={"vendor": "leadlex"}).json()["data"] == []
    assert len(ctl(sb, "GET", "/jobs", params={"status": "queued"}).json()["data"]) == 5


def test_transitions_use_the_vendors_status_names(sb: Sandbox) -> None:
    job = create_job(sb, "alice", "bob")
    path = f"/jobs/{job['id']}/transition"
    assert ctl(sb, "POST", path, json={"to": "running"}).json()["status"] == "running"
    assert ctl(sb, "POST", path, json={"to": "paused"}).json()["view"]["status"] == "paused"
    sb.advance(60)  # a paused job does not move
    assert ctl(sb, "GET", f"/jobs/{job['id']}").json()["processed"] == 0
    failed = ctl(sb, "POST", path, json={"to": "failed", "error": "Rate limit exceeded"}).json()
    assert failed["view"]["status"] == "failed"
    assert failed["view"]["error"] == "Rate limit exceeded"
    assert failed["legalTransitions"] == []
    listed = sb.call("inboxapp", "GET", CSV_JOB).json()["data"][0]
    assert listed["status"] == "failed" and listed["error"] == "Rate limit exceeded"


def test_forcing_completion_processes_every_remaining_row(sb: Sandbox) -> None:
    job = create_job(sb, "alice", "bob", "carol")
    done = ctl(sb, "POST", f"/jobs/{job['id']}/transition", json={"to": "completed"}).json()
    assert done["status"] == "completed" and done["processed"] == 3
    assert done["view"]["addedCount"] == 3


def test_an_illegal_transition_is_a_409_naming_the_legal_targets(sb: Sandbox) -> None:
    job = create_job(sb)
    path = f"/jobs/{job['id']}/transition"
    ctl(sb, "POST", path, json={"to": "running"})
    err = error_of(ctl(sb, "POST", path, json={"to": "queued"}), 409)
    assert err["message"] == (f"cannot move InboxApp job '{job['id']}' from 'running' to "
                              "'queued': from 'running' it can go to canceled, completed, "
                              "failed, paused")
    assert err["legal"] == ["canceled", "completed", "failed", "paused"]
    assert err["current"] == "running" and err["field"] == "to"
    ctl(sb, "POST", path, json={"to": "canceled"})
    err = error_of(ctl(sb, "POST", path, json={"to": "running"}), 409)
    assert err["message"].endswith("it can go to nothing (it is final)")
    assert err["legal"] == []
    err = error_of(ctl(sb, "POST", path, json={"to": "done"}), 400)
    assert err["field"] == "to" and "known: created, queued, starting" in err["message"]


def queue_leadlex_import(sb: Sandbox, app: Any, rows: int = 600) -> str:
    backend = app.backend
    with backend.workspace(sb.key) as (conn, ws):
        from sqlalchemy import select

        from sandbox.core import store as t

        list_pk = conn.execute(select(t.lists.c.pk).where(
            t.lists.c.workspace == sb.key, t.lists.c.vendor == "leadlex",
            t.lists.c.id == "contacts")).scalar_one()
        job_id = "imp_" + backend.new_token(conn, ws, "control-test", 24)
        jobs.create(conn, workspace=sb.key, vendor="leadlex", job_id=job_id, list_pk=list_pk,
                    kind="contacts", now=ws.now, source_format="jsonl",
                    content="".join(json.dumps({"email": f"p{i}@example.com"}) + "\n"
                                    for i in range(rows)),
                    offset=0, total=rows, policy=ImportPolicy(), pacing=ws.pacing("leadlex"),
                    plan={"notify": "import.completed"})
    return job_id


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def test_a_shared_vendor_name_and_a_forced_ending_reach_webhooks(
        sb: Sandbox, app: Any, receiver: Receiver) -> None:
    # Leadlex calls queued/starting/running "processing" and both failed and canceled "failed".
    with app.backend.workspace(sb.key) as (conn, ws):
        webhooks.register(conn, ws, vendor="leadlex", url=receiver.url(), secret="s" * 32,
                          events=["import.completed"], webhook_id="wh_1")
    job_id = queue_leadlex_import(sb, app)
    path = f"/jobs/{job_id}/transition"
    running = ctl(sb, "POST", path, json={"to": "processing"}).json()
    assert (running["status"], running["vendorStatus"]) == ("running", "processing")
    failed = ctl(sb, "POST", path, json={"to": "failed", "error": "CSV unreadable"}).json()
    assert (failed["status"], failed["error"]) == ("failed", "CSV unreadable")
    hooks = ctl(sb, "GET", "/requests", params={"kind": "webhook"}).json()["data"]
    assert [(h["vendor"], h["status"], h["path"]) for h in hooks] == [
        ("leadlex", 200, receiver.url())]
    assert json.loads(receiver.requests[0].body)["data"]["job_id"] == job_id


# ---- settings ----------------------------------------------------------------------------

def test_pacing_set_for_a_workspace_applies_to_new_jobs(sb: Sandbox) -> None:
    r = ctl(sb, "PUT", "/settings", json={"pacing": {"inboxapp.csv": {
        "queueWait": 0, "startDelay": 0, "rowsPerSecond": 1}}})
    assert r.status_code == 200, r.text
    assert r.json()["pacing"]["inboxapp.csv"] == {"queueWait": 0, "startDelay": 0,
                                                  "rowsPerSecond": 1}
    job = create_job(sb, "alice", "bob", "carol", "dave")
    sb.advance(2)
    assert ctl(sb, "GET", f"/jobs/{job['id']}").json()["processed"] == 2
    # Only the given fields change.
    ctl(sb, "PUT", "/settings", json={"pacing": {"inboxapp.csv": {"rowsPerSecond": 50}}})
    assert ctl(sb, "GET", "/settings").json()["pacing"]["inboxapp.csv"] == {
        "queueWait": 0, "startDelay": 0, "rowsPerSecond": 50}


@pytest.mark.parametrize(("body", "field"), [
    ({"pacing": {"acme": {"queueWait": 1}}}, "pacing.acme"),
    ({"pacing": {"inboxapp.csv": {"rowsPerSecond": 0}}}, "pacing.inboxapp.csv.rowsPerSecond"),
    ({"ratePlans": {"leadlex": "gold"}}, "ratePlans.leadlex"),
    ({"ratePlans": {"which50": "pro"}}, "ratePlans.which50"),
    ({"rateLimits": "sometimes"}, "rateLimits"),
    ({}, "body"),
])
def test_bad_settings_name_the_field(sb: Sandbox, body: dict[str, Any], field: str) -> None:
    assert error_of(ctl(sb, "PUT", "/settings", json=body), 400)["field"] == field


def leadlex_calls(sb: Sandbox, n: int) -> list[int]:
    return [sb.call("leadlex", "GET", "/v1/contacts").status_code for _ in range(n)]


def test_rate_limits_follow_the_plan_and_can_be_switched_off(sb: Sandbox) -> None:
    settings = ctl(sb, "PUT", "/settings", json={"ratePlans": {"leadlex": "starter"}}).json()
    assert settings["ratePlans"]["leadlex"] == "starter"
    statuses = leadlex_calls(sb, 11)
    assert 429 not in statuses[:10] and statuses[10] == 429
    ctl(sb, "PUT", "/settings", json={"rateLimits": "off"})
    assert 429 not in leadlex_calls(sb, 3)
    ctl(sb, "PUT", "/settings", json={"rateLimits": "vendor"})
    assert leadlex_calls(sb, 1) == [429]
    sb.advance(60)  # the minute window is over on the workspace clock
    assert leadlex_calls(sb, 1) != [429]
