"""The benchmark scenarios A-F (see bench/README.md): each starts fresh servers, measures, stops
them, and returns plain rows for the report."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import servers
from load import LoadResult, Request, pyload, wrk
from servers import Server

KEY = "wbk_bench"
LIST_ID = "demolist1"
# A 10-row CSV with a column mapping, as in the spec's own example.
CSV10 = "username,company\n" + "".join(f"prospect{i:02d},Company {i}\n" for i in range(10))


def import_body(csv: str = CSV10) -> bytes:
    return json.dumps({"data": {
        "type": "csv", "content": csv, "fileName": "prospects.csv",
        "columnMapping": [{"csvHeader": "username", "targetColumnId": "username"},
                          {"csvHeader": "company",
                           "targetColumnId": "custom_q5cktl47a6pqa74eu06fz89v"}],
        "mergeStrategy": "overwrite"}}).encode()


def create_request(base: str, key: str = KEY, csv: str = CSV10) -> Request:
    return Request("POST", f"{base}/lists/{LIST_ID}/import-jobs",
                   {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                   import_body(csv))


def list_request(base: str, key: str = KEY) -> Request:
    """The first page of a list's jobs; 10 a page, so that every F size answers a full page."""
    return Request("GET", f"{base}/lists/{LIST_ID}/import-jobs?limit=10",
                   {"Authorization": f"Bearer {key}"})


def probe(client: httpx.Client, base: str) -> httpx.Response:
    """The start-up probe is scenario A's request itself: 'ready' means 'answers it'."""
    req = create_request(base, key=KEY + "_probe")
    return client.request(req.method, req.url, headers=req.headers, content=req.body)


@dataclass
class Settings:
    smoke: bool
    wrk_bin: str | None
    seconds: float
    warmup: float
    peers: bool = True
    # Smoke mode: one frozen-clock sandbox serves every scenario (each its own workspace).
    shared: Server | None = None

    @contextlib.contextmanager
    def sandbox(self, name: str, *, frozen: bool) -> Iterator[Server]:
        if self.shared is not None:
            yield self.shared
            return
        with servers.sandbox(name, frozen=frozen) as server:
            yield server.start(probe)

    def load(self, server: Server, req: Request, connections: int, name: str,
             seconds: float | None = None) -> LoadResult:
        secs = seconds if seconds is not None else self.seconds
        if self.wrk_bin is not None and self.warmup:
            wrk(self.wrk_bin, req, connections=connections, seconds=self.warmup,
                name=name + ".warmup")
        cpu = servers.cpu_seconds(server.pid)
        if self.wrk_bin is None:
            result = pyload(req, connections=connections, seconds=secs)
        else:
            result = wrk(self.wrk_bin, req, connections=connections, seconds=secs, name=name)
        used = servers.cpu_seconds(server.pid) - cpu
        result.cpu_ms = round(used * 1000 / max(1, result.requests), 3)
        return result


def targets(cfg: Settings) -> list[Server]:
    """Scenario A/B servers: the sandbox (real and frozen clock) and, in a full run, the peers."""
    if cfg.shared is not None:
        return [cfg.shared]
    found = [servers.sandbox("sandbox"), servers.sandbox("sandbox frozen clock", frozen=True)]
    if cfg.peers:
        found += [servers.prism("prism default", fast=False),
                  servers.prism("prism -m -v error", fast=True), servers.connexion_mock()]
    return found


# ---- A, B, C ------------------------------------------------------------------------------

def throughput(cfg: Settings, connections: int, tag: str) -> list[dict[str, Any]]:
    rows = []
    for server in targets(cfg):
        catch_up = None
        if server is cfg.shared:  # smoke: the read is taken, on a frozen clock, to check it
            key = f"{KEY}_{tag}"
            result = cfg.load(server, create_request(server.base, key), connections, tag)
            catch_up = first_read_ms(server.base, key)
        else:
            with server.start(probe):
                result = cfg.load(server, create_request(server.base), connections,
                                  f"{tag}-{server.name.replace(' ', '_')}")
                if server.name == "sandbox":
                    catch_up = first_read_ms(server.base)
        rows.append({"server": server.name, **result.as_dict(), "catch_up_ms": catch_up})
    return rows


def first_read_ms(base: str, key: str = KEY) -> float:
    """The first read of the loaded workspace once the load stops: a read settles what fell due
    and the background ticker has not applied yet, so this is what its lag costs a client."""
    req = list_request(base, key)
    with httpx.Client(timeout=120.0) as client:
        started = time.perf_counter()
        answer = client.request(req.method, req.url, headers=req.headers)
        elapsed = time.perf_counter() - started
    answer.raise_for_status()
    return round(elapsed * 1000, 1)


