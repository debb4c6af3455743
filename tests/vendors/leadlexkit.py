"""Helpers for the Leadlex HTTP tests: one app per module, requests, and reading what the
sandbox stored where the Leadlex API shows nothing (tags, job plans, webhook deliveries)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sandbox.core import jobs
from sandbox.core import store as t

V = "leadlex"
SEEDED = 3  # fixtures/leadlex.yaml: fake_leads of the contact store
IMPORT = "/v1/import/contacts"
# The curl example of seeds/002 (the documented request) and its documented answer.
SEED_REQUEST = {"rows": [{"full_name": "Jane Doe", "email": "jane@acme.com"},
                         {"full_name": "Bob Smith", "email": "bob@beta.com"}]}
SEED_ANSWER = {"data": {"job_id": "imp_01HY1", "status": "completed", "created_count": 2,
                        "updated_count": 0, "skipped_count": 0, "errors": []}}


def post(sb: Any, path: str, body: Any, **kwargs: Any) -> Any:
    return sb.call(V, "POST", path, json=body, **kwargs)


def imported(sb: Any, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    r = post(sb, IMPORT, body, **kwargs)
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


def counts(data: dict[str, Any]) -> tuple[int, int, int]:
    return data["created_count"], data["updated_count"], data["skipped_count"]


def listed(sb: Any, **params: Any) -> dict[str, Any]:
    r = sb.call(V, "GET", "/v1/contacts", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def by_email(sb: Any, email: str) -> dict[str, Any]:
    found = [c for c in listed(sb, search=email, per_page=100)["data"]["contacts"]
             if c["email"] == email]
    assert len(found) == 1, found
    return found[0]


def stored(app: Any, key: str, email: str) -> dict[str, Any]:
    """A contact as the store holds it (the Leadlex API shows no tags)."""
    with app.backend.store.begin() as conn:
        return dict(conn.execute(select(t.leads.c.data).join(
            t.lists, t.lists.c.pk == t.leads.c.list_pk).where(
            t.lists.c.workspace == key, t.leads.c.key == email.lower())).scalar_one())


def job(app: Any, key: str, job_id: str) -> dict[str, Any]:
    """The stored job row (for what only the core sees: its plan, the webhook payload)."""
    with app.backend.store.begin() as conn:
        return jobs.find(conn, key, V, job_id)


def shown(sb: Any, job_id: str) -> dict[str, Any]:
    """The job as Leadlex shows it, through the control API (Leadlex has no job endpoint)."""
    r = sb.client.get(f"/__sandbox/workspaces/{sb.key}/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return dict(r.json()["view"])
