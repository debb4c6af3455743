"""Auth modes: `open` gives any well-formed key a workspace; `strict` only the listed keys."""

from __future__ import annotations

from pathlib import Path

from sandbox.app import create_app
from sandbox.settings import Settings
from tests.conftest import START


def test_strict_mode_accepts_only_the_keys_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# demo keys\nwbk_allowed_key\n")
    app = create_app(Settings(auth="strict", keys_file=str(keys), clock_start=START,
                              clock_mode="frozen", validate_responses=True,
                              background_ticker=False))
    with app.test_client() as c:
        ok = c.get("/inboxapp/lists/demolist1/import-jobs",
                   headers={"Authorization": "Bearer wbk_allowed_key"})
        assert ok.status_code == 200, ok.text
        refused = c.get("/inboxapp/lists/demolist1/import-jobs",
                        headers={"Authorization": "Bearer wbk_not_listed"})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "UNAUTHORIZED"
        smartlead = c.get("/smartlead/lead-list/", params={"api_key": "wbk_not_listed"})
        assert smartlead.status_code == 401
        # A refused key gets no workspace: nothing was created for it.
        assert c.get("/__sandbox/workspaces/wbk_not_listed/requests").json()["data"] == []


def test_open_mode_gives_each_well_formed_key_its_own_seeded_workspace(client, key) -> None:
    for vendor_key in (key, key + "_other"):
        r = client.get("/which50/contactLists", headers={"Authorization": f"Bearer {vendor_key}"})
        assert r.status_code == 200
        assert [lst["Id"] for lst in r.json()] == [1, 2]
