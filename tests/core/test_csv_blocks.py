"""CSV rows read a block of lines at a time: the same rows, and the same resume offsets, as
reading line by line, whatever the line ends in the text and wherever a read stops."""

from __future__ import annotations

import csv
import re
from typing import Any

import pytest

from sandbox.core.imports import csv_header, read_rows

HEADER = "email,name,note\n"


def _csv(rows: int, odd: str) -> str:
    """Rows of about 60 characters (many 4 KiB blocks), with quoted line breaks, blank lines,
    and `odd` (a character str.splitlines also ends a line at) inside some values."""
    out = [HEADER]
    for i in range(rows):
        if i % 97 == 5:
            out.append(f'p{i}@example.com,"two\nlines {i}",x\n')
        elif i % 89 == 7:
            out.append("\n,,\n")
        elif i % 13 == 3:
            out.append(f"p{i}@example.com,\"Name{odd}{i}\",note {i}\n")
        else:
            out.append(f"p{i}@example.com,Person {i:05d} Example,a plain note {i}\n")
    return "".join(out)


def _by_lines(content: str, offset: int) -> list[list[str]]:
    """The records line by line, split on "\\n" alone (what settling has always read)."""
    lines = re.split("(?<=\n)", content[offset:])
    return [r for r in csv.reader([line for line in lines if line], strict=True)
            if any(c.strip() for c in r)]


@pytest.mark.parametrize("odd", ["", "\r", "\x0b", "\x1c", "\x85", "\u2028"])
@pytest.mark.parametrize("chunk", [1, 7, 500, 10**6])
def test_rows_and_offsets_match_a_line_by_line_read(odd: str, chunk: int) -> None:
    content = _csv(3000, odd)
    header, offset = csv_header(content)
    plan = {"csv_header": header}
    rows: list[dict[str, Any]] = []
    offsets = [offset]
    while True:
        got, offset = read_rows("csv", content, offset, chunk, plan)
        if not got:
            break
        assert len(got) == chunk or offset == len(content)
        rows.extend(got)
        offsets.append(offset)
    assert offset == len(content)
    expected = [dict(zip(header, (c.strip() for c in r), strict=True))
                for r in _by_lines(content, csv_header(content)[1])]
    assert rows == expected
    # Every offset handed back is where the next row starts (or the end).
    for start in offsets[1:-1:17]:
        assert content[start - 1] == "\n"
        resumed, _ = read_rows("csv", content, start, 3, plan)
        assert resumed == expected[offsets.index(start) * chunk:][:3]
