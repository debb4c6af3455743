"""Connexion's security layer, with its request made as `request_checks.PlainRequest`."""

from __future__ import annotations

from connexion.middleware.security import SecurityAPI, SecurityMiddleware, SecurityOperation
from connexion.operations import AbstractOperation
from connexion.spec import Specification
from starlette.types import Receive, Scope, Send

from sandbox.http.request_checks import PlainRequest


class _Operation(SecurityOperation):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Connexion's SecurityOperation.__call__, with PlainRequest for ConnexionRequest.
        if not self.security:
            await self.next_app(scope, receive, send)
            return
        request = PlainRequest(scope)
        await self.verification_fn(request)
        await self.next_app(scope, receive, send)


class _Api(SecurityAPI):
    def make_operation(self, operation: AbstractOperation | Specification) -> SecurityOperation:
        return _Operation.from_operation(operation, next_app=self.next_app,
                                         security_handler_factory=self.security_handler_factory)


class PlainRequestSecurity(SecurityMiddleware):
    """Connexion's security middleware, making `_Operation`s."""

    api_cls = _Api
