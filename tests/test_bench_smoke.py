"""The benchmark's smoke mode (bench/run.py --smoke): every scenario runs end to end against a
real sandbox process and reports what it measured; only correctness is asserted here (timing
targets belong to the full run on a quiet machine, see bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_smoke_run_measures_every_scenario_with_only_2xx_answers(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--smoke",
                          "--json", str(out)], cwd=ROOT, capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    for title in ("## A. Validated POST", "## B. Single client", "## C. Start-up",
                  "## D. Big Leadlex CSV import", "## E. Settling one workspace",
                  "## F. Growth", "## Targets"):
        assert title in run.stdout, run.stdout
    res = json.loads(out.read_text())
    for name in "AB":
        (row,) = res[name]
        assert row["requests"] > 0 and row["non2xx"] == 0 and row["socket_errors"] == 0, row
        assert row["p50_ms"] <= row["p99_ms"]
        assert row["catch_up_ms"] > 0, row  # the first read after the load answered 200
    assert 0 < res["C"][0]["median_s"] < 60
    d = res["D"]
    assert d["answer_status"] == "queued" and d["rows"] > 500
    assert d["job"]["status"] == "completed" and d["job"]["processed"] == d["rows"], d["job"]
    assert d["rows_per_s"] > 0 and d["peak_rss_mb"] > 0
    assert res["E"]["jobs"] == 200 and res["E"]["left_active"] == 0
    assert [r["stored_jobs"] for r in res["F"]] == [10, 150]
    assert all(r["create_non2xx"] == 0 and r["list_non2xx"] == 0 for r in res["F"])
    assert {c["target"][0] for c in res["targets"]} == set("BCDEF")  # A needs the peers


def test_steady_state_harness_reports_both_halves_and_applies_every_row_due(
        tmp_path: Path) -> None:
    # bench/steady.py: A at 40 creates a simulated second for 8 s, a ticker round each second.
    # An InboxApp job waits 2 s, starts for 1 s and runs 10 rows at 20 a second: the jobs
    # created by 4.5 s have completed at the last round (8 s), the later ones are exactly
    # where the clock has them, and every row that fell due was applied.
    out = tmp_path / "steady.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "steady.py"), "--rate", "40",
                          "--seconds", "8", "--warmup", "4", "--json", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    res = json.loads(out.read_text())
    assert res["requests_measured"] == 160
    assert res["request_us"] > 0 and res["ticker_us"] > 0 and res["slices"] >= 4
    assert res["jobs"] == {"completed": 180, "running": 20, "starting": 40, "queued": 80}
    # The 20 running jobs were created at 4.5 + (i + 1) / 40 s and run from 3 s later: by
    # 8 s job i has had 0.5 - (i + 1) / 40 s of its 20 rows a second, floor(9.5 - i / 2) rows.
    assert res["rows_applied"] == 180 * 10 + sum((19 - i) // 2 for i in range(20)) == 1890
