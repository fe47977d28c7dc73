"""The embedded store: LadybugDB (the maintained fork of Kùzu), one file on disk, one writer process."""

from __future__ import annotations

import datetime as _dt
import os
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from lensgraph import schema
from lensgraph.errors import StoreError
from lensgraph.records import ModelGraph, PassGraph

BUFFER_POOL_BYTES = int(os.environ.get("LENSGRAPH_BUFFER_POOL_MB", "1024")) * 1024**2
REOPEN_EVERY = 8  # passes written between reopenings of the database (see EmbeddedStore._reopen)
# Relationships into the model's fixed Neuron and Token nodes are stored forward only: a backward index
# groups them by neuron or token, so every checkpoint rewrote it whole and writing a pass slowed down as
# the store grew (bench/checkpoint.py: 2.7 s per 8 SmolLM2-sized passes, 5.8 s by pass 96; forward only a
# flat 1.3 s). Queries still match them in either direction; starting from a token or neuron they scan.
FORWARD_ONLY = {"ACTIVATES", "PROMOTES"}


def _ddl() -> list[str]:
    statements = []
    for name, columns in schema.NODE_TABLES.items():
        cols = ", ".join(f"{c} {t}" for c, t in columns.items())
        key = next(iter(columns))
        statements.append(f"CREATE NODE TABLE {name}({cols}, PRIMARY KEY({key}))")
    for name, rel in schema.REL_TABLES.items():
        cols = "".join(f", {c} {t}" for c, t in rel.columns.items())
        storage = " WITH (storage_direction = 'fwd')" if name in FORWARD_ONLY else ""
        statements.append(f"CREATE REL TABLE {name}(FROM {rel.source} TO {rel.target}{cols}){storage}")
    return statements


