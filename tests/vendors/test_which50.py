"""Which50 through HTTP: the help page's own requests in JSON and XML, the import lifecycle on
the workspace clock, counting, content negotiation and the ASP.NET error envelope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from connexion.json_schema import Draft4ResponseValidator, resolve_refs

from sandbox.app import create_app
from sandbox.http import xmlcodec
from sandbox.settings import Settings
from tests.conftest import START

DTO = "http://schemas.datacontract.org/2004/07/W50API.Models.DTO"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML = {"Content-Type": "application/xml", "Accept": "application/xml"}
# Verbatim from the help page (seeds/003): the request samples and the XML ImportJob sample.
SEED_CREATE_JSON = {"FieldNames": ["sample string 1", "sample string 2"]}
SEED_CREATE_XML = """<ImportJobCreateRequest xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://schemas.datacontract.org/2004/07/W50API.Controllers">
<FieldNames xmlns:d2p1="http://schemas.microsoft.com/2003/10/Serialization/Arrays">
<d2p1:string>sample string 1</d2p1:string>
<d2p1:string>sample string 2</d2p1:string>
</FieldNames>
</ImportJobCreateRequest>"""
SEED_IMPORT_JOB_XML = """<ImportJob xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://schemas.datacontract.org/2004/07/W50API.Models.DTO"> <ContactListId>1</ContactListId> <CurrentStatus>sample string 2</CurrentStatus> <DroppedContacts>1</DroppedContacts> <FinishDate>2025-11-14T21:29:44.8479931+00:00</FinishDate> <Id>1</Id> <InsertedContacts>1</InsertedContacts> <InvalidEmailCount>1</InvalidEmailCount> <InvalidSmsCount>1</InvalidSmsCount> <NotUpdatedContacts>1</NotUpdatedContacts> <ProgressPercent>1</ProgressPercent> <StartDate>2025-11-14T21:29:44.8479931+00:00</StartDate> <TotalContacts>1</TotalContacts> <UpdatedContacts>1</UpdatedContacts> </ImportJob>"""  # noqa: E501
SCHEMAS: dict[str, Any] = resolve_refs(yaml.safe_load(
    (Settings().spec_dir / "which50.yaml").read_text()))["components"]["schemas"]
FIELDS = ["Email", "FirstName", "LastName", "Phone"]


@pytest.fixture(scope="module")
def module_client() -> Iterator[Any]:
    """One app for the module, configured as conftest's: every test still gets its own
    workspace (its own key, clock and data), and building an app per test would dominate."""
    app = create_app(Settings(validate_responses=True, clock_start=START, clock_mode="frozen",
                              background_ticker=False))
    with app.test_client() as c:
        yield c


@pytest.fixture
def client(module_client: Any) -> Any:
    return module_client


def at(seconds: float) -> str:
    """The ASP.NET DateTimeOffset of the frozen test clock (10:00:00Z) plus `seconds`."""
    whole, frac = divmod(round(seconds * 10_000_000), 10_000_000)
    return f"2025-01-15T10:{whole // 60:02d}:{whole % 60:02d}.{frac:07d}+00:00"


def parsed(resp: Any, schema_name: str) -> Any:
    """A 2xx/4xx body in whichever format it came, checked against its spec schema."""
    media = resp.headers["content-type"].split(";")[0]
    if media.endswith("xml"):
        body = xmlcodec.parse(resp.content, SCHEMAS[schema_name], text_lists=True)
    else:
        assert media in {"application/json", "text/json"}, media
        body = json.loads(resp.content)
    errors = list(Draft4ResponseValidator(SCHEMAS[schema_name]).iter_errors(body))
    assert not errors, errors[0].message
    return body


