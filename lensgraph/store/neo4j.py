"""The Neo4j 5 store, through the official `neo4j` driver (with `neo4j-rust-ext` to encode Bolt fast).

Install with `pip install 'lensgraph[neo4j]'`. The schema is rendered from lensgraph.schema as constraints and
indexes; a pass is written in batches of `UNWIND $rows AS r CREATE …`, and its Pass node is marked complete
last, so that queries (which filter on `complete = true`) never see a partial pass. docs/NEO4J.md.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import pyarrow as pa

from lensgraph import schema
from lensgraph.errors import StoreError
from lensgraph.records import ModelGraph, PassGraph

T = TypeVar("T")
# The driver logs connection failures as warnings; without this, Python's last-resort handler prints them
# beside the one clear StoreError the CLI shows. Configured logging still receives them.
logging.getLogger("neo4j").addHandler(logging.NullHandler())

SCHEMES = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc")
# Rows per write transaction. Neo4j's guidance is 10k-50k rows per UNWIND batch: big enough to amortise a
# round trip and a commit, small enough to keep a transaction's memory bounded (an ACTIVATES row is ~60 bytes
# on the wire, a HiddenState row ~1 KB). bench/neo4j_write.py sweeps it against a real server.
BATCH_ROWS = int(os.environ.get("LENSGRAPH_NEO4J_BATCH", "20000"))
ATTEMPTS = 6  # per batch; with a 0.5 s base the waits add up to at most ~16 s
BASE_DELAY = 0.5
MAX_DELAY = 8.0

# Indexes beyond the uniqueness constraints on every node table's key (which also serve as its index).
NODE_INDEXES: dict[str, tuple[str, ...]] = {
    "HiddenState": ("pass", "kind", "layer"),
    "Neuron": ("model", "layer", "kind"),
    "Token": ("model", "text"),
    "Pass": ("model",),
}
# Relationship-property indexes, so that pruning (`WHERE r.rank <= k`, `ORDER BY r.score`) can seek.
REL_INDEXES: dict[str, tuple[str, ...]] = {
    "FLOWS_TO": ("rank", "score"),
    "ACTIVATES": ("rank",),
    "PROMOTES": ("rank",),
}


# -- the address ----------------------------------------------------------------------------------
def is_neo4j_address(address: str) -> bool:
    return address.partition("://")[0].lower() in SCHEMES and "://" in address


@dataclass(frozen=True)
class Neo4jAddress:
    uri: str  # scheme://host:port[?routing context], without credentials or database
    user: str | None
    password: str | None
    database: str | None  # None: the server's default database

    @property
    def auth(self) -> tuple[str, str] | None:
        return None if self.user is None and self.password is None else (self.user or "neo4j", self.password or "")

    def __str__(self) -> str:  # for messages: never the password
        return self.uri + (f" (database {self.database})" if self.database else "")


def parse_address(address: str, env: dict[str, str] | None = None) -> Neo4jAddress:
    """`neo4j://user:pass@host:7687/dbname`; what the address lacks comes from NEO4J_USER (or NEO4J_USERNAME),
    NEO4J_PASSWORD and NEO4J_DATABASE. Credentials may be percent-encoded (`p%40ss` for `p@ss`)."""
    env = os.environ if env is None else env
    if not is_neo4j_address(address):
        raise StoreError(f"{address!r} is not a Neo4j address: use {'|'.join(SCHEMES)}://[user:pass@]host[:port][/database]")
    parts = urlsplit(address)
    host = parts.netloc.rpartition("@")[2]
    if not host:
        raise StoreError(f"{address!r} names no host: use e.g. neo4j://localhost:7687")
    try:
        parts.port  # noqa: B018 (validates the port)
    except ValueError:
        raise StoreError(f"{address!r} has an invalid port") from None
    database = unquote(parts.path.strip("/")) or env.get("NEO4J_DATABASE") or None
    if database and "/" in database:
        raise StoreError(f"{address!r}: the path must be one database name")
    user = unquote(parts.username) if parts.username else env.get("NEO4J_USER") or env.get("NEO4J_USERNAME")
    password = unquote(parts.password) if parts.password is not None else env.get("NEO4J_PASSWORD")
    uri = f"{parts.scheme.lower()}://{host}" + (f"?{parts.query}" if parts.query else "")
    return Neo4jAddress(uri, user or None, password, database)


# -- the schema, rendered from lensgraph.schema ----------------------------------------------------
def ddl() -> list[str]:
    """Constraints and indexes, idempotent (`IF NOT EXISTS`); run before any data is written."""
    statements = []
    for label, columns in schema.NODE_TABLES.items():
        key = next(iter(columns))  # the first column is the primary key
        statements.append(f"CREATE CONSTRAINT {label.lower()}_{key} IF NOT EXISTS "
                          f"FOR (n:{label}) REQUIRE n.{key} IS UNIQUE")
    for label, props in NODE_INDEXES.items():
        for prop in props:
            assert prop in schema.NODE_TABLES[label], (label, prop)
            statements.append(f"CREATE INDEX {label.lower()}_{prop} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})")
    for rel, props in REL_INDEXES.items():
        for prop in props:
            assert prop in schema.REL_TABLES[rel].columns, (rel, prop)
            statements.append(f"CREATE INDEX {rel.lower()}_{prop} IF NOT EXISTS FOR ()-[r:{rel}]-() ON (r.{prop})")
    return statements


def _key(label: str) -> str:
    return next(iter(schema.NODE_TABLES[label]))


def create_nodes(label: str) -> str:
    return f"UNWIND $rows AS r CREATE (n:{label}) SET n = r"


SHARED = ("Token", "Neuron", "Model")  # nodes shared by every pass of a model: MERGEd, never duplicated


def merge_nodes(label: str) -> str:
    """Shared nodes (Token, Neuron, Model): MERGE on the key, so a rerun after a crash fills in, never duplicates."""
    key = _key(label)
    return f"UNWIND $rows AS r MERGE (n:{label} {{{key}: r.{key}}}) SET n += r"


def create_rels(rel: str) -> str:
    """Endpoints are found by uid through the uniqueness constraints' indexes."""
    r = schema.REL_TABLES[rel]
    props = ", ".join(f"{c}: r.{c}" for c in r.columns)
    return (f"UNWIND $rows AS r MATCH (a:{r.source} {{{_key(r.source)}: r.`from`}}) "
            f"MATCH (b:{r.target} {{{_key(r.target)}: r.`to`}}) "
            f"CREATE (a)-[:{rel}{f' {{{props}}}' if props else ''}]->(b)")


