"""Request validation plugged into Connexion: validators built once per schema (`schemas`) behind
a compiled pre-check (`fastcheck`), errors that name the failing field and the rule it broke
(`schemas.explain`), and XML bodies validated like JSON.

Connexion builds a fresh jsonschema validator on every request and reports errors as free text;
these subclasses keep its behaviour but raise `InvalidRequest(field=..., rule=...)` so every
vendor can render the problem in its own envelope.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem, NonConformingResponseBody
from connexion.validators import (
    VALIDATOR_MAP,
    AbstractResponseBodyValidator,
    JSONRequestBodyValidator,
    ParameterValidator,
)
from jsonschema import Draft4Validator
from jsonschema.exceptions import best_match, relevance
from starlette.datastructures import Headers
from starlette.types import Scope

from sandbox.core.errors import InvalidRequest, MalformedBody
from sandbox.core.memo import per_object
from sandbox.http.fastcheck import fast_check
from sandbox.http.request_checks import OnceRequest
from sandbox.http.schemas import compiled, compiled_response, explain, field_path

logger = logging.getLogger("connexion.validators.parameter")
# Where a JSON body validator leaves the body it parsed and validated: the handler gets that
# value (http.operations) instead of a second parse of the same bytes.
PARSED_BODY_KEY = "sandbox.parsed_body"
# No vendor field holds megabytes of text: a longer string in a request body is refused unless
# its schema admits it with a larger maxLength (the CSV uploads: 20 MiB).
MAX_STRING_CHARS = 1024 * 1024


class VendorJSONBodyValidator(JSONRequestBodyValidator):
    """JSON bodies: non-UTF-8 bytes, malformed JSON and absurd nesting are clean 400s."""

    @property
    def _validator(self) -> Any:
        return compiled(self._schema)

    async def _parse(self, stream: AsyncGenerator[bytes, None], scope: Scope) -> Any:
        raw = b"".join([chunk async for chunk in stream])
        return parse_json_bytes(raw, self._encoding, scope)[0]

    async def wrap_receive(self, receive: Any, *, scope: Scope) -> Any:
        if type(self)._parse is not VendorJSONBodyValidator._parse or self.MUTABLE_VALIDATION:
            receive, scope = await super().wrap_receive(receive, scope=scope)
            return receive, json_media_type(scope)
        # Connexion's AbstractRequestBodyValidator.wrap_receive step for step, reading the
        # messages in a loop instead of through an async generator; a body whose text is no
        # longer than MAX_STRING_CHARS cannot hold a longer string, and is not searched.
        if not int(Headers(scope=scope).get("content-length", 0)):
            default = self._schema.get("default")
            if default is None and self._required:
                raise BadRequestProblem("RequestBody is required")
            receive, scope = self._insert_body(receive, body=default, scope=scope)
        messages = []
        more_body = True
        while more_body:
            message = await receive()
            messages.append(message)
            more_body = message.get("more_body", False)
        raw = b"".join([message.get("body", b"") for message in messages])
        body, length = parse_json_bytes(raw, self._encoding, scope)
        if not (body is None and self._nullable):
            self._validate(body, searched=length > MAX_STRING_CHARS)
        return self._insert_messages(receive, messages=messages), json_media_type(scope)

    def _validate(self, body: Any, *, searched: bool = True) -> dict[str, Any] | None:
        if body is None:
            if self._nullable:
                return None
            raise MalformedBody("body: request body must not be empty", field="body",
                                rule="required")
        check = fast_check(self._schema)
        if check is None or not check(body):
            self._explain_invalid(body)
        where = _oversized(body, large_fields(self._schema)) if searched else None
        if where is not None:
            field = where or "body"
            raise InvalidRequest(f"{field}: is too long: more than {MAX_STRING_CHARS} characters",
                                 field=field, rule="maxLength")
        return None

    def _explain_invalid(self, body: Any) -> None:
        """jsonschema's verdict: raises the most relevant error, if there is one."""
        try:
            # Not best_match: it descends into oneOf branches blindly (a body without
            # `data.type` would be blamed on a field of the last branch); schemas._focus descends
            # by the discriminator instead.
            error = max(self._validator.iter_errors(body), key=relevance, default=None)
        except RecursionError as exc:
            raise MalformedBody("body: nesting is too deep", field="body",
                                rule="depth") from exc
        if error is not None:
            raise explain(error)