def envelope(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = parsed(resp, "Error")
    if resp.headers["content-type"].startswith("application/xml"):
        assert ElementTree.fromstring(resp.content).tag == "Error"
    return body


def contact(i: int, **values: Any) -> dict[str, Any]:
    base = {"Email": f"user{i}@example.com", "FirstName": f"First{i}", "LastName": "Doe",
            "Phone": f"+1555010{i:04d}"}
    base.update(values)
    return {"ListId": 2, "Values": {k: v for k, v in base.items() if v is not ...}}


def create(sb: Any, list_id: int = 2, names: list[str] | None = None) -> int:
    r = sb.call("which50", "POST", f"/contactLists/{list_id}/import",
                json={"FieldNames": names or FIELDS})
    assert r.status_code == 200, r.text
    return int(r.json()["Id"])


def job(sb: Any, job_id: int, list_id: int = 2) -> dict[str, Any]:
    r = sb.call("which50", "GET", f"/contactLists/{list_id}/import/{job_id}")
    assert r.status_code == 200, r.text
    return dict(parsed(r, "ImportJob"))


def import_all(sb: Any, contacts: list[dict[str, Any]], names: list[str] | None = None
               ) -> dict[str, Any]:
    job_id = create(sb, names=names)
    r = sb.call("which50", "POST", f"/contactLists/2/import/{job_id}", json=contacts)
    assert r.status_code == 200, r.text
    assert sb.call("which50", "POST", f"/contactLists/2/import/{job_id}/run").status_code == 200
    sb.advance(60)
    return job(sb, job_id)


def accounted(j: dict[str, Any]) -> int:
    return (j["InsertedContacts"] + j["UpdatedContacts"] + j["NotUpdatedContacts"]
            + j["DroppedContacts"])


# ---- the help page's own requests ---------------------------------------------------------

def test_seed_create_request_in_json_answers_a_created_import_job(sb: Any) -> None:
    r = sb.call("which50", "POST", "/contactLists/1/import", json=SEED_CREATE_JSON)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert parsed(r, "ImportJob") == {
        "Id": 1, "ContactListId": 1, "InvalidEmailCount": 0, "InvalidSmsCount": 0,
        "ProgressPercent": 0, "CurrentStatus": "Created", "StartDate": None,
        "FinishDate": None, "InsertedContacts": 0, "UpdatedContacts": 0, "DroppedContacts": 0,
        "NotUpdatedContacts": 0, "TotalContacts": 0}


@pytest.mark.parametrize("media", ["application/xml", "text/xml"])
def test_seed_create_request_in_xml_answers_datacontract_xml(sb: Any, media: str) -> None:
    r = sb.call("which50", "POST", "/contactLists/1/import", content=SEED_CREATE_XML,
                headers={"Content-Type": media, "Accept": media})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == f"{media}; charset=utf-8"
    root = ElementTree.fromstring(r.content)
    sample = ElementTree.fromstring(SEED_IMPORT_JOB_XML)
    assert root.tag == sample.tag == f"{{{DTO}}}ImportJob"
    names = [child.tag for child in root]
    assert names == [child.tag for child in sample] == sorted(names)
    assert r.text.startswith(f'<ImportJob xmlns:i="{XSI}" xmlns="{DTO}">')
    assert root.find(f"{{{DTO}}}StartDate").get(f"{{{XSI}}}nil") == "true"  # type: ignore[union-attr]
    body = parsed(r, "ImportJob")
    assert body["CurrentStatus"] == "Created" and body["Id"] == 1 and body["FinishDate"] is None


def test_contact_lists_and_fields_from_the_fixtures(sb: Any) -> None:
    r = sb.call("which50", "GET", "/contactLists")
    assert parsed(r, "ArrayOfContactsList") == [
        {"Id": 1, "Name": "Newsletter subscribers", "Count": 3},
        {"Id": 2, "Name": "Event attendees", "Count": 0}]
    r = sb.call("which50", "GET", "/contactLists", headers={"Accept": "application/xml"})
    assert r.text.startswith(f'<ArrayOfContactsList xmlns:i="{XSI}" xmlns="{DTO}"><ContactsList>'
                             "<Count>3</Count><Id>1</Id>")
    assert parsed(r, "ArrayOfContactsList")[1] == {"Id": 2, "Name": "Event attendees", "Count": 0}
    r = sb.call("which50", "GET", "/contactLists/2", headers={"Accept": "text/json"})
    assert r.headers["content-type"].startswith("text/json")
    assert parsed(r, "ContactsList") == {"Id": 2, "Name": "Event attendees", "Count": 0}
    for accept in ("application/json", "application/xml"):
        r = sb.call("which50", "GET", "/contactLists/1/fields", headers={"Accept": accept})
        fields = parsed(r, "ArrayOfContactSchemaField")
        assert [f["Name"] for f in fields] == FIELDS
        assert fields[0] == {"Id": 1, "Name": "Email", "DefaultValue": None, "MapType": "Email",
                             "Position": 1, "ContactSchemaFieldValues": []}


@pytest.mark.parametrize(("accept", "expected"), [
    ("application/json;q=0.5, application/xml", "application/xml"),
    ("text/xml;q=0.2, text/json;q=0.9", "text/json"),
    ("*/*", "application/json"), ("text/html", "application/json")])
def test_the_answer_follows_the_accept_header(sb: Any, accept: str, expected: str) -> None:
    r = sb.call("which50", "GET", "/contactLists/2", headers={"Accept": accept})
    assert r.headers["content-type"] == f"{expected}; charset=utf-8"
    assert parsed(r, "ContactsList")["Id"] == 2


# ---- lifecycle ----------------------------------------------------------------------------

def test_lifecycle_on_the_workspace_clock(sb: Any) -> None:
    job_id = create(sb)
    batch1 = [contact(i) for i in range(100)]
    batch1[10] = contact(10, Email="not-an-email")        # invalid email: imported, counted
    batch1[11] = contact(11, Phone="+15005550001")        # magic invalid SMS number
    batch1[12] = contact(12, Email=...)                   # no Email: matched on its Phone
    batch1[13] = {"ListId": 2, "Values": {"FirstName": "Nobody"}}  # neither: dropped
    r = sb.call("which50", "POST", f"/contactLists/2/import/{job_id}", json=batch1)
    uploaded = parsed(r, "ImportJob")
    assert (uploaded["CurrentStatus"], uploaded["TotalContacts"]) == ("Created", 0)
    batch2 = ([contact(i) for i in range(100, 140)] + [contact(i) for i in range(5)]
              + [contact(i, FirstName="Renamed") for i in range(5, 10)])
    r = sb.call("which50", "POST", f"/contactLists/2/import/{job_id}", json=batch2,
                headers={"Accept": "application/xml"})
    assert parsed(r, "ImportJob")["ProgressPercent"] == 0

    r = sb.call("which50", "POST", f"/contactLists/2/import/{job_id}/run",
                params={"customevents": "SendWelcomeEmail,SendEventInvite"})
    ran = parsed(r, "ImportJob")
    assert (ran["CurrentStatus"], ran["StartDate"], ran["ProgressPercent"]) == ("Queued", None, 0)

    sb.advance(1)  # 10:00:01: still in the queue (3 s)
    assert job(sb, job_id)["CurrentStatus"] == "Queued"
    sb.advance(2)  # 10:00:03: out of the queue, starting up (2 s), nothing imported yet
    j = job(sb, job_id)
    assert (j["CurrentStatus"], j["StartDate"], j["ProgressPercent"], j["FinishDate"]) == (
        "Running", at(3), 0, None)
    sb.advance(2.5)  # 10:00:05.5: 100 contacts/s from 10:00:05 -> 50 of 150 rows
    j = job(sb, job_id)
    assert j["ProgressPercent"] == 33 and j["CurrentStatus"] == "Running"
    assert (j["InsertedContacts"], j["DroppedContacts"], j["InvalidEmailCount"],
            j["InvalidSmsCount"], j["UpdatedContacts"]) == (49, 1, 1, 1, 0)
    assert accounted(j) == 50
    sb.advance(1)  # 10:00:06.5: the 150th row is due
    r = sb.call("which50", "GET", f"/contactLists/2/import/{job_id}", headers=XML)
    done = parsed(r, "ImportJob")
    assert done == {
        "Id": job_id, "ContactListId": 2, "InvalidEmailCount": 1, "InvalidSmsCount": 1,
        "ProgressPercent": 100, "CurrentStatus": "Complete", "StartDate": at(3),
        "FinishDate": at(6.5), "InsertedContacts": 139, "UpdatedContacts": 5,
        "DroppedContacts": 1, "NotUpdatedContacts": 5, "TotalContacts": 144}
    assert accounted(done) == 150
    lists = parsed(sb.call("which50", "GET", "/contactLists"), "ArrayOfContactsList")
    assert lists[1]["Count"] == 139


def test_reimport_updates_changed_contacts_only(sb: Any) -> None:
    first = import_all(sb, [contact(i) for i in range(8)])
    assert (first["InsertedContacts"], first["TotalContacts"]) == (8, 8)
    again = [contact(i) for i in range(5)] + [contact(i, FirstName="New") for i in range(5, 8)]
    second = import_all(sb, again, names=["Email", "FirstName"])
    assert (second["InsertedContacts"], second["UpdatedContacts"],
            second["NotUpdatedContacts"], second["DroppedContacts"],
            second["TotalContacts"]) == (0, 3, 5, 0, 3)
    assert parsed(sb.call("which50", "GET", "/contactLists/2"), "ContactsList")["Count"] == 8


def test_a_fail_email_fails_the_job_at_that_contact(sb: Any) -> None:
    contacts = [contact(0), contact(1, Email="fail_rate_limit@example.com"), contact(2),
                contact(3)]
    j = import_all(sb, contacts)
    assert (j["CurrentStatus"], j["ProgressPercent"], j["InsertedContacts"],
            j["DroppedContacts"]) == ("Failed", 50, 1, 1)
    assert (j["StartDate"], j["FinishDate"]) == (at(3), at(5.02))


def test_xml_batches_with_typed_dictionary_values(sb: Any) -> None:
    job_id = create(sb, names=["Email", "FirstName", "Phone"])
    kv = ("<d3p1:KeyValueOfstringanyType><d3p1:Key>{k}</d3p1:Key>{v}"
          "</d3p1:KeyValueOfstringanyType>")
    string = '<d3p1:Value xmlns:d5p1="http://www.w3.org/2001/XMLSchema" i:type="d5p1:{t}">{x}' \
             "</d3p1:Value>"
    rows = [
        kv.format(k="Email", v=string.format(t="string", x="ann@example.com"))
        + kv.format(k="Phone", v=string.format(t="long", x="15550100001")),
        kv.format(k="Email", v=string.format(t="string", x="bob@example.com"))
        + kv.format(k="FirstName", v='<d3p1:Value i:nil="true" />'),
        kv.format(k="Phone", v=string.format(t="string", x="+15005550001"))]
    body = (f'<ArrayOfContact xmlns:i="{XSI}" xmlns="{DTO}">' + "".join(
        '<Contact><EncContactId i:nil="true" xmlns="http://schemas.datacontract.org/2004/07/'
        'W50Common.Model.DTO" /><ListId xmlns="http://schemas.datacontract.org/2004/07/'
        'W50Common.Model.DTO">2</ListId><Values xmlns:d3p1="http://schemas.microsoft.com/2003/'
        '10/Serialization/Arrays" xmlns="http://schemas.datacontract.org/2004/07/'
        f'W50Common.Model.DTO">{row}</Values><ValidationWarnings xmlns:d3p1="http://schemas.'
        'microsoft.com/2003/10/Serialization/Arrays" /></Contact>' for row in rows)
        + "</ArrayOfContact>")
    r = sb.call("which50", "POST", f"/contactLists/2/import/{job_id}", content=body,
                headers={"Content-Type": "text/xml"})
    assert r.status_code == 200, r.text
    sb.call("which50", "POST", f"/contactLists/2/import/{job_id}/run")
    sb.advance(60)
    j = job(sb, job_id)
    assert (j["InsertedContacts"], j["InvalidSmsCount"], j["InvalidEmailCount"],
            j["CurrentStatus"]) == (3, 1, 0, "Complete")


@pytest.mark.parametrize("accept", ["application/json", "application/xml"])
def test_values_keys_must_be_fields_of_the_list(sb: Any, accept: str) -> None:
    job_id = create(sb, list_id=1, names=SEED_CREATE_JSON["FieldNames"])
    contacts = [contact(i) for i in range(5)]
    contacts[3]["Values"]["Fax"] = "+35312345678"
    r = sb.call("which50", "POST", f"/contactLists/1/import/{job_id}", json=contacts,
                headers={"Accept": accept})
    err = envelope(r, 400)
    assert err["Message"] == "The request is invalid."
    assert list(err["ModelState"]) == ["contacts[3].Values.Fax"]
    assert "'Fax' is not a field of ContactList 1" in err["ModelState"]["contacts[3].Values.Fax"][0]
    seed_batch = [{"ListId": 3, "Values": {"sample string 1": {}, "sample string 3": {}}}]
    r = sb.call("which50", "POST", f"/contactLists/1/import/{job_id}", json=seed_batch,
                headers={"Accept": accept})
    assert set(envelope(r, 400)["ModelState"]) == {"contacts[0].Values.sample string 1",
                                                   "contacts[0].Values.sample string 3"}


def test_run_and_upload_conflicts(sb: Any) -> None:
    job_id = create(sb)
    run = f"/contactLists/2/import/{job_id}/run"
    r = sb.call("which50", "POST", run)
    assert "no contacts to import" in envelope(r, 409)["Message"]
    sb.call("which50", "POST", f"/contactLists/2/import/{job_id}", json=[contact(1)])
    assert sb.call("which50", "POST", run).status_code == 200
    r = sb.call("which50", "POST", run, headers={"Accept": "text/xml"})
    assert envelope(r, 409) == {"Message": "The ImportJob has already been run."}
    r = sb.call("which50", "POST", f"/contactLists/2/import/{job_id}", json=[contact(2)])
    assert envelope(r, 409) == {"Message": "The ImportJob has already been run."}


def test_the_xml_response_validator_catches_a_drifting_answer(sb: Any,
                                                              monkeypatch: Any) -> None:
    from sandbox.vendors import which50

    monkeypatch.setitem(which50.STATUS_NAMES, "created", "Drafted")
    for accept in ("application/xml", "application/json"):
        r = sb.call("which50", "POST", "/contactLists/1/import", json=SEED_CREATE_JSON,
                    headers={"Accept": accept})
        assert envelope(r, 500) == {"Message": "An error has occurred."}


# ---- errors -------------------------------------------------------------------------------

LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;'
          b'&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;'
          b'&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><ImportJobCreateRequest><FieldNames>'
          b'<string>&lol3;</string></FieldNames></ImportJobCreateRequest>')
