"""Import sources: a job's rows as stored (CSV or JSON lines), counted and read from an offset.

Rows are counted when the job is created and stored once, raw; settling reads them from a
saved offset, so a 20 MB CSV is never re-parsed from the start and never held twice.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from itertools import chain
from typing import Any, NamedTuple

# The csv module's own cap on one field (128 KiB): a longer field is refused when the job is
# created (csv.Error), never discovered later while the clock settles the job.
CSV_FIELD_LIMIT = csv.field_size_limit()


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
    """Up to `count` rows from `offset`; returns the rows (the caller's to change) and the
    offset after them."""
    return _read(fmt, content, offset, count, plan, None, copy=True)


def read_ahead(fmt: str, content: str, offset: int, count: int, plan: dict[str, Any]
               ) -> tuple[list[dict[str, Any]], list[int]]:
    """Up to `count` rows from `offset`, and the offset after each (where a read of the rows
    after it starts). The rows may be shared with a cache: copy one before changing it."""
    ends: list[int] = []
    rows, _end = _read(fmt, content, offset, count, plan, ends, copy=False)
    return rows, ends


def _read(fmt: str, content: str, offset: int, count: int, plan: dict[str, Any],
          ends: list[int] | None, *, copy: bool) -> tuple[list[dict[str, Any]], int]:
    """`read_rows`; `ends`, when given, gets the offset after each row read."""
    if count <= 0:
        return [], offset
    if fmt == "jsonl":
        rows: list[dict[str, Any]] = []
        pos = offset
        while len(rows) < count and pos < len(content):
            end = content.find("\n", pos)
            end = len(content) if end < 0 else end
            rows.append(json.loads(content[pos:end]))
            pos = end + 1
            if ends is not None:
                ends.append(pos)
        return rows, pos
    if len(content) <= PARSED_UP_TO:
        parsed = _parsed(content, offset, plan)
        if parsed is not None:
            start = parsed.starts.get(offset)
            if start is not None:
                stop = start + count
                out = parsed.rows[start:stop]
                if ends is not None:
                    ends.extend(parsed.ends[start:stop])
                return ([dict(row) for row in out] if copy else out,
                        parsed.ends[stop - 1] if stop <= len(parsed.rows) else parsed.end)
    return _read_csv(content, offset, count, plan, ends)


# A small CSV source (bench A's are 10 rows) is parsed to its end once and its rows kept by the
# offset each starts at: a settle in slices reads such a job a row at a time, and parsing from
# an offset cost ~20 us a read. Keyed by the text and the plan (its header and mapping); the
# plan object is kept with its rows, so its id is not reused while the entry lives.
PARSED_UP_TO = 4096
_PARSED_MAX = 4096


class _Parsed(NamedTuple):
    plan: dict[str, Any]
    rows: list[dict[str, Any]]
    ends: list[int]  # the offset after each row, as reading up to it returns
    end: int  # the offset after reading past the last row
    starts: dict[int, int]  # offset -> the index of the row a read from there returns first


_PARSED: dict[tuple[str, int], _Parsed] = {}


def _parsed(content: str, offset: int, plan: dict[str, Any]) -> _Parsed | None:
    key = (content, id(plan))
    hit = _PARSED.get(key)
    if hit is not None and hit.plan is plan and offset in hit.starts:
        return hit
    ends: list[int] = []
    try:
        rows, end = _read_csv(content, offset, len(content) + 1, plan, ends)
    except (csv.Error, ValueError):
        return None  # the caller's own read raises, or not, as it always did
    starts = {offset: 0}
    starts.update((e, i + 1) for i, e in enumerate(ends))
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    hit = _PARSED[key] = _Parsed(plan, rows, ends, end, starts)
    return hit


def _read_csv(content: str, offset: int, count: int, plan: dict[str, Any],
              ends: list[int] | None) -> tuple[list[dict[str, Any]], int]:
    rows: list[dict[str, Any]] = []
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
        if ends is not None:
            ends.append(lines.offset_after(reader.line_num))
        if len(rows) >= count:
            break
    return rows, lines.offset_after(reader.line_num)