def _large_fields(schema: Any) -> frozenset[str]:
    """Names of the properties whose schema allows strings over MAX_STRING_CHARS."""
    names: set[str] = set()
    seen: set[int] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                if isinstance(sub, dict) and sub.get("maxLength", 0) > MAX_STRING_CHARS:
                    names.add(name)
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    return frozenset(names)


large_fields = per_object(_large_fields)


def _oversized(value: Any, allowed: frozenset[str]) -> str | None:
    """The path of the first string (or property name) over MAX_STRING_CHARS not allowed."""
    if not _has_long_string(value):  # nearly every body: no path strings built
        return None
    stack: list[tuple[Any, str, str]] = [(value, "", "")]
    while stack:
        item, where, name = stack.pop()
        if isinstance(item, str):
            if len(item) > MAX_STRING_CHARS and name not in allowed:
                return where
        elif isinstance(item, dict):
            for k, v in item.items():
                child = f"{where}.{k}" if where else str(k)
                if len(k) > MAX_STRING_CHARS:
                    return where or "body"
                stack.append((v, child, k))
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]", name) for i, v in enumerate(item))
    return None


def _has_long_string(value: Any) -> bool:
    """Whether any string or property name in `value` is over MAX_STRING_CHARS."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) > MAX_STRING_CHARS:
                return True
        elif isinstance(item, dict):
            for k, v in item.items():
                if len(k) > MAX_STRING_CHARS:
                    return True
                stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
    return False


def json_media_type(scope: Scope) -> Scope:
    """Connexion hands the handler parsed JSON only for application/json and +json; a JSON
    body sent as `text/json` (which Which50 documents) would reach it as bytes."""
    # The headers are copied only when one is rewritten (nearly every body is application/json).
    for i, (name, value) in enumerate(scope.get("headers", [])):
        if name == b"content-type":
            media, sep, params = value.partition(b";")
            media = media.strip().lower()
            if media.startswith(b"application/") and (media == b"application/json"
                                                       or media.endswith(b"+json")):
                return scope
            headers = list(scope["headers"])
            headers[i] = (name, b"application/json" + sep + params)
            return {**scope, "headers": headers}
    return scope


def parse_json_bytes(raw: bytes, encoding: str, scope: Scope) -> tuple[Any, int]:
    """The body (None if there is none) and the length of its text."""
    if not raw:
        return None, 0
    try:
        text = raw.decode(encoding or "utf-8")
    except (UnicodeDecodeError, LookupError) as exc:
        raise MalformedBody(f"body: request body is not valid {encoding or 'utf-8'} text",
                            field="body", rule="encoding") from exc
    if not text.strip():
        return None, len(text)
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"body: malformed JSON ({exc.msg} at line {exc.lineno} "
                            f"column {exc.colno})", field="body", rule="json") from exc
    except RecursionError as exc:
        raise MalformedBody("body: nesting is too deep", field="body", rule="depth") from exc
    if "\\u0000" in text:
        where = _nul_path(body)
        if where is not None:
            # No vendor field holds a NUL, and PostgreSQL text columns cannot store one.
            field = where or "body"
            raise InvalidRequest(f"{field}: must not contain NUL (\\u0000) characters",
                                 field=field, rule="nul")
    scope.setdefault("extensions", {})[PARSED_BODY_KEY] = body
    return body, len(text)


def _nul_path(value: Any, path: str = "") -> str | None:
    """The field path of the first string (value or property name) holding a NUL."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return where
        elif isinstance(item, dict):
            for k, v in item.items():
                child = f"{where}.{k}" if where else str(k)
                if "\x00" in k:
                    return child
                stack.append((v, child))
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
    return None


