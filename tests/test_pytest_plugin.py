"""The pytest plugin, as its users meet it: test files run by pytester against one sandbox
server (this session's), in process or, for pytest-xdist, in a subprocess."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from sandbox import pytest_plugin
from sandbox.client import SandboxClient
from sandbox.pytest_plugin import SandboxServer, SandboxServerError, workspace_key

pytest_plugins = ["pytester"]

# Plugins the inner runs do not need: each takes seconds to import in every xdist worker.
LEAN = ("-p", "no:hypothesispytest", "-p", "no:faker", "-p", "no:anyio")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"


def documented_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    return next(b for b in blocks if "def test_" in b)


def pytest_workspaces(url: str) -> list[str]:
    with SandboxClient(url) as client:
        return [w for w in client.workspaces() if w.startswith("wbk_pytest_")]


def test_the_documented_example_passes(pytester: pytest.Pytester,
                                       sandbox_server: SandboxServer) -> None:
    pytester.makepyfile(test_inboxapp_import=documented_example())
    result = pytester.runpytest("--sandbox-url", sandbox_server.url, *LEAN)
    result.assert_outcomes(passed=2)
    # Every test's workspace is gone once the test is over.
    assert pytest_workspaces(sandbox_server.url) == []


def test_helpers_cover_vendors_clock_seed_and_settings(pytester: pytest.Pytester,
                                                      sandbox_server: SandboxServer) -> None:
    pytester.makepyfile("""
        def test_helpers(sandbox):
            assert sandbox.api_key("leadlex").startswith("wbk_pytest_")
            assert sandbox.api_key("inboxapp") == sandbox.api_key("smartlead")
            assert sandbox.base_url("which50") == sandbox.url + "/which50"
            assert sandbox.clock().now == "2025-01-15T10:00:00.000Z"
            assert sandbox.clock().frozen
            assert sandbox.http("smartlead").get("/lead-list/").status_code != 401
            assert sandbox.seed({"vendor": "inboxapp", "lists": [
                {"id": "mine", "name": "Mine", "fake_leads": 2}]}).leads == 2
            assert sandbox.workspace().find_list("inboxapp", "mine").lead_count == 2
            settings = sandbox.set_pacing("inboxapp.csv", rows_per_second=1)
            assert settings.pacing["inboxapp.csv"]["rowsPerSecond"] == 1
            assert sandbox.set_rate_limits("off").rate_limits == "off"
            assert sandbox.arm("listImportJobs", status=500).remaining == 1
            assert sandbox.http("inboxapp").get(
                "/lists/demolist1/import-jobs").status_code == 500
            assert [r.status for r in sandbox.requests(vendor="inboxapp")] == [500]
            assert sandbox.clear_requests() == 2  # the Smartlead call too
            assert sandbox.advance(1.5).now == "2025-01-15T10:00:01.500Z"
            assert sandbox.reset().clock.now == "2025-01-15T10:00:00.000Z"
    """)
    result = pytester.runpytest("--sandbox-url", sandbox_server.url, *LEAN)
    result.assert_outcomes(passed=1)


def test_a_failing_expectation_fails_with_a_readable_message(
        pytester: pytest.Pytester, sandbox_server: SandboxServer) -> None:
    pytester.makepyfile("""
        BODY = {"data": {"type": "csv", "content": "username\\nalice\\nbob\\n"}}

        def test_job_done_without_waiting(sandbox):
            api = sandbox.http("inboxapp")
            api.post("/lists/demolist1/import-jobs", json=BODY)
            job = api.get("/lists/demolist1/import-jobs").json()["data"][0]
            assert job["status"] == "completed"

        def test_an_impossible_transition(sandbox):
            api = sandbox.http("inboxapp")
            job_id = api.post("/lists/demolist1/import-jobs", json=BODY).json()["id"]
            sandbox.transition(job_id, "created")
    """)
    result = pytester.runpytest("--sandbox-url", sandbox_server.url, *LEAN)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*AssertionError: assert 'queued' == 'completed'*",
        "*SandboxControlError: POST /__sandbox/workspaces/wbk_pytest_*/jobs/*/transition -> "
        "409 conflict: cannot move InboxApp job '*' from 'queued' to 'created': from "
        "'queued' it can go to canceled, completed, failed, paused, running, starting",
    ])
    assert pytest_workspaces(sandbox_server.url) == []


PARALLEL = """
import time
from pathlib import Path

import pytest

BODY = {{"data": {{"type": "csv", "content": "username\\nalice\\nbob\\n"}}}}
SIGNALS = Path({signals!r})


def meet(me, other):
    # Both tests have acted before either looks: they overlap in time.
    (SIGNALS / me).touch()
    for _ in range(400):
        if (SIGNALS / other).exists():
            return
        time.sleep(0.05)
    pytest.fail("the other test never ran alongside this one")


@pytest.mark.parametrize(("me", "other", "seconds", "rows"), [
    ("a", "b", 30, "alice"), ("b", "a", 90, "bob")])
def test_isolated(sandbox, me, other, seconds, rows):
    api = sandbox.http("inboxapp")
    job_id = api.post("/lists/demolist1/import-jobs", json={{"data": {{
        "type": "csv", "content": "username\\n" + rows + "\\n"}}}}).json()["id"]
    sandbox.advance(seconds)
    meet(me, other)
    assert sandbox.clock().epoch == 1736935200 + seconds
    assert [j["id"] for j in api.get("/lists/demolist1/import-jobs").json()["data"]] == [job_id]
    assert sandbox.workspace().find_list("inboxapp", "demolist1").lead_count == 6
    assert [r.operation_id for r in sandbox.requests()] == ["createImportJob", "listImportJobs"]
"""


def test_parallel_tests_do_not_see_each_others_state_or_time(
        pytester: pytest.Pytester, sandbox_server: SandboxServer, tmp_path: Path) -> None:
    signals = tmp_path / "signals"
    signals.mkdir()
    pytester.makepyfile(test_parallel=PARALLEL.format(signals=str(signals)))
    result = pytester.runpytest_subprocess("-n", "2", "--sandbox-url", sandbox_server.url,
                                           *LEAN)
    result.assert_outcomes(passed=2)
    assert sorted(p.name for p in signals.iterdir()) == ["a", "b"]


def test_an_unreachable_sandbox_url_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(sandbox):\n    pass\n")
    result = pytester.runpytest("--sandbox-url", "http://127.0.0.1:9", *LEAN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*SandboxServerError: no sandbox answers at "
                                 "http://127.0.0.1:9*"])


def test_a_server_that_will_not_start_is_reported_with_its_output(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(port: int, **_: object) -> list[str]:
        return [sys.executable, "-c", f"print('cannot bind {port}'); raise SystemExit(3)"]

    monkeypatch.setattr(pytest_plugin, "server_command", broken)
    with pytest.raises(SandboxServerError, match=r"(?s)did not start \(3 tries\).*cannot bind"):
        pytest_plugin.start_server()


def test_workspace_keys_suit_every_vendor() -> None:
    key = workspace_key("tests/test_x.py::test_y[1]", unique=False)
    assert key == workspace_key("tests/test_x.py::test_y[1]", unique=False)
    assert key.startswith("wbk_pytest_") and re.fullmatch(r"[A-Za-z0-9_]{4,200}", key)
    shared = workspace_key("tests/test_x.py::test_y[1]", unique=True)
    assert shared.startswith(key + "_") and shared != workspace_key("t", unique=True)
