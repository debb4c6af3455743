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