class VendorXMLBodyValidator(VendorJSONBodyValidator):
    """XML bodies (Which50): parsed with defusedxml into the shape the JSON schema describes,
    validated with the same schema, then handed on to the handler as JSON."""

    MUTABLE_VALIDATION = True

    async def _parse(self, stream: AsyncGenerator[bytes, None], scope: Scope) -> Any:
        from sandbox.http import xmlcodec

        raw = b"".join([chunk async for chunk in stream])
        if not raw.strip():
            return None
        return xmlcodec.parse(raw, self._schema)

    def _insert_body(self, receive: Any, *, body: Any, scope: Scope) -> Any:
        # The XML declaration, not the Content-Type charset, said how the bytes were encoded;
        # the JSON handed on is always UTF-8.
        self._encoding = "utf-8"
        receive, new_scope = super()._insert_body(receive, body=body, scope=scope)
        # The handler sees JSON: the same body whichever format the client sent.
        headers = [(k, v) for k, v in new_scope["headers"] if k != b"content-type"]
        headers.append((b"content-type", b"application/json"))
        new_scope["headers"] = headers
        return receive, new_scope


class VendorXMLResponseBodyValidator(AbstractResponseBodyValidator):
    """XML answers (Which50): Connexion validates none, so parse them back with xmlcodec and
    check them against the same JSON schema; a sandbox drifting from its contract is a 500."""

    def _parse(self, stream: Any) -> Any:
        from sandbox.http import xmlcodec

        raw = b"".join(stream)
        if not raw.strip():
            return None
        try:
            return xmlcodec.parse(raw, self._schema, text_lists=True)
        except (InvalidRequest, MalformedBody) as exc:
            raise NonConformingResponseBody(detail=f"XML response: {exc.message}") from exc

    def _validate(self, body: Any) -> None:
        error = best_match(compiled_response(self._schema).iter_errors(body))
        if error is not None:
            where = field_path(error.absolute_path) or "body"
            raise NonConformingResponseBody(
                detail=f"XML response does not conform to the spec: {where}: {error.message}")


class VendorParameterValidator(ParameterValidator):
    """Path, query and header parameters, with the parameter's name as the failing field."""

    def validate(self, scope: Scope) -> None:
        # Connexion's, with the request reading its query string without Starlette's multidict.
        logger.debug("%s validating parameters...", scope.get("path"))
        self.validate_request(OnceRequest(scope, uri_parser=self.uri_parser))

    def validate_request(self, request: Any) -> None:
        for location in ("path", "query", "header", "cookie"):
            for param in self.parameters.get(location, []):
                self._check(location, param, request)

    def _check(self, location: str, param: dict[str, Any], request: Any) -> None:
        name = param["name"]
        if location == "path":
            value = request.path_params.get(name.replace("-", "_"))
        elif location == "query":
            value = request.query_params.get(name)
        elif location == "header":
            value = request.headers.get(name)
        else:
            value = request.cookies.get(name)
        if value is None:
            if param.get("required"):
                raise InvalidRequest(f"{name}: missing required {location} parameter",
                                     field=name, rule="required")
            return
        schema = param.get("schema", param)
        if param.get("nullable") and value in ("null", None):
            return
        # The compiled check first (tests/http/test_fastcheck.py holds it to jsonschema's
        # verdict on every parameter schema); jsonschema explains what it refuses.
        check = fast_check(schema)
        if check is not None and check(value):
            return
        error = best_match(compiled(schema, Draft4Validator).iter_errors(value))
        if error is not None:
            explained = explain(error, prefix=name)
            raise InvalidRequest(explained.message, field=explained.field, rule=explained.rule)


def validator_map() -> dict[str, Any]:
    """Connexion's default map, with our validators swapped in (a copy: replacing the `body`
    key wholesale would silently drop JSON validation)."""
    body = MediaTypeDict(dict(VALIDATOR_MAP["body"]))
    body["*/*json"] = VendorJSONBodyValidator
    body["application/xml"] = VendorXMLBodyValidator
    body["text/xml"] = VendorXMLBodyValidator
    # Connexion replaces its whole "response" map with ours: start from a copy of its own.
    response = MediaTypeDict(dict(VALIDATOR_MAP["response"]))
    response["application/xml"] = VendorXMLResponseBodyValidator
    response["text/xml"] = VendorXMLResponseBodyValidator
    return {**VALIDATOR_MAP, "parameter": VendorParameterValidator, "body": body,
            "response": response}
