"""XML <-> JSON-shaped data, driven by the OpenAPI schema (Which50's DataContract XML).

Parsing uses defusedxml only: DTDs, external entities and entity expansion are refused before
any expansion happens. Rendering follows the DataContractSerializer conventions the seed shows:
`xmlns:i` and the type's namespace on the root, members in ordinal order (base-class members,
i.e. those in another namespace, first), arrays of primitives in the Microsoft Arrays namespace
under a `d<depth>p1` prefix, dictionaries as KeyValueOfstringanyType entries, i:nil for nulls.
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from sandbox.core.errors import InvalidRequest, MalformedBody

XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
ARRAYS_NS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
PRIMITIVE_NAMES = {"string": "string", "integer": "int", "number": "double",
                   "boolean": "boolean"}
KEY_VALUE = "KeyValueOfstringanyType"
_NIL = f"{{{XSI}}}nil"
_TYPE = f"{{{XSI}}}type"
# xsd types a dictionary Value may carry (i:type) -> how to read its text.
_INTEGER_TYPES = {"int", "long", "short", "byte", "unsignedInt", "unsignedLong",
                  "unsignedShort", "unsignedByte", "integer"}
_NUMBER_TYPES = {"double", "float", "decimal"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# ---- XmlConvert names ----------------------------------------------------------------------

_NAME_START = re.compile(r"[A-Za-z_]")
_NAME_CHAR = re.compile(r"[A-Za-z0-9_.\-]")
_ENCODED = re.compile(r"_x([0-9A-Fa-f]{4})_")


def encode_name(name: str) -> str:
    """XmlConvert.EncodeLocalName: characters not allowed in an XML name (and a literal `_x`
    that would read as an escape) become `_xHHHH_`. ASP.NET names ModelState elements so."""
    out: list[str] = []
    for i, ch in enumerate(name):
        ok = _NAME_START.match(ch) if i == 0 else _NAME_CHAR.match(ch)
        if ch == "_" and name[i + 1:i + 2] == "x" and _ENCODED.match(name, i):
            ok = None
        out.append(ch if ok else f"_x{ord(ch):04X}_")
    return "".join(out) or "_"


def decode_name(name: str) -> str:
    return _ENCODED.sub(lambda m: chr(int(m.group(1), 16)), name)


# ---- parsing -------------------------------------------------------------------------------

def parse(raw: bytes, schema: dict[str, Any], *, text_lists: bool = False) -> Any:
    """Parse an XML document into the JSON shape `schema` describes. `text_lists`: an array
    element that holds text instead of items reads as a one-item list (ASP.NET writes HttpError
    ModelState messages so); otherwise such an element is a client error naming the field."""
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
    return _Reader(text_lists).read(root, schema, [])


class _Reader:
    def __init__(self, text_lists: bool) -> None:
        self.text_lists = text_lists

    def read(self, el: Element, schema: dict[str, Any], path: list[str | int]) -> Any:
        if el.get(_NIL) == "true":
            return None
        kind = schema.get("type")
        if kind == "array" or (kind is None and "items" in schema):
            return self._array(el, schema, path)
        if kind == "object" or "properties" in schema or "additionalProperties" in schema:
            if not schema.get("properties") and "additionalProperties" in schema:
                return self._dictionary(el, schema, path)
            return self._object(el, schema, path)
        return _scalar(el, schema)

    def _array(self, el: Element, schema: dict[str, Any], path: list[str | int]) -> list[Any]:
        items = schema.get("items", {})
        children = list(el)
        text = (el.text or "").strip()
        if not children and text:
            if self.text_lists:
                return [text]
            where = _path(path)
            raise InvalidRequest(f"{where}: expected item elements, found text", field=where,
                                 rule="type")
        return [self.read(child, items, [*path, i]) for i, child in enumerate(children)]

    def _object(self, el: Element, schema: dict[str, Any], path: list[str | int]
                ) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties", {})
        by_xml_name = {((s.get("xml") or {}).get("name") or n): n for n, s in props.items()}
        out: dict[str, Any] = {}
        for child in el:
            name = by_xml_name.get(_local(child.tag), decode_name(_local(child.tag)))
            sub = props.get(name)
            if sub is None:
                extra = schema.get("additionalProperties")
                sub = extra if isinstance(extra, dict) else {}
            out[name] = self.read(child, sub, [*path, name])
        return out

    def _dictionary(self, el: Element, schema: dict[str, Any], path: list[str | int]
                    ) -> dict[str, Any]:
        """A DataContract Dictionary (KeyValueOf... entries), or a plain element per key."""
        extra = schema.get("additionalProperties")
        sub = extra if isinstance(extra, dict) else {}
        out: dict[str, Any] = {}
        for child in el:
            if _local(child.tag).startswith("KeyValueOf"):
                key_el = next((c for c in child if _local(c.tag) == "Key"), None)
                value_el = next((c for c in child if _local(c.tag) == "Value"), None)
                if key_el is None:
                    where = _path(path)
                    raise InvalidRequest(f"{where}: a {_local(child.tag)} entry has no Key",
                                         field=where, rule="required")
                key = key_el.text or ""
                out[key] = None if value_el is None else _any_value(value_el)
            else:
                name = decode_name(_local(child.tag))
                out[name] = self.read(child, sub, [*path, name])
        return out


def _path(path: list[str | int]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out or "body"


def _any_value(el: Element) -> Any:
    """An `object`-typed value: its i:type says how to read it; an empty untyped element is
    a bare object ({} in JSON, as the help-page samples show)."""
    if el.get(_NIL) == "true":
        return None
    xsd_type = _local((el.get(_TYPE) or "").rsplit(":", 1)[-1])
    text = el.text or ""
    if not xsd_type:
        return {} if not text and not len(el) else text
    if xsd_type in _INTEGER_TYPES:
        return _scalar(el, {"type": "integer"})
    if xsd_type in _NUMBER_TYPES:
        return _scalar(el, {"type": "number"})
    if xsd_type == "boolean":
        return _scalar(el, {"type": "boolean"})
    return text


def _scalar(el: Element, schema: dict[str, Any]) -> Any:
    if el.get(_NIL) == "true":
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
        return True if low in {"true", "1"} else False if low in {"false", "0"} else text
    return text


# ---- rendering -----------------------------------------------------------------------------

def render(data: Any, schema: dict[str, Any], root_name: str | None = None) -> bytes:
    """`data` as DataContractSerializer would write the type `schema` describes."""
    xml = schema.get("xml") or {}
    name = root_name or xml.get("name") or "root"
    ns = xml.get("namespace")
    out: list[str] = []
    attrs = [f"xmlns:i={quoteattr(XSI)}"] + ([f"xmlns={quoteattr(ns)}"] if ns else [])
    _element(out, name, data, schema, attrs, 1, ns)
    return "".join(out).encode()


def _open(tag: str, attrs: list[str]) -> str:
    return f"<{tag}{''.join(' ' + a for a in attrs)}>"


def _element(out: list[str], tag: str, value: Any, schema: dict[str, Any], attrs: list[str],
             depth: int, ns: str | None) -> None:
    """Write element `tag` (whose children default to namespace `ns`) holding `value`."""
    if value is None:
        out.append(f"<{tag}{''.join(' ' + a for a in attrs)} i:nil=\"true\" />")
        return
    if isinstance(value, list):
        _array(out, tag, value, schema, attrs, depth, ns)
    elif isinstance(value, dict) and not schema.get("properties") and (
            "additionalProperties" in schema or not value):
        _dictionary(out, tag, value, attrs, depth)
    elif isinstance(value, dict):
        out.append(_open(tag, attrs))
        props: dict[str, Any] = schema.get("properties", {})

        def member_ns(key: str) -> str | None:
            return ((props.get(key) or {}).get("xml") or {}).get("namespace") or ns

        # Base-class members (declared in another namespace) come first, then ordinal order.
        for key in sorted(value, key=lambda k: (member_ns(k) == ns, k)):
            sub = props.get(key) or {}
            child_ns = member_ns(key)
            child_tag = (sub.get("xml") or {}).get("name") or key
            child_attrs = [f"xmlns={quoteattr(child_ns)}"] if child_ns and child_ns != ns else []
            _element(out, child_tag, value[key], sub, child_attrs, depth + 1, child_ns)
        out.append(f"</{tag}>")
    else:
        out.append(_open(tag, attrs) + xml_text(value) + f"</{tag}>")


def _array(out: list[str], tag: str, value: list[Any], schema: dict[str, Any],
           attrs: list[str], depth: int, ns: str | None) -> None:
    items = schema.get("items", {})
    item_xml = items.get("xml") or {}
    attrs = list(attrs)
    inner: list[str] = []
    if items.get("type") in PRIMITIVE_NAMES:
        item_ns = item_xml.get("namespace") or ARRAYS_NS
        name = item_xml.get("name") or PRIMITIVE_NAMES[items["type"]]
        if item_ns == ns:
            item_tag = name
        else:
            prefix = f"d{depth}p1"
            attrs.insert(0, f"xmlns:{prefix}={quoteattr(item_ns)}")
            item_tag = f"{prefix}:{name}"
        for item in value:
            _element(inner, item_tag, item, items, [], depth + 1, ns)
    else:
        item_ns = item_xml.get("namespace") or ns
        item_attrs = [f"xmlns={quoteattr(item_ns)}"] if item_ns and item_ns != ns else []
        for item in value:
            _element(inner, item_xml.get("name") or "anyType", item, items, item_attrs,
                     depth + 1, item_ns)
    if not inner:
        out.append(f"<{tag}{''.join(' ' + a for a in attrs)} />")
        return
    out.append(_open(tag, attrs))
    out.extend(inner)
    out.append(f"</{tag}>")


def _dictionary(out: list[str], tag: str, value: dict[str, Any], attrs: list[str],
                depth: int) -> None:
    """Dictionary<string, object> as DataContract writes it: typed KeyValueOfstringanyType."""
    prefix = f"d{depth}p1"
    # The prefix is declared before the element's own namespace, as the help-page sample shows.
    out.append(_open(tag, [f"xmlns:{prefix}={quoteattr(ARRAYS_NS)}", *attrs]))
    value_depth = depth + 2
    for key, item in value.items():
        out.append(f"<{prefix}:{KEY_VALUE}><{prefix}:Key>{xml_text(key)}</{prefix}:Key>")
        value_tag = f"{prefix}:Value"
        if item is None:
            out.append(f"<{value_tag} i:nil=\"true\" />")
        elif isinstance(item, dict) and not item:
            out.append(f"<{value_tag} />")
        else:
            xsd_type = ("boolean" if isinstance(item, bool) else "int" if isinstance(item, int)
                        else "double" if isinstance(item, float) else "string")
            type_prefix = f"d{value_depth}p1"
            out.append(f"<{value_tag} xmlns:{type_prefix}={quoteattr(XSD)} "
                       f"i:type=\"{type_prefix}:{xsd_type}\">{xml_text(item)}"
                       f"</{value_tag}>")
        out.append(f"</{prefix}:{KEY_VALUE}>")
    out.append(f"</{tag}>")


_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: Any) -> str:
    """Escaped element content; characters XML 1.0 cannot carry are dropped."""
    return escape(_NOT_XML_CHAR.sub("", _text(value)))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render_http_error(body: dict[str, Any]) -> bytes:
    """ASP.NET Web API's HttpError as XML: root `Error` (no namespace), one element per member,
    ModelState keys as XmlConvert-encoded element names holding their messages joined by
    spaces (XmlWriter.WriteValue of a string[])."""
    out = ["<Error>"]
    for key, value in body.items():
        name = encode_name(key)
        if isinstance(value, dict):
            out.append(f"<{name}>")
            for field, messages in value.items():
                tag = encode_name(field)
                joined = " ".join(messages) if isinstance(messages, list) else messages
                out.append(f"<{tag}>{xml_text(joined)}</{tag}>")
            out.append(f"</{name}>")
        else:
            out.append(f"<{name}>{xml_text(value)}</{name}>")
    out.append("</Error>")
    return "".join(out).encode()
