"""The embedded store: LadybugDB (the maintained fork of Kùzu), one file on disk, one writer process."""

from __future__ import annotations

import datetime as _dt
import os
import re
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from lensgraph import schema
from lensgraph.errors import StoreError
from lensgraph.records import ModelGraph, PassGraph

BUFFER_POOL_BYTES = int(os.environ.get("LENSGRAPH_BUFFER_POOL_MB", "1024")) * 1024**2
# The database is reopened once this many rows were written since it opened (see EmbeddedStore._reopen):
# after every transaction of 8 SmolLM2 passes (954k rows); its 1 GiB pool fills after ~3.1 M
REOPEN_ROWS = 500_000
# Relationships into the model's fixed Neuron and Token nodes are stored forward only: a backward index
# groups them by neuron or token, so every checkpoint rewrote it whole and writing a pass slowed down as
# the store grew (bench/checkpoint.py: 2.7 s per 8 SmolLM2-sized passes, 5.8 s by pass 96; forward only a
# flat 1.3 s). Queries still match them in either direction; starting from a token or neuron they scan.
# HAS_STATE is only ever followed from its pass.
FORWARD_ONLY = {"HAS_STATE", "ACTIVATES", "PROMOTES"}
UPGRADE_ROWS = 500_000  # HAS_STATE rows per COPY when a v1 store is upgraded
# A write of passes runs on one thread: LadybugDB's second made it 3 % shorter (8 SmolLM2 passes: 5.6 against
# 5.8 s), while the worker computing its next batch beside the write slowed more (1.95 against 1.75 s a pass).
WRITE_THREADS = 1


def _ddl() -> list[str]:
    statements = []
    for name, columns in schema.NODE_TABLES.items():
        cols = ", ".join(f"{c} {t}" for c, t in columns.items())
        key = next(iter(columns))
        statements += [f"CREATE NODE TABLE {name}({cols}, PRIMARY KEY({key}))", *_art_index(name)]
    for name, rel in schema.REL_TABLES.items():
        statements.append(_create_rel(name, rel))
    return statements


def _art_index(table: str) -> list[str]:
    """Replace a node table's primary-key hash index by an ART index. LadybugDB 0.22's hash index can lose a
    key when a COPY into a non-empty table grows it: the row stays, but lookups by its key find nothing
    (tests/test_store.py reproduces it); the ART index keeps every key."""
    key = next(iter(schema.NODE_TABLES[table]))
    return [f"DROP INDEX {table}._PK", f"CREATE ART INDEX _PK FOR (n:{table}) ON (n.{key})"]


def _create_rel(name: str, rel: schema.RelTable) -> str:
    cols = "".join(f", {c} {t}" for c, t in rel.columns.items())
    storage = " WITH (storage_direction = 'fwd')" if name in FORWARD_ONLY else ""
    return f"CREATE REL TABLE {name}(FROM {rel.source} TO {rel.target}{cols}){storage}"


_PLAIN = {str, int, float, bool, type(None)}
_PLAIN_TYPE = re.compile(r"(STRING|INT64|DOUBLE|FLOAT|BOOL)(\[\])*")  # result columns read as plain Python values


def _read(conn: Any, cypher: str, params: dict[str, Any] | None) -> list[dict[str, Any]]:
    return _records(conn.execute(cypher, params or {}))


def _records(result: Any) -> list[dict[str, Any]]:
    if isinstance(result, list):  # several statements: the last one's rows
        result = result[-1]
    names, rows = result.get_column_names(), result.get_all()
    if all(_PLAIN_TYPE.fullmatch(t) for t in result.get_column_data_types()):
        return [dict(zip(names, row)) for row in rows]  # 2,401 VISIT states: 7 ms, against 16 through _plain
    return [dict(zip(names, map(_plain, row))) for row in rows]


