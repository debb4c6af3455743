"""Creating an InboxApp job does not settle the workspace first (nor does the gateway's
admission): rows that fell due meanwhile are applied at the next settling open, in clock
order, and the end state is the same as when every step settled."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sandbox.app import create_app
from sandbox.core import jobs, workspaces
from sandbox.core import store as t
from sandbox.settings import Settings
from tests.conftest import START

KEY = "wbk_deferred"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def csv_job(i: int) -> dict[str, Any]:
    rows = "".join(f"user{i}x{n}\n" for n in range(4)) + "user_shared\n"
    return {"data": {"type": "csv", "content": "username\n" + rows,
                     "mergeStrategy": "overwrite"}}


def run(settle_each_step: bool) -> tuple[list[Any], list[Any], bool]:
    app = create_app(Settings(clock_start=START, clock_mode="frozen", background_ticker=False,
                              validate_responses=True))
    backend = app.backend
    answers = []
    with app.test_client() as client:
        for i in range(6):
            r = client.post("/inboxapp/lists/demolist1/import-jobs", json=csv_job(i),
                            headers=HEADERS)
            assert r.status_code == 200, r.text
            answers.append(r.json())
            # Real time passes (1.3 s: rows of earlier jobs fall due) with no request at all.
            with backend.workspace(KEY, settle=False) as (conn, ws):
                workspaces.save_clock(conn, ws, ws.clock.advance(1.3))
            if settle_each_step:
                with backend.workspace(KEY):
                    pass
        with backend.store.begin() as conn:
            ws = workspaces.load(conn, KEY, backend.settings.seed)
            assert ws is not None
            left_due = jobs.has_due(conn, KEY, ws.now)
        with backend.workspace(KEY) as (conn, ws):
            workspaces.save_clock(conn, ws, ws.clock.advance(60))
            backend.settle(conn, ws)
        listed = client.get("/inboxapp/lists/demolist1/import-jobs", headers=HEADERS).json()
        with backend.store.begin() as conn:
            leads = [tuple(r) for r in conn.execute(
                select(t.leads.c.key, t.leads.c.data)
                .join(t.lists, t.lists.c.pk == t.leads.c.list_pk)
                .where(t.lists.c.workspace == KEY).order_by(t.leads.c.key))]
    return [*answers, listed], leads, left_due


def test_deferred_settling_ends_where_settling_every_step_ends() -> None:
    eager_answers, eager_leads, eager_left = run(settle_each_step=True)
    lazy_answers, lazy_leads, lazy_left = run(settle_each_step=False)
    # The two runs took different paths: only the lazy one left due rows for later.
    assert (eager_left, lazy_left) == (False, True)
    assert lazy_answers == eager_answers
    assert lazy_leads == eager_leads
    assert len(lazy_leads) >= 6 * 4 + 1  # every job's rows landed (plus the demo list's own)
    assert {j["status"] for j in lazy_answers[-1]["data"]} == {"completed"}