def _plain(value: Any) -> Any:
    """Normalise result values to plain Python types (LadybugDB's sum() returns Decimal)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class EmbeddedStore:
    def __init__(self, path: str, read_only: bool = False) -> None:
        self.path = str(path)
        target = Path(self.path)
        if read_only and not target.exists():
            raise StoreError(f"no store at {self.path}: ingest a prompt first, or pass --store")
        parent = target.resolve().parent
        if not read_only and not (parent.is_dir() and os.access(parent, os.W_OK)):
            raise StoreError(f"cannot write a store at {self.path}: {parent} is not a writable directory")
        if target.is_dir():
            raise StoreError(f"{self.path} is a directory, not a lensgraph store file")
        self._read_only = read_only
        self._written = 0
        self._open()
        self._check_schema(read_only)

    def _open(self) -> None:
        import ladybug

        try:
            # auto_checkpoint stays on: with it off, reopening after a crash that followed uncheckpointed
            # commits segfaulted in LadybugDB 0.22's WAL replay (tests/test_store.py kill -9 cases)
            self._db = ladybug.Database(self.path, buffer_pool_size=BUFFER_POOL_BYTES, read_only=self._read_only)
            self._conn = ladybug.Connection(self._db)
        except RuntimeError as e:
            raise StoreError(f"cannot open the store at {self.path}: {e}") from None

    def _reopen(self) -> None:
        """LadybugDB 0.22 keeps part of every write's state in the buffer pool until the database is closed
        (a 1 GiB pool fills after ~26 SmolLM2 passes, checkpoints or not); closing and reopening frees it."""
        self.close()
        self._open()

    # -- schema -----------------------------------------------------------------------------------
    def _tables(self) -> set[str]:
        return {r["name"] for r in self.rows("CALL show_tables() RETURN name")}

    def _check_schema(self, read_only: bool) -> None:
        tables = self._tables()
        if not tables:
            if read_only:
                raise StoreError(f"the store at {self.path} is empty")
            for statement in _ddl():
                self._conn.execute(statement)
            self._conn.execute(
                "CREATE (:Meta {key: 'schema_version', value: $v})", {"v": str(schema.SCHEMA_VERSION)}
            )
            return
        if "Meta" not in tables:
            raise StoreError(f"{self.path} is a LadybugDB database but not a lensgraph store")
        found = self.rows("MATCH (m:Meta) WHERE m.key = 'schema_version' RETURN m.value AS v")
        version = found[0]["v"] if found else "?"
        if version != str(schema.SCHEMA_VERSION):
            raise StoreError(
                f"the store at {self.path} was written with graph schema v{version}; this lensgraph "
                f"reads and writes v{schema.SCHEMA_VERSION}. Use another --store path, or the lensgraph "
                "version that wrote it."
            )

    # -- reads ------------------------------------------------------------------------------------
    def rows(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            result = self._conn.execute(cypher, params or {})
        except (RuntimeError, ValueError) as e:  # ValueError: a parameter LadybugDB cannot type
            raise StoreError(f"query failed: {e}") from None
        if isinstance(result, list):  # several statements: the last one's rows
            result = result[-1]
        names = result.get_column_names()
        return [dict(zip(names, map(_plain, row))) for row in result.get_all()]

    def arrow(self, cypher: str, params: dict[str, Any] | None = None) -> pa.Table:
        """A query's rows as an Arrow table (fast bulk reads, e.g. for `lensgraph copy`)."""
        try:
            return self._conn.execute(cypher, params or {}).get_as_arrow()
        except (RuntimeError, ValueError) as e:
            raise StoreError(f"query failed: {e}") from None

    def has_model(self, name: str) -> bool:
        return bool(self.rows("MATCH (m:Model) WHERE m.name = $n RETURN m.name", {"n": name}))

    def pass_status(self, uid: str) -> bool | None:
        found = self.rows("MATCH (p:Pass) WHERE p.uid = $u RETURN p.complete AS c", {"u": uid})
        return None if not found else bool(found[0]["c"])

    # -- writes -----------------------------------------------------------------------------------
    def _copy(self, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        # LadybugDB's COPY reads the Arrow table from a Python variable named in the statement.
        rows_ = data  # noqa: F841  (read by name below)
        self._conn.execute(f"COPY {table} FROM rows_")

    def write_model(self, graph: ModelGraph) -> None:
        if self.has_model(graph.model["name"]):
            return
        with self._transaction(f"writing model {graph.model['name']}"):
            self._copy("Token", graph.tokens)
            self._copy("Neuron", graph.neurons)
            self._copy("Model", pa.Table.from_pylist([graph.model], schema=schema.arrow_schema("Model")))

    @contextmanager
    def _transaction(self, what: str) -> Iterator[None]:
        """All or nothing: an error or a crash inside keeps none of it (the WAL discards it on reopen)."""
        self._conn.execute("BEGIN TRANSACTION")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException as e:
            try:
                self._conn.execute("ROLLBACK")
            except RuntimeError:
                pass  # LadybugDB already rolled back the failed statement's transaction
            if isinstance(e, RuntimeError):
                raise StoreError(f"{what} failed, nothing was kept: {e}") from None
            raise

    def _delete_pass(self, uid: str) -> None:
        self._conn.execute("MATCH (h:HiddenState) WHERE h.pass = $u DETACH DELETE h", {"u": uid})
        self._conn.execute("MATCH (p:Pass) WHERE p.uid = $u DELETE p", {"u": uid})

    def write_pass(self, graph: PassGraph) -> bool:
        return self.write_passes([graph])[0]

    def write_passes(self, graphs: list[PassGraph]) -> list[bool]:
        """One transaction for the passes not yet complete: each table in one COPY, and one checkpoint for
        all of them (a checkpoint rewrites the partly filled node group, ~1.4 s for SmolLM2, whatever was
        added). The `complete` markers still go last, so that a pass is hidden wherever rows are visible
        before their pass is done (other backends, other writers)."""
        todo: dict[str, PassGraph] = {}
        status = {}
        for g in graphs:
            status[g.uid] = self.pass_status(g.uid)
            if not status[g.uid] and g.uid not in todo:
                todo[g.uid] = g
        if todo:
            with self._transaction(f"writing pass{'es' if len(todo) > 1 else ''} {', '.join(todo)}"):
                for uid in todo:
                    if status[uid] is not None:  # an incomplete pass left by another writer: start over
                        self._delete_pass(uid)
                now = _dt.datetime.now(_dt.UTC).isoformat()
                rows = [dict(g.pass_, complete=False, created=g.pass_.get("created") or now)  # kept by copy
                        for g in todo.values()]
                self._copy("Pass", pa.Table.from_pylist(rows, schema=schema.arrow_schema("Pass")))
                for table, part in (("HiddenState", "states"), ("FLOWS_TO", "flows"), ("ACTIVATES", "activates"),
                                    ("PROMOTES", "promotes")):
                    self._copy(table, pa.concat_tables([getattr(g, part) for g in todo.values()]))
                self._conn.execute("MATCH (p:Pass) WHERE p.uid IN $u SET p.complete = true", {"u": list(todo)})
            before, self._written = self._written, self._written + len(todo)
            if self._written // REOPEN_EVERY > before // REOPEN_EVERY:
                self._reopen()
        result, pending = [], set(todo)
        for g in graphs:  # a repeat of a pass in `graphs` reports False, as a pass already stored
            result.append(g.uid in pending)
            pending.discard(g.uid)
        return result

    def close(self) -> None:
        self._conn.close()
        self._db.close()

