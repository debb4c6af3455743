"""Benchmark the sandbox against Prism and Connexion's mock (bench/README.md): one command runs
every scenario on this machine and prints a table with the ratios and the targets.

    python bench/run.py            # full run (installs wrk and Prism when missing), 15-25 min
    python bench/run.py --smoke    # ~5 s: the sandbox only, Python load, small sizes
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenarios
import servers

ALL = "ABCDEF"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds, no wrk/npm: the sandbox only, small sizes")
    parser.add_argument("--only", default=ALL, help="scenarios to run, e.g. AB (default ABCDEF)")
    parser.add_argument("--seconds", type=float, help="measured seconds per load run (10)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds before each (3)")
    parser.add_argument("--json", type=Path, help="also write the results here "
                        "(default bench/out/results.json)")
    parser.add_argument("--no-peers", action="store_true",
                        help="measure the sandbox only (no Prism, no Connexion mock)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    only = args.only.upper()
    cfg = scenarios.Settings(
        smoke=args.smoke, wrk_bin=None if args.smoke else servers.ensure_wrk(),
        seconds=args.seconds or (0.5 if args.smoke else 10.0),
        warmup=args.warmup if args.warmup is not None else (0.0 if args.smoke else 3.0),
        peers=not (args.smoke or args.no_peers))
    if cfg.peers and set(only) & set("ABC"):
        servers.ensure_prism()
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": servers.machine(), "smoke": args.smoke,
                               "command": " ".join(["python", "bench/run.py", *sys.argv[1:]])}
    steps = {"A": lambda: scenarios.throughput(cfg, 16, "A"),
             "B": lambda: scenarios.throughput(cfg, 1, "B"),
             "C": lambda: scenarios.startup(cfg),
             "D": lambda: scenarios.big_import(cfg),
             "E": lambda: scenarios.settling(cfg),
             "F": lambda: scenarios.growth(cfg)}
    if args.smoke:
        cfg.shared = servers.sandbox("sandbox frozen clock", frozen=True).start(scenarios.probe)
    try:
        for name in ALL:
            if name in only:
                servers.log(f"scenario {name}")
                results[name] = steps[name]()
    finally:
        if cfg.shared is not None:
            cfg.shared.stop()
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    checks = evaluate(results)
    results["targets"] = checks
    out = args.json or servers.OUT / ("smoke.json" if args.smoke else "results.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(report(results))
    broken = correctness(results)
    if broken:
        print("\nINCORRECT: " + "; ".join(broken))
        return 2
    if args.strict and any(not c["ok"] for c in checks):
        return 1
    return 0


# ---- targets ------------------------------------------------------------------------------

def _row(rows: list[dict[str, Any]], *servers: str) -> dict[str, Any] | None:
    """The first of `servers` measured (smoke mode has only the frozen-clock sandbox)."""
    for server in servers:
        found = next((r for r in rows if r["server"] == server), None)
        if found is not None:
            return found
    return None


def evaluate(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue, measured as a ratio within this run."""
    checks: list[dict[str, Any]] = []

    def check(name: str, value: str, ok: bool) -> None:
        checks.append({"target": name, "measured": value, "ok": bool(ok)})

    if "A" in res:
        prism = _row(res["A"], "prism default")
        fast = _row(res["A"], "prism -m -v error")
        for who in ("sandbox", "sandbox frozen clock"):
            sb = _row(res["A"], who)
            if sb and prism:
                ratio = sb["rps"] / prism["rps"]
                extra = f", {sb['rps'] / fast['rps']:.2f}x Prism -m -v error" if fast else ""
                check(f"A {who}: >= 1.2x Prism default req/s", f"{ratio:.2f}x{extra}",
                      ratio >= 1.2)
    if "B" in res:
        sb = _row(res["B"], "sandbox", "sandbox frozen clock")
        if sb:
            check("B sandbox: p50 <= 0.6 ms", f"{sb['p50_ms']:.3f} ms", sb["p50_ms"] <= 0.6)
    if "C" in res:
        sb = _row(res["C"], "sandbox", "sandbox frozen clock")
        prism = _row(res["C"], "prism default")
        if sb:
            check("C sandbox start-up: <= 1.0 s", f"{sb['median_s']:.2f} s", sb["median_s"] <= 1)
        if sb and prism:
            check("C sandbox start-up below Prism's",
                  f"{sb['median_s']:.2f} s vs {prism['median_s']:.2f} s",
                  sb["median_s"] < prism["median_s"])
    if "D" in res:
        d = res["D"]
        check("D queued answer <= 2 s", f"{d['answer_s']:.2f} s", d["answer_s"] <= 2)
        check("D peak RSS <= 300 MB", f"{d['peak_rss_mb']:.0f} MB", d["peak_rss_mb"] <= 300)
        check("D >= 50k rows/s", f"{d['rows_per_s']:,.0f} rows/s", d["rows_per_s"] >= 50_000)
    if "E" in res:
        e = res["E"]
        check(f"E advance over {e['jobs']:,} queued jobs <= 2 s", f"{e['advance_s']:.2f} s",
              e["advance_s"] <= 2)
    if "F" in res and len(res["F"]) >= 2:
        lo, hi = res["F"][0], res["F"][-1]
        rps = hi["create_rps"] / lo["create_rps"]
        lat = hi["list_p50_ms"] / lo["list_p50_ms"]
        check(f"F A req/s within 20% ({lo['stored_jobs']:,} vs {hi['stored_jobs']:,} jobs)",
              f"{rps:.2f}x", abs(rps - 1) <= 0.2)
        check(f"F list p50 within 20% ({lo['stored_jobs']:,} vs {hi['stored_jobs']:,} jobs)",
              f"{lat:.2f}x", abs(lat - 1) <= 0.2)
    return checks


