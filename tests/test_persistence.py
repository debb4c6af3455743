"""Nothing is lost across a restart: on a file database, jobs created by one app continue in
the next exactly where the workspace clock says, and no lead is added twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandbox.app import create_app
from sandbox.core import clock as clock_module
from sandbox.settings import ClockMode, Settings
from tests.conftest import START, Sandbox
from tests.vendors.inboxkit import at, create, create_csv, job, stored_leads, usernames_csv


class FakeWall:
    """The machine's clock, moved by hand: the sandbox is down while it moves."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _app(db: Path, mode: ClockMode = "frozen") -> Any:
    return create_app(Settings(db_url=f"sqlite:///{db}", validate_responses=True,
                               clock_start=START, clock_mode=mode, background_ticker=False))


def _run(app: Any, key: str, steps: Any) -> Any:
    with app.test_client() as client:
        result = steps(Sandbox(client, key))
    app.backend.store.dispose()
    return result


def test_jobs_survive_a_restart_and_continue_on_the_frozen_clock(tmp_path: Path) -> None:
    db, key = tmp_path / "s.db", "wbk_persist"

    def before(sb: Sandbox) -> tuple[str, str, list[dict[str, Any]]]:
        csv = create_csv(sb, usernames_csv(100, prefix="keep"))
        followers = create(sb, {"type": "followers", "username": "jack", "maxCount": 40},
                           list_id="demolist2")
        sb.advance(4)  # csv: 20 rows in; followers: still queued
        seen = [job(sb, csv["id"]), job(sb, followers["id"], "demolist2")]
        assert seen[0]["processedCount"] == 20 and seen[1]["status"] == "queued"
        return csv["id"], followers["id"], seen

    csv_id, followers_id, seen = _run(_app(db), key, before)

    def after(sb: Sandbox) -> None:
        # Same instant, same answers: the clock was stored with the jobs.
        assert [job(sb, csv_id), job(sb, followers_id, "demolist2")] == seen
        sb.advance(1)
        assert job(sb, csv_id)["processedCount"] == 40
        sb.advance(60)
        done, followed = job(sb, csv_id), job(sb, followers_id, "demolist2")
        assert (done["status"], done["addedCount"], done["completedAt"]) == (
            "completed", 100, at(8))
        assert (followed["status"], followed["addedCount"]) == ("completed", 40)
        csv_leads = stored_leads(sb.client.app, sb.key)
        assert len(csv_leads) == len({p["platformId"] for p in csv_leads}) == 5 + 100
        assert len(stored_leads(sb.client.app, sb.key, "demolist2")) == 40
        again = sb.call("inboxapp", "POST", "/lists/demolist2/leads",
                        json={"platformIds": [p["platformId"] for p in csv_leads[:3]]})
        assert len(again.json()["added"]) == 3

    _run(_app(db), key, after)


def test_a_running_clock_keeps_running_while_the_sandbox_is_down(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wall = FakeWall()
    monkeypatch.setattr(clock_module, "wall_now", wall)
    db, key = tmp_path / "s.db", "wbk_persist_real"
    csv_id = _run(_app(db, "real"), key,
                  lambda sb: create_csv(sb, usernames_csv(100, prefix="live"))["id"])
    wall.now += 5.5  # the sandbox is down for 5.5 s of real time

    def after(sb: Sandbox) -> None:
        seen = job(sb, csv_id)
        assert (seen["status"], seen["processedCount"], seen["updatedAt"]) == (
            "running", 50, at(5.5))
        wall.now += 600
        final = job(sb, csv_id)
        assert (final["status"], final["addedCount"], final["completedAt"]) == (
            "completed", 100, at(8))
        assert len(stored_leads(sb.client.app, sb.key)) == 5 + 100

    _run(_app(db, "real"), key, after)