XXE = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       b'<ImportJobCreateRequest><FieldNames><string>&xxe;</string></FieldNames>'
       b'</ImportJobCreateRequest>')
CREATE = "/contactLists/1/import"
AS_XML = {"Content-Type": "application/xml"}
# (id, method, path, request kwargs, status, ModelState key or None, message fragment)
ERROR_CASES: list[tuple[str, str, str, dict[str, Any], int, str | None, str]] = [
    ("missing-field", "POST", CREATE, {"json": {}}, 400, "request.FieldNames",
     "The FieldNames field is required."),
    ("missing-field-xml", "POST", CREATE,
     {"content": "<ImportJobCreateRequest/>", "headers": AS_XML}, 400, "request.FieldNames",
     "The FieldNames field is required."),
    ("wrong-type", "POST", CREATE, {"json": {"FieldNames": "Email"}}, 400, "request.FieldNames",
     "is not of type 'array'"),
    ("wrong-type-xml", "POST", CREATE, {
        "content": "<ImportJobCreateRequest><FieldNames>Email</FieldNames>"
                   "</ImportJobCreateRequest>", "headers": AS_XML}, 400, "request.FieldNames",
     "expected item elements"),
    ("wrong-item-type", "POST", CREATE, {"json": {"FieldNames": [7]}}, 400,
     "request.FieldNames[0]", "is not of type 'string'"),
    ("no-field-names", "POST", CREATE, {"json": {"FieldNames": []}}, 400, "request.FieldNames",
     "at least 1 item"),
    ("out-of-range", "POST", "/contactLists/3000000000/import",
     {"json": SEED_CREATE_JSON}, 400, "contactListId", "maximum of 2147483647"),
    ("contact-without-values", "POST", "/contactLists/1/import/1", {"json": [{"ListId": 1}]},
     400, "contacts[0].Values", "The Values field is required."),
    ("contact-list-id-type", "POST", "/contactLists/1/import/1",
     {"json": [{"ListId": "one", "Values": {}}]}, 400, "contacts[0].ListId",
     "is not of type 'integer'"),
    ("empty-batch", "POST", "/contactLists/1/import/1", {"json": []}, 400, "contacts",
     "at least 1 contact"),
    ("malformed-json", "POST", CREATE,
     {"content": b'{"FieldNames": [', "headers": {"Content-Type": "application/json"}}, 400,
     "request", "Malformed JSON"),
    ("not-utf8", "POST", CREATE,
     {"content": b'{"FieldNames": ["\xff\xfe"]}',
      "headers": {"Content-Type": "application/json"}}, 400, "request", "not valid utf-8"),
    ("empty-body", "POST", CREATE,
     {"content": b"", "headers": {"Content-Type": "application/json"}}, 400, "request",
     "request body is required"),
    ("malformed-xml", "POST", CREATE,
     {"content": b"<ImportJobCreateRequest><FieldNames>", "headers": AS_XML}, 400, "request",
     "Malformed XML"),
    ("wrong-root", "POST", CREATE, {"content": b"<ArrayOfContact/>", "headers": AS_XML}, 400,
     "request", "expected root element <ImportJobCreateRequest>"),
    ("xxe", "POST", CREATE, {"content": XXE, "headers": AS_XML}, 400, "request",
     "DTD or entities"),
    ("billion-laughs", "POST", CREATE, {"content": LAUGHS, "headers": {"Content-Type": "text/xml"}},
     400, "request", "DTD or entities"),
    ("bad-key", "GET", "/contactLists", {"headers": {"Authorization": "Bearer bad key!"}}, 401,
     None, "Authorization has been denied for this request."),
    ("unknown-path", "GET", "/contactList", {}, 404, None,
     "No HTTP resource was found that matches the request URI 'http://testserver/which50/"
     "contactList'."),
    ("non-numeric-id", "GET", "/contactLists/one", {}, 404, None, "No HTTP resource was found"),
    ("unknown-list", "POST", "/contactLists/99/import", {"json": SEED_CREATE_JSON}, 404, None,
     "The specified Contactlist was not found - could not create Import Job."),
    ("unknown-list-get", "GET", "/contactLists/99/fields", {}, 404, None,
     "The specified Contactlist was not found."),
    ("unknown-job", "GET", "/contactLists/1/import/42", {}, 404, None,
     "The specified Contactlist or ImportJob were not found."),
    ("unknown-job-run", "POST", "/contactLists/1/import/42/run", {}, 404, None,
     "The specified Contactlist or ImportJob were not found."),
    ("wrong-method", "DELETE", "/contactLists/1", {}, 405, None,
     "The requested resource does not support http method 'DELETE'."),
    ("unsupported-media-type", "POST", CREATE,
     {"content": b"FieldNames=Email", "headers": {"Content-Type": "text/plain"}}, 415, None,
     "The request entity's media type 'text/plain' is not supported for this resource."),
]


