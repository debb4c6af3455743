"""A typed client of the control API (openapi/sandbox.yaml) over httpx, for tests and scripts.

    from sandbox.client import SandboxClient

    with SandboxClient("http://127.0.0.1:8080") as sb:
        sb.advance("wbk_my_key", 90)
        print(sb.workspace("wbk_my_key").jobs)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

CONTROL_PREFIX = "/__sandbox"


class SandboxControlError(Exception):
    """A non-2xx answer of the control API, carrying the sandbox's error envelope."""

    def __init__(self, method: str, path: str, status: int, code: str, message: str,
                 field: str | None = None, body: Any = None) -> None:
        self.method, self.path, self.status = method, path, status
        self.code, self.message, self.field, self.body = code, message, field, body
        super().__init__(f"{method} {path} -> {status} {code}: {message}")


@dataclass(frozen=True)
class Clock:
    now: str
    epoch: float
    frozen: bool
    speed: float

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Clock:
        return cls(now=d["now"], epoch=float(d["epoch"]), frozen=bool(d["frozen"]),
                   speed=float(d["speed"]))


@dataclass(frozen=True)
class VendorInfo:
    name: str
    base_path: str
    real_base_url: str


@dataclass(frozen=True)
class Health:
    status: str
    version: str
    vendors: list[VendorInfo]


@dataclass(frozen=True)
class ListInfo:
    id: str
    kind: str
    name: str
    lead_count: int
    columns: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class JobCounts:
    total: int
    by_status: dict[str, int]


@dataclass(frozen=True)
class WorkspaceSettings:
    pacing: dict[str, dict[str, float]]
    rate_limits: str
    rate_plans: dict[str, str]
    available_rate_plans: dict[str, list[str]]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> WorkspaceSettings:
        return cls(pacing=d["pacing"], rate_limits=d["rateLimits"], rate_plans=d["ratePlans"],
                   available_rate_plans=d["availableRatePlans"])


@dataclass(frozen=True)
class Workspace:
    id: str
    created_at: str
    clock: Clock
    lists: dict[str, list[ListInfo]]
    jobs: dict[str, JobCounts]
    scenarios: int
    journal_entries: int
    settings: WorkspaceSettings

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Workspace:
        return cls(
            id=d["id"], created_at=d["createdAt"], clock=Clock.from_json(d["clock"]),
            lists={v: [ListInfo(id=x["id"], kind=x["kind"], name=x["name"],
                                lead_count=x["leadCount"], columns=x.get("columns", []))
                       for x in items] for v, items in d["lists"].items()},
            jobs={v: JobCounts(total=c["total"], by_status=c["byStatus"])
                  for v, c in d["jobs"].items()},
            scenarios=d["scenarios"], journal_entries=d["journalEntries"],
            settings=WorkspaceSettings.from_json(d["settings"]))

    def find_list(self, vendor: str, list_id: str) -> ListInfo:
        for item in self.lists.get(vendor, []):
            if item.id == list_id:
                return item
        raise KeyError(f"{vendor} has no list '{list_id}' in workspace {self.id}")


@dataclass(frozen=True)
class Job:
    id: str
    vendor: str
    kind: str
    status: str
    vendor_status: str
    total: int
    processed: int
    counts: dict[str, int]
    error: str | None
    created_at: str
    updated_at: str | None
    completed_at: str | None
    next_change_at: str | None
    legal_transitions: list[str]
    view: dict[str, Any]
    list_info: dict[str, str] | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Job:
        return cls(id=d["id"], vendor=d["vendor"], kind=d["kind"], status=d["status"],
                   vendor_status=d["vendorStatus"], total=d["total"], processed=d["processed"],
                   counts=d["counts"], error=d["error"], created_at=d["createdAt"],
                   updated_at=d["updatedAt"], completed_at=d["completedAt"],
                   next_change_at=d["nextChangeAt"], legal_transitions=d["legalTransitions"],
                   view=d["view"], list_info=d.get("list"))


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


@dataclass(frozen=True)
class Scenario:
    id: int
    operation_id: str
    status: int | None
    delay: float | None
    remaining: int
    retry_after: int | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Scenario:
        return cls(id=d["id"], operation_id=d["operationId"], status=d["status"],
                   delay=d["delay"], remaining=d["remaining"], retry_after=d.get("retryAfter"))


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    kind: str
    at: str
    vendor: str | None
    operation_id: str | None
    method: str | None
    path: str | None
    query: str
    status: int | None
    body: str | None
    errors: list[dict[str, Any]]
    detail: dict[str, Any]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JournalEntry:
        return cls(seq=d["seq"], kind=d["kind"], at=d["at"], vendor=d["vendor"],
                   operation_id=d["operationId"], method=d["method"], path=d["path"],
                   query=d["query"], status=d["status"], body=d["body"], errors=d["errors"],
                   detail=d["detail"])

    def json(self) -> Any:
        """The body, parsed as JSON (None when there was no body)."""
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class SeedResult:
    lists: int
    leads: int
    block_list: int


