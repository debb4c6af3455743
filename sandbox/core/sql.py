"""Driver-level statements for the request path: a Core statement compiled once per dialect and
run on the DB-API cursor, with the column types' own conversions.

SQLAlchemy's execution machinery costs ~25 us a statement on top of the ~3 us SQLite itself
takes; the request path runs about ten statements, so on SQLite (the default store) the hot
statements skip it. Any other database runs the same statement through SQLAlchemy, unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, Insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable

Row = dict[str, Any]
Processor = Callable[[Any], Any] | None


class _Compiled:
    """One statement as the SQLite driver runs it: the SQL, where each parameter comes from and
    how it is converted, and how result columns are converted back."""

    def __init__(self, stmt: Executable, dialect: Dialect, keys: Sequence[str] | None) -> None:
        compiled = stmt.compile(  # type: ignore[attr-defined]
            dialect=dialect, column_keys=list(keys) if keys else None)
        self.sql = str(compiled)
        self.params: list[tuple[str, Any, Processor]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            # A literal in the statement (`remaining > 0`) is a bind with its value attached.
            literal = bind.value if not bind.required and bind.callable is None else _REQUIRED
            self.params.append((bind.key, literal,
                                bind.type.dialect_impl(dialect).bind_processor(dialect)))
        # Most statements take every parameter from the values given: one C call fetches them
        # all (an INSERT of a job has 23), then the few that need converting are converted.
        keys = [key for key, _, _ in self.params]
        required = all(literal is _REQUIRED for _, literal, _ in self.params)
        self._fetch = itemgetter(*keys) if required and len(keys) > 1 else None
        self._convert = [(i, p) for i, (_, _, p) in enumerate(self.params) if p is not None]
        # What SQLAlchemy's own results are built from (`exported_columns` can be stale on a
        # statement copied by `.returning()` after the original was compiled).
        columns = [(entry.keyname, entry.type) for entry in compiled._result_columns]
        self.columns = [name for name, _ in columns]
        self.converters = [(i, p) for i, (_, type_) in enumerate(columns)
                           if (p := type_.dialect_impl(dialect).result_processor(dialect, None))
                           is not None]

    def args(self, values: Row) -> list[Any]:
        if self._fetch is not None:
            out = list(self._fetch(values))
        else:
            out = [values[key] if literal is _REQUIRED else values.get(key, literal)
                   for key, literal, _ in self.params]
        for i, process in self._convert:
            out[i] = process(out[i])
        return out

    def row(self, raw: Sequence[Any]) -> Row:
        if self.converters:
            raw = list(raw)
            for i, process in self.converters:
                raw[i] = process(raw[i])
        return dict(zip(self.columns, raw, strict=True))


_REQUIRED = object()


class Fast:
    """A prebuilt statement run on the driver where that is SQLite, else through SQLAlchemy.

    An INSERT is compiled per set of keys given: every column with a Python-side default must
    then be given explicitly (checked), because the driver path does not apply defaults."""

    def __init__(self, stmt: Executable) -> None:
        self.stmt = stmt
        self._cache: dict[tuple[int, tuple[str, ...] | None], _Compiled] = {}

    def _compiled(self, conn: Connection, values: Row) -> _Compiled | None:
        dialect = conn.dialect
        if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
            return None
        keys = tuple(values) if isinstance(self.stmt, Insert) else None
        hit = self._cache.get((id(dialect), keys))
        if hit is None:
            if keys is not None:
                _check_defaults(self.stmt, keys)
            hit = self._cache[(id(dialect), keys)] = _Compiled(self.stmt, dialect, keys)
        return hit

    def all(self, conn: Connection, values: Row) -> list[Row]:
        compiled = self._compiled(conn, values)
        if compiled is None:
            return [dict(r) for r in conn.execute(self.stmt, values).mappings()]
        cursor = conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            compiled.sql, compiled.args(values))
        return [compiled.row(r) for r in cursor.fetchall()]

    def first(self, conn: Connection, values: Row) -> Row | None:
        rows = self.all(conn, values)
        return rows[0] if rows else None

    def scalar(self, conn: Connection, values: Row) -> Any:
        row = self.first(conn, values)
        return next(iter(row.values())) if row else None

    def run(self, conn: Connection, values: Row) -> int:
        """Run a statement without results; the number of rows it changed."""
        compiled = self._compiled(conn, values)
        if compiled is None:
            return int(conn.execute(self.stmt, values).rowcount)
        cursor = conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            compiled.sql, compiled.args(values))
        return int(cursor.rowcount)

    def insert(self, conn: Connection, values: Row) -> int:
        """Run an INSERT; the new row's integer primary key."""
        compiled = self._compiled(conn, values)
        if compiled is None:
            result = conn.execute(self.stmt, values)
            return int(result.inserted_primary_key[0])  # type: ignore[index]
        cursor = conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            compiled.sql, compiled.args(values))
        return int(cursor.lastrowid)

    def many(self, conn: Connection, rows: Iterable[Row]) -> int:
        """Run a statement once per set of values; the rows changed in all (-1 where the
        driver does not count them)."""
        batch = list(rows)
        if not batch:
            return 0
        compiled = self._compiled(conn, batch[0])
        if compiled is None:
            return int(conn.execute(self.stmt, batch).rowcount)
        return int(conn.connection.driver_connection.executemany(  # type: ignore[union-attr]
            compiled.sql, [compiled.args(v) for v in batch]).rowcount)


def _check_defaults(stmt: Executable, keys: Sequence[str]) -> None:
    table = getattr(stmt, "table", None)
    missing = [c.key for c in getattr(table, "columns", ())
               if c.default is not None and c.key not in keys]
    if missing:
        raise ValueError(f"driver-level INSERT into {table}: give {missing} explicitly "
                         "(column defaults are not applied on this path)")


def json_text(dialect: Dialect) -> Callable[[Any], str] | None:
    """The text SQLAlchemy's JSON type binds for a value, where that is json.dumps's text (SQLite
    with the default serializer, checked on the type's own bind processor), from a C encoder
    built once: a JSON column may then be bound as that text (Text), serialised once for values
    many rows share and without the type's per-value work. None elsewhere: bind the value."""
    known = _JSON_TEXT.get(id(dialect), _UNSEEN)
    if known is not _UNSEEN:
        return known  # type: ignore[return-value]
    encode = None
    process = JSON().dialect_impl(dialect).bind_processor(dialect)
    if (dialect.name == "sqlite" and dialect.paramstyle == "qmark"
            and getattr(dialect, "_json_serializer", None) is None and c_make_encoder is not None
            and process is not None and process({"a": [1]}) == '{"a": [1]}'):
        c_encode = c_make_encoder(None, json.JSONEncoder().default, encode_basestring_ascii,
                                  None, ": ", ", ", False, False, True)

        def encode(value: Any) -> str:
            return "".join(c_encode(value, 0))
    _JSON_TEXT[id(dialect)] = encode
    return encode


_JSON_TEXT: dict[int, Callable[[Any], str] | None] = {}
_UNSEEN = object()
