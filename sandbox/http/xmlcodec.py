"""XML <-> JSON-shaped data, driven by the OpenAPI schema (Which50's DataContract XML).

Parsing uses defusedxml only: DTDs, external entities and entity expansion are refused before
any expansion happens. Rendering follows the DataContractSerializer conventions the seed shows:
members in alphabetical order, the type's namespace on the root, arrays of primitives in the
Microsoft Arrays namespace, i:nil for nulls.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from sandbox.core.errors import MalformedBody

XSI = "http://www.w3.org/2001/XMLSchema-instance"
ARRAYS_NS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
PRIMITIVE_NAMES = {"string": "string", "integer": "int", "number": "double",
                   "boolean": "boolean"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse(raw: bytes, schema: dict[str, Any]) -> Any:
    try:
        root = fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MalformedBody("body: XML with a DTD or entities is not accepted",
                            field="body", rule="xml") from exc
    except Exception as exc:  # ParseError and friends: anything unparseable is the client's
        raise MalformedBody(f"body: malformed XML ({exc})", field="body", rule="xml") from exc
    expected = (schema.get("xml") or {}).get("name")
    if expected and _local(root.tag) != expected:
        raise MalformedBody(f"body: expected root element <{expected}>, got "
                            f"<{_local(root.tag)}>", field="body", rule="xml")
    return _read(root, schema)


def _read(el: Element, schema: dict[str, Any]) -> Any:
    if el.get(f"{{{XSI}}}nil") == "true":
        return None
    kind = schema.get("type")
    if kind == "array" or (kind is None and "items" in schema):
        items = schema.get("items", {})
        return [_read(child, items) for child in el]
    if kind == "object" or "properties" in schema or "additionalProperties" in schema:
        props: dict[str, Any] = schema.get("properties", {})
        by_xml_name = {((s.get("xml") or {}).get("name") or n): n for n, s in props.items()}
        out: dict[str, Any] = {}
        children = list(el)
        if not props and children and all(_local(c.tag).startswith("KeyValueOf")
                                           for c in children):
            for kv in children:
                key = next((c.text for c in kv if _local(c.tag) == "Key"), None)
                value = next((c for c in kv if _local(c.tag) == "Value"), None)
                if key is not None:
                    out[key] = None if value is None else _scalar(value, {})
            return out
        for child in children:
            name = by_xml_name.get(_local(child.tag), _local(child.tag))
            sub = props.get(name)
            if sub is None:
                extra = schema.get("additionalProperties")
                sub = extra if isinstance(extra, dict) else {}
            out[name] = _read(child, sub)
        return out
    return _scalar(el, schema)


def _scalar(el: Element, schema: dict[str, Any]) -> Any:
    if el.get(f"{{{XSI}}}nil") == "true":
        return None
    text = el.text or ""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(text.strip())
        if kind == "number":
            return float(text.strip())
    except ValueError:
        return text  # left as text: schema validation names the field and the type
    if kind == "boolean":
        low = text.strip().lower()
        return True if low == "true" else False if low == "false" else text
    return text


def render(data: Any, schema: dict[str, Any], root_name: str | None = None) -> bytes:
    xml = schema.get("xml") or {}
    name = root_name or xml.get("name") or "Response"
    ns = xml.get("namespace")
    root = Element(f"{{{ns}}}{name}" if ns else name)
    _write(root, data, schema, ns)
    body = tostring(root, encoding="unicode", default_namespace=None)
    return body.encode()


def _write(el: Element, value: Any, schema: dict[str, Any], ns: str | None) -> None:
    if value is None:
        el.set(f"{{{XSI}}}nil", "true")
        return
    kind = schema.get("type")
    if isinstance(value, list):
        items = schema.get("items", {})
        item_xml = items.get("xml") or {}
        item_ns = item_xml.get("namespace") or (
            ARRAYS_NS if items.get("type") in PRIMITIVE_NAMES else ns)
        item_name = item_xml.get("name") or PRIMITIVE_NAMES.get(items.get("type", ""), "item")
        for item in value:
            child = SubElement(el, f"{{{item_ns}}}{item_name}" if item_ns else item_name)
            _write(child, item, items, item_ns)
        return
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        if not props and kind != "object":
            props = {}
        for key in sorted(value):
            sub = props.get(key, {})
            sub_xml = sub.get("xml") or {}
            child_name = sub_xml.get("name") or key
            child_ns = sub_xml.get("namespace") or ns
            child = SubElement(el, f"{{{child_ns}}}{child_name}" if child_ns else child_name)
            _write(child, value[key], sub, child_ns)
        return
    if isinstance(value, bool):
        el.text = "true" if value else "false"
    else:
        el.text = str(value)
