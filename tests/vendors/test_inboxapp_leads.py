"""InboxApp through HTTP: adding leads to a list (POST /lists/{listId}/leads) and to a v2
campaign (POST /campaigns/v2/{campaignId}/leads), with the unresolvable magic identifiers."""

from __future__ import annotations

from typing import Any

from tests.conftest import Sandbox
from tests.vendors.inboxkit import assert_prospect, stored_leads

CAMPAIGN = "democampaign1"
OPENER = "custom_x4m8k2p6n9v1w3j7q5r0t8b2"


def add_to_list(sb: Sandbox, ids: list[str], list_id: str = "demolist2") -> Any:
    return sb.call("inboxapp", "POST", f"/lists/{list_id}/leads", json={"platformIds": ids})


def add_to_campaign(sb: Sandbox, body: dict[str, Any]) -> Any:
    return sb.call("inboxapp", "POST", f"/campaigns/v2/{CAMPAIGN}/leads", json=body)


# ---- lists ----------------------------------------------------------------------------------

def test_platform_ids_are_added_skipped_or_failed(sb: Sandbox) -> None:
    ids = ["44196397", "999000111", "888000222", "12ab", "44196397", "50393960"]
    r = add_to_list(sb, ids)
    assert r.status_code == 200, r.text
    assert r.json() == {"added": ["44196397", "50393960"], "skipped": ["44196397"],
                        "failed": ["999000111", "888000222", "12ab"]}
    again = add_to_list(sb, ["50393960", "44196397", "7777777"])
    assert again.json() == {"added": ["7777777"], "skipped": ["50393960", "44196397"],
                            "failed": []}
    profiles = stored_leads(sb.client.app, sb.key, "demolist2")
    assert sorted(p["platformId"] for p in profiles) == ["44196397", "50393960", "7777777"]
    for p in profiles:
        assert_prospect(p)
        assert p["firstSeenAt"] == "2025-01-15T10:00:00.000Z"


def test_leads_added_to_a_list_keep_their_fixture_neighbours(sb: Sandbox) -> None:
    before = stored_leads(sb.client.app, sb.key, "demolist1")
    existing = before[0]["platformId"]
    r = add_to_list(sb, [existing, "1234567890"], "demolist1")
    assert r.json() == {"added": ["1234567890"], "skipped": [existing], "failed": []}
    assert len(stored_leads(sb.client.app, sb.key, "demolist1")) == len(before) + 1


def test_a_magic_fail_id_fails_the_whole_request_and_adds_nothing(sb: Sandbox) -> None:
    r = add_to_list(sb, ["44196397", "fail_rate_limit"])
    assert r.status_code == 429
    assert r.headers["retry-after"] == "60"
    assert r.json()["error"]["code"] == "RATE_LIMITED"
    assert r.json()["error"]["field"] == "platformIds[1]"
    assert stored_leads(sb.client.app, sb.key, "demolist2") == []
    other = add_to_list(sb, ["fail-upstream-down"])
    assert other.status_code == 500
    assert other.json()["error"]["message"].startswith("platformIds[0]: Upstream down")


# ---- campaigns -------------------------------------------------------------------------------

def test_seed_example_with_its_placeholders_is_answered(sb: Sandbox) -> None:
    body = {"platform": "twitter", "platformIds": ["<string>"], "usernames": ["<string>"],
            "externalIds": ["<string>"],
            "leads": [{"platformId": "<string>", "username": "<string>",
                       "externalId": "<string>", "platform": "twitter", "data": {}}]}
    r = add_to_campaign(sb, body)
    assert r.status_code == 200, r.text
    assert r.json() == {"added": 0, "skipped": 0, "failed": 4}


def test_usernames_resolve_to_fake_profiles(sb: Sandbox) -> None:
    r = add_to_campaign(sb, {"usernames": ["jack", "@Elon_Musk", "Jack", "suspended_bob",
                                           "deleted_amy", "invalid_x", "not a handle"]})
    assert r.json() == {"added": 2, "skipped": 1, "failed": 4}
    profiles = {p["username"]: p for p in stored_leads(sb.client.app, sb.key, CAMPAIGN,
                                                       kind="campaign")}
    assert {"jack", "elon_musk"} <= set(profiles)
    for name in ("jack", "elon_musk"):
        assert_prospect(profiles[name])
    again = add_to_campaign(sb, {"usernames": ["jack"], "platformIds": [
        profiles["elon_musk"]["platformId"]]})
    assert again.json() == {"added": 0, "skipped": 2, "failed": 0}


def test_suspended_and_deleted_platform_ids_fail(sb: Sandbox) -> None:
    r = add_to_campaign(sb, {"platformIds": ["9990001", "8880001", "x1", "4242424242"]})
    assert r.json() == {"added": 1, "skipped": 0, "failed": 3}


def test_external_ids_resolve_to_prospects_the_workspace_knows(sb: Sandbox) -> None:
    known = stored_leads(sb.client.app, sb.key, "demolist1")[0]
    r = add_to_campaign(sb, {"externalIds": [known["externalId"], "hy4k7m2x9p1n6v3w8j5q0r"]})
    assert r.json() == {"added": 1, "skipped": 0, "failed": 1}
    ids = {p["platformId"] for p in stored_leads(sb.client.app, sb.key, CAMPAIGN,
                                                 kind="campaign")}
    assert known["platformId"] in ids


def test_mixed_leads_carry_their_column_data(sb: Sandbox) -> None:
    r = add_to_campaign(sb, {"leads": [
        {"username": "grace", "data": {OPENER: "Loved your talk"}},
        {"platformId": "31337", "platform": "twitter"},
        {"username": "suspended_mallory", "data": {OPENER: "x"}}]})
    assert r.json() == {"added": 2, "skipped": 0, "failed": 1}
    profiles = {p["username"]: p for p in stored_leads(sb.client.app, sb.key, CAMPAIGN,
                                                       kind="campaign")}
    assert profiles["grace"]["columns"] == {OPENER: "Loved your talk"}


def test_a_magic_fail_username_fails_the_campaign_request(sb: Sandbox) -> None:
    before = stored_leads(sb.client.app, sb.key, CAMPAIGN, kind="campaign")
    r = add_to_campaign(sb, {"usernames": ["jack", "fail_rate_limit"]})
    assert r.status_code == 429 and r.json()["error"]["field"] == "usernames[1]"
    assert stored_leads(sb.client.app, sb.key, CAMPAIGN, kind="campaign") == before


def test_unknown_campaign_is_404(sb: Sandbox) -> None:
    r = sb.call("inboxapp", "POST", "/campaigns/v2/nocampaign/leads", json={"usernames": ["a"]})
    assert r.status_code == 404
    assert r.json()["error"] == {"code": "CAMPAIGN_NOT_FOUND", "status": 404,
                                 "field": "campaignId",
                                 "message": "campaign 'nocampaign' not found"}
