"""Lists, campaigns and their leads: the containers imports write into, shared by all vendors."""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, compress, islice, repeat
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.engine import Dialect

from sandbox.core import store as t
from sandbox.core.errors import NotFound
from sandbox.core.sql import Fast, json_text

# Built once: most vendor requests look a list up.
_GET = Fast(select(t.lists).where(
    t.lists.c.workspace == bindparam("ws"), t.lists.c.vendor == bindparam("vendor"),
    t.lists.c.kind == bindparam("kind"), t.lists.c.id == bindparam("list_id")))


def get(conn: Connection, workspace: str, vendor: str, list_id: str | int, *,
        kind: str = "list", field: str = "listId", noun: str = "list") -> dict[str, Any]:
    row = _GET.first(conn, {"ws": workspace, "vendor": vendor, "kind": kind,
                            "list_id": str(list_id)})
    if row is None:
        raise NotFound(f"{noun} '{list_id}' not found", field=field)
    return row


def get_or_create(conn: Connection, workspace: str, vendor: str, list_id: str, *, kind: str,
                  name: str, at: float) -> dict[str, Any]:
    try:
        return get(conn, workspace, vendor, list_id, kind=kind)
    except NotFound:
        return create(conn, workspace, vendor, list_id=list_id, kind=kind, name=name, at=at)


def create(conn: Connection, workspace: str, vendor: str, *, list_id: str, kind: str,
           name: str, at: float, description: str | None = None,
           data: dict[str, Any] | None = None) -> dict[str, Any]:
    conn.execute(insert(t.lists).values(
        workspace=workspace, vendor=vendor, kind=kind, id=list_id, name=name,
        description=description, created_at=at, data=data or {}, lead_count=0))
    return get(conn, workspace, vendor, list_id, kind=kind)


def all_of(conn: Connection, workspace: str, vendor: str, *, kind: str = "list",
           name_contains: str | None = None, offset: int = 0, limit: int | None = None
           ) -> list[dict[str, Any]]:
    q = select(t.lists).where(t.lists.c.workspace == workspace, t.lists.c.vendor == vendor,
                              t.lists.c.kind == kind)
    if name_contains:
        q = q.where(func.lower(t.lists.c.name).contains(name_contains.lower()))
    q = q.order_by(t.lists.c.pk).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def name_taken(conn: Connection, workspace: str, vendor: str, name: str, kind: str = "list"
               ) -> bool:
    return conn.execute(select(t.lists.c.pk).where(
        t.lists.c.workspace == workspace, t.lists.c.vendor == vendor, t.lists.c.kind == kind,
        func.lower(t.lists.c.name) == name.lower())).first() is not None


def leads(conn: Connection, list_pk: int, *, offset: int = 0, limit: int = 100,
          newest_first: bool = False) -> list[dict[str, Any]]:
    order = t.leads.c.pk.desc() if newest_first else t.leads.c.pk
    rows = conn.execute(select(t.leads).where(t.leads.c.list_pk == list_pk)
                        .order_by(order).offset(offset).limit(limit)).mappings()
    return [dict(r) for r in rows]


def lead_keys(conn: Connection, list_pk: int) -> set[str]:
    return set(conn.execute(select(t.leads.c.key).where(t.leads.c.list_pk == list_pk)).scalars())


def count_leads(conn: Connection, list_pk: int) -> int:
    return int(conn.execute(select(func.count()).select_from(t.leads).where(
        t.leads.c.list_pk == list_pk)).scalar_one())


# ---- bulk lead access (settling) -----------------------------------------------------------

# Lookups by key are sent in chunks of at most _CHUNK values, each chunk padded (by repeating
# its last value) to one of a few sizes, so that a handful of prebuilt statements serve every
# batch instead of one statement compiled per chunk.
_CHUNK = 512
_SIZES = (4, 16, 64, 256, _CHUNK)
_VALUES = tuple(f"v{i}" for i in range(_CHUNK))
_LOOKUPS: dict[tuple[str, int], Fast] = {}
LEAD_COLUMNS = ("list_pk", "key", "alt_key", "data", "created_at", "updated_at", "job_id")
_UPDATE = Fast(update(t.leads).where(
    t.leads.c.list_pk == bindparam("list_pk"), t.leads.c.key == bindparam("lead_key")).values(
    data=bindparam("new_data", type_=t.leads.c.data.type),
    updated_at=bindparam("moment", type_=t.leads.c.updated_at.type)))


def _lookup(column: str, size: int) -> Fast:
    found = _LOOKUPS.get((column, size))
    if found is None:
        found = _LOOKUPS[(column, size)] = Fast(
            select(t.leads.c.pk, t.leads.c.key, t.leads.c.alt_key, t.leads.c.data).where(
                t.leads.c.list_pk == bindparam("list_pk"),
                t.leads.c[column].in_([bindparam(name) for name in _VALUES[:size]])))
    return found


def matching_leads(conn: Connection, list_pk: int, keys: Iterable[str], alt_keys: Iterable[str]
                   ) -> list[dict[str, Any]]:
    """The list's leads whose key is in `keys` or whose alternative key is in `alt_keys`
    (pk, key, alt_key, data), in pk order."""
    found: dict[int, dict[str, Any]] = {}
    # One indexed lookup per column: an OR of the two makes SQLite scan the whole list.
    for column, values in (("key", list(set(keys))), ("alt_key", list(set(alt_keys)))):
        for start in range(0, len(values), _CHUNK):
            chunk = values[start:start + _CHUNK]
            size = next(s for s in _SIZES if s >= len(chunk))
            params: dict[str, Any] = dict(zip(_VALUES, chunk, strict=False))
            params.update(dict.fromkeys(_VALUES[len(chunk):size], chunk[-1]))
            params["list_pk"] = list_pk
            for lead in _lookup(column, size).all(conn, params):
                found[lead["pk"]] = lead
    return [found[pk] for pk in sorted(found)]