class SandboxClient:
    """The control API of one sandbox server. `base_url` is the server's root
    (e.g. http://127.0.0.1:8080); pass `http` to reuse an httpx.Client (or a test client)."""

    def __init__(self, base_url: str, control_token: str | None = None, *,
                 timeout: float = 30.0, http: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {control_token}"} if control_token else {}
        self._owned = http is None
        self._http = http or httpx.Client(timeout=timeout, trust_env=False)
        self._headers = headers

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- plumbing ----------------------------------------------------------------------

    def _call(self, method: str, path: str, *, json_body: Any = None,
              params: dict[str, Any] | None = None) -> Any:
        full = CONTROL_PREFIX + path
        query = {k: v for k, v in (params or {}).items() if v is not None}
        response = self._http.request(method, self.base_url + full, json=json_body,
                                      params=query or None, headers=self._headers)
        if response.status_code >= 400:
            raise _error(method, full, response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @staticmethod
    def _ws(workspace: str) -> str:
        return f"/workspaces/{workspace}"

    # ---- sandbox and workspaces --------------------------------------------------------

    def health(self) -> Health:
        d = self._call("GET", "/health")
        return Health(status=d["status"], version=d["version"], vendors=[
            VendorInfo(v["name"], v["basePath"], v["realBaseUrl"]) for v in d["vendors"]])

    def workspaces(self, limit: int = 200) -> list[str]:
        """Ids of the live workspaces, most recently used first."""
        return [w["id"] for w in self._call("GET", "/workspaces", params={"limit": limit})["data"]]

    def workspace(self, workspace: str) -> Workspace:
        return Workspace.from_json(self._call("GET", self._ws(workspace)))

    def reset(self, workspace: str) -> Workspace:
        return Workspace.from_json(self._call("POST", self._ws(workspace) + "/reset"))

    def delete(self, workspace: str, *, missing_ok: bool = False) -> None:
        try:
            self._call("DELETE", self._ws(workspace))
        except SandboxControlError as exc:
            if not (missing_ok and exc.status == 404):
                raise

    def seed(self, workspace: str, doc: dict[str, Any]) -> SeedResult:
        added = self._call("POST", self._ws(workspace) + "/seed", json_body=doc)["added"]
        return SeedResult(lists=added["lists"], leads=added["leads"],
                          block_list=added["block_list"])

    # ---- clock -------------------------------------------------------------------------

    def clock(self, workspace: str) -> Clock:
        return Clock.from_json(self._call("GET", self._ws(workspace) + "/clock"))

    def advance(self, workspace: str, seconds: float) -> Clock:
        """Move the clock forward; returns once everything now due has happened."""
        return Clock.from_json(self._call("POST", self._ws(workspace) + "/clock/advance",
                                          json_body={"seconds": seconds}))

    def freeze(self, workspace: str) -> Clock:
        return Clock.from_json(self._call("POST", self._ws(workspace) + "/clock/freeze"))

    def resume(self, workspace: str) -> Clock:
        return Clock.from_json(self._call("POST", self._ws(workspace) + "/clock/resume"))

    def speed(self, workspace: str, speed: float) -> Clock:
        return Clock.from_json(self._call("PUT", self._ws(workspace) + "/clock/speed",
                                          json_body={"speed": speed}))

    # ---- jobs --------------------------------------------------------------------------

    def jobs(self, workspace: str, *, vendor: str | None = None, status: str | None = None,
             limit: int = 50, cursor: str | None = None) -> JobPage:
        d = self._call("GET", self._ws(workspace) + "/jobs", params={
            "vendor": vendor, "status": status, "limit": limit, "cursor": cursor})
        return JobPage([Job.from_json(j) for j in d["data"]], d["nextCursor"])

    def iter_jobs(self, workspace: str, *, vendor: str | None = None,
                  status: str | None = None) -> Iterator[Job]:
        cursor: str | None = None
        while True:
            page = self.jobs(workspace, vendor=vendor, status=status, limit=500, cursor=cursor)
            yield from page.jobs
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def job(self, workspace: str, job_id: str, *, vendor: str | None = None) -> Job:
        return Job.from_json(self._call("GET", self._ws(workspace) + f"/jobs/{job_id}",
                                        params={"vendor": vendor}))

    def transition(self, workspace: str, job_id: str, to: str, error: str | None = None, *,
                   vendor: str | None = None) -> Job:
        """Force a job into `to` (the vendor's own status name)."""
        body: dict[str, Any] = {"to": to}
        if error is not None:
            body["error"] = error
        return Job.from_json(self._call(
            "POST", self._ws(workspace) + f"/jobs/{job_id}/transition", json_body=body,
            params={"vendor": vendor}))

    # ---- settings ----------------------------------------------------------------------

    def settings(self, workspace: str) -> WorkspaceSettings:
        return WorkspaceSettings.from_json(self._call("GET", self._ws(workspace) + "/settings"))

    def update_settings(self, workspace: str, body: dict[str, Any]) -> WorkspaceSettings:
        return WorkspaceSettings.from_json(self._call("PUT", self._ws(workspace) + "/settings",
                                             json_body=body))

    def set_pacing(self, workspace: str, name: str, *, queue_wait: float | None = None,
                   start_delay: float | None = None,
                   rows_per_second: float | None = None) -> WorkspaceSettings:
        """Pacing of jobs created from now on, for a vendor or a vendor.kind
        (e.g. "inboxapp.csv"); omitted values keep their current setting."""
        values = {k: v for k, v in (("queueWait", queue_wait), ("startDelay", start_delay),
                                    ("rowsPerSecond", rows_per_second)) if v is not None}
        return self.update_settings(workspace, {"pacing": {name: values}})

    def set_rate_limits(self, workspace: str, mode: str | None = None, *,
                        plans: dict[str, str] | None = None) -> WorkspaceSettings:
        """mode "vendor" (enforce the documented limits) or "off"; plans e.g.
        {"leadlex": "starter"}."""
        body: dict[str, Any] = {}
        if mode is not None:
            body["rateLimits"] = mode
        if plans:
            body["ratePlans"] = plans
        return self.update_settings(workspace, body)

    # ---- scenarios ---------------------------------------------------------------------

    def arm(self, workspace: str, operation_id: str, status: int | None = None,
            delay: float | None = None, times: int = 1, retry_after: int | None = None,
            message: str | None = None) -> Scenario:
        """The next `times` calls of `operation_id` answer `status` and/or wait `delay` s."""
        body: dict[str, Any] = {"operationId": operation_id, "times": times}
        for name, value in (("status", status), ("delay", delay), ("retryAfter", retry_after),
                            ("message", message)):
            if value is not None:
                body[name] = value
        return Scenario.from_json(self._call("POST", self._ws(workspace) + "/scenarios",
                                             json_body=body))

    def scenarios(self, workspace: str) -> list[Scenario]:
        d = self._call("GET", self._ws(workspace) + "/scenarios")
        return [Scenario.from_json(s) for s in d["data"]]

    def disarm(self, workspace: str) -> int:
        return int(self._call("DELETE", self._ws(workspace) + "/scenarios")["cleared"])

    # ---- journal -----------------------------------------------------------------------

    def requests(self, workspace: str, operation_id: str | None = None,
                 status: int | None = None, kind: str | None = None,
                 vendor: str | None = None, limit: int | None = None) -> list[JournalEntry]:
        """Journal entries, oldest first (every page, or the first `limit`)."""
        out: list[JournalEntry] = []
        cursor: str | None = None
        while True:
            page_size = min(1000, limit - len(out)) if limit is not None else 1000
            d = self._call("GET", self._ws(workspace) + "/requests", params={
                "operationId": operation_id, "status": status, "kind": kind,
                "vendor": vendor, "limit": page_size, "cursor": cursor})
            out.extend(JournalEntry.from_json(e) for e in d["data"])
            cursor = d["nextCursor"]
            if cursor is None or (limit is not None and len(out) >= limit):
                return out

    def clear_requests(self, workspace: str) -> int:
        return int(self._call("DELETE", self._ws(workspace) + "/requests")["cleared"])


def _error(method: str, path: str, response: httpx.Response) -> SandboxControlError:
    try:
        body = response.json()
        err = body["error"]
        message = str(err["message"])
        return SandboxControlError(method, path, response.status_code, str(err.get("code")),
                                   message, err.get("field"), body)
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:500] or response.reason_phrase
        return SandboxControlError(method, path, response.status_code, "http_error", text,
                                   body=response.text)
