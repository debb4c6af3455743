"""create_app(settings): one Connexion AsyncApp serving the four vendor contracts and the
control API, with the gateway in front and vendor error envelopes for every failure."""

from __future__ import annotations

import importlib
import logging
import re
from contextvars import ContextVar
from typing import Any

from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.middleware import MiddlewarePosition
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.middleware.security import SecurityMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from connexion.spec import Specification
from starlette.exceptions import HTTPException

from sandbox import specs
from sandbox.auth import control_security
from sandbox.core import webhooks
from sandbox.core.backend import Backend
from sandbox.http.armed import ArmedScenarios
from sandbox.http.errors import connexion_handler
from sandbox.http.gateway import DEFAULT_MAX_BODY, AllowTable, Gateway, allow_table
from sandbox.http.operations import OnceApi
from sandbox.http.request_checks import OnceRequestValidation
from sandbox.http.security import PlainRequestSecurity
from sandbox.http.swagger import DocsPathSwaggerUI
from sandbox.http.validation import validator_map
from sandbox.settings import SPEC_DIR, Settings
from sandbox.vendors import FACES

DOCS_PATH = "/__docs"


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def resolver_for(module_name: str) -> Resolver:
    """operationId `createImportJob` -> `<module>.create_import_job`: the spec is the router."""

    def resolve(operation_id: str) -> Any:
        return getattr(importlib.import_module(module_name), snake(operation_id))

    return Resolver(function_resolver=resolve)


def load_spec(settings: Settings, filename: str) -> dict[str, Any]:
    """A private copy of a parsed spec (Connexion resolves references in place)."""
    return specs.load_spec(settings.spec_dir / filename)


# Connexion checks every spec against the OpenAPI meta-schema when it is added (a quarter of a
# second for the five, a quarter of the start-up). The specs shipped in openapi/ are checked
# more strictly by openapi-spec-validator in the test suite and by `sandbox check`, so that check
# is skipped for them; a spec from another --spec-dir (SANDBOX_SPEC_DIR) is still checked.
_shipped_specs: ContextVar[bool] = ContextVar("sandbox_shipped_specs", default=False)
_connexion_validate_spec = Specification._validate_spec.__func__


def _validate_spec(cls: Any, spec: Any) -> None:
    if not _shipped_specs.get():
        _connexion_validate_spec(cls, spec)


Specification._validate_spec = classmethod(_validate_spec)


def create_app(settings: Settings | None = None) -> AsyncApp:
    settings = settings or Settings()
    token = _shipped_specs.set(settings.spec_dir.resolve() == SPEC_DIR.resolve())
    try:
        return _create_app(settings)
    finally:
        _shipped_specs.reset(token)


def _create_app(settings: Settings) -> AsyncApp:
    # Connexion warns on every request to an operation with several content types (Which50).
    logging.getLogger("connexion.operations.openapi3").setLevel(logging.ERROR)
    backend = Backend(settings)
    backend.activate()
    # The ticker makes jobs progress and webhooks go out while real time passes (demos).
    app = AsyncApp(__name__, validator_map=validator_map(), pythonic_params=True,
                   validate_responses=settings.validate_responses,
                   lifespan=webhooks.lifespan(backend))
    app._middleware_app.api_cls = OnceApi  # handler wrappers built once, not per request
    max_body: dict[str, int] = {}
    allow: AllowTable = []
    for face in FACES:
        spec = load_spec(settings, face.spec_file)
        allow += allow_table(face.prefix, spec)
        max_body[face.name] = int(spec.get("info", {}).get("x-sandbox-max-body-bytes",
                                                            DEFAULT_MAX_BODY))
        app.add_api(spec, base_path=face.prefix, resolver=resolver_for(face.module.__name__),
                    swagger_ui_options=SwaggerUIOptions(
                        swagger_ui_path=DOCS_PATH, spec_path=f"{DOCS_PATH}/openapi.json"),
                    name=face.name)
    control_spec = control_security(load_spec(settings, "sandbox.yaml"), settings.control_token)
    app.add_api(control_spec, base_path="/__sandbox", resolver=resolver_for("sandbox.control"),
                swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs",
                                                    spec_path="/openapi.json"),
                name="sandbox")
    allow += allow_table("/__sandbox", control_spec)
    app.add_middleware(Gateway, position=MiddlewarePosition.BEFORE_EXCEPTION, backend=backend,
                       max_body=max_body, allow=allow)
    app.add_middleware(ArmedScenarios, position=MiddlewarePosition.BEFORE_SECURITY)
    stack = app.middleware.middlewares
    stack[stack.index(SwaggerUIMiddleware)] = DocsPathSwaggerUI
    stack[stack.index(RequestValidationMiddleware)] = OnceRequestValidation
    stack[stack.index(SecurityMiddleware)] = PlainRequestSecurity
    if not settings.validate_responses:
        # Its layer would only pass every request on: one routed lookup and one more await
        # a request (~2 us of A's request; callgrind -0.4% of the request path).
        stack.remove(ResponseValidationMiddleware)
    for code_or_exc in (Exception, ProblemException, HTTPException, 404, 405):
        app.add_error_handler(code_or_exc, connexion_handler)
    app.backend = backend
    return app
