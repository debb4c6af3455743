"""Security info functions named in the specs: a key is accepted when it is well formed for the
vendor (and, in strict mode, listed); its workspace is the key itself."""

from __future__ import annotations

import hmac
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


# ---- control API (--control-token) --------------------------------------------------------

def control_bearer_info(token: str, request: Any = None) -> dict[str, Any]:
    """The control API's token: anything goes when the server has none configured."""
    expected = current().settings.control_token
    if expected and not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("invalid control token (see --control-token)",
                           field="authorization", rule="control_token")
    return {"sub": "control", "scope": []}


def control_token_info(api_key: str, required_scopes: Any = None, request: Any = None
                       ) -> dict[str, Any]:
    return control_bearer_info(api_key, request)


def control_security(spec: dict[str, Any], token: str | None) -> dict[str, Any]:
    """Without a control token the control API is open: drop its security requirement, since
    Connexion answers 401 to a request that carries no credentials at all."""
    return spec if token else {**spec, "security": []}
