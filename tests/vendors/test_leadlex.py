"""Leadlex imports through HTTP: synchronous rows and CSV, update_existing, tags, queued jobs
on the workspace clock (with their import.completed event) and Idempotency-Key replays."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.core import webhooks
from tests.vendors.leadlexkit import (
    IMPORT,
    SEED_ANSWER,
    SEED_REQUEST,
    SEEDED,
    V,
    by_email,
    counts,
    imported,
    job,
    listed,
    post,
    shown,
    stored,
)

# ---- import: synchronous ------------------------------------------------------------------

def test_seed_example_request_gets_the_documented_answer(sb: Any) -> None:
    r = post(sb, IMPORT, SEED_REQUEST)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.keys() == SEED_ANSWER.keys()
    assert body["data"].keys() == SEED_ANSWER["data"].keys()
    assert body["data"]["job_id"].startswith("imp_")
    assert {**body["data"], "job_id": "imp_01HY1"} == SEED_ANSWER["data"]
    for header in ("X-Request-ID", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                   "X-RateLimit-Reset"):
        assert r.headers.get(header), header
    assert listed(sb)["meta"]["total"] == SEEDED + 2
    jane = by_email(sb, "jane@acme.com")
    assert jane["full_name"] == "Jane Doe"


def test_sync_import_reports_bad_rows_and_counts_the_rest(sb: Any) -> None:
    data = imported(sb, {"rows": [
        {"full_name": "Ann Lee", "email": "ann@lee.io", "phone": "+14155550101"},
        {"full_name": "Bad Mail", "email": "bad@"},
        {"phone": "+14155550102"},                       # no name, no email
        {"full_name": "Nameonly Person"},                # nothing to match on
        {"email": "hans.mueller@kanzlei.de", "company_name": "Kanzlei"},
        {"full_name": "Ann Again", "email": "ANN@lee.io"},  # repeats row 1 (case-insensitive)
        {"first_name": "Carl", "last_name": "Ray", "phone": "(415) 555-0199"},
    ]})
    assert data["status"] == "completed"
    assert counts(data) == (3, 0, 1)
    assert [(e["row_number"], e["code"]) for e in data["errors"]] == [
        (2, "invalid_email"), (3, "missing_identifier"), (4, "missing_identifier")]
    assert "bad@" in data["errors"][0]["message"]
    assert listed(sb)["meta"]["total"] == SEEDED + 3
    hans = by_email(sb, "hans.mueller@kanzlei.de")
    assert (hans["full_name"], hans["company_name"]) == ("Hans Mueller", "Kanzlei")
    carl = listed(sb, search="carl ray")["data"]["contacts"]
    assert [(c["full_name"], c["phone"], c["email"]) for c in carl] == [
        ("Carl Ray", "(415) 555-0199", None)]


def test_fail_magic_row_fails_the_import_there(sb: Any) -> None:
    data = imported(sb, {"rows": [{"email": "a1@x.co"}, {"email": "fail_rate_limit@x.co"},
                                  {"email": "a3@x.co"}]})
    assert data["status"] == "failed"
    assert counts(data) == (1, 0, 0)
    assert data["errors"] == [{"row_number": 2, "code": "job_failed",
                               "message": "Rate limit exceeded"}]


def test_csv_with_header_mapping_ignores_unknown_columns(sb: Any, app: Any, key: str) -> None:
    csv_text = ("Full Name,Email Address,Notes,Level,Tags\n"
                "Jane Doe,jane@acme.com,likes tea,high,vip;legal\n"
                "\n"
                "\"Smith, Bob\",bob@beta.com,\"multi\nline\",3,\n"
                "Too,few\n"
                "Pat Low,pat@low.co,,urgent,\n")
    data = imported(sb, {"csv": csv_text, "tags": ["q2"], "mapping": {
        "Email Address": "email", "Full Name": "full_name", "Level": "priority",
        "Tags": "tags"}})
    assert counts(data) == (2, 0, 0)
    assert [(e["row_number"], e["code"]) for e in data["errors"]] == [
        (3, "invalid_row"), (4, "invalid_value")]
    bob = by_email(sb, "bob@beta.com")
    assert bob["full_name"] == "Bob Smith"
    jane = stored(app, key, "jane@acme.com")
    assert jane["tags"] == ["vip", "legal", "q2"]
    assert jane["priority"] == 1
    assert "Notes" not in jane and "notes" not in jane


def test_csv_without_header_maps_column_positions(sb: Any) -> None:
    data = imported(sb, {"csv": "Jane Doe,jane@acme.com\r\nBob Smith,bob@beta.com\r\n",
                         "has_header": False, "mapping": {"1": "full_name", "column2": "email"}})
    assert counts(data) == (2, 0, 0) and data["errors"] == []
    assert by_email(sb, "bob@beta.com")["full_name"] == "Bob Smith"


def test_csv_without_mapping_uses_field_named_headers(sb: Any) -> None:
    data = imported(sb, {"csv": "Name,Email,Job Title,Phone Number\n"
                                "Ada Byron,ada@calc.org,Counsel,+442071234567\n"})
    assert counts(data) == (1, 0, 0)
    ada = by_email(sb, "ada@calc.org")
    assert (ada["full_name"], ada["job_title"], ada["phone"]) == (
        "Ada Byron", "Counsel", "+442071234567")


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"csv": "a,b\n1,2\n", "has_header": False}, "mapping", "required"),
    ({"csv": "Email\nx@y.co\n", "mapping": {"Mail": "email"}}, "mapping.Mail", "not a column"),
    ({"csv": "Email\nx@y.co\n", "mapping": {"Email": "mail"}}, "mapping.Email",
     "not a contact field"),
    ({"csv": "Name\nAda\n", "mapping": {"Name": "full_name"}}, "mapping", "email or phone"),
    ({"csv": "E,F\nx@y.co,z@y.co\n", "mapping": {"E": "email", "F": "email"}}, "mapping.F",
     "already mapped"),
    ({"csv": "email\n\"" + "x" * 200_000}, "csv", "unreadable"),  # csv's field size limit
    ({"rows": [{"email": "x@y.co"}], "csv": "email\nx@y.co\n"}, "csv", "not both"),
])
def test_malformed_import_requests(sb: Any, body: dict[str, Any], field: str,
                                   words: str) -> None:
    r = post(sb, IMPORT, body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["message"] and words in error["message"]
    assert list(error["details"]["fields"]) == [field]


# ---- import: update_existing ----------------------------------------------------------------

def test_update_existing_false_skips_matches_by_email_or_phone(sb: Any) -> None:
    imported(sb, {"rows": [{"full_name": "Ann Lee", "email": "ann@lee.io",
                            "phone": "+1 415 555 0101"},
                           {"full_name": "Phone Only", "phone": "+14155550102",
                            "email": "po@x.co"}]})
    data = imported(sb, {"rows": [
        {"email": "ANN@lee.io", "job_title": "Partner"},            # email match
        {"full_name": "Ann Other", "email": "ann2@lee.io", "phone": "+14155550101"},  # phone
        {"full_name": "New Person", "email": "new@x.co"},
    ]})
    assert counts(data) == (1, 0, 2)
    assert by_email(sb, "ann@lee.io")["job_title"] is None
    assert listed(sb)["meta"]["total"] == SEEDED + 3


def test_update_existing_true_updates_matches_by_email_or_phone(sb: Any) -> None:
    imported(sb, {"rows": [{"full_name": "Ann Lee", "email": "ann@lee.io",
                            "phone": "+14155550101"},
                           {"full_name": "Bo Ng", "email": "bo@ng.co"}]})
    data = imported(sb, {"update_existing": True, "rows": [
        {"email": "ann@lee.io", "job_title": "Partner"},
        {"full_name": "Bo Ng", "email": "bo@ng.co", "company": "Ng LLP"},
        {"full_name": "Ann Lee", "phone": "+1 (415) 555-0101", "linkedin_url": "https://l.in/a"},
        {"full_name": "Cy Fresh", "email": "cy@fresh.co"},
    ]})
    assert counts(data) == (1, 3, 0)
    ann = by_email(sb, "ann@lee.io")
    assert (ann["full_name"], ann["job_title"], ann["linkedin_url"]) == (
        "Ann Lee", "Partner", "https://l.in/a")
    assert by_email(sb, "bo@ng.co")["company_name"] == "Ng LLP"
    assert listed(sb)["meta"]["total"] == SEEDED + 3


def test_tags_are_applied_to_every_row(sb: Any, app: Any, key: str) -> None:
    imported(sb, {"tags": ["q2-outreach"], "rows": [
        {"email": "t1@x.co", "tags": ["vip"]}, {"email": "t2@x.co"}]})
    assert stored(app, key, "t1@x.co")["tags"] == ["vip", "q2-outreach"]
    assert stored(app, key, "t2@x.co")["tags"] == ["q2-outreach"]
    imported(sb, {"tags": ["reimport"], "update_existing": True, "rows": [{"email": "t2@x.co"}]})
    assert stored(app, key, "t2@x.co")["tags"] == ["reimport"]


# ---- import: queued --------------------------------------------------------------------------

def test_large_import_is_queued_and_progresses_on_the_clock(sb: Any, app: Any, key: str) -> None:
    lines = ["Full Name,Email"] + [f"Person {i},p{i}@big.co" for i in range(1200)]
    lines[101] = "No Address,not-an-email"  # data row 101
    lines[202] = "Dup,p0@big.co"            # data row 202 repeats row 1: skipped
    hook = post(sb, "/v1/webhooks", {"url": "http://127.0.0.1:9/hook",
                                     "events": ["import.completed"]})
    assert hook.status_code == 201, hook.text
    data = imported(sb, {"csv": "\n".join(lines) + "\n", "tags": ["big"]})
    assert data == {"job_id": data["job_id"], "status": "queued", "created_count": 0,
                    "updated_count": 0, "skipped_count": 0, "errors": []}
    assert job(app, key, data["job_id"])["plan"]["notify"] == "import.completed"
    assert listed(sb)["meta"]["total"] == SEEDED
    # Pacing: 2 s queued, 1 s starting, then 200 rows a second.
    sb.advance(2.5)
    assert shown(sb, data["job_id"])["status"] == "processing"
    sb.advance(1.5)  # 1 s of rows: 200 due, one of them invalid
    assert listed(sb)["meta"]["total"] == SEEDED + 199
    sb.advance(10)
    view = shown(sb, data["job_id"])
    assert view["status"] == "completed"
    assert counts(view) == (1198, 0, 1)
    assert view["errors"] == [{"row_number": 101, "code": "invalid_email",
                               "message": "'not-an-email' is not a valid email address"}]
    assert listed(sb)["meta"]["total"] == SEEDED + 1198
    event_data = {"job_id": data["job_id"], "status": "completed", "created_count": 1198,
                  "updated_count": 0, "skipped_count": 1, "error_count": 1}
    assert webhooks.EVENT_DATA[V](job(app, key, data["job_id"])) == event_data
    with app.backend.store.begin() as conn:
        [delivery] = webhooks.deliveries(conn, key)
    event = json.loads(delivery["body"])
    assert (event["event"], event["data"]) == ("import.completed", event_data)


def test_more_than_500_json_rows_are_queued_too(sb: Any, app: Any, key: str) -> None:
    rows = [{"email": f"r{i}@rows.co"} for i in range(501)]
    data = imported(sb, {"rows": rows})
    assert data["status"] == "queued"
    sb.advance(60)
    assert counts(shown(sb, data["job_id"])) == (501, 0, 0)
    assert listed(sb)["meta"]["total"] == SEEDED + 501


# ---- import: Idempotency-Key ----------------------------------------------------------------

def test_idempotency_key_replays_the_original_answer(sb: Any) -> None:
    headers = {"Idempotency-Key": "imp-2025-01-15"}
    first = post(sb, IMPORT, SEED_REQUEST, headers=headers)
    reordered = {"rows": [{"email": r["email"], "full_name": r["full_name"]}
                          for r in SEED_REQUEST["rows"]]}
    sb.advance(3600)
    again = post(sb, IMPORT, reordered, headers=headers)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert listed(sb)["meta"]["total"] == SEEDED + 2
    # Without the key the same body is a new import: its rows now exist and are skipped.
    plain = imported(sb, SEED_REQUEST)
    assert plain["job_id"] != first.json()["data"]["job_id"]
    assert counts(plain) == (0, 0, 2)


def test_idempotency_key_with_another_body_is_a_conflict(sb: Any) -> None:
    headers = {"Idempotency-Key": "k-1"}
    imported(sb, SEED_REQUEST, headers=headers)
    r = post(sb, IMPORT, {"rows": [{"email": "other@x.co"}]}, headers=headers)
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in error["message"]
    assert list(error["details"]["fields"]) == ["Idempotency-Key"]
    assert listed(sb)["meta"]["total"] == SEEDED + 2


def test_idempotency_key_is_free_after_24_hours(sb: Any) -> None:
    headers = {"Idempotency-Key": "daily"}
    first = imported(sb, SEED_REQUEST, headers=headers)
    sb.advance(24 * 3600 - 1)
    assert imported(sb, SEED_REQUEST, headers=headers) == first
    sb.advance(1)
    second = imported(sb, {"rows": [{"email": "fresh@x.co"}]}, headers=headers)
    assert second["job_id"] != first["job_id"] and counts(second) == (1, 0, 0)
    assert imported(sb, {"rows": [{"email": "fresh@x.co"}]}, headers=headers) == second


def test_idempotent_queued_import_replays_queued(sb: Any) -> None:
    body = {"rows": [{"email": f"q{i}@x.co"} for i in range(600)]}
    headers = {"Idempotency-Key": "big-one"}
    first = imported(sb, body, headers=headers)
    sb.advance(60)
    assert imported(sb, body, headers=headers) == first  # the original result, as documented
    assert listed(sb)["meta"]["total"] == SEEDED + 600


def test_idempotency_keys_belong_to_one_workspace(sb: Any, client: Any) -> None:
    headers = {"Idempotency-Key": "shared"}
    mine = imported(sb, SEED_REQUEST, headers=headers)
    r = client.post(f"/leadlex{IMPORT}", json={"rows": [{"email": "z@x.co"}]},
                    headers={**headers, "Authorization": "Bearer wbk_other_workspace"})
    assert r.status_code == 200 and r.json()["data"]["job_id"] != mine["job_id"]