def startup(cfg: Settings, runs: int = 5) -> list[dict[str, Any]]:
    if cfg.shared is not None:
        t = cfg.shared.startup_s
        return [{"server": cfg.shared.name, "runs": 1, "median_s": t, "min_s": t, "max_s": t}]
    # "sandbox" is the sandbox as installed (its bytecode written); the other row is the first
    # start of a checkout, or any start where PYTHONDONTWRITEBYTECODE=1 (README, Start-up).
    servers.compile_sandbox()
    makers: list[tuple[str, Any]] = [("sandbox", lambda: servers.sandbox("sandbox"))]
    makers.append(("sandbox without bytecode",
                   lambda: servers.uncompiled_sandbox("sandbox without bytecode")))
    if cfg.peers:
        makers.append(("prism default", lambda: servers.prism("prism default", fast=False)))
    rows = []
    for name, make in makers:
        times = []
        for _ in range(1 if cfg.smoke else runs):
            with make() as server:
                server.start(probe)
                times.append(server.startup_s)
        times.sort()
        rows.append({"server": name, "runs": len(times), "median_s": times[len(times) // 2],
                     "min_s": times[0], "max_s": times[-1]})
    return rows


# ---- D: a 20 MB Leadlex CSV ---------------------------------------------------------------

LEADLEX_HEADER = "Full Name,Email Address,Phone,Job Title,Company,LinkedIn\n"
LEADLEX_MAPPING = {"Full Name": "full_name", "Email Address": "email", "Phone": "phone",
                   "Job Title": "job_title", "Company": "company", "LinkedIn": "linkedin_url"}
LEADLEX_PACE = 200  # rows per second: the Leadlex pacing default (queued 2 s, starting 1 s)


def leadlex_body(target_bytes: int) -> tuple[bytes, int]:
    """A Leadlex CSV import whose JSON body is about `target_bytes` long, and its row count."""
    parts = [LEADLEX_HEADER]
    size = len(LEADLEX_HEADER) + 200
    i = 0
    while size < target_bytes:
        firm = i % 4999
        line = (f"Person {i:06d} Example,person.{i:06d}@firm{firm:04d}.example.com,"
                f"+1 555 {i % 10_000_000:07d},Senior Associate,Firm {firm:04d} LLP,"
                f"https://www.linkedin.com/in/person-{i:06d}\n")
        parts.append(line)
        size += len(line) + 1  # the newline becomes two characters in JSON
        i += 1
    body = json.dumps({"csv": "".join(parts), "mapping": LEADLEX_MAPPING,
                       "update_existing": False}).encode()
    return body, i


def big_import(cfg: Settings) -> dict[str, Any]:
    key = KEY + "_d"
    body, rows = leadlex_body(200_000 if cfg.smoke else 20_000_000)
    with cfg.sandbox("sandbox D", frozen=True) as server, httpx.Client(timeout=600.0) as client:
        base = server.base.rsplit("/", 1)[0]
        t0 = time.perf_counter()
        r = client.post(f"{base}/leadlex/v1/import/contacts", content=body,
                        headers={"Authorization": f"Bearer {key}",
                                 "Content-Type": "application/json"})
        answer_s = time.perf_counter() - t0
        if r.status_code != 200:
            raise RuntimeError(f"D: import answered {r.status_code}: {r.text[:500]}")
        data = r.json()["data"]
        advance = 3 + rows / LEADLEX_PACE + 1
        t0 = time.perf_counter()
        r = client.post(f"{base}/__sandbox/workspaces/{key}/clock/advance",
                        json={"seconds": advance})
        settle_s = time.perf_counter() - t0
        r.raise_for_status()
        job = client.get(f"{base}/__sandbox/workspaces/{key}/jobs/{data['job_id']}").json()
        rss = servers.peak_rss_mb(server.pid)
    return {"rows": rows, "body_mb": round(len(body) / 1e6, 2), "answer_status": data["status"],
            "answer_s": answer_s, "peak_rss_mb": rss, "settle_s": settle_s,
            "rows_per_s": rows / settle_s, "job": _job_summary(job)}


def _job_summary(job: dict[str, Any]) -> dict[str, Any]:
    body = job.get("job", job)
    return {k: body.get(k) for k in ("status", "total", "processed", "counts") if k in body}


# ---- E: settling 10,000 queued jobs -------------------------------------------------------

def settling(cfg: Settings) -> dict[str, Any]:
    key = KEY + "_e"
    count = 200 if cfg.smoke else 10_000
    csv = "username,company\n" + "".join(f"settler{i},Company {i}\n" for i in range(3))
    with cfg.sandbox("sandbox E", frozen=True) as server, httpx.Client(timeout=600.0) as client:
        fill = pyload(create_request(server.base, key, csv), connections=16, count=count)
        if fill.non2xx or fill.requests != count:
            raise RuntimeError(f"E: filling answered {fill}")
        base = server.base.rsplit("/", 1)[0]
        t0 = time.perf_counter()
        r = client.post(f"{base}/__sandbox/workspaces/{key}/clock/advance", json={"seconds": 60})
        advance_s = time.perf_counter() - t0
        r.raise_for_status()
        left = client.get(f"{server.base}/lists/{LIST_ID}/import-jobs",
                          params=[("status", s) for s in ("queued", "starting", "running")],
                          headers={"Authorization": f"Bearer {key}"}).json()["data"]
    return {"jobs": count, "rows_per_job": 3, "advance_s": advance_s, "left_active": len(left),
            "fill_rps": fill.rps}


# ---- F: growth ----------------------------------------------------------------------------

def growth(cfg: Settings) -> list[dict[str, Any]]:
    rows = []
    for stored in ((10, 150) if cfg.smoke else (10, 1_000, 100_000)):
        key = KEY + f"_f{stored}"
        with cfg.sandbox(f"sandbox F{stored}", frozen=True) as server:
            fill = pyload(create_request(server.base, key), connections=16, count=stored)
            if fill.non2xx or fill.requests != stored:
                raise RuntimeError(f"F: filling answered {fill}")
            listing = cfg.load(server, list_request(server.base, key), 1, f"F{stored}-list",
                               seconds=cfg.seconds / 2)
            create = cfg.load(server, create_request(server.base, key), 16,
                              f"F{stored}-create")
        rows.append({"stored_jobs": stored, "create_rps": create.rps,
                     "create_cpu_ms": create.cpu_ms, "list_cpu_ms": listing.cpu_ms,
                     "create_non2xx": create.non2xx, "list_p50_ms": listing.p50_ms,
                     "list_p99_ms": listing.p99_ms, "list_non2xx": listing.non2xx})
    return rows