def _plain(value: Any) -> Any:
    """Normalise result values to plain Python types (LadybugDB's sum() returns Decimal)."""
    if type(value) in _PLAIN:  # the common case first: results are mostly scalars and lists of them
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return value if all(type(v) in _PLAIN for v in value) else [_plain(v) for v in value]
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
        self._rows_since_open = 0
        self._in_transaction = False
        self._open()
        self._check_schema(read_only)

    def _open(self) -> None:
        import ladybug

        try:
            # auto_checkpoint stays on: with it off, reopening after a crash that followed uncheckpointed
            # commits segfaulted in LadybugDB 0.22's WAL replay (tests/test_store.py kill -9 cases)
            self._db = ladybug.Database(self.path, buffer_pool_size=BUFFER_POOL_BYTES, read_only=self._read_only)
            self._conn = ladybug.Connection(self._db)
            self._readers: list[Any] = []  # rows_many's further connections, opened as needed
        except RuntimeError as e:
            raise StoreError(f"cannot open the store at {self.path}: {e}") from None

    def _reopen(self) -> None:
        """LadybugDB 0.22 keeps part of every write's state in the buffer pool until the database is closed
        (a 1 GiB pool fills after ~26 SmolLM2 passes, 3.1 M rows, checkpoints or not); closing and reopening
        frees it."""
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
        if version == "1" and schema.SCHEMA_VERSION == 2:
            if read_only:
                raise StoreError(f"the store at {self.path} was written with graph schema v1; run "
                                 f"`lensgraph upgrade --store {self.path}` once to bring it to v2")
            self._upgrade_v1()
        elif version != str(schema.SCHEMA_VERSION):
            raise StoreError(
                f"the store at {self.path} was written with graph schema v{version}; this lensgraph "
                f"reads and writes v{schema.SCHEMA_VERSION}. Use another --store path, or the lensgraph "
                "version that wrote it."
            )

    def _upgrade_v1(self) -> None:
        """v1 → v2 in place: ART primary-key indexes, rebuilt from the rows (which also restores any key the
        hash index lost), and the HAS_STATE edges from each pass to its states. Each step is skipped when
        done, and the version is set last, so an upgrade cut short is finished by the next open."""
        print(f"upgrading the store at {self.path} to graph schema v2 ...", file=sys.stderr)
        indexes = {r["t"]: r["k"] for r in self.rows("CALL show_indexes() RETURN table_name AS t, index_type AS k")}
        for table in schema.NODE_TABLES:
            if indexes.get(table) != "ART":
                for statement in _art_index(table)[0 if table in indexes else 1:]:
                    self._conn.execute(statement)
        if "HAS_STATE" not in self._tables():
            self._conn.execute(_create_rel("HAS_STATE", schema.REL_TABLES["HAS_STATE"]))
        if not self.rows("MATCH ()-[r:HAS_STATE]->() RETURN r LIMIT 1"):
            edges = self.arrow("MATCH (h:HiddenState) RETURN h.pass AS `from`, h.uid AS `to`")
            with self._transaction("upgrading the store"):  # all edges or none: the check above stays true
                for offset in range(0, edges.num_rows, UPGRADE_ROWS):
                    self._copy("HAS_STATE", edges.slice(offset, UPGRADE_ROWS))
        self._conn.execute("MATCH (m:Meta) WHERE m.key = 'schema_version' SET m.value = $v",
                           {"v": str(schema.SCHEMA_VERSION)})

    # -- reads ------------------------------------------------------------------------------------
    def rows(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return _records(self._execute(cypher, params))

    def rows_many(self, queries: Sequence[tuple[str, dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        """The reads at once, each on a connection of its own: LadybugDB runs a query without the GIL, mostly on
        one thread when it is small, so a VISIT graph's three queries overlap on two cores (1.3-1.4x). Inside a
        write transaction, or when one fails, they run one after another, which reports an error as `rows` does."""
        if self._in_transaction or len(queries) < 2:
            return [self.rows(cypher, params) for cypher, params in queries]
        import ladybug

        self._readers += [ladybug.Connection(self._db) for _ in range(len(queries) - 1 - len(self._readers))]
        with ThreadPoolExecutor(len(queries)) as pool:
            futures = [pool.submit(_read, conn, cypher, params)
                       for conn, (cypher, params) in zip([self._conn, *self._readers], queries)]
        try:
            return [f.result() for f in futures]
        except (RuntimeError, ValueError):
            return [self.rows(cypher, params) for cypher, params in queries]

    def arrow(self, cypher: str, params: dict[str, Any] | None = None) -> pa.Table:
        """A query's rows as an Arrow table (fast bulk reads, e.g. for `lensgraph copy`)."""
        return self._execute(cypher, params).get_as_arrow()

    def _execute(self, cypher: str, params: dict[str, Any] | None) -> Any:
        try:
            return self._conn.execute(cypher, params or {})
        except (RuntimeError, ValueError) as e:  # ValueError: a parameter LadybugDB cannot type
            if "buffer pool is full" not in str(e):
                raise StoreError(f"query failed: {e}") from None
            if not self._in_transaction:
                # LadybugDB 0.22 keeps the memory of a query that ran out of it: every later query would
                # fail too. Reopening frees it; nothing is lost outside a transaction.
                self._reopen()
        raise StoreError(f"query failed: the store's buffer pool ({BUFFER_POOL_BYTES >> 20} MB) is too small "
                         "for it; set LENSGRAPH_BUFFER_POOL_MB higher (e.g. 4096), or narrow the query")

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
        self._in_transaction = True
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
        finally:
            self._in_transaction = False

    def _delete_pass(self, uid: str) -> None:
        # the pass first: its HAS_STATE edges are stored forward only, so only it can detach them
        self._conn.execute("MATCH (p:Pass) WHERE p.uid = $u DETACH DELETE p", {"u": uid})
        self._conn.execute("MATCH (h:HiddenState) WHERE h.pass = $u DETACH DELETE h", {"u": uid})

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
            self._conn.set_max_threads_for_exec(WRITE_THREADS)
            try:
                self._write_new(todo, status)
            finally:
                self._conn.set_max_threads_for_exec(os.cpu_count() or 1)  # queries use every core
            self._rows_since_open += sum(g.n_rows for g in todo.values())
            if self._rows_since_open >= REOPEN_ROWS:
                self._reopen()
                self._rows_since_open = 0
        result, pending = [], set(todo)
        for g in graphs:  # a repeat of a pass in `graphs` reports False, as a pass already stored
            result.append(g.uid in pending)
            pending.discard(g.uid)
        return result

    def _write_new(self, todo: dict[str, PassGraph], status: dict[str, bool | None]) -> None:
        """The passes in one transaction, their `complete` markers last."""
        with self._transaction(f"writing pass{'es' if len(todo) > 1 else ''} {', '.join(todo)}"):
            for uid in todo:
                if status[uid] is not None:  # an incomplete pass left by another writer: start over
                    self._delete_pass(uid)
            now = _dt.datetime.now(_dt.UTC).isoformat()
            rows = [dict(g.pass_, complete=False, created=g.pass_.get("created") or now)  # kept by copy
                    for g in todo.values()]
            self._copy("Pass", pa.Table.from_pylist(rows, schema=schema.arrow_schema("Pass")))
            self._copy("HiddenState", pa.concat_tables([g.states for g in todo.values()]))
            rels = [g.rels for g in todo.values()]  # derived once per pass, not once per table
            for rel in schema.REL_TABLES:
                self._copy(rel, pa.concat_tables([r[rel] for r in rels]))
            self._conn.execute("MATCH (p:Pass) WHERE p.uid IN $u SET p.complete = true", {"u": list(todo)})

    def close(self) -> None:
        for conn in (*self._readers, self._conn):
            conn.close()
        self._db.close()

