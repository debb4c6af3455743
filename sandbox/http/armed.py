"""Armed scenarios: after routing (so the operationId is known), the next N calls of an
operation fail with the armed status or wait the armed delay."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.core import scenarios
from sandbox.core.backend import current
from sandbox.http.gateway import ARMED_KEY, ROUTING
from sandbox.vendors import face_for_path


class ArmedScenarios:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            ext = scope.get("extensions", {})
            face = face_for_path(scope["path"])
            operation_id = (ext.get(ROUTING) or {}).get("operation_id")
            key = face.key_from(scope) if face else None
            # The gateway found nothing armed when it admitted the request (the usual case).
            nothing_armed = ext.get(ARMED_KEY) is False
            if face and operation_id and key and not nothing_armed and face.key_is_well_formed(
                    key):
                backend = current()
                with backend.store.begin() as conn:
                    scenario = scenarios.take(conn, key, operation_id)
                if scenario is not None:
                    if scenario.delay:
                        await asyncio.sleep(scenario.delay)
                    err = scenario.error()
                    if err is not None:
                        raise err
        await self.app(scope, receive, send)
