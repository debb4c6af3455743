"""Tenants are walls, probed at random over HTTP: one workspace's key against another's list and
job ids always answers "unknown", and nothing of the other workspace (its leads, names, block
list) appears in any answer or in the prober's journal."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import Server, auth
from tests.reliability.kit import assert_envelope, new_key

PROBES = 200
SECRET = "zq7victim"  # in every value the victim stores: must never reach the prober


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _ok(r: httpx.Response) -> Any:
    assert 200 <= r.status_code < 300, r.text
    return r.json()


def populate(c: httpx.Client, key: str) -> dict[str, list[Any]]:
    """The victim's own lists, jobs and leads on all four vendors; returns their ids."""
    ids: dict[str, list[Any]] = {"inboxapp_job": [], "which50_job": [], "smartlead_list": [],
                                 "leadlex_list": []}
    for i in range(3):
        csv = f"username\n{SECRET}{i}a\n{SECRET}{i}b\n"
        job = _ok(c.post("/inboxapp/lists/demolist1/import-jobs", **auth("inboxapp", key),
                         json={"data": {"type": "csv", "content": csv}}))
        ids["inboxapp_job"].append(job["id"])
    _ok(c.post("/leadlex/v1/import/contacts", **auth("leadlex", key), json={"rows": [
        {"email": f"{SECRET}{i}@victim.example", "full_name": f"Victim {SECRET} {i}"}
        for i in range(5)]}))
    created = _ok(c.post("/leadlex/v1/lists", **auth("leadlex", key),
                         json={"name": f"{SECRET} list"}))
    ids["leadlex_list"].append(created["data"]["id"])
    for _ in range(3):
        job = _ok(c.post("/which50/contactLists/2/import", **auth("which50", key),
                         json={"FieldNames": ["Email", "FirstName"]}))
        _ok(c.post(f"/which50/contactLists/2/import/{job['Id']}", **auth("which50", key),
                   json=[{"ListId": 2, "Values": {"Email": f"{SECRET}@w50.example",
                                                  "FirstName": SECRET}}]))
        ids["which50_job"].append(job["Id"])
    for _ in range(2):
        made = _ok(c.post("/smartlead/lead-list/", **auth("smartlead", key),
                          json={"listName": f"{SECRET} smartlead"}))
        ids["smartlead_list"].append(made["data"]["id"])
        _ok(c.post(f"/smartlead/lead-list/{made['data']['id']}/import",
                   **auth("smartlead", key),
                   json={"leadList": [{"email": f"{SECRET}@sl.example"}], "fileName": "v.csv"}))
    _ok(c.post("/smartlead/leads/add-domain-block-list", **auth("smartlead", key),
               json={"domain_block_list": [f"{SECRET}.example"]}))
    return ids


def probes(ids: dict[str, list[Any]], rng: random.Random) -> Iterator[tuple[str, str, str,
                                                                           dict[str, Any]]]:
    """(vendor, method, path, kwargs): requests naming the victim's ids, at random."""
    for _ in range(PROBES):
        kind = rng.choice(["inboxapp_cancel", "which50_get", "which50_upload", "which50_run",
                           "smartlead_get", "smartlead_import", "leadlex_contacts",
                           "control_job"])
        if kind == "inboxapp_cancel":
            job = rng.choice(ids["inboxapp_job"])
            yield "inboxapp", "POST", f"/lists/demolist1/import-jobs/{job}/cancel", {"json": {}}
        elif kind.startswith("which50"):
            job = rng.choice(ids["which50_job"])
            path = f"/contactLists/2/import/{job}" + ("/run" if kind == "which50_run" else "")
            if kind == "which50_upload":
                yield "which50", "POST", path, {"json": [{"ListId": 2, "Values": {
                    "Email": "probe@attacker.example"}}]}
            else:
                yield "which50", "GET" if kind == "which50_get" else "POST", path, {}
        elif kind == "smartlead_get":
            yield "smartlead", "GET", f"/lead-list/{rng.choice(ids['smartlead_list'])}", {}
        elif kind == "smartlead_import":
            yield "smartlead", "POST", f"/lead-list/{rng.choice(ids['smartlead_list'])}/import", {
                "json": {"leadList": [{"email": "probe@attacker.example"}], "fileName": "p.csv"}}
        elif kind == "leadlex_contacts":
            yield "leadlex", "GET", "/v1/contacts", {"params": {
                "list_id": rng.choice(ids["leadlex_list"]), "search": "victim"}}
        else:
            yield "control", "GET", rng.choice(ids["inboxapp_job"]), {}


def test_random_probes_across_workspaces_find_nothing(client: httpx.Client) -> None:
    victim, prober = new_key("victim"), new_key("prober")
    ids = populate(client, victim)
    _ok(client.get(f"/__sandbox/workspaces/{prober}"))  # the prober exists, with its seed data
    rng = random.Random(20250115)
    sent = 0
    for vendor, method, path, kwargs in probes(ids, rng):
        sent += vendor != "control"
        if vendor == "control":
            r = client.get(f"/__sandbox/workspaces/{prober}/jobs/{path}")
            assert r.status_code == 404, r.text
        else:
            extra = auth(vendor, prober)
            params = {**kwargs.pop("params", {}), **extra.get("params", {})}
            r = client.request(method, f"/{vendor}{path}", params=params,
                               headers=extra.get("headers"), **kwargs)
            if vendor == "leadlex":
                # Leadlex documents an unknown list_id as an empty page, not a 404.
                assert r.status_code == 200 and r.json()["data"]["contacts"] == [], r.text
            else:
                assert_envelope(vendor, method, path, r, status=404)
        assert SECRET not in r.text
    # The prober's own view: none of the victim's data in its lists, jobs or journal.
    for path in (f"/__sandbox/workspaces/{prober}", f"/__sandbox/workspaces/{prober}/jobs",
                 f"/__sandbox/workspaces/{prober}/requests?limit=1000"):
        r = client.get(path)
        assert r.status_code == 200 and SECRET not in r.text, path
    journal = client.get(f"/__sandbox/workspaces/{prober}/requests",
                         params={"limit": 1000}).json()["data"]
    # Exactly the prober's own requests: none of the victim's was journaled here.
    assert len(journal) == sent
    for vendor, path in (("smartlead", "/lead-list/"), ("leadlex", "/v1/contacts"),
                         ("which50", "/contactLists"),
                         ("smartlead", "/leads/get-domain-block-list"),
                         ("inboxapp", "/lists/demolist1/import-jobs")):
        r = client.get(f"/{vendor}{path}", **auth(vendor, prober))
        assert r.status_code == 200 and SECRET not in r.text, (vendor, path, r.text[:300])
    # ...and the victim still sees all of its own, untouched by the probes.
    mine = client.get("/inboxapp/lists/demolist1/import-jobs", **auth("inboxapp", victim))
    assert {j["id"] for j in mine.json()["data"]} == set(ids["inboxapp_job"])
    assert all(j["status"] != "canceled" for j in mine.json()["data"])
    assert SECRET in client.get(f"/__sandbox/workspaces/{victim}/requests",
                                params={"limit": 1000}).text
