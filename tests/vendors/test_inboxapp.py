"""InboxApp through HTTP: import-job lifecycles at chosen clock instants, CSV mapping and merge
strategies, followers/likes profiles, magic values."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sandbox.core.workspaces import DEFAULT_PACING
from tests.conftest import Sandbox
from tests.vendors.inboxkit import (
    COMPANY,
    JOB_KEYS,
    LIST,
    STAGE,
    assert_prospect,
    at,
    cancel,
    create,
    create_csv,
    force,
    job,
    stored_leads,
    usernames_csv,
)

# ---- pacing --------------------------------------------------------------------------------

def test_default_pacing_is_the_documented_one() -> None:
    csv, followers = DEFAULT_PACING["inboxapp.csv"], DEFAULT_PACING["inboxapp.followers"]
    assert (csv.queue_wait, csv.start_delay, csv.rows_per_second) == (2, 1, 20)
    assert (followers.queue_wait, followers.start_delay, followers.rows_per_second) == (5, 2, 10)
    assert DEFAULT_PACING["inboxapp.likes"] == followers


# ---- csv lifecycle ---------------------------------------------------------------------------

def test_csv_job_lifecycle_at_chosen_instants(sb: Sandbox) -> None:
    created = create_csv(sb, usernames_csv(100), fileName="leads.csv")
    assert created == {
        "id": created["id"], "type": "csv", "status": "queued", "totalCount": 100,
        "processedCount": 0, "addedCount": 0, "skippedCount": 0, "failedCount": 0,
        "error": None, "createdAt": at(0), "updatedAt": at(0), "completedAt": None}
    assert re.fullmatch(r"[0-9a-z]+", created["id"])
    timeline = [  # (advance, status, processed, updatedAt)
        (1.999, "queued", 0, 0), (0.001, "starting", 0, 2), (0.999, "starting", 0, 2),
        (0.001, "running", 0, 3), (0.05, "running", 1, 3.05), (0.45, "running", 10, 3.5),
        (0.02, "running", 10, 3.5), (1.98, "running", 50, 5.5), (2.45, "running", 99, 7.95),
        (0.05, "completed", 100, 8), (60, "completed", 100, 8)]
    elapsed = 0.0
    for step, status, processed, updated in timeline:
        sb.advance(step)
        elapsed += step
        j = job(sb, created["id"])
        assert (j["status"], j["processedCount"], j["addedCount"], j["updatedAt"]) == (
            status, processed, processed, at(updated)), elapsed
        assert j["totalCount"] == 100 and j["createdAt"] == at(0)
        assert j["completedAt"] == (at(8) if status == "completed" else None)
    assert len(stored_leads(sb.client.app, sb.key)) == 5 + 100  # 5 fixture leads


def test_a_csv_row_with_fail_rate_limit_fails_the_job_there(sb: Sandbox) -> None:
    content = "username\n" + "".join(f"u{i}\n" for i in range(5)) + "fail_rate_limit\nu9\n"
    created = create_csv(sb, content)
    sb.advance(3.25)
    assert job(sb, created["id"])["status"] == "running"
    sb.advance(0.05)
    j = job(sb, created["id"])
    assert (j["status"], j["error"]) == ("failed", "Rate limit exceeded")
    assert (j["processedCount"], j["addedCount"], j["failedCount"], j["totalCount"]) == (
        6, 5, 1, 7)
    assert j["completedAt"] == j["updatedAt"] == at(3.3)
    sb.advance(100)
    assert job(sb, created["id"]) == j


def test_other_fail_values_name_their_error(sb: Sandbox) -> None:
    created = create_csv(sb, "username\nfail-upstream-timeout\n")
    sb.advance(3.05)
    assert job(sb, created["id"])["error"] == "Upstream timeout"


# ---- cancel ------------------------------------------------------------------------------------

def test_cancel_a_running_job_keeps_what_was_processed(sb: Sandbox) -> None:
    created = create_csv(sb, usernames_csv(100))
    sb.advance(3.5)
    r = cancel(sb, created["id"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["processedCount"], body["addedCount"]) == ("canceled", 10, 10)
    assert body["completedAt"] == body["updatedAt"] == at(3.5)
    sb.advance(60)
    assert job(sb, created["id"]) == body
    assert len(stored_leads(sb.client.app, sb.key)) == 5 + 10


def test_cancel_a_queued_job(sb: Sandbox) -> None:
    created = create_csv(sb, usernames_csv(3))
    r = cancel(sb, created["id"])
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    assert r.json()["processedCount"] == 0 and r.json()["completedAt"] == at(0)


@pytest.mark.parametrize(("advance", "status"), [(2.5, "starting"), (10, "completed")])
def test_cancel_refused_unless_queued_or_running(sb: Sandbox, advance: float, status: str
                                                 ) -> None:
    created = create_csv(sb, usernames_csv(3))
    sb.advance(advance)
    assert job(sb, created["id"])["status"] == status
    r = cancel(sb, created["id"])
    assert r.status_code == 409
    assert r.json() == {"error": {
        "code": "IMPORT_JOB_NOT_CANCELABLE", "status": 409, "field": "importJobId",
        "message": f"import job '{created['id']}' is {status}: only queued or running jobs can "
                   "be canceled"}}


def test_cancel_twice_is_refused(sb: Sandbox) -> None:
    created = create_csv(sb, usernames_csv(3))
    assert cancel(sb, created["id"]).status_code == 200
    assert cancel(sb, created["id"]).json()["error"]["code"] == "IMPORT_JOB_NOT_CANCELABLE"


# ---- paused ------------------------------------------------------------------------------------

def test_a_paused_job_holds_then_resumes(sb: Sandbox) -> None:
    created = create_csv(sb, usernames_csv(100))
    sb.advance(3.5)
    force(sb.client.app, sb.key, created["id"], "paused")
    sb.advance(100)
    j = job(sb, created["id"])
    assert (j["status"], j["processedCount"], j["updatedAt"]) == ("paused", 10, at(3.5))
    r = sb.call("inboxapp", "GET", f"/lists/{LIST}/import-jobs", params={"status": "paused"})
    assert [x["id"] for x in r.json()["data"]] == [created["id"]]
    assert cancel(sb, created["id"]).status_code == 409
    force(sb.client.app, sb.key, created["id"], "running")
    sb.advance(0.5)
    j = job(sb, created["id"])
    assert (j["status"], j["processedCount"], j["updatedAt"]) == ("running", 20, at(104))
    sb.advance(4)
    assert job(sb, created["id"])["completedAt"] == at(108)


# ---- csv content -----------------------------------------------------------------------------

def test_seed_example_with_realistic_values(sb: Sandbox) -> None:
    # Seed 000 with its placeholders replaced: a real CSV, a real column, a known strategy.
    created = create_csv(
        sb, "username,company\nelonmusk,Tesla\njack,Block\n", fileName="prospects.csv",
        columnMapping=[{"csvHeader": "company", "targetColumnId": COMPANY}],
        mergeStrategy="overwrite")
    assert set(created) == JOB_KEYS and created["type"] == "csv"
    assert created["status"] == "queued" and created["totalCount"] == 2
    sb.advance(3.1)
    assert job(sb, created["id"])["addedCount"] == 2
    by_name = {p["username"]: p for p in stored_leads(sb.client.app, sb.key)}
    assert by_name["elonmusk"]["columns"] == {COMPANY: "Tesla"}
    assert by_name["jack"]["columns"] == {COMPANY: "Block"}
    assert_prospect(by_name["jack"])


def test_column_mapping_stores_custom_columns(sb: Sandbox) -> None:
    content = "Handle,Org,Deal stage,ignored\n@Alice_A,Acme,Lead,x\nbob_b,Globex,,y\n"
    created = create_csv(sb, content, columnMapping=[
        {"csvHeader": "Handle", "targetColumnId": "username"},
        {"csvHeader": "Org", "targetColumnId": COMPANY}])
    sb.advance(3.1)
    assert job(sb, created["id"])["addedCount"] == 2
    by_name = {p["username"]: p for p in stored_leads(sb.client.app, sb.key)}
    # "Deal stage" names a custom column of the list: mapped without an entry.
    assert by_name["alice_a"]["columns"] == {COMPANY: "Acme", STAGE: "Lead"}
    assert by_name["bob_b"]["columns"] == {COMPANY: "Globex", STAGE: ""}
    assert by_name["alice_a"]["handle"] == "@alice_a"


def _import_and_finish(sb: Sandbox, content: str, **data: Any) -> dict[str, Any]:
    created = create_csv(sb, content, **data)
    sb.advance(10)
    return job(sb, created["id"])


@pytest.mark.parametrize(("strategy", "company", "stage"), [
    ("overwrite", "Globex", "Won"), ("merge", "Acme", "Won"), ("skip", "Acme", None)])
def test_merge_strategy_applies_to_existing_leads(sb: Sandbox, strategy: str, company: str,
                                                  stage: str | None) -> None:
    first = _import_and_finish(sb, "username,company\ncarol,Acme\n")
    assert first["addedCount"] == 1
    before = {p["username"]: p for p in stored_leads(sb.client.app, sb.key)}["carol"]
    second = _import_and_finish(sb, f"username,company,{STAGE}\ncarol,Globex,Won\ndan,X,Y\n",
                                mergeStrategy=strategy)
    assert (second["addedCount"], second["skippedCount"], second["failedCount"]) == (1, 1, 0)
    after = {p["username"]: p for p in stored_leads(sb.client.app, sb.key)}["carol"]
    expected = {COMPANY: company} | ({STAGE: stage} if stage else {})
    assert after["columns"] == expected
    assert after["firstSeenAt"] == before["firstSeenAt"] == at(3.05)
    assert after["platformId"] == before["platformId"]


@pytest.mark.parametrize("strategy", [{}, {"mergeStrategy": "skip"},
                                      {"mergeStrategy": "merge"}])
def test_reimporting_the_same_leads_skips_them(sb: Sandbox, strategy: dict[str, str]) -> None:
    content = usernames_csv(20, prefix="re")
    first = _import_and_finish(sb, content)
    second = _import_and_finish(sb, content, **strategy)
    assert (first["addedCount"], first["skippedCount"]) == (20, 0)
    assert (second["addedCount"], second["skippedCount"], second["processedCount"]) == (
        0, 20, 20)
    assert len(stored_leads(sb.client.app, sb.key)) == 5 + 20


def test_overlapping_imports_never_add_a_lead_twice(sb: Sandbox) -> None:
    names = [f"ov{i}" for i in range(40)]
    a = create_csv(sb, "username\n" + "\n".join(names) + "\n")  # ov_i due at 3.05 + i/20
    sb.advance(1.5)
    # The same accounts in reverse, due at 4.55 + k/20: b reaches ov39..ov35 before a does.
    b = create_csv(sb, "username\n" + "\n".join(reversed(names)) + "\n")
    for _ in range(22):
        sb.advance(0.25)
        ja, jb = job(sb, a["id"]), job(sb, b["id"])
        added = ja["addedCount"] + jb["addedCount"]
        assert added == len(stored_leads(sb.client.app, sb.key)) - 5
    assert ja["status"] == jb["status"] == "completed"
    assert (ja["addedCount"], ja["skippedCount"]) == (35, 5)
    assert (jb["addedCount"], jb["skippedCount"]) == (5, 35)
    usernames = [p["username"] for p in stored_leads(sb.client.app, sb.key)]
    assert len(usernames) == len(set(usernames)) == 45


def test_csv_without_data_rows_is_unprocessable(sb: Sandbox) -> None:
    r = sb.call("inboxapp", "POST", f"/lists/{LIST}/import-jobs",
                json={"data": {"type": "csv", "content": "username\n\n"}})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "data.content"


# ---- followers and likes ---------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    {"type": "followers", "username": "jack", "maxCount": 30},
    {"type": "likes", "postUrl": "https://x.com/jack/status/20", "maxCount": 30},
    {"type": "likes", "postId": "20", "maxCount": 30}])
def test_followers_and_likes_produce_x_profiles(sb: Sandbox, data: dict[str, Any]) -> None:
    created = create(sb, data, list_id="demolist2")
    assert (created["type"], created["status"], created["totalCount"]) == (
        data["type"], "queued", None)
    sb.advance(5)
    j = job(sb, created["id"], "demolist2")
    assert (j["status"], j["totalCount"], j["updatedAt"]) == ("starting", None, at(5))
    sb.advance(2)
    j = job(sb, created["id"], "demolist2")
    assert (j["status"], j["totalCount"], j["processedCount"]) == ("running", 30, 0)
    sb.advance(1.5)
    assert job(sb, created["id"], "demolist2")["processedCount"] == 15
    sb.advance(1.5)
    j = job(sb, created["id"], "demolist2")
    assert (j["status"], j["addedCount"], j["completedAt"]) == ("completed", 30, at(10))
    profiles = stored_leads(sb.client.app, sb.key, "demolist2")
    assert len(profiles) == 30 and len({p["platformId"] for p in profiles}) == 30
    for p in profiles:
        assert_prospect(p)
        assert p["firstSeenAt"] > at(7)


def test_a_canceled_followers_job_never_learned_its_total(sb: Sandbox) -> None:
    created = create(sb, {"type": "followers", "username": "jack"}, list_id="demolist2")
    body = cancel(sb, created["id"], "demolist2").json()
    assert (body["status"], body["totalCount"]) == ("canceled", None)


@pytest.mark.parametrize("data", [
    {"type": "followers", "username": "fail_rate_limit", "maxCount": 20},
    {"type": "likes", "postUrl": "https://x.com/fail_rate_limit/status/1", "maxCount": 20}])
def test_a_magic_source_account_fails_the_job_halfway(sb: Sandbox, data: dict[str, Any]
                                                      ) -> None:
    created = create(sb, data, list_id="demolist2")
    sb.advance(60)
    j = job(sb, created["id"], "demolist2")
    assert (j["status"], j["error"], j["totalCount"]) == ("failed", "Rate limit exceeded", 21)
    assert (j["processedCount"], j["addedCount"], j["failedCount"]) == (11, 10, 1)
