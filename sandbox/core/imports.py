"""Import rows: what each one does to a list (where rows come from is `sources`, re-exported).

Row outcomes are decided by an `ImportPolicy` (plain data kept in the job's plan), in the
order the clock makes them due.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Literal

from sandbox.core.sources import CSV_FIELD_LIMIT as CSV_FIELD_LIMIT
from sandbox.core.sources import count_csv_rows as count_csv_rows
from sandbox.core.sources import count_jsonl_rows as count_jsonl_rows
from sandbox.core.sources import csv_header as csv_header
from sandbox.core.sources import encode_jsonl as encode_jsonl
from sandbox.core.sources import read_rows as read_rows

EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                      r"[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ().-]{6,20}$")
# Twilio's documented magic "invalid number"; the sandbox treats it as an invalid SMS number.
INVALID_SMS_NUMBERS = frozenset({"+15005550001"})
FAIL_PREFIXES = ("fail_", "fail-")

OnExisting = Literal["skip", "update", "update_if_changed", "merge", "overwrite"]
Outcome = Literal["added", "updated", "unchanged", "skipped", "blocked", "failed"]


@dataclass(frozen=True)
class ImportPolicy:
    """How rows are matched and what happens to a match. Stored as JSON in the job's plan."""

    key_fields: tuple[str, ...] = ("email",)
    # Also match existing leads on this field (Leadlex: "matching email or phone").
    alt_key_field: str | None = None
    on_existing: OnExisting = "skip"
    email_field: str | None = "email"
    phone_field: str | None = None
    # "fail": a bad address fails the row; "count": the row is kept and the bad value counted.
    invalid_email: Literal["fail", "count"] = "fail"
    check_block_list: bool = False
    tags: tuple[str, ...] = ()
    # Fields an existing lead keeps whatever a row says (e.g. when a profile was first seen).
    keep: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportPolicy:
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in data.items()}
        return cls(**values)


@dataclass(slots=True)
class RowResult:
    index: int
    outcome: Outcome
    key: str | None
    code: str | None = None
    message: str | None = None
    fail_job: str | None = None
    invalid_email: bool = False
    invalid_sms: bool = False


@dataclass
class ListState:
    """The slice of a list that a batch of rows touches, loaded once per batch."""

    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_alt: dict[str, str] = field(default_factory=dict)
    blocked: frozenset[str] = frozenset()
    inserts: dict[str, dict[str, Any]] = field(default_factory=dict)
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per inserted key, (alternative key field, normalised value) as the row was added; dropped
    # when a later row replaces the data, so whoever writes the insert need not re-derive it.
    inserted_alt: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


# ---- decisions ----------------------------------------------------------------------------

def row_keys(policy: ImportPolicy, row: dict[str, Any]) -> tuple[str | None, str | None]:
    """The row's key and its normalised alternative key (what `decide` matches on)."""
    return key_reader(policy)(row)


def key_reader(policy: ImportPolicy) -> Callable[[dict[str, Any]], tuple[str | None, str | None]]:
    """`row_keys` for one policy, with each field's normaliser looked up once, not per row."""
    fields = tuple((name, _normaliser(name)) for name in policy.key_fields)
    alt_field = policy.alt_key_field
    alt_key = _normaliser(alt_field) if alt_field else _plain_key

    def keys(row: dict[str, Any]) -> tuple[str | None, str | None]:
        key = None
        for name, normalised in fields:
            value = row.get(name)
            if value is not None and value != "":
                key = normalised(value)
                break
        alt = row.get(alt_field) if alt_field else None
        return key, alt_key(alt) if alt else None

    return keys


def row_key(policy: ImportPolicy, row: dict[str, Any]) -> str | None:
    for name in policy.key_fields:
        value = row.get(name)
        if value is not None and value != "":
            return normalise(name, value)
    return None


_NOT_PHONE = re.compile(r"[^0-9+]")
# ASCII text loses the same characters to a byte-level delete, for half the regex's cost.
_NOT_PHONE_ASCII = bytes(b for b in range(128) if chr(b) not in "0123456789+")


def _email_key(value: Any) -> str:
    return (value if type(value) is str else str(value)).strip().lower().lstrip("@")


def _phone_key(value: Any) -> str:
    text = (value if type(value) is str else str(value)).strip()
    if text.isascii():
        return text.encode().translate(None, _NOT_PHONE_ASCII).decode()
    return _NOT_PHONE.sub("", text)


def _plain_key(value: Any) -> str:
    return (value if type(value) is str else str(value)).strip()


@lru_cache(maxsize=256)
def _normaliser(name: str) -> Callable[[Any], str]:
    if "email" in name.lower() or name in {"username", "Email"}:
        return _email_key
    return _phone_key if "phone" in name.lower() else _plain_key


def normalise(name: str, value: Any) -> str:
    # Runs several times per imported row: the field name's kind is looked up, not re-derived.
    return _normaliser(name)(value)


