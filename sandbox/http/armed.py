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
        # The gateway found nothing armed when it admitted the request (the usual case).
        if scope["type"] == "http" and scope.get("extensions", {}).get(ARMED_KEY) is not False:
            await self._take(scope)
        await self.app(scope, receive, send)

    async def _take(self, scope: Scope) -> None:
        face = face_for_path(scope["path"])
        operation_id = (scope.get("extensions", {}).get(ROUTING) or {}).get("operation_id")
        key = face.key_from(scope) if face else None
        if not (face and operation_id and key and face.key_is_well_formed(key)):
            return
        with current().store.begin() as conn:
            scenario = scenarios.take(conn, key, operation_id)
        if scenario is not None:
            if scenario.delay:
                await asyncio.sleep(scenario.delay)
            err = scenario.error()
            if err is not None:
                raise err
