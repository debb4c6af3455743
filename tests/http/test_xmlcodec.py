"""xmlcodec: DataContract XML <-> JSON shapes driven by the Which50 schemas, round trips against
the spec's own XML samples, ASP.NET HttpError XML, and hostile documents."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from connexion.json_schema import resolve_refs

from sandbox.core.errors import InvalidRequest, MalformedBody
from sandbox.http import xmlcodec
from sandbox.settings import Settings

SPEC: dict[str, Any] = resolve_refs(yaml.safe_load(
    (Settings().spec_dir / "which50.yaml").read_text()))
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]
DTO = "http://schemas.datacontract.org/2004/07/W50API.Models.DTO"
COMMON = "http://schemas.datacontract.org/2004/07/W50Common.Model.DTO"


def compact(xml: str) -> str:
    """The sample without the whitespace the help page puts between elements."""
    return re.sub(r">\s+<", "><", xml.strip())


def xml_samples() -> list[tuple[str, str, dict[str, Any]]]:
    """Every application/xml example of the spec, with the schema it illustrates."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    components = SPEC["components"]
    bodies = list(components["requestBodies"].items()) + list(components["responses"].items())
    for name, item in [*bodies, *(
            (f"{path} {method}", op["responses"]["200"])
            for path, ops in SPEC["paths"].items() for method, op in ops.items()
            if method in {"get", "post"})]:
        media = (item.get("content") or {}).get("application/xml") or {}
        if isinstance(media.get("example"), str):
            found.append((name, media["example"], media["schema"]))
    return found


@pytest.mark.parametrize(("name", "sample", "schema"), xml_samples(),
                         ids=[s[0] for s in xml_samples()])
def test_spec_samples_round_trip_byte_for_byte(name: str, sample: str,
                                               schema: dict[str, Any]) -> None:
    if schema.get("xml", {}).get("name") == "Error":
        data = xmlcodec.parse(sample.encode(), schema, text_lists=True)
        assert xmlcodec.render_http_error(data).decode() == compact(sample)
        return
    data = xmlcodec.parse(sample.encode(), schema)
    assert xmlcodec.render(data, schema).decode() == compact(sample)


def test_seed_create_request_parses_to_the_json_shape() -> None:
    sample = SPEC["components"]["requestBodies"]["ImportJobCreateRequest"]["content"][
        "application/xml"]["example"]
    assert xmlcodec.parse(sample.encode(), SCHEMAS["ImportJobCreateRequest"]) == {
        "FieldNames": ["sample string 1", "sample string 2"]}


def test_import_job_members_in_ordinal_order_with_nil_dates() -> None:
    job = {"Id": 7, "ContactListId": 2, "InvalidEmailCount": 0, "InvalidSmsCount": 1,
           "ProgressPercent": 40, "CurrentStatus": "Running", "StartDate": None,
           "FinishDate": None, "InsertedContacts": 3, "UpdatedContacts": 1,
           "DroppedContacts": 0, "NotUpdatedContacts": 0, "TotalContacts": 4}
    raw = xmlcodec.render(job, SCHEMAS["ImportJob"])
    root = ElementTree.fromstring(raw)
    names = [c.tag.split("}")[1] for c in root]
    assert names == sorted(job) and root.tag == f"{{{DTO}}}ImportJob"
    assert b'<FinishDate i:nil="true" />' in raw
    assert xmlcodec.parse(raw, SCHEMAS["ImportJob"]) == job


def test_contacts_put_base_class_members_first_and_type_dictionary_values() -> None:
    contacts = [{"ValidationWarnings": None, "ListId": 2, "EncContactId": None, "Values": {
        "Email": "ann@example.com", "Age": 41, "Score": 2.5, "Vip": True, "Phone": None,
        "Empty": {}}}]
    raw = xmlcodec.render(contacts, SCHEMAS["ArrayOfContact"])
    contact = ElementTree.fromstring(raw)[0]
    assert [c.tag for c in contact] == [f"{{{COMMON}}}EncContactId", f"{{{COMMON}}}ListId",
                                        f"{{{COMMON}}}Values", f"{{{DTO}}}ValidationWarnings"]
    text = raw.decode()
    assert ('<d3p1:Value xmlns:d5p1="http://www.w3.org/2001/XMLSchema" i:type="d5p1:int">41'
            "</d3p1:Value>") in text
    assert 'i:type="d5p1:boolean">true<' in text and 'i:type="d5p1:double">2.5<' in text
    assert xmlcodec.parse(raw, SCHEMAS["ArrayOfContact"]) == contacts


