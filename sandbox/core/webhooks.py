"""Webhooks: subscriptions, events raised when jobs finish, signed deliveries with retries on
the workspace clock. (Interface fixed; implementation in progress.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from sandbox.core.workspaces import Workspace

# vendor -> function(job row) -> event `data` for a finished import job.
EVENT_DATA: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def register(conn: Connection, ws: Workspace, *, vendor: str, webhook_id: str, url: str,
             events: list[str], secret: str, description: str | None = None,
             active: bool = True) -> dict[str, Any]:
    """Store a subscription; returns the stored row as a dict."""
    raise NotImplementedError


def on_job_finished(conn: Connection, ws: Workspace, job: dict[str, Any]) -> None:
    """Backend hook: when a job whose plan has `notify: <event>` finishes, queue a delivery
    to every active subscription of that workspace and vendor listening for the event."""


async def deliver_due(backend: Any, workspace_id: str) -> int:
    """Attempt every delivery of the workspace due on its clock; returns attempts made."""
    return 0
