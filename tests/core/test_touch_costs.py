"""The per-job shortcuts of a settle in slices answer what the plain paths answer: rows read
from a kept parse, and the job write's JSON text."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine

from sandbox.core import sources
from sandbox.core import store as t
from sandbox.core.sql import json_text

CSV = 'email,name\r\na@x.io,A\n\n,\nb@x.io\n"c@x.io","C, Jr"\n  ,  \nd@x.io,D\n\n'


def _uncached(content: str, offset: int, count: int, plan: dict[str, Any]
              ) -> tuple[list[dict[str, Any]], int]:
    return sources._read_csv(content, offset, count, plan, None)


@pytest.mark.parametrize("mapping", [None, {"email": "email"}])
def test_reads_from_any_row_offset_match_a_fresh_parse(mapping: dict[str, str] | None) -> None:
    header, start = sources.csv_header(CSV)
    plan = {"csv_header": header, "csv_mapping": mapping}
    offset, seen = start, 0
    while True:
        for count in (1, 2, 3, 10):
            assert sources.read_rows("csv", CSV, offset, count, plan) == \
                _uncached(CSV, offset, count, plan)
        rows, offset = sources.read_rows("csv", CSV, offset, 1, plan)
        if not rows:
            break
        seen += 1
    assert seen == 4


def test_a_kept_row_handed_out_is_a_copy() -> None:
    header, start = sources.csv_header(CSV)
    plan = {"csv_header": header, "csv_mapping": None}
    rows, _ = sources.read_rows("csv", CSV, start, 1, plan)
    rows[0]["email"] = "changed"
    assert sources.read_rows("csv", CSV, start, 1, plan)[0][0]["email"] == "a@x.io"


def test_the_job_write_text_is_what_the_json_type_writes() -> None:
    dialect = create_engine("sqlite://").dialect
    encode = json_text(dialect)
    assert encode is not None
    process = t.jobs.c.counts.type.dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    for value in ({}, [], {"added": 3, "failed": 1, "invalid_email": 0},
                  [{"row_number": 2, "code": "invalid_email", "message": "é \"q\" \u2028"}],
                  {"x": 1.5, "y": None, "z": True}):
        assert encode(value) == process(value)
