"""Leadlex contacts as data: input normalisation (names, priority, company aliases, CSV values),
CSV column mapping, and the contact shapes the Leadlex answers show."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sandbox.core.applying import ROW_RESOLVERS
from sandbox.core.clock import iso
from sandbox.core.errors import InvalidRequest
from sandbox.core.ids import uuid_for

RESOLVER = "leadlex.contact"
# Fields of POST /v1/contacts (ContactInput); anything else in a row is ignored.
INPUT_FIELDS = ("full_name", "first_name", "last_name", "email", "phone", "job_title", "company",
                "company_name", "related_company_id", "company_id", "linkedin_url", "priority",
                "tags", "custom_fields", "created_date")
PRIORITIES = {"high": 1, "medium": 2, "low": 3, "1": 1, "2": 2, "3": 3}
CUSTOM_PREFIX = "custom_fields."
# CSV headers understood without a mapping (after lower-casing, spaces and dashes -> "_").
HEADER_ALIASES = {"name": "full_name", "fullname": "full_name", "email_address": "email",
                  "e_mail": "email", "phone_number": "phone", "title": "job_title",
                  "linkedin": "linkedin_url", "organization": "company"}
IDENTIFYING = ("email", "phone")
_TAG_SPLIT = re.compile(r"[;,|]")
# What `normalise` converts in the same way, in the order the stored contact has them.
_COMMON_FIELDS = ("email", "phone", "job_title", "linkedin_url", "company")
# The fields nearly every row is made of; any other (priority, tags, custom_fields.<name>...)
# makes `normalise` look for the rest.
_USUAL_FIELDS = frozenset({"full_name", "first_name", "last_name", *_COMMON_FIELDS})


class RowError(ValueError):
    """A row that cannot become a contact: `code` for import errors, `field` for 400s."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


# ---- input --------------------------------------------------------------------------------

def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = (value if type(value) is str else str(value)).strip()
    return text or None


def split_names(full: str | None, first: str | None, last: str | None
                ) -> tuple[str | None, str | None, str | None]:
    """Complete the name triple: "Last, First" and "First Last" (split on the last whitespace)
    fill first/last; first + last compose full. Unknown parts stay None."""
    if full and not (first or last):
        if "," in full:
            last_part, first_part = (p.strip() for p in full.split(",", 1))
            first, last = first_part or None, last_part or None
            full = " ".join(p for p in (first, last) if p) or full
        else:
            parts = full.rsplit(None, 1)
            first, last = (parts[0], parts[1]) if len(parts) == 2 else (full, None)
    elif not full and (first or last):
        full = " ".join(p for p in (first, last) if p)
    return full, first, last


def names_from_email(email: str) -> tuple[str | None, str | None]:
    """hans.mueller@x.de -> (Hans, Mueller); jdoe@x.com -> (Jdoe, None)."""
    local = email.split("@", 1)[0]
    pieces = [re.sub(r"\d+$", "", p) for p in re.split(r"[._\-+]+", local)]
    pieces = [p for p in pieces if p] or ([local] if local else [])
    if not pieces:
        return None, None
    first = pieces[0].capitalize()
    last = pieces[-1].capitalize() if len(pieces) > 1 else None
    return first, last


def normalise(row: dict[str, Any]) -> dict[str, Any]:
    """A request row (JSON or a mapped CSV line) -> the contact data stored. Raises RowError
    for values that cannot be used. Names derived from the email are not stored (a later
    update must not overwrite a real name with one guessed from an address)."""
    # Runs for every imported row (137,000 for a 20 MB CSV), and a row names a few of the
    # fields: each one is converted only when the row has it, and the fields few rows have
    # are looked for only in a row that has a field besides the usual ones.
    out: dict[str, Any] = {}
    get = row.get
    full, first, last = get("full_name"), get("first_name"), get("last_name")
    if full is not None or first is not None or last is not None:
        full, first, last = split_names(_text(full), _text(first), _text(last))
        if full:
            out["full_name"] = full
        if first:
            out["first_name"] = first
        if last:
            out["last_name"] = last
    for name in _COMMON_FIELDS:
        value = get(name)
        if value is not None:  # _text, inline: fields of nearly every row
            value = (value if type(value) is str else str(value)).strip()
            if value:
                out[name] = value
    rare = not _USUAL_FIELDS.issuperset(row)  # one test for the rare and the custom fields
    if rare:
        if "company" not in out:
            company = _text(get("company_name"))
            if company:
                out["company"] = company
        related = _text(get("related_company_id")) or _text(get("company_id"))
        if related:
            out["related_company_id"] = related
    if not (full or out.get("email")):
        raise RowError("missing_identifier", "full_name",
                       "row has no full_name, first_name, last_name or email")
    custom: dict[str, Any] = {}
    if rare:
        priority = get("priority")
        if priority not in (None, ""):
            level = PRIORITIES.get(str(priority).strip().lower())
            if level is None:
                raise RowError("invalid_value", "priority",
                               f"priority: '{priority}' is not one of high, medium, low, 1, 2, 3")
            out["priority"] = level
        tags = get("tags")
        if isinstance(tags, str):
            tags = [t.strip() for t in _TAG_SPLIT.split(tags)]
        if tags:
            out["tags"] = [str(t) for t in tags if str(t).strip()]
        if isinstance(get("custom_fields"), dict):
            custom = dict(row["custom_fields"])
    if rare and "." in "".join(row):  # CUSTOM_PREFIX has one
        for name, value in row.items():
            if name.startswith(CUSTOM_PREFIX) and value not in (None, ""):
                custom[name[len(CUSTOM_PREFIX):]] = value
    if custom:
        out["custom_fields"] = custom
    created = _text(get("created_date")) if rare else None
    if created:
        try:
            epoch = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise RowError("invalid_value", "created_date",
                           f"created_date: '{created}' is not an ISO 8601 date-time") from None
        out["created_date"] = iso(epoch, millis=False)
        out["created_epoch"] = epoch
    return out


