"""Security info functions named in the specs: a key is accepted when it is well formed for the
vendor (and, in strict mode, listed); its workspace is the key itself."""

from __future__ import annotations

from typing import Any

from sandbox.core.backend import current
from sandbox.core.errors import Unauthorized
from sandbox.vendors import face_for_path


def _accept(key: str | None, request: Any) -> dict[str, Any]:
    face = face_for_path(request.scope.get("path", "")) if request is not None else None
    if not key:
        raise Unauthorized("missing API key", field="authorization", rule="required")
    if face is not None and not face.key_is_well_formed(key):
        hint = f" (keys start with '{face.key_prefix}')" if face.key_prefix else ""
        raise Unauthorized(f"invalid API key{hint}", field="authorization", rule="format")
    current().check_key(key)
    return {"sub": key, "scope": []}


def bearer_info(token: str, request: Any = None) -> dict[str, Any]:
    return _accept(token, request)


def api_key_info(api_key: str, required_scopes: Any = None, request: Any = None
                 ) -> dict[str, Any]:
    return _accept(api_key, request)