def correctness(res: dict[str, Any]) -> list[str]:
    """What must hold whatever the machine: every measured answer 2xx, every job settled."""
    broken = []
    for name in "AB":
        for row in res.get(name, []):
            if row["non2xx"] or row["socket_errors"]:
                broken.append(f"{name} {row['server']}: {row['non2xx']} non-2xx, "
                              f"{row['socket_errors']} socket errors")
    if "D" in res:
        job = res["D"]["job"]
        if res["D"]["answer_status"] != "queued" or job.get("status") != "completed" or (
                job.get("processed") != res["D"]["rows"]):
            broken.append(f"D: answered {res['D']['answer_status']}, then {job}")
    if "E" in res and res["E"]["left_active"]:
        broken.append(f"E: {res['E']['left_active']} jobs still active after the advance")
    for row in res.get("F", []):
        if row["create_non2xx"] or row["list_non2xx"]:
            broken.append(f"F {row['stored_jobs']}: non-2xx answers")
    return broken


# ---- report -------------------------------------------------------------------------------

def _f(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_f(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def report(res: dict[str, Any]) -> str:
    m = res["machine"]
    out = [f"# import-sandbox benchmark{' (smoke)' if res['smoke'] else ''}", "",
           f"{m['date']}; {m['nproc']} cores, {m['cpu']}, {m['memory_gib']} GiB; Python "
           f"{m['python']}, Node {m['node']}, {m['wrk']}; load average at start "
           f"{m['load_average']:.2f}; {res['elapsed_s']} s in all.", ""]
    for name, title in (("A", "A. Validated POST, 16 connections"),
                        ("B", "B. Single client (1 connection)")):
        if name in res:
            base = _row(res[name], "prism default")
            out += [f"## {title}", "", table(
                ["server", "req/s", "vs Prism default", "p50 ms", "p99 ms", "requests",
                 "non-2xx", "server CPU ms/req", "first read after ms"],
                [[r["server"], r["rps"], f"{r['rps'] / base['rps']:.2f}x" if base else "-",
                  r["p50_ms"], r["p99_ms"], r["requests"], r["non2xx"], r["cpu_ms"],
                  r.get("catch_up_ms") if r.get("catch_up_ms") is not None else "-"]
                 for r in res[name]]),
                ""]
    if "C" in res:
        out += ["## C. Start-up (process start to first 200 on A's request)", "", table(
            ["server", "median s", "min s", "max s", "runs"],
            [[r["server"], r["median_s"], r["min_s"], r["max_s"], r["runs"]] for r in res["C"]]),
            ""]
    if "D" in res:
        d = res["D"]
        out += ["## D. Big Leadlex CSV import", "", table(
            ["rows", "body MB", "queued answer s", "peak RSS MB", "settle s", "rows/s",
             "job after advance"],
            [[d["rows"], d["body_mb"], d["answer_s"], d["peak_rss_mb"], d["settle_s"],
              d["rows_per_s"], json.dumps(d["job"])]]), ""]
    if "E" in res:
        e = res["E"]
        out += ["## E. Settling one workspace", "", table(
            ["queued jobs", "rows each", "advance s", "still active"],
            [[e["jobs"], e["rows_per_job"], e["advance_s"], e["left_active"]]]), ""]
    if "F" in res:
        out += ["## F. Growth (jobs already stored in the workspace)", "", table(
            ["stored jobs", "A req/s", "A CPU ms/req", "list p50 ms", "list p99 ms",
             "list CPU ms/req"],
            [[r["stored_jobs"], r["create_rps"], r["create_cpu_ms"], r["list_p50_ms"],
              r["list_p99_ms"], r["list_cpu_ms"]] for r in res["F"]]), ""]
    if res["targets"]:
        out += ["## Targets", "", table(["target", "measured", "met"],
                                        [[c["target"], c["measured"], "yes" if c["ok"] else "NO"]
                                         for c in res["targets"]])]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