def insert_leads(conn: Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert leads given as tuples in LEAD_COLUMNS order (`data` a dict), in that order (the
    leads' pks follow it)."""
    dialect = conn.dialect
    if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
        conn.execute(insert(t.leads), [dict(zip(LEAD_COLUMNS, row, strict=True)) for row in rows])
        return
    one, several, encode = _sqlite_insert(dialect)
    driver = conn.connection.driver_connection
    last: list[Any] = []  # the values of the last, short group
    driver.executemany(several, _groups(rows, encode, last))  # type: ignore[union-attr]
    width = len(LEAD_COLUMNS)
    driver.executemany(one, (last[i:i + width]  # type: ignore[union-attr]
                             for i in range(0, len(last), width)))


def _groups(rows: Iterable[tuple[Any, ...]], encode: Callable[[Any], Any], last: list[Any]
            ) -> Iterator[list[Any]]:
    """The values of each full group of _ROWS_PER_INSERT leads, one group at a time (a large
    batch is never held twice); those of the last, short group go to `last`."""
    width = len(LEAD_COLUMNS)
    source = iter(rows)
    while True:
        group = list(islice(source, _ROWS_PER_INSERT))
        if any(len(row) != width for row in group):
            raise ValueError(f"a lead is {width} values")
        values = list(chain.from_iterable(group))
        values[_DATA::width] = map(encode, values[_DATA::width])
        if len(group) < _ROWS_PER_INSERT:
            last.extend(values)
            return
        yield values


def update_leads(conn: Connection, list_pk: int, rows: Iterable[tuple[str, Any, float]]) -> None:
    """Replace the data of existing leads: (key, data, updated_at) tuples."""
    _UPDATE.many(conn, [{"list_pk": list_pk, "lead_key": key, "new_data": data, "moment": at}
                        for key, data, at in rows])


# Leads go in _ROWS_PER_INSERT to a statement (one multi-row VALUES): SQLite's work per
# statement run (bind, step, reset, the driver's own) is paid once per 128 leads instead of once
# per lead: the insert of a 137,000-row import takes half the time. 128 x 7 parameters stay
# under the 999 of SQLite builds before 3.32.
_ROWS_PER_INSERT = 128
_DATA = LEAD_COLUMNS.index("data")
_SQLITE_INSERTS: dict[int, tuple[str, str, Callable[[Any], Any]]] = {}


def _sqlite_insert(dialect: Dialect) -> tuple[str, str, Callable[[Any], Any]]:
    """The one-row and the _ROWS_PER_INSERT-row INSERT, and the `data` encoder."""
    known = _SQLITE_INSERTS.get(id(dialect))
    if known is None:
        compiled = insert(t.leads).compile(dialect=dialect, column_keys=list(LEAD_COLUMNS))
        if tuple(compiled.positiontup or ()) != LEAD_COLUMNS:
            raise RuntimeError(f"unexpected lead insert parameters: {compiled.positiontup}")
        one = str(compiled)
        head, values, group = one.rpartition(" VALUES ")
        if group != "(" + ", ".join("?" * len(LEAD_COLUMNS)) + ")":
            raise RuntimeError(f"unexpected lead insert: {one}")
        several = head + values + ", ".join([group] * _ROWS_PER_INSERT)
        known = _SQLITE_INSERTS[id(dialect)] = (one, several, _json_encoder(dialect))
    return known


def _json_encoder(dialect: Dialect) -> Callable[[Any], Any]:
    """What the `data` column's JSON type does to a value before the driver sees it. With the
    dialect's default serializer (json.dumps) the C encoder is built once, not per value
    (sql.json_text): the same text, for a third of the cost on a 137,000-row import."""
    process = t.leads.c.data.type.dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    encode = json_text(dialect)
    if encode is None:
        return process

    def fast(value: Any) -> Any:
        return encode(value) if type(value) is dict else process(value)

    return fast


class KeyFilter:
    """The keys and alternative keys a list may hold, as a one-hash Bloom filter of a byte per
    slot (8 MiB): "no" is certain, "maybe" means look it up. A large settle into a list that
    holds few of its keys (a 137,000-row import) skips the lookups that could only find
    nothing. Bytes rather than bits, so that adding and testing run in C (map, compress)."""

    SIZE = 1 << 23  # slots: ~3% false "maybe" with 270,000 keys, which costs one lookup each

    def __init__(self) -> None:
        self.slots = bytearray(self.SIZE)

    def _slots_of(self, values: Iterable[str]) -> Iterator[int]:
        return map(operator.and_, map(hash, values), repeat(self.SIZE - 1))

    def add(self, values: Iterable[str]) -> None:
        deque(map(self.slots.__setitem__, self._slots_of(values), repeat(1)), maxlen=0)

    def may_hold(self, values: Iterable[str]) -> list[str]:
        """Those of `values` the list may hold."""
        values = list(values)
        return list(compress(values, map(self.slots.__getitem__, self._slots_of(values))))


def key_filter(conn: Connection, list_pk: int, rows: int) -> KeyFilter | None:
    """A KeyFilter of the list's leads, when reading them costs less than `rows` lookups."""
    held = conn.execute(select(t.lists.c.lead_count).where(t.lists.c.pk == list_pk)).scalar()
    if held is None or held > rows:
        return None
    found = KeyFilter()
    for key, alt_key in conn.execute(select(t.leads.c.key, t.leads.c.alt_key).where(
            t.leads.c.list_pk == list_pk)):
        found.add((key,) if alt_key is None else (key, alt_key))
    return found