# Leftovers of an interrupted pass are deleted in bounded transactions (a pass can hold millions of edges).
DELETE_EDGES = "MATCH (:HiddenState {pass: $u})-[e]->() WITH e LIMIT $n DELETE e RETURN count(*) AS n"
DELETE_STATES = "MATCH (h:HiddenState {pass: $u}) WITH h LIMIT $n DETACH DELETE h RETURN count(*) AS n"
DELETE_PASS = "MATCH (p:Pass {uid: $u}) DETACH DELETE p"
CREATE_PASS = "CREATE (p:Pass) SET p = $row"
MARK_COMPLETE = "MATCH (p:Pass {uid: $u}) SET p.complete = true"
PASS_STATUS = "MATCH (p:Pass {uid: $u}) RETURN p.complete AS c"
HAS_MODEL = "MATCH (m:Model {name: $n}) RETURN m.name AS name LIMIT 1"
SCHEMA_VERSION = "MATCH (m:Meta {key: 'schema_version'}) RETURN m.value AS v"
CLAIM_SCHEMA = "MERGE (m:Meta {key: 'schema_version'}) ON CREATE SET m.value = $v RETURN m.value AS v"
ANY_NODE = "MATCH (n) RETURN count(n) > 0 AS found"
AWAIT_INDEXES = "CALL db.awaitIndexes(300)"


def statements() -> list[str]:
    """Every Cypher statement this backend sends (tests parse them with Neo4j's own parser)."""
    return [*ddl(), AWAIT_INDEXES, create_nodes("HiddenState"), *(merge_nodes(label) for label in SHARED),
            *(create_rels(rel) for rel in schema.REL_TABLES),
            DELETE_EDGES, DELETE_STATES, DELETE_PASS, CREATE_PASS, MARK_COMPLETE, PASS_STATUS, HAS_MODEL,
            SCHEMA_VERSION, CLAIM_SCHEMA, ANY_NODE]


# -- batching, retries, result types ---------------------------------------------------------------
def batches(table: pa.Table, size: int) -> Iterator[list[dict[str, Any]]]:
    """A table as lists of at most `size` row dicts (the `$rows` of one UNWIND transaction)."""
    for offset in range(0, table.num_rows, size):
        yield table.slice(offset, size).to_pylist()


