"""Ad-hoc read-only Cypher (`lensgraph cypher "…"`): writes refused, rows and time limited.

The store is opened read-only as well, but that alone is not enough: a read-only LadybugDB still runs
LOAD FROM (reads any file), INSTALL (downloads), EXPORT DATABASE (writes files) and `CALL timeout=…`
(lifts our time limit). So the text is checked first: clauses that write or reach outside the store are
refused, and CALL only reaches the catalog procedures listed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lensgraph.errors import InputError, StoreError
from lensgraph.store import Store

REFUSED = frozenset({
    "create", "merge", "set", "delete", "detach", "remove", "drop", "copy", "alter", "install", "uninstall",
    "load", "attach", "export", "import", "use", "begin", "commit", "rollback", "checkpoint", "foreach",
})
READ_ONLY_CALLS = frozenset({  # catalog look-ups, on LadybugDB and Neo4j
    "show_tables", "table_info", "show_connection", "db_version", "show_functions", "current_setting",
    "db.labels", "db.relationshiptypes", "db.propertykeys", "db.schema.visualization",
})
# string literals, quoted names and comments: blanked out before looking for keywords
_OPAQUE = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|//[^\n]*|/\*.*?\*/", re.S)
_WORD = re.compile(r"(?<![\w.$])[A-Za-z_]\w*")
_CALL = re.compile(r"\bCALL\s+([\w.]+)\s*(\()?", re.I)
_TAIL_LIMIT = re.compile(r"\bLIMIT\s+(\S+)\s*$", re.I)


@dataclass
class Result:
    rows: list[dict[str, Any]]
    truncated: bool  # more rows than the limit existed; only the first `limit` are in rows


def _blank(text: str) -> str:
    """The text with literals and comments replaced by spaces, positions kept."""
    return _OPAQUE.sub(lambda m: " " * len(m.group()), text)


def check_read_only(text: str) -> str:
    """The statement without a trailing `;`, or InputError saying why it may not run."""
    code = _blank(text).rstrip()
    if code.endswith(";"):
        code = code[:-1].rstrip()
    if not code.strip():
        raise InputError("empty Cypher statement")
    if ";" in code:
        raise InputError("one statement at a time: `lensgraph cypher` runs a single read-only query")
    for word in _WORD.findall(code):
        if word.lower() in REFUSED:
            raise InputError(f"`lensgraph cypher` is read-only: {word.upper()} is refused "
                             "(the worker is the only writer; ingest with `lensgraph ingest`)")
    for m in _CALL.finditer(code):
        if m.group(1).lower() not in READ_ONLY_CALLS or not m.group(2):
            raise InputError(f"`lensgraph cypher` is read-only: CALL {m.group(1)} is refused; CALL may reach "
                             f"only {', '.join(sorted(READ_ONLY_CALLS))}")
    return text[: len(code)]


def _limited(text: str, limit: int) -> str:
    """The statement asking for at most limit + 1 rows (one more tells that rows were cut)."""
    tail = _TAIL_LIMIT.search(_blank(text))
    if tail is None:
        return f"{text}\nLIMIT {limit + 1}"
    if tail.group(1).isdigit() and int(tail.group(1)) > limit + 1:
        return f"{text[: tail.start(1)]}{limit + 1}"
    return text  # its own, smaller or parameterised LIMIT: the rows are cut after the fact


def run_read_only(store: Store, text: str, params: dict[str, Any] | None = None, limit: int = 1000,
                  timeout_s: float = 30.0) -> Result:
    if limit < 1 or timeout_s <= 0:
        raise InputError("--limit and --timeout must be positive")
    statement = check_read_only(text)
    _set_time_limit(store, timeout_s)
    limited = _limited(statement, limit)
    try:
        rows = store.rows(limited, params)
    except StoreError as e:
        if limited == statement or "Parser exception" not in str(e):
            raise _explain(e, timeout_s) from None
        try:  # the appended LIMIT does not fit this statement: run it as given
            rows = store.rows(statement, params)
        except StoreError as e2:
            raise _explain(e2, timeout_s) from None
    return Result(rows[:limit], len(rows) > limit)


def _set_time_limit(store: Store, timeout_s: float) -> None:
    if hasattr(store, "query_timeout_s"):  # Neo4j: a server-side timeout on each read transaction
        store.query_timeout_s = timeout_s
    else:  # LadybugDB: per connection, and the CLI's connection serves this one query
        store.rows(f"CALL timeout={max(1, round(timeout_s * 1000))}")


def _explain(error: StoreError, timeout_s: float) -> InputError:
    message = str(error).removeprefix("query failed: ")
    if message.startswith("Interrupted") or "TransactionTimedOut" in message:
        return InputError(f"the query ran past the {timeout_s:g} s time limit; narrow it or raise --timeout")
    return InputError(f"the query failed: {message}")
