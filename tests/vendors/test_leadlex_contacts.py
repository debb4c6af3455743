"""Leadlex contacts, lists and webhook registration through HTTP: name handling, duplicates,
bulk create, listing (pages, search, sort, filters), unique list names, webhook secrets."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.core import webhooks
from tests.vendors.leadlexkit import (
    SEEDED,
    V,
    by_email,
    counts,
    imported,
    listed,
    post,
)

# ---- contacts --------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "names"), [
    ({"full_name": "Hans Müller"}, ("Hans", "Müller", "Hans Müller")),
    ({"full_name": "Müller, Hans"}, ("Hans", "Müller", "Hans Müller")),
    ({"full_name": "Mary Ann van Dyke"}, ("Mary Ann van", "Dyke", "Mary Ann van Dyke")),
    ({"first_name": "Ada", "last_name": "Byron"}, ("Ada", "Byron", "Ada Byron")),
    ({"email": "hans.mueller@x.de"}, ("Hans", "Mueller", "Hans Mueller")),
    ({"last_name": "Solo"}, (None, "Solo", "Solo")),
])
def test_create_contact_name_handling(sb: Any, body: dict[str, Any],
                                      names: tuple[Any, ...]) -> None:
    r = post(sb, "/v1/contacts", body)
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert (data["first_name"], data["last_name"], data["full_name"]) == names
    assert data["created_date"] == "2025-01-15T10:00:00Z"
    assert data["priority"] is None


def test_create_contact_answer_and_listing_agree(sb: Any) -> None:
    r = post(sb, "/v1/contacts", {"full_name": "John Smith", "email": "John@Example.com",
                                  "job_title": "CEO", "company_name": "Tech Corp",
                                  "priority": "high", "phone": "+15551234567"})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["priority"] == 1 and data["email"] == "John@Example.com"
    item = by_email(sb, "John@Example.com")
    assert item["id"] == data["id"]
    assert (item["company_name"], item["job_title"], item["phone"]) == (
        "Tech Corp", "CEO", "+15551234567")
    # The same contact in the same workspace always gets the same id (here: after a reset).
    assert sb.client.post(f"/__sandbox/workspaces/{sb.key}/reset").status_code == 200
    again = post(sb, "/v1/contacts", {"full_name": "J S", "email": "john@example.com"})
    assert again.json()["data"]["id"] == data["id"]


def test_create_contact_duplicate_email_is_rejected(sb: Any) -> None:
    assert post(sb, "/v1/contacts", {"email": "dup@x.co"}).status_code == 201
    r = post(sb, "/v1/contacts", {"full_name": "Other", "email": "DUP@x.co"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "validation_error"
    assert r.json()["error"]["details"] == {"fields": {"email": "Must be unique"}}
    r = post(sb, "/v1/contacts", {"email": "broken@"})
    assert r.status_code == 400 and "email" in r.json()["error"]["message"]
    assert listed(sb)["meta"]["total"] == SEEDED + 1


def test_imported_rows_match_contacts_created_without_email_by_phone(sb: Any) -> None:
    assert post(sb, "/v1/contacts", {"full_name": "Pho Ne", "phone": "+14155550000"}
                ).status_code == 201
    data = imported(sb, {"update_existing": True, "rows": [
        {"email": "pho@ne.co", "phone": "+1 415 555 0000", "job_title": "Clerk"}]})
    assert counts(data) == (0, 1, 0)
    [item] = listed(sb, search="pho ne")["data"]["contacts"]
    assert (item["email"], item["job_title"]) == ("pho@ne.co", "Clerk")


def test_bulk_create(sb: Any) -> None:
    r = post(sb, "/v1/contacts/bulk", {"contacts": [
        {"full_name": "Jane Doe", "email": "jane@example.com", "job_title": "CEO"},
        {"full_name": "John Smith", "email": "john@example.com", "company": "Acme Inc"}]})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["created"] == 2
    assert [(c["full_name"], c["email"]) for c in data["contacts"]] == [
        ("Jane Doe", "jane@example.com"), ("John Smith", "john@example.com")]
    assert by_email(sb, "john@example.com")["id"] == data["contacts"][1]["id"]


@pytest.mark.parametrize(("contacts", "field", "detail"), [
    ([{"email": "a@x.co"}, {"email": "A@x.co"}], "contacts[1].email", "Must be unique"),
    ([{"email": "a@x.co"}, {"email": "seeded"}], "contacts[1].email", None),
    ([{"email": "a@x.co"}, {"phone": "+15550000000"}], "contacts[1].full_name", None),
])
def test_bulk_create_is_all_or_nothing(sb: Any, contacts: list[dict[str, Any]], field: str,
                                       detail: str | None) -> None:
    r = post(sb, "/v1/contacts/bulk", {"contacts": contacts})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and field in error["message"]
    assert list(error["details"]["fields"]) == [field]
    if detail:
        assert error["details"]["fields"][field] == detail
    assert listed(sb)["meta"]["total"] == SEEDED


def test_bulk_create_rejects_an_existing_email(sb: Any) -> None:
    seeded = listed(sb)["data"]["contacts"][0]["email"]
    r = post(sb, "/v1/contacts/bulk", {"contacts": [{"email": "new@x.co"}, {"email": seeded}]})
    assert r.status_code == 400
    assert r.json()["error"]["details"] == {"fields": {"contacts[1].email": "Must be unique"}}


def test_list_contacts_pagination_search_sort_and_filters(sb: Any) -> None:
    seeded = listed(sb)
    assert seeded["meta"] == {"page": 1, "per_page": 50, "total": SEEDED}
    imported(sb, {"rows": [{"full_name": f"Zed {i:02d}", "email": f"z{i}@zed.co",
                            "company": "Zed Law" if i % 2 else "Other"} for i in range(7)]})
    sb.advance(60)
    post(sb, "/v1/contacts", {"full_name": "Aaron Late", "email": "late@x.co"})
    page2 = listed(sb, per_page=3, page=2, sort="full_name")
    assert page2["meta"] == {"page": 2, "per_page": 3, "total": SEEDED + 8}
    everyone = listed(sb, sort="full_name", per_page=100)["data"]["contacts"]
    names = [c["full_name"] for c in everyone]
    assert names == sorted(names, key=str.lower)
    assert [c["full_name"] for c in page2["data"]["contacts"]] == names[3:6]
    newest = listed(sb)["data"]["contacts"][0]
    assert newest["full_name"] == "Aaron Late" and newest["created_at"] == "2025-01-15T10:01:00Z"
    oldest = listed(sb, sort="created_at")["data"]["contacts"]
    assert oldest[-1]["full_name"] == "Aaron Late"
    assert listed(sb, search="zed law")["meta"]["total"] == 3
    assert listed(sb, search="Z3@ZED")["meta"]["total"] == 1
    assert listed(sb, created_after="2025-01-15T10:00:30Z")["meta"]["total"] == 1
    assert listed(sb, page=9)["data"]["contacts"] == []
    assert listed(sb, list_id="abc-123")["meta"]["total"] == 0


def test_created_date_is_recorded(sb: Any) -> None:
    r = post(sb, "/v1/contacts", {"email": "old@x.co", "created_date": "2020-05-01T08:00:00Z"})
    assert r.json()["data"]["created_date"] == "2020-05-01T08:00:00Z"
    assert listed(sb, sort="created_at")["data"]["contacts"][0]["email"] == "old@x.co"
    assert listed(sb, created_after="2021-01-01T00:00:00Z")["meta"]["total"] == SEEDED


# ---- lists ----------------------------------------------------------------------------------

def test_create_list_and_unique_names(sb: Any) -> None:
    r = post(sb, "/v1/lists", {"name": "Outreach Q2 2026", "description": "Prospects"})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data == {"id": data["id"], "name": "Outreach Q2 2026", "description": "Prospects",
                    "contact_count": 0, "created_at": "2025-01-15T10:00:00Z"}
    assert listed(sb, list_id=data["id"])["meta"]["total"] == 0
    for name in ("outreach q2 2026", "DEMO"):  # the seeded list is named Demo
        r = post(sb, "/v1/lists", {"name": name})
        assert r.status_code == 400
        assert r.json() == {"error": {"code": "validation_error",
                                      "message": "A list with this name already exists",
                                      "details": {"fields": {"name": "Must be unique"}}}}


# ---- webhooks -------------------------------------------------------------------------------

def test_create_webhook_returns_the_secret_once(sb: Any, app: Any, key: str) -> None:
    body = {"url": "https://example.com/leadlex/webhook", "events": ["import.completed"],
            "description": "Production CRM sync"}
    r = post(sb, "/v1/webhooks", body)
    assert r.status_code == 201, r.text
    hook = r.json()["data"]["webhook"]
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) == 6 + 64
    assert {k: hook[k] for k in ("url", "events", "description", "active")} == {
        **body, "active": True}
    with app.backend.store.begin() as conn:
        [sub] = webhooks.subscriptions(conn, key, V)
    assert (sub["id"], sub["secret"]) == (hook["id"], hook["secret"])
    again = post(sb, "/v1/webhooks", body)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate_webhook"
    local = post(sb, "/v1/webhooks", {"url": "http://127.0.0.1:8765/hook",
                                      "events": ["contact.created"], "active": False})
    assert local.status_code == 201 and local.json()["data"]["webhook"]["active"] is False


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"events": ["import.completed"]}, "missing_required_field", "url"),
    ({"url": "https://example.com/h"}, "missing_required_field", "events"),
    ({"url": "http://example.com/h", "events": ["import.completed"]}, "invalid_url", "url"),
    ({"url": "https://10.0.0.7/h", "events": ["import.completed"]}, "invalid_url", "url"),
    ({"url": "not a url", "events": ["import.completed"]}, "invalid_url", "url"),
    ({"url": "https://example.com/h", "events": ["import.done"]}, "invalid_events",
     "events[0]"),
    ({"url": "https://example.com/h", "events": []}, "invalid_events", "events"),
])
def test_create_webhook_errors(sb: Any, body: dict[str, Any], code: str, field: str) -> None:
    r = post(sb, "/v1/webhooks", body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == code and field in error["message"]
    assert list(error["details"]["fields"]) == [field]
