"""A running job's rows as a ticker round reads them ahead of its progress: the rows, where a
read after each starts, when each falls due, and whether they may fold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.core.applying import FOLDABLE, ROW_RESOLVERS, row_keys_reader
from sandbox.core.imports import ImportPolicy

# Rows of a running job parsed at a time (a 10-row CSV is parsed once, whatever this is).
READ_AHEAD = 256


class Ahead:
    """A running job's rows read ahead of its progress: row `start + k` is `rows[k]`, a read
    after it starts at `ends[k]`, and it falls due at `dues[k]` (one more due than rows: the
    next row's, for the job's place in the stream). `folds`: its rows may be handed to
    `decide_rows` unresolved (see `applying.decide_rows`) once their keys are known."""

    __slots__ = ("dues", "ends", "folds", "keys", "policy", "resolve", "rows", "start")

    def __init__(self, start: int, rows: list[dict[str, Any]], ends: list[int],
                 dues: list[float], resolve: Callable[[dict[str, Any], float], dict[str, Any]]
                 | None, policy: ImportPolicy, resolver: str) -> None:
        self.start, self.rows, self.ends, self.dues = start, rows, ends, dues
        self.resolve, self.policy, self.keys = resolve, policy, row_keys_reader(policy)
        # A later row of a lead overwrites all an earlier one wrote when the row's values
        # replace the lead's and nothing else decides which lead a row updates; rows resolved
        # at two instants must then differ only in values no merge or key looks at.
        self.folds = (policy.on_existing in {"update", "overwrite"}
                      and not policy.alt_key_field and not policy.tags
                      and (not resolver or resolver in FOLDABLE or resolver in ROW_RESOLVERS))