def test_untyped_and_plain_dictionary_entries_read_leniently() -> None:
    raw = (b'<ArrayOfContact><Contact><Values><KeyValueOfstringanyType><Key>Email</Key>'
           b'<Value>a@b.co</Value></KeyValueOfstringanyType></Values><Extra>x</Extra>'
           b'</Contact></ArrayOfContact>')
    assert xmlcodec.parse(raw, SCHEMAS["ArrayOfContact"]) == [
        {"Values": {"Email": "a@b.co"}, "Extra": "x"}]


def test_wrong_scalar_types_are_left_for_the_schema_to_name() -> None:
    raw = b"<ArrayOfContact><Contact><ListId>three</ListId></Contact></ArrayOfContact>"
    assert xmlcodec.parse(raw, SCHEMAS["ArrayOfContact"]) == [{"ListId": "three"}]


def test_text_where_items_belong_names_the_field_unless_text_lists() -> None:
    raw = b"<ImportJobCreateRequest><FieldNames>Email</FieldNames></ImportJobCreateRequest>"
    with pytest.raises(InvalidRequest) as err:
        xmlcodec.parse(raw, SCHEMAS["ImportJobCreateRequest"])
    assert err.value.field == "FieldNames"
    assert xmlcodec.parse(raw, SCHEMAS["ImportJobCreateRequest"], text_lists=True) == {
        "FieldNames": ["Email"]}


def test_http_error_xml_encodes_model_state_names() -> None:
    body = {"Message": "The request is invalid.",
            "ModelState": {"contacts[3].Values.Fax": ["one", "two"], "request": ["bad"]}}
    raw = xmlcodec.render_http_error(body)
    assert raw == (b"<Error><Message>The request is invalid.</Message><ModelState>"
                   b"<contacts_x005B_3_x005D_.Values.Fax>one two</contacts_x005B_3_x005D_."
                   b"Values.Fax><request>bad</request></ModelState></Error>")
    assert xmlcodec.parse(raw, SCHEMAS["Error"], text_lists=True) == {
        "Message": "The request is invalid.",
        "ModelState": {"contacts[3].Values.Fax": ["one two"], "request": ["bad"]}}


@pytest.mark.parametrize(("name", "encoded"), [
    ("request.FieldNames", "request.FieldNames"), ("contacts[0]", "contacts_x005B_0_x005D_"),
    ("sample string 1", "sample_x0020_string_x0020_1"), ("1st", "_x0031_st"),
    ("a_x0020_b", "a_x005F_x0020_b"), ("", "_")])
def test_xmlconvert_names(name: str, encoded: str) -> None:
    assert xmlcodec.encode_name(name) == encoded
    if name:
        assert xmlcodec.decode_name(encoded) == name


def test_characters_xml_cannot_carry_are_dropped_and_markup_escaped() -> None:
    raw = xmlcodec.render({"Id": 1, "Name": "a\x00b<&>", "Count": 0}, SCHEMAS["ContactsList"])
    assert b"<Name>ab&lt;&amp;&gt;</Name>" in raw
    assert xmlcodec.parse(raw, SCHEMAS["ContactsList"])["Name"] == "ab<&>"


HOSTILE = {
    "external-entity": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM '
                       b'"file:///etc/passwd">]><ImportJobCreateRequest>&x;'
                       b"</ImportJobCreateRequest>",
    "billion-laughs": b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;'
                      b'&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
                      b"<ImportJobCreateRequest>&c;</ImportJobCreateRequest>",
    "external-dtd": b'<!DOCTYPE r SYSTEM "http://example.com/evil.dtd">'
                    b"<ImportJobCreateRequest/>",
    "malformed": b"<ImportJobCreateRequest><FieldNames></ImportJobCreateRequest>",
    "not-xml": b'{"FieldNames": ["Email"]}',
    "wrong-root": b"<ImportJob/>",
}


@pytest.mark.parametrize("doc", HOSTILE.values(), ids=list(HOSTILE))
def test_hostile_or_broken_documents_are_malformed_bodies(doc: bytes) -> None:
    with pytest.raises(MalformedBody) as err:
        xmlcodec.parse(doc, SCHEMAS["ImportJobCreateRequest"])
    assert err.value.field == "body" and "passwd" not in err.value.message
