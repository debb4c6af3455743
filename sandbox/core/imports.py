"""Import rows: where they come from (CSV or JSON lines), and what each one does to a list.

A job's rows are stored once, raw; settling reads them from a saved offset, so a 20 MB CSV is
never re-parsed from the start and never held twice. Row outcomes are decided by an
`ImportPolicy` (plain data kept in the job's plan), in the order the clock makes them due.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import chain
from typing import Any, Literal

EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                      r"[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ().-]{6,20}$")
# Twilio's documented magic "invalid number"; the sandbox treats it as an invalid SMS number.
INVALID_SMS_NUMBERS = frozenset({"+15005550001"})
FAIL_PREFIXES = ("fail_", "fail-")
# The csv module's own cap on one field (128 KiB): a longer field is refused when the job is
# created (csv.Error), never discovered later while the clock settles the job.
CSV_FIELD_LIMIT = csv.field_size_limit()

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


# ---- sources ------------------------------------------------------------------------------

def encode_jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in rows)


def csv_header(content: str, has_header: bool = True) -> tuple[list[str], int]:
    """The header (or positional names) and the offset of the first data row. Raises
    csv.Error for CSV that cannot be read (a broken quote, a field over CSV_FIELD_LIMIT)."""
    reader_lines = _OffsetLines(content, 0)
    reader = csv.reader(reader_lines, strict=True)
    first = next(reader, None)
    if first is None:
        return [], len(content)
    if not has_header:
        return [f"column{i + 1}" for i in range(len(first))], 0
    return [h.strip().lstrip("\ufeff") for h in first], reader_lines.offset


def count_csv_rows(content: str, offset: int) -> int:
    """Data rows from `offset`, counted exactly as `read_rows` will read them (blank records,
    including lines of empty cells such as `,,`, are not rows), so a job's total is reachable.
    Raises csv.Error where `read_rows` would: the whole text is checked before a job exists,
    since a job whose rows cannot be read would break every later settle of its workspace."""
    text = content[offset:]
    if '"' not in text and text.count("\r") == text.count("\r\n"):
        # Nothing quoted: one record per line, blank when only commas and spaces remain. Five
        # times faster than the csv module on a 20 MB upload answered inside the request.
        lines = text.split("\n")
        if max(map(len, lines), default=0) <= CSV_FIELD_LIMIT:
            return sum(1 for line in lines if line.replace(",", "").strip())
    return sum(1 for row in csv.reader(io.StringIO(text), strict=True) if not _blank(row))


def _blank(record: list[str]) -> bool:
    return all(not c.strip() for c in record)


def count_jsonl_rows(content: str) -> int:
    return content.count("\n")


class _OffsetLines:
    """Feeds csv.reader line by line and remembers how far it has read (csv reads no further
    than the record it returns, so the offset after a record is exact)."""

    def __init__(self, text: str, offset: int) -> None:
        self.text = text
        self.offset = offset

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.offset >= len(self.text):
            raise StopIteration
        end = self.text.find("\n", self.offset)
        end = len(self.text) if end < 0 else end + 1
        line = self.text[self.offset:end]
        self.offset = end
        return line


class _BlockLines:
    """Feeds csv.reader the lines from an offset as _OffsetLines does (each with its "\n"), but
    split a block at a time in C instead of found one at a time in Python, and tells the offset
    after the first n lines it handed out (csv.reader counts them: `line_num`)."""

    def __init__(self, text: str, offset: int, count: int) -> None:
        self.text = text
        # About the text of `count` rows a block (at least a line): reading a few rows splits
        # a few lines, not the rest of a 20 MB text.
        self.size = min(max(count * 128, 256), 1 << 18)
        self.start = offset  # where the block being handed out starts in the text
        self.block: list[str] = []
        self.before = 0  # lines handed out from the blocks before it
        self.lines = chain.from_iterable(self._blocks())

    def _blocks(self) -> Iterator[list[str]]:
        text, pos = self.text, self.start
        while pos < len(text):
            end = text.find("\n", pos + self.size - 1)
            end = len(text) if end < 0 else end + 1
            chunk = text[pos:end]
            lines = chunk.splitlines(keepends=True)
            # splitlines also ends lines at "\r" (alone), "\x0b", "\u2028"...: where it found
            # more lines than "\n"s end, split on "\n" only.
            if len(lines) != chunk.count("\n") + (not chunk.endswith("\n")):
                pieces = chunk.split("\n")
                rest = pieces.pop()
                lines = [piece + "\n" for piece in pieces] + ([rest] if rest else [])
            self.before += len(self.block)
            self.start, self.block = pos, lines
            yield lines
            pos = end

    def offset_after(self, handed: int) -> int:
        return self.start + sum(map(len, self.block[:handed - self.before]))


def read_rows(fmt: str, content: str, offset: int, count: int, plan: dict[str, Any]
              ) -> tuple[list[dict[str, Any]], int]:
    """Up to `count` rows from `offset`; returns the rows and the offset after them."""
    rows: list[dict[str, Any]] = []
    if count <= 0:
        return rows, offset
    if fmt == "jsonl":
        pos = offset
        while len(rows) < count and pos < len(content):
            end = content.find("\n", pos)
            end = len(content) if end < 0 else end
            rows.append(json.loads(content[pos:end]))
            pos = end + 1
        return rows, pos
    header: list[str] = plan.get("csv_header", [])
    mapping: dict[str, str] = plan.get("csv_mapping") or {h: h for h in header}
    # Which column lands in which field, worked out once rather than once per cell.
    columns = [(i, target) for i, name in enumerate(header) if (target := mapping.get(name))]
    width = len(header)
    lines = _BlockLines(content, offset, count)
    reader = csv.reader(lines.lines, strict=True)
    for record in reader:
        if len(record) != width:
            if _blank(record):
                continue
            row = {target: record[i].strip() for i, target in columns if i < len(record)}
            row["__csv_error__"] = (f"expected {width} columns, found {len(record)}")
        else:
            row = {target: record[i].strip() for i, target in columns}
            if not any(row.values()) and _blank(record):
                continue
        rows.append(row)
        if len(rows) >= count:
            break
    return rows, lines.offset_after(reader.line_num)


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
    out = dict(current)
    for name, value in row.items():
        if value is None or (isinstance(value, str) and not value):
            continue
        if not fill_only and not isinstance(value, dict):
            out[name] = value  # what the branches below come to, without looking it up
            continue
        mine = out.get(name)
        if isinstance(mine, dict) and isinstance(value, dict):
            out[name] = _combine(mine, value, fill_only=fill_only)
        elif not fill_only or mine in (None, ""):
            out[name] = value
    return out