def domain_of(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower() if "@" in email else ""


def fail_message(value: str) -> str:
    """`fail_rate_limit` -> 'Rate limit exceeded'; `fail-quota-reached` -> 'Quota reached'."""
    slug = value.split("@", 1)[0][5:].replace("-", " ").replace("_", " ").strip()
    if slug in {"rate limit", "ratelimit", "rate limited"}:
        return "Rate limit exceeded"
    return (slug[:1].upper() + slug[1:]) if slug else "Import failed"


def is_fail_value(value: str | None) -> bool:
    return bool(value) and str(value).lower().startswith(FAIL_PREFIXES)


def decide(policy: ImportPolicy, index: int, row: dict[str, Any], state: ListState,
           keys: tuple[str | None, str | None] | None = None
           ) -> tuple[RowResult, dict[str, Any] | None]:
    """What one row does, given the list as it stands. Returns the result and the lead data to
    store (None when nothing is written). `keys`: `row_keys(policy, row)`, when the caller has
    already worked them out."""
    if "__csv_error__" in row:
        return RowResult(index, "failed", None, "invalid_row", row.pop("__csv_error__")), None
    if "__unresolvable__" in row:
        # A resolver may name the failure (`__error_code__`); the vendor shows that code.
        code = str(row.pop("__error_code__", "unresolvable"))
        return RowResult(index, "failed", None, code, row.pop("__unresolvable__")), None
    key = row_key(policy, row) if keys is None else keys[0]
    magic = None
    for value in (key, row.get("username"), row.get("email"), row.get("Email")):
        # Only "F" and "f" lower-case to an "f": most values are ruled out by their first letter.
        if isinstance(value, str) and value[:1] in "fF" and value.lower().startswith(
                FAIL_PREFIXES):
            magic = value
            break
    if magic is not None:
        return RowResult(index, "failed", key, "job_failed", fail_message(magic),
                         fail_job=fail_message(magic)), None
    invalid_email = invalid_sms = False
    email = ""
    if policy.email_field:
        value = row.get(policy.email_field)
        email = (value if type(value) is str else str(value)).strip() if value else ""
        if email and not EMAIL_RE.match(email):
            invalid_email = True
            if policy.invalid_email == "fail":
                return RowResult(index, "failed", key, "invalid_email",
                                 f"'{email}' is not a valid email address",
                                 invalid_email=True), None
    if policy.phone_field:
        value = row.get(policy.phone_field)
        phone = (value if type(value) is str else str(value)).strip() if value else ""
        if phone and (phone in INVALID_SMS_NUMBERS or not PHONE_RE.match(phone)):
            invalid_sms = True
    if key is None:
        wanted = " or ".join(policy.key_fields)
        return RowResult(index, "failed", None, "missing_identifier",
                         f"row has no {wanted}", invalid_email=invalid_email,
                         invalid_sms=invalid_sms), None
    if policy.check_block_list and email and (
            email.lower() in state.blocked or domain_of(email) in state.blocked):
        return RowResult(index, "blocked", key, "blocked",
                         f"'{email}' is on the global block list"), None
    if policy.tags:
        merged_tags = list(dict.fromkeys([*row.get("tags", []), *policy.tags]))
        row = {**row, "tags": merged_tags}
        if policy.alt_key_field == "tags":
            keys = None  # the alternative key is the merged value
    existing_key = key if key in state.by_key else None
    alt_key = None
    if existing_key is None and policy.alt_key_field:
        if keys is not None:
            alt_key = keys[1]
        else:
            alt = row.get(policy.alt_key_field)
            alt_key = normalise(policy.alt_key_field, alt) if alt else None
        if alt_key is not None:
            existing_key = state.by_alt.get(alt_key)
    if existing_key is None:
        state.by_key[key] = row
        state.inserts[key] = row
        state.inserted_alt[key] = (policy.alt_key_field, alt_key)
        if alt_key is not None:
            state.by_alt[alt_key] = key
        return RowResult(index, "added", key, None, None, None, invalid_email, invalid_sms), row
    flags: dict[str, Any] = {"invalid_email": invalid_email, "invalid_sms": invalid_sms}
    current = state.by_key[existing_key]
    if policy.on_existing == "skip":
        return RowResult(index, "skipped", existing_key, "duplicate",
                         "already exists", **flags), None
    if policy.on_existing == "overwrite":
        merged = {**row}
    else:
        merged = _combine(current, row, fill_only=policy.on_existing == "merge")
    merged.update({f: current[f] for f in policy.keep if f in current})
    if policy.on_existing in {"update_if_changed", "merge"} and merged == current:
        return RowResult(index, "unchanged", existing_key, **flags), None
    state.by_key[existing_key] = merged
    if existing_key in state.inserts:
        state.inserts[existing_key] = merged
        state.inserted_alt.pop(existing_key, None)
    else:
        state.updates[existing_key] = merged
    return RowResult(index, "updated", existing_key, **flags), merged


def _combine(current: dict[str, Any], row: dict[str, Any], *, fill_only: bool
             ) -> dict[str, Any]:
    """The row's non-empty values over the lead's (`fill_only`: only where the lead has none).
    Nested objects (custom columns) combine field by field, so a row naming some columns
    leaves the others alone."""
    if not fill_only:
        # Most values simply replace the lead's: one merge, then only the few values that
        # do not (empty ones, nested objects) looked at one by one.
        out = {**current, **row}
        # The values that do not simply replace the lead's: the falsy ones (`not v` rules
        # most values out in one test; 0, False and [] get through it and then replace the
        # lead's like any other value) and nested objects. Rows hold what JSON and CSV decode
        # to, so a nested object is a dict itself, never a subclass (an exact class test is a
        # third cheaper than isinstance).
        for name in [k for k, v in row.items() if not v or v.__class__ is dict]:
            value = row[name]
            if isinstance(value, dict):
                mine = current.get(name)
                out[name] = (_combine(mine, value, fill_only=False) if isinstance(mine, dict)
                             else value)
            elif value is None or value == "":
                if name in current:
                    out[name] = current[name]
                else:
                    del out[name]
        return out
    out = dict(current)
    for name, value in row.items():
        if value is None or (isinstance(value, str) and not value):
            continue
        mine = out.get(name)
        if isinstance(mine, dict) and isinstance(value, dict):
            out[name] = _combine(mine, value, fill_only=True)
        elif mine in (None, ""):
            out[name] = value
    return out
