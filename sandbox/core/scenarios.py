"""Armed failures: the next N calls of an operation answer with a chosen status or a delay."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, insert, select, update

from sandbox.core import store as t
from sandbox.core.errors import InvalidRequest, SandboxError, for_status
from sandbox.core.sql import Fast

HEADER = "x-sandbox-scenario"
_PART = re.compile(r"^\s*(status|delay|retry_after|message)\s*=\s*(.+?)\s*$")
DEFAULT_MESSAGES = {429: "Rate limit exceeded. Try again in {retry} seconds.",
                    500: "Internal server error", 503: "Service temporarily unavailable"}


@dataclass(frozen=True)
class Scenario:
    status: int | None = None
    delay: float | None = None
    retry_after: int | None = None
    message: str | None = None

    def error(self) -> SandboxError | None:
        if self.status is None:
            return None
        retry = self.retry_after if self.retry_after is not None else (
            60 if self.status in (429, 503) else None)
        message = self.message or DEFAULT_MESSAGES.get(self.status, "Scenario failure").format(
            retry=retry)
        headers = {"Retry-After": str(retry)} if retry is not None else {}
        return for_status(self.status, message, headers=headers, retry_after=retry)


def parse_header(value: str) -> Scenario:
    """`status=429`, `delay=2.5`, `status=503; retry_after=5` (`;` or `,` between parts)."""
    fields: dict[str, Any] = {}
    for part in re.split(r"[;,]", value):
        if not part.strip():
            continue
        m = _PART.match(part)
        if not m:
            raise InvalidRequest(f"X-Sandbox-Scenario: cannot read '{part.strip()}' (expected "
                                 "status=<code>, delay=<seconds>, retry_after=<s>)",
                                 field="X-Sandbox-Scenario", rule="format")
        fields[m.group(1)] = m.group(2)
    return build(**fields)


def build(status: Any = None, delay: Any = None, retry_after: Any = None,
          message: Any = None) -> Scenario:
    try:
        code = int(status) if status is not None else None
        secs = float(delay) if delay is not None else None
        retry = int(retry_after) if retry_after is not None else None
    except ValueError as exc:
        raise InvalidRequest(f"scenario: {exc}", field="scenario", rule="type") from exc
    if code is not None and not 400 <= code <= 599:
        raise InvalidRequest("scenario status must be 400..599", field="status", rule="range")
    if secs is not None and not 0 <= secs <= 60:
        raise InvalidRequest("scenario delay must be 0..60 seconds", field="delay",
                             rule="range")
    return Scenario(code, secs, retry, message)


# Every change to the armed scenarios in this process: Backend.any_armed answers from memory
# while the count has not moved (on an in-memory store, where this process is the only writer).
CHANGES = t.Changes()


def changes() -> int:
    return CHANGES.count


def arm(conn: Connection, workspace: str, operation_id: str, scenario: Scenario, times: int
        ) -> dict[str, Any]:
    CHANGES.bump()
    result = conn.execute(insert(t.scenarios).values(
        workspace=workspace, operation_id=operation_id, status=scenario.status,
        delay=scenario.delay, remaining=times, retry_after=scenario.retry_after,
        message=scenario.message))
    pk = result.inserted_primary_key[0] if result.inserted_primary_key else 0
    return {"id": int(pk), "operationId": operation_id, "status": scenario.status,
            "delay": scenario.delay, "remaining": times}


# Built once: every vendor request asks whether a scenario is armed for it.
_ARMED = Fast(select(t.scenarios).where(
    t.scenarios.c.workspace == bindparam("ws"), t.scenarios.c.operation_id == bindparam("op"),
    t.scenarios.c.remaining > 0).order_by(t.scenarios.c.pk).limit(1))


_ANY_ARMED = Fast(select(exists().where(t.scenarios.c.workspace == bindparam("ws"),
                                        t.scenarios.c.remaining > 0)))


def any_armed(conn: Connection, workspace: str) -> bool:
    return bool(_ANY_ARMED.scalar(conn, {"ws": workspace}))


def take(conn: Connection, workspace: str, operation_id: str) -> Scenario | None:
    row = _ARMED.first(conn, {"ws": workspace, "op": operation_id})
    if row is None:
        return None
    CHANGES.bump()
    conn.execute(update(t.scenarios).where(t.scenarios.c.pk == row["pk"])
                 .values(remaining=row["remaining"] - 1))
    return Scenario(row["status"], row["delay"], row["retry_after"], row["message"])


def armed(conn: Connection, workspace: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(t.scenarios).where(
        t.scenarios.c.workspace == workspace, t.scenarios.c.remaining > 0)
        .order_by(t.scenarios.c.pk)).mappings()
    return [{"id": r["pk"], "operationId": r["operation_id"], "status": r["status"],
             "delay": r["delay"], "remaining": r["remaining"]} for r in rows]


def disarm(conn: Connection, workspace: str) -> int:
    CHANGES.bump()
    return int(conn.execute(delete(t.scenarios).where(t.scenarios.c.workspace == workspace)
                            ).rowcount)
