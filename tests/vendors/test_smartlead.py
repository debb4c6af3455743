"""Smartlead face over HTTP: lead lists and their import, the block list, campaign leads, and
the error envelope for every kind of rejection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from sandbox.app import create_app
from sandbox.settings import Settings
from tests.conftest import START, Sandbox

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "smartlead.yaml"
# The request and response of the vendor's own example (seeds/004: lead-list import).
SEED_REQUEST: dict[str, Any] = {
    "leadList": [
        {"email": "john@company.com", "first_name": "John", "last_name": "Doe",
         "company": "ACME Corp"},
        {"email": "jane@startup.io", "first_name": "Jane", "last_name": "Smith",
         "company": "Startup Inc"},
    ],
    "fileName": "enterprise-prospects-jan2025.csv",
    "csvSettings": {"ignoreGlobalBlockList": False},
}
SEED_RESPONSE = {"ok": True, "data": {"total_leads": 2, "imported": 2, "duplicates": 0,
                                      "blocked": 0}}


@pytest.fixture(scope="module")
def app() -> Any:
    """One app for the module (building one costs about a second); every test still gets a
    workspace of its own, since the `key` fixture is unique per test. Smartlead allows 10
    requests per 2 s and the test clock is frozen, so limits are off here and tested apart."""
    return create_app(Settings(validate_responses=True, clock_start=START, clock_mode="frozen",
                               background_ticker=False, rate_limits="off"))


def call(sb: Sandbox, method: str, path: str, **kwargs: Any) -> Any:
    return sb.call("smartlead", method, path, **kwargs)


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def rejected(response: Any, status: int, code: str, field: str | None = None,
             constraint: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    if field is not None:
        assert error["details"]["field"] == field
        assert field in error["message"]
    if constraint is not None:
        assert error["details"]["constraint"] == constraint
    return dict(error)


def import_leads(sb: Sandbox, list_id: int, emails: list[str], **extra: Any) -> dict[str, Any]:
    body = {"leadList": [{"email": e} for e in emails], "fileName": "test.csv", **extra}
    data = ok(call(sb, "POST", f"/lead-list/{list_id}/import", json=body))["data"]
    assert set(data) == {"total_leads", "imported", "duplicates", "blocked"}
    assert data["total_leads"] == len(emails)
    # Every row lands somewhere: the remainder is the invalid rows, never negative.
    assert data["imported"] + data["duplicates"] + data["blocked"] <= data["total_leads"]
    return dict(data)


def lead_count(sb: Sandbox, list_id: int) -> int:
    return int(ok(call(sb, "GET", f"/lead-list/{list_id}"))["data"]["lead_count"])


def add_campaign_leads(sb: Sandbox, emails: list[str], campaign: int = 1,
                       **settings: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"lead_list": [{"email": e} for e in emails]}
    if settings:
        body["settings"] = settings
    out = ok(call(sb, "POST", f"/campaigns/{campaign}/leads", json=body))
    assert out["total_leads"] == len(emails)
    assert out["total_leads"] == (out["upload_count"] + out["already_added_to_campaign"]
                                  + out["duplicate_count"] + out["block_count"]
                                  + out["invalid_email_count"])
    assert out["invalid_email_count"] == len(out["invalid_emails"])
    return dict(out)


# ---- the vendor's own example ------------------------------------------------------------

def test_spec_is_valid_openapi() -> None:
    validate(yaml.safe_load(SPEC.read_text()))


def test_seed_example_request_gets_the_seed_example_response(sb: Sandbox) -> None:
    response = call(sb, "POST", "/lead-list/500/import", json=SEED_REQUEST)
    assert ok(response) == SEED_RESPONSE
    assert lead_count(sb, 500) == 2
    listed = ok(call(sb, "GET", "/lead-list/", params={"listName": "enterprise"}))["data"]
    assert [(item["id"], item["lead_count"]) for item in listed] == [(500, 2)]


def test_importing_the_same_leads_again_counts_duplicates(sb: Sandbox) -> None:
    ok(call(sb, "POST", "/lead-list/500/import", json=SEED_REQUEST))
    again = ok(call(sb, "POST", "/lead-list/500/import", json=SEED_REQUEST))["data"]
    assert again == {"total_leads": 2, "imported": 0, "duplicates": 2, "blocked": 0}
    assert lead_count(sb, 500) == 2


# ---- lead-list import --------------------------------------------------------------------

def test_blocked_by_domain_and_by_exact_email(sb: Sandbox) -> None:
    ok(call(sb, "POST", "/leads/add-domain-block-list",
            json={"domain_block_list": ["ceo@rival.io"]}))
    data = import_leads(sb, 2, ["a@blocked.example", "ceo@rival.io", "cto@rival.io",
                                "ok@fine.io"])
    assert data == {"total_leads": 4, "imported": 2, "duplicates": 0, "blocked": 2}
    assert lead_count(sb, 2) == 2


def test_ignore_global_block_list_lets_blocked_leads_in(sb: Sandbox) -> None:
    ok(call(sb, "POST", "/leads/add-domain-block-list",
            json={"domain_block_list": ["ceo@rival.io"]}))
    data = import_leads(sb, 2, ["a@blocked.example", "CEO@rival.io"],
                        csvSettings={"ignoreGlobalBlockList": True})
    assert data == {"total_leads": 2, "imported": 2, "duplicates": 0, "blocked": 0}


def test_client_scoped_block_entries_do_not_block_list_imports(sb: Sandbox) -> None:
    ok(call(sb, "POST", "/leads/add-domain-block-list",
            json={"domain_block_list": ["client-only.io"], "client_id": 7}))
    data = import_leads(sb, 2, ["x@client-only.io"])
    assert data["imported"] == 1 and data["blocked"] == 0


def test_duplicates_within_one_request_and_across_requests(sb: Sandbox) -> None:
    first = import_leads(sb, 2, ["a@x.io", " A@X.io ", "b@x.io", "a@x.io"])
    assert first == {"total_leads": 4, "imported": 2, "duplicates": 2, "blocked": 0}
    second = import_leads(sb, 2, ["b@x.io", "c@x.io"])
    assert second == {"total_leads": 2, "imported": 1, "duplicates": 1, "blocked": 0}
    assert lead_count(sb, 2) == 3


def test_invalid_emails_are_the_remainder(sb: Sandbox) -> None:
    data = import_leads(sb, 2, ["not-an-email", "", "two@@x.io", "ok@x.io"])
    assert data == {"total_leads": 4, "imported": 1, "duplicates": 0, "blocked": 0}
    assert lead_count(sb, 2) == 1


def test_mixed_import_accounts_for_every_row(sb: Sandbox) -> None:
    emails = [f"user{i}@ok{i % 7}.io" for i in range(300)]
    emails += emails[:40] + [f"bad{i}" for i in range(25)]
    emails += [f"p{i}@blocked.example" for i in range(15)]
    data = import_leads(sb, 2, emails)
    assert data == {"total_leads": 380, "imported": 300, "duplicates": 40, "blocked": 15}
    assert lead_count(sb, 2) == 300
    listed = ok(call(sb, "GET", "/lead-list/"))["data"]
    assert {item["id"]: item["lead_count"] for item in listed} == {1: 3, 2: 300, 500: 0}


def test_import_into_unknown_list_is_404(sb: Sandbox) -> None:
    response = call(sb, "POST", "/lead-list/999/import",
                    json={"leadList": [{"email": "a@x.io"}], "fileName": "f.csv"})
    rejected(response, 404, "NOT_FOUND", field="id")


def test_fail_rate_limit_value_answers_429_and_imports_nothing(sb: Sandbox) -> None:
    response = call(sb, "POST", "/lead-list/2/import", json={
        "leadList": [{"email": "a@x.io"}, {"email": "fail_rate_limit@x.io"}],
        "fileName": "f.csv"})
    error = rejected(response, 429, "RATE_LIMIT_EXCEEDED", field="leadList[1].email")
    assert error["retry_after"] == 30
    assert response.headers["Retry-After"] == "30"
    assert lead_count(sb, 2) == 0


def test_other_fail_value_answers_500_and_imports_nothing(sb: Sandbox) -> None:
    response = call(sb, "POST", "/lead-list/2/import", json={
        "leadList": [{"email": "a@x.io"}, {"email": "fail_quota_reached@x.io"}],
        "fileName": "f.csv"})
    error = rejected(response, 500, "INTERNAL_ERROR", field="leadList[1].email")
    assert "Quota reached" in error["message"]
    assert lead_count(sb, 2) == 0


# ---- lead lists --------------------------------------------------------------------------

def test_seeded_lists(sb: Sandbox) -> None:
    data = ok(call(sb, "GET", "/lead-list/"))["data"]
    assert [(d["id"], d["name"], d["lead_count"]) for d in data] == [
        (1, "Inbound signups", 3), (2, "Webinar leads", 0), (500, "Enterprise prospects", 0)]
    assert data[0]["created_at"] == "2025-01-15T10:00:00.000Z"


def test_create_get_and_filter_lists(sb: Sandbox) -> None:
    created = ok(call(sb, "POST", "/lead-list/", json={"listName": "Q1 Founders"}))["data"]
    assert created == {"id": 3, "name": "Q1 Founders", "created_at": "2025-01-15T10:00:00.000Z"}
    second = ok(call(sb, "POST", "/lead-list/", json={"listName": "Q2 founders"}))["data"]
    assert second["id"] == 4
    assert ok(call(sb, "GET", "/lead-list/3"))["data"] == {**created, "lead_count": 0}
    found = ok(call(sb, "GET", "/lead-list/", params={"listName": "FOUNDERS"}))["data"]
    assert [d["id"] for d in found] == [3, 4]
    page = ok(call(sb, "GET", "/lead-list/", params={"limit": 2, "offset": 1}))["data"]
    assert [d["id"] for d in page] == [2, 500]
    tagged = ok(call(sb, "GET", "/lead-list/", params={"tagIds": "12,15"}))["data"]
    assert tagged == []
    import_leads(sb, 3, ["a@x.io"])
    assert lead_count(sb, 3) == 1


def test_get_unknown_list_is_404(sb: Sandbox) -> None:
    rejected(call(sb, "GET", "/lead-list/77"), 404, "NOT_FOUND", field="id")


def test_lists_are_per_api_key(sb: Sandbox, client: TestClient) -> None:
    ok(call(sb, "POST", "/lead-list/", json={"listName": "Mine"}))
    other = client.get("/smartlead/lead-list/", params={"api_key": "wbk_someone_else"})
    assert [d["name"] for d in other.json()["data"]] == [
        "Inbound signups", "Webinar leads", "Enterprise prospects"]
    rejected(client.get("/smartlead/lead-list/3", params={"api_key": "wbk_someone_else"}),
             404, "NOT_FOUND")


# ---- block list --------------------------------------------------------------------------

def test_seeded_block_list(sb: Sandbox) -> None:
    assert ok(call(sb, "GET", "/leads/get-domain-block-list")) == [
        {"id": 1, "email_or_domain": "blocked.example", "created_at": "2025-01-15T10:00:00.000Z",
         "source": "manual", "client_id": None}]


def test_add_and_filter_block_list(sb: Sandbox) -> None:
    added = ok(call(sb, "POST", "/leads/add-domain-block-list",
                    json={"domain_block_list": ["Competitor.com", "ceo@rival.io",
                                               "competitor.com"]}))["data"]
    assert added["added"] == 2
    assert [(e["id"], e["email_or_domain"], e["source"], e["client_id"])
            for e in added["entries"]] == [(2, "competitor.com", "api", None),
                                           (3, "ceo@rival.io", "api", None)]
    again = ok(call(sb, "POST", "/leads/add-domain-block-list",
                    json={"domain_block_list": ["competitor.com"]}))["data"]
    assert again == {"added": 0, "entries": []}
    scoped = ok(call(sb, "POST", "/leads/add-domain-block-list",
                     json={"domain_block_list": ["competitor.com"], "client_id": 9}))["data"]
    assert [(e["id"], e["client_id"]) for e in scoped["entries"]] == [(4, 9)]

    def values(**params: Any) -> list[str]:
        rows = ok(call(sb, "GET", "/leads/get-domain-block-list", params=params))
        return [r["email_or_domain"] for r in rows]

    assert values() == ["blocked.example", "competitor.com", "ceo@rival.io", "competitor.com"]
    assert values(filter_client_id=9) == ["competitor.com"]
    assert values(filter_email_or_domain="RIVAL") == ["ceo@rival.io"]
    assert values(offset=1, limit=2) == ["competitor.com", "ceo@rival.io"]


def test_block_list_rejects_values_that_are_not_domains_or_emails(sb: Sandbox) -> None:
    response = call(sb, "POST", "/leads/add-domain-block-list",
                    json={"domain_block_list": ["ok.io", "not a domain"]})
    rejected(response, 422, "VALIDATION_ERROR", field="domain_block_list[1]",
             constraint="pattern")


# ---- campaigns ---------------------------------------------------------------------------

def test_campaign_leads_counts(sb: Sandbox) -> None:
    out = add_campaign_leads(sb, ["a@x.io", "b@x.io", "a@x.io", "bad", "z@blocked.example"])
    assert out == {"ok": True, "upload_count": 2, "total_leads": 5, "block_count": 1,
                   "duplicate_count": 1, "invalid_email_count": 1, "invalid_emails": ["bad"],
                   "already_added_to_campaign": 0, "unsubscribed_leads": [],
                   "is_lead_limit_exhausted": False, "lead_import_stopped_count": 0,
                   "bounce_count": 0}
    again = add_campaign_leads(sb, ["a@x.io", "c@x.io"])
    assert (again["upload_count"], again["already_added_to_campaign"]) == (1, 1)


def test_campaign_ignore_global_block_list(sb: Sandbox) -> None:
    out = add_campaign_leads(sb, ["z@blocked.example"], ignore_global_block_list=True)
    assert (out["upload_count"], out["block_count"]) == (1, 0)


def test_campaign_duplicates_in_other_campaigns(sb: Sandbox) -> None:
    add_campaign_leads(sb, ["a@x.io"], campaign=1)
    held = add_campaign_leads(sb, ["a@x.io", "b@x.io"], campaign=2)
    assert (held["upload_count"], held["duplicate_count"]) == (1, 1)
    let_in = add_campaign_leads(sb, ["a@x.io"], campaign=2,
                                ignore_duplicate_leads_in_other_campaign=True)
    assert (let_in["upload_count"], let_in["duplicate_count"]) == (1, 0)


def test_campaign_fail_value_names_its_request_position(sb: Sandbox) -> None:
    add_campaign_leads(sb, ["a@x.io"], campaign=1)
    response = call(sb, "POST", "/campaigns/2/leads", json={"lead_list": [
        {"email": "a@x.io"}, {"email": "b@x.io"}, {"email": "fail_rate_limit@x.io"}]})
    assert rejected(response, 429, "RATE_LIMIT_EXCEEDED",
                    field="lead_list[2].email")["retry_after"] == 30
    # Nothing of the refused request was applied.
    assert add_campaign_leads(sb, ["b@x.io"], campaign=2)["upload_count"] == 1


def test_campaign_accepts_400_leads_and_refuses_401(sb: Sandbox) -> None:
    out = add_campaign_leads(sb, [f"u{i}@x.io" for i in range(400)])
    assert out["upload_count"] == 400
    response = call(sb, "POST", "/campaigns/1/leads",
                    json={"lead_list": [{"email": f"v{i}@x.io"} for i in range(401)]})
    rejected(response, 422, "VALIDATION_ERROR", field="lead_list", constraint="maxItems")


def test_campaign_errors(sb: Sandbox) -> None:
    rejected(call(sb, "POST", "/campaigns/42/leads", json={"lead_list": [{"email": "a@x.io"}]}),
             404, "NOT_FOUND", field="campaign_id")
    rejected(call(sb, "POST", "/campaigns/first/leads",
                  json={"lead_list": [{"email": "a@x.io"}]}),
             422, "VALIDATION_ERROR", field="campaign_id", constraint="pattern")
    rejected(call(sb, "POST", "/campaigns/1/leads",
                  json={"lead_list": [{"email": "a@x.io"}], "settings": {"update": True}}),
             422, "VALIDATION_ERROR", field="settings.update", constraint="not")
    rejected(call(sb, "POST", "/campaigns/1/leads",
                  json={"lead_list": [{"email": "a@x.io"}, {"first_name": "No"}]}),
             422, "VALIDATION_ERROR", field="lead_list[1].email", constraint="required")


# ---- error matrix ------------------------------------------------------------------------

IMPORT = "/lead-list/2/import"


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code", "field", "rule"), [
    ("POST", IMPORT, {"json": {"leadList": [{"email": "a@x.io"}]}},
     422, "VALIDATION_ERROR", "fileName", "required"),
    ("POST", IMPORT, {"json": {"leadList": [{"email": "a@x.io"}, {"name": "x"}],
                               "fileName": "f"}},
     422, "VALIDATION_ERROR", "leadList[1].email", "required"),
    ("POST", IMPORT, {"json": {"leadList": "a@x.io", "fileName": "f"}},
     422, "VALIDATION_ERROR", "leadList", "type"),
    ("POST", IMPORT, {"json": {"leadList": [{"email": 5}], "fileName": "f"}},
     422, "VALIDATION_ERROR", "leadList[0].email", "type"),
    ("POST", IMPORT, {"json": {"leadList": [{"email": "a@x.io"}], "fileName": "f",
                               "csvSettings": {"ignoreGlobalBlockList": "yes"}}},
     422, "VALIDATION_ERROR", "csvSettings.ignoreGlobalBlockList", "type"),
    ("POST", IMPORT, {"json": {"leadList": [], "fileName": "f"}},
     422, "VALIDATION_ERROR", "leadList", "minItems"),
    ("POST", IMPORT, {"json": {"leadList": [{"email": "a@x.io"}] * 10_001, "fileName": "f"}},
     422, "VALIDATION_ERROR", "leadList", "maxItems"),
    ("GET", "/lead-list/", {"params": {"limit": 1001}},
     422, "VALIDATION_ERROR", "limit", "maximum"),
    ("GET", "/lead-list/", {"params": {"limit": "ten"}},
     422, "VALIDATION_ERROR", "limit", "type"),
    ("GET", "/lead-list/", {"params": {"offset": -1}},
     422, "VALIDATION_ERROR", "offset", "minimum"),
    ("GET", "/lead-list/", {"params": {"tagIds": "12;15"}},
     422, "VALIDATION_ERROR", "tagIds", "pattern"),
    ("GET", "/leads/get-domain-block-list", {"params": {"limit": 0}},
     422, "VALIDATION_ERROR", "limit", "minimum"),
    ("GET", "/lead-list/abc", {}, 422, "VALIDATION_ERROR", "id", "pattern"),
    ("POST", "/lead-list/", {"json": {"listName": ""}},
     422, "VALIDATION_ERROR", "listName", "minLength"),
    ("POST", "/leads/add-domain-block-list", {"json": {"domain_block_list": ["a.io"],
                                                        "client_id": "seven"}},
     422, "VALIDATION_ERROR", "client_id", "type"),
    ("POST", IMPORT, {"content": b'{"leadList": [', "headers": {
        "content-type": "application/json"}}, 400, "BAD_REQUEST", "body", "json"),
    ("POST", IMPORT, {"content": b'{"fileName": "\xff\xfe"}', "headers": {
        "content-type": "application/json"}}, 400, "BAD_REQUEST", "body", "encoding"),
    ("POST", IMPORT, {"content": b"", "headers": {"content-type": "application/json"}},
     400, "BAD_REQUEST", "body", "required"),
    ("GET", "/lead-lists", {}, 404, "NOT_FOUND", "path", "route"),
    ("GET", "/campaigns", {}, 404, "NOT_FOUND", "path", "route"),
    ("DELETE", IMPORT, {}, 405, "METHOD_NOT_ALLOWED", "method", "method"),
    ("PUT", "/lead-list/", {"json": {}}, 405, "METHOD_NOT_ALLOWED", "method", "method"),
])
def test_error_matrix(sb: Sandbox, method: str, path: str, kwargs: dict[str, Any],
                      status: int, code: str, field: str, rule: str) -> None:
    rejected(call(sb, method, path, **kwargs), status, code, field=field, constraint=rule)


def test_wrong_content_type_is_415(sb: Sandbox) -> None:
    response = call(sb, "POST", IMPORT, content=b"email\na@x.io",
                    headers={"content-type": "text/csv"})
    rejected(response, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(("params", "rule"), [({}, "required"), ({"api_key": "ab"}, "format"),
                                              ({"api_key": "has space"}, "format")])
def test_missing_or_malformed_api_key_is_401(client: TestClient, params: dict[str, str],
                                             rule: str) -> None:
    response = client.get("/smartlead/lead-list/", params=params)
    error = rejected(response, 401, "UNAUTHORIZED", field="api_key", constraint=rule)
    assert "api_key" in error["message"]


def test_bearer_header_is_not_a_smartlead_credential(client: TestClient, key: str) -> None:
    response = client.get("/smartlead/lead-list/", headers={"Authorization": f"Bearer {key}"})
    rejected(response, 401, "UNAUTHORIZED", field="api_key")


@pytest.mark.parametrize(("status", "code"), [(500, "INTERNAL_ERROR"),
                                              (503, "SERVICE_UNAVAILABLE")])
def test_scenario_failures_use_the_envelope(sb: Sandbox, status: int, code: str) -> None:
    response = call(sb, "GET", "/lead-list/",
                    headers={"X-Sandbox-Scenario": f"status={status}"})
    rejected(response, status, code)


@pytest.fixture
def limited() -> Iterator[TestClient]:
    app = create_app(Settings(validate_responses=True, clock_start=START, clock_mode="frozen",
                              background_ticker=False, rate_limits="vendor"))
    with app.test_client() as c:
        yield c


def test_rate_limit_is_10_per_2_seconds(limited: TestClient, key: str) -> None:
    for _ in range(10):
        response = limited.get("/smartlead/lead-list/", params={"api_key": key})
        assert response.status_code == 200, response.text
    assert response.headers["X-RateLimit-Limit"] == "10"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    refused = limited.get("/smartlead/lead-list/", params={"api_key": key})
    error = rejected(refused, 429, "RATE_LIMIT_EXCEEDED")
    assert error["retry_after"] >= 1
    assert refused.headers["Retry-After"] == str(error["retry_after"])
    advanced = limited.post(f"/__sandbox/workspaces/{key}/clock/advance", json={"seconds": 2})
    assert advanced.status_code == 200, advanced.text
    assert limited.get("/smartlead/lead-list/", params={"api_key": key}).status_code == 200