def _row(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """One row with exactly the table's columns, as plain Python values the driver can encode (no numpy)."""
    return pa.Table.from_pylist([row], schema=schema.arrow_schema(table)).to_pylist()[0]


def retry(work: Callable[[], T], retryable: Callable[[BaseException], bool], attempts: int = ATTEMPTS,
          base_delay: float = BASE_DELAY, sleep: Callable[[float], None] | None = None) -> T:
    """Run `work`, retrying errors `retryable` accepts with exponential backoff and jitter, `attempts` in all."""
    for attempt in range(attempts):
        try:
            return work()
        except Exception as e:
            if attempt == attempts - 1 or not retryable(e):
                raise
            (sleep or time.sleep)(min(base_delay * 2**attempt, MAX_DELAY) * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")


def rolled_back(e: BaseException) -> bool:
    """A transient server error (deadlock, lock timeout, leader switch): the transaction was rolled back,
    so running the same batch again cannot duplicate anything."""
    from neo4j.exceptions import TransientError

    return isinstance(e, TransientError)


def connection_lost(e: BaseException) -> bool:
    """The server went away. A write may or may not have committed, so a pass is redone from its start."""
    from neo4j.exceptions import ServiceUnavailable, SessionExpired

    return isinstance(e, (ServiceUnavailable, SessionExpired))


def retryable_read(e: BaseException) -> bool:
    return rolled_back(e) or connection_lost(e)


def plain(value: Any) -> Any:
    """Result values as the embedded store returns them: plain Python types; temporal values as datetime."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if type(value) in (list, tuple):  # exactly: neo4j's Duration is a tuple subclass
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    from neo4j import graph, time as ntime

    if isinstance(value, (graph.Node, graph.Relationship)):
        label = next(iter(value.labels), None) if isinstance(value, graph.Node) else value.type
        return {"_label": label, **{k: plain(v) for k, v in value.items()}}
    if isinstance(value, graph.Path):
        return {"_nodes": [plain(n) for n in value.nodes], "_rels": [plain(r) for r in value.relationships]}
    if isinstance(value, ntime.Duration):
        if value.months:  # not a fixed length of time
            return value.iso_format()
        return _dt.timedelta(days=value.days, seconds=value.seconds, microseconds=value.nanoseconds // 1000)
    if isinstance(value, (ntime.DateTime, ntime.Date, ntime.Time)):
        return value.to_native()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


# -- the store --------------------------------------------------------------------------------------
class Neo4jStore:
    dialect = "neo4j"  # the query loader picks `<name>.neo4j.cypher` variants by this
    query_timeout_s: float | None = None  # a server-side time limit on reads (the ad-hoc query command sets it)

    def __init__(self, address: str | Neo4jAddress, read_only: bool = False, *, batch_rows: int = BATCH_ROWS,
                 attempts: int = ATTEMPTS, base_delay: float = BASE_DELAY, driver: Any = None) -> None:
        self.address = address if isinstance(address, Neo4jAddress) else parse_address(address)
        self.read_only = read_only
        self.batch_rows = batch_rows
        self.attempts = attempts
        self.base_delay = base_delay
        try:
            import neo4j
        except ImportError:
            raise StoreError("the Neo4j backend needs the neo4j driver: pip install 'lensgraph[neo4j]'") from None
        if driver is None:
            with self._errors("connecting"):
                driver = neo4j.GraphDatabase.driver(self.address.uri, auth=self.address.auth,
                                                    connection_timeout=15.0, user_agent="lensgraph")
                driver.verify_connectivity()
        self._driver = driver
        # sessions share bookmarks, so a read after a write sees it (causal consistency on a cluster)
        self._bookmarks = neo4j.GraphDatabase.bookmark_manager()
        try:
            with self._errors("opening the store"):
                self._check_schema()
        except BaseException:
            driver.close()
            raise

    # -- plumbing -----------------------------------------------------------------------------------
    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Driver and server errors as one clear StoreError (the CLI prints it and exits 4)."""
        try:
            yield
        except StoreError:
            raise
        except Exception as e:
            from neo4j.exceptions import AuthError, DriverError, Neo4jError, ServiceUnavailable, SessionExpired

            if isinstance(e, AuthError):
                raise StoreError(f"{what}: Neo4j at {self.address} refused the credentials of user "
                                 f"{(self.address.user or 'neo4j')!r}; give them in the address "
                                 "(neo4j://user:pass@host:7687) or in NEO4J_USER / NEO4J_PASSWORD") from None
            detail = " ".join(str(e).split())  # one line
            if isinstance(e, (ServiceUnavailable, SessionExpired)):
                raise StoreError(f"{what}: cannot reach Neo4j at {self.address} ({detail}); is the server running "
                                 "(docker compose -f docker/compose.yaml up -d neo4j)?") from None
            if isinstance(e, (Neo4jError, DriverError)):
                raise StoreError(f"{what} failed on Neo4j at {self.address}: {detail}") from None
            raise

    def _run(self, cypher: str, params: dict[str, Any] | None = None, *, write: bool = True,
             retryable: Callable[[BaseException], bool] = rolled_back) -> list[dict[str, Any]]:
        """One auto-commit transaction, retried on the errors `retryable` accepts; its records as dicts."""
        import neo4j

        mode = neo4j.WRITE_ACCESS if write else neo4j.READ_ACCESS
        query = cypher if write or not self.query_timeout_s else neo4j.Query(cypher, timeout=self.query_timeout_s)

        def attempt() -> list[dict[str, Any]]:
            with self._driver.session(database=self.address.database, default_access_mode=mode,
                                      bookmark_manager=self._bookmarks) as session:
                result = session.run(query, params or {})
                return [dict(record.items()) for record in result]

        return retry(attempt, retryable, self.attempts, self.base_delay)

    def _check_schema(self) -> None:
        version = self._run(SCHEMA_VERSION, write=False, retryable=retryable_read)
        if not version:
            if self.read_only:
                raise StoreError(f"Neo4j at {self.address} holds no lensgraph store yet: ingest a prompt first")
            if self._run(ANY_NODE, write=False, retryable=retryable_read)[0]["found"]:
                raise StoreError(f"the Neo4j database at {self.address} holds other data, not a lensgraph store; "
                                 "use another database (neo4j://host:7687/DATABASE)")
        if not self.read_only:
            for statement in ddl():
                self._run(statement, retryable=retryable_read)  # IF NOT EXISTS: safe to repeat
            self._run(AWAIT_INDEXES, retryable=retryable_read)
            version = self._run(CLAIM_SCHEMA, {"v": str(schema.SCHEMA_VERSION)}, retryable=retryable_read)
        found = version[0]["v"]
        if found != str(schema.SCHEMA_VERSION):
            raise StoreError(f"Neo4j at {self.address} holds graph schema v{found}; this lensgraph reads and writes "
                             f"v{schema.SCHEMA_VERSION}. Use another database, or the lensgraph version that wrote it.")

    def _write_table(self, cypher: str, table: pa.Table) -> None:
        for rows in batches(table, self.batch_rows):
            self._run(cypher, {"rows": rows})

    # -- reads --------------------------------------------------------------------------------------
    def rows(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._errors("query"):
            found = self._run(cypher, params, write=False, retryable=retryable_read)
        return [{k: plain(v) for k, v in row.items()} for row in found]

    def rows_many(self, queries: Sequence[tuple[str, dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        return [self.rows(cypher, params) for cypher, params in queries]  # one after another: untried on a server

    def has_model(self, name: str) -> bool:
        return bool(self.rows(HAS_MODEL, {"n": name}))

    def pass_status(self, uid: str) -> bool | None:
        found = self.rows(PASS_STATUS, {"u": uid})
        return None if not found else bool(found[0]["c"])

    # -- writes -------------------------------------------------------------------------------------
    def write_model(self, graph: ModelGraph) -> None:
        name = graph.model["name"]
        with self._errors(f"writing model {name}"):
            if self.has_model(name):
                return
            # MERGE: a rerun after a crash fills in what is missing; the Model node last marks them all there
            self._write_table(merge_nodes("Token"), graph.tokens)
            self._write_table(merge_nodes("Neuron"), graph.neurons)
            self._run(merge_nodes("Model"), {"rows": [_row("Model", graph.model)]}, retryable=retryable_read)

    def _delete_pass(self, uid: str) -> None:
        for statement in (DELETE_EDGES, DELETE_STATES):
            while self._run(statement, {"u": uid, "n": self.batch_rows})[0]["n"] == self.batch_rows:
                pass
        self._run(DELETE_PASS, {"u": uid})

    def write_pass(self, graph: PassGraph) -> bool:
        uid = graph.uid
        started = False

        def attempt() -> bool:
            nonlocal started
            status = self.pass_status(uid)
            if status:  # complete: a no-op, unless it was our own commit whose reply got lost
                return started
            started = True
            if status is not None:  # leftovers of an interrupted write: start over
                self._delete_pass(uid)
            row = _row("Pass", dict(graph.pass_, complete=False))
            row["created"] = row["created"] or _dt.datetime.now(_dt.UTC).isoformat()
            self._run(CREATE_PASS, {"row": row})
            self._write_table(create_nodes("HiddenState"), graph.states)
            for rel, table in graph.rels.items():
                self._write_table(create_rels(rel), table)
            self._run(MARK_COMPLETE, {"u": uid})  # last: from now on queries see the pass
            return True

        with self._errors(f"writing pass {uid} (it stays hidden until rewritten)"):
            # a lost connection may hide whether a batch committed: redo the whole pass rather than the batch
            return retry(attempt, connection_lost, self.attempts, self.base_delay)

    def write_passes(self, graphs: list[PassGraph]) -> list[bool]:
        """One pass at a time: each is already written in server-sized batches (see write_pass)."""
        return [self.write_pass(g) for g in graphs]

    def close(self) -> None:
        self._driver.close()
