"""Connexion's Swagger UI middleware, consulted only for paths that can reach its routes.

Connexion's Swagger UI layer runs every request through a router of its own (a regular
expression per API and per docs route, and a copy of the scope) before passing it on: about
30 us of every vendor request, none of which is a docs request. Here a request whose path
starts with no docs route (`<prefix>/__docs`, `/__sandbox/openapi.json`...) and is not a
mount point itself (Starlette redirects `/inboxapp` to `/inboxapp/`) goes straight on; every
other request takes Connexion's router exactly as before.
"""

from __future__ import annotations

from typing import Any

from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from starlette.routing import BaseRoute, Mount
from starlette.types import Receive, Scope, Send


class DocsPathSwaggerUI(SwaggerUIMiddleware):
    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.docs_prefixes: tuple[str, ...] = ()
        self.mount_paths: frozenset[str] = frozenset()

    def add_api(self, *args: Any, **kwargs: Any) -> None:
        super().add_api(*args, **kwargs)
        prefixes = set(self.docs_prefixes)
        mounts = set(self.mount_paths)
        for mount in self.router.routes:
            if isinstance(mount, Mount):
                mounts.add(mount.path.rstrip("/"))
                prefixes.update(mount.path + _literal_prefix(route) for route in mount.routes)
        self.docs_prefixes = tuple(sorted(prefixes))
        self.mount_paths = frozenset(mounts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (scope["type"] == "http" and not path.startswith(self.docs_prefixes)
                and path.rstrip("/") not in self.mount_paths):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _literal_prefix(route: BaseRoute) -> str:
    """The part of a route's path before its first parameter, without a trailing slash (a
    request with or without that slash can be redirected to the route)."""
    path: str = getattr(route, "path", "")
    return path.split("{", 1)[0].rstrip("/")