def resolve(row: dict[str, Any]) -> dict[str, Any]:
    """Import resolver: unusable rows are marked so that they count as failed, with a code."""
    if "__csv_error__" in row:
        return row
    try:
        return normalise(row)
    except RowError as exc:
        return {"__unresolvable__": str(exc), "__error_code__": exc.code}


ROW_RESOLVERS[RESOLVER] = resolve


# ---- CSV mapping ----------------------------------------------------------------------------

def _mappable(target: str) -> bool:
    return target in INPUT_FIELDS or (target.startswith(CUSTOM_PREFIX)
                                      and len(target) > len(CUSTOM_PREFIX))


def _header_field(header: str) -> str | None:
    name = re.sub(r"[\s\-]+", "_", header.strip().lower())
    name = HEADER_ALIASES.get(name, name)
    return name if _mappable(name) and name != "custom_fields" else None


def csv_mapping(mapping: dict[str, str] | None, header: list[str], has_header: bool
                ) -> dict[str, str]:
    """The plan's CSV header -> contact field map. Without a header the columns are named
    column1..columnN and a mapping key may be the 1-based position ("1") or that name."""
    if mapping is None:
        if not has_header:
            raise InvalidRequest("mapping: is required when has_header is false (map column "
                                 'positions to fields, e.g. {"1": "email"})', field="mapping",
                                 rule="required")
        result = {h: f for h in header if (f := _header_field(h))}
    else:
        result = {}
        claimed: dict[str, str] = {}
        for source, target in mapping.items():
            column = source
            if not has_header and source.strip().isdigit():
                column = f"column{int(source)}"
            if column not in header:
                where = (f"is not a column of the CSV header ({', '.join(header)})" if has_header
                         else f"is not a column position (1..{len(header)})")
                raise InvalidRequest(f"mapping.{source}: '{source}' {where}",
                                     field=f"mapping.{source}", rule="column")
            if not _mappable(target) or target == "custom_fields":
                raise InvalidRequest(
                    f"mapping.{source}: '{target}' is not a contact field (one of "
                    f"{', '.join(INPUT_FIELDS[:-3])}, tags, created_date or "
                    f"{CUSTOM_PREFIX}<name>)", field=f"mapping.{source}", rule="field")
            if target in claimed:
                raise InvalidRequest(f"mapping.{source}: '{target}' is already mapped from "
                                     f"'{claimed[target]}'", field=f"mapping.{source}",
                                     rule="unique")
            claimed[target] = source
            result[column] = target
    if not set(IDENTIFYING) & set(result.values()):
        raise InvalidRequest("mapping: map a CSV column to email or phone (rows are matched on "
                             "them)", field="mapping", rule="identifier")
    return result


# ---- answers --------------------------------------------------------------------------------

def contact_id(seed: int, workspace: str, key: str) -> str:
    return uuid_for(seed, workspace, "leadlex-contact", key)


def display_names(data: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """full, first, last as shown: stored names, else derived from the email local part."""
    full, first, last = data.get("full_name"), data.get("first_name"), data.get("last_name")
    if not full and data.get("email"):
        first, last = names_from_email(str(data["email"]))
        full = " ".join(p for p in (first, last) if p)
    return str(full or data.get("email") or data.get("phone") or ""), first, last


def created_at(lead: dict[str, Any]) -> float:
    return float(lead["data"].get("created_epoch") or lead["created_at"])


def created_view(seed: int, workspace: str, lead: dict[str, Any]) -> dict[str, Any]:
    """CreatedContact / BulkCreatedContact."""
    data = lead["data"]
    full, first, last = display_names(data)
    return {"id": contact_id(seed, workspace, lead["key"]), "first_name": first,
            "last_name": last, "full_name": full, "email": data.get("email"),
            "priority": data.get("priority"),
            "created_date": iso(created_at(lead), millis=False)}


def list_view(seed: int, workspace: str, lead: dict[str, Any]) -> dict[str, Any]:
    """ContactListItem."""
    data = lead["data"]
    return {"id": contact_id(seed, workspace, lead["key"]), "full_name": display_names(data)[0],
            "email": data.get("email"), "phone": data.get("phone"),
            "job_title": data.get("job_title"), "company_name": data.get("company"),
            "linkedin_url": data.get("linkedin_url"),
            "created_at": iso(created_at(lead), millis=False),
            "updated_date": iso(float(lead["updated_at"]), millis=False)}