@pytest.mark.parametrize("accept", ["application/json", "application/xml"])
@pytest.mark.parametrize(("case", "method", "path", "kwargs", "status", "model_key", "fragment"),
                         ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error_envelope(sb: Any, accept: str, case: str, method: str, path: str,
                        kwargs: dict[str, Any], status: int, model_key: str | None,
                        fragment: str) -> None:
    kwargs = {**kwargs, "headers": {**kwargs.get("headers", {}), "Accept": accept}}
    err = envelope(sb.call("which50", method, path, **kwargs), status)
    if model_key is None:
        assert fragment in err["Message"], err
        assert "ModelState" not in err
    else:
        assert err["Message"] == "The request is invalid."
        assert list(err["ModelState"]) == [model_key], err
        assert fragment.lower() in " ".join(err["ModelState"][model_key]).lower(), err
    assert "passwd" not in json.dumps(err) and "Traceback" not in json.dumps(err)


@pytest.mark.parametrize("accept", ["application/json", "text/xml"])
def test_missing_key_is_401(client: Any, accept: str) -> None:
    r = client.get("/which50/contactLists", headers={"Accept": accept})
    assert envelope(r, 401) == {"Message": "Authorization has been denied for this request."}
    assert r.headers["content-type"].startswith(accept)


def test_more_than_10000_contacts_is_400_in_json_and_xml(sb: Any) -> None:
    job_id = create(sb)
    path = f"/contactLists/2/import/{job_id}"
    contacts = [{"Values": {"Email": f"u{i}@example.com"}} for i in range(10_001)]
    err = envelope(sb.call("which50", "POST", path, json=contacts), 400)
    assert err["ModelState"] == {
        "contacts": ["The service accepts up to 10,000 contacts in a single request."]}
    one = ("<Contact><Values><KeyValueOfstringanyType><Key>Email</Key><Value>u@example.com"
           "</Value></KeyValueOfstringanyType></Values></Contact>")
    body = f'<ArrayOfContact xmlns="{DTO}">' + one * 10_001 + "</ArrayOfContact>"
    r = sb.call("which50", "POST", path, content=body, headers=XML)
    assert list(envelope(r, 400)["ModelState"]) == ["contacts"]
    r = sb.call("which50", "POST", path, json=contacts[:10_000])
    assert r.status_code == 200, r.text
