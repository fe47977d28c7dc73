"""The Neo4j backend without a server: address parsing, DDL, batching, retries, type normalisation, errors.

A fake driver records every statement the store sends and answers like a server would; the tests against a
real Neo4j are in tests/test_neo4j_server.py.
"""

from __future__ import annotations

import datetime as dt
import socket
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner

pytest.importorskip("neo4j", reason="the neo4j extra is not installed: pip install -e '.[neo4j]'")

from neo4j import time as ntime  # noqa: E402
from neo4j.exceptions import AuthError, ClientError, ServiceUnavailable, TransientError  # noqa: E402

from lensgraph import schema  # noqa: E402
from lensgraph.cli import main  # noqa: E402
from lensgraph.errors import StoreError  # noqa: E402
from lensgraph.records import ModelGraph, PassGraph  # noqa: E402
from lensgraph.store import neo4j as n4  # noqa: E402
from lensgraph.store import open_store  # noqa: E402


# -- a fake driver ---------------------------------------------------------------------------------
class FakeDriver:
    """Answers the store's statements from a little state (one pass's status, the schema version), and raises
    the errors queued in `failures` (statement prefix -> list of exceptions, raised one per call)."""

    def __init__(self, version: str | None = None, other_data: bool = False) -> None:
        self.log: list[tuple[str, dict[str, Any]]] = []
        self.version = version
        self.other_data = other_data
        self.status: dict[str, bool] = {}
        self.failures: dict[str, list[Exception]] = {}
        self.closed = False

    def session(self, **_: Any) -> FakeDriver:
        return self

    def __enter__(self) -> FakeDriver:
        return self

    def __exit__(self, *_: Any) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def run(self, query: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        cypher = getattr(query, "text", query)
        for prefix, errors in self.failures.items():
            if cypher.startswith(prefix) and errors:
                raise errors.pop(0)
        self.log.append((cypher, params))
        if cypher == n4.SCHEMA_VERSION:
            return [{"v": self.version}] if self.version else []
        if cypher == n4.ANY_NODE:
            return [{"found": self.other_data}]
        if cypher == n4.CLAIM_SCHEMA:
            self.version = self.version or params["v"]
            return [{"v": self.version}]
        if cypher == n4.PASS_STATUS:
            return [{"c": self.status[params["u"]]}] if params["u"] in self.status else []
        if cypher == n4.CREATE_PASS:
            self.status[params["row"]["uid"]] = params["row"]["complete"]
        if cypher == n4.MARK_COMPLETE:
            self.status[params["u"]] = True
        if cypher == n4.DELETE_PASS:
            self.status.pop(params["u"], None)
        if cypher in (n4.DELETE_EDGES, n4.DELETE_STATES):
            return [{"n": 0}]
        return []

    def sent(self, prefix: str) -> list[dict[str, Any]]:
        return [p for c, p in self.log if c.startswith(prefix)]

    def index(self, cypher: str) -> int:
        return next(i for i, (c, _) in enumerate(self.log) if c == cypher)


def fake_store(driver: FakeDriver | None = None, **kwargs: Any) -> n4.Neo4jStore:
    kwargs.setdefault("base_delay", 0.0)
    return n4.Neo4jStore("neo4j://localhost:7687", driver=driver or FakeDriver(), **kwargs)


def _table(name: str, n: int) -> pa.Table:
    """n synthetic rows of a table, every column filled with a value of its type."""
    fields = schema.arrow_schema(name)
    return pa.Table.from_pydict(
        {f.name: [[_value(f.type.value_type, i)] if pa.types.is_list(f.type) else _value(f.type, i) for i in range(n)]
         for f in fields}, schema=fields)


def _value(kind: pa.DataType, i: int) -> Any:
    if pa.types.is_string(kind):
        return f"v{i}"
    if pa.types.is_integer(kind):
        return i
    if pa.types.is_floating(kind):
        return i / 2
    return True


def pass_graph(states: int = 7, uid: str = "m@0000000000000000") -> PassGraph:
    row = _table("Pass", 1).to_pylist()[0] | {"uid": uid, "complete": None, "created": None}
    return PassGraph(row, _table("HiddenState", states), _table("FLOWS_TO", 4), _table("ACTIVATES", 5),
                     _table("PROMOTES", 2))


# -- the address -----------------------------------------------------------------------------------
def test_address_with_everything() -> None:
    a = n4.parse_address("neo4j://alice:s%40cret@db.example:7688/lens", env={})
    assert (a.uri, a.user, a.password, a.database) == ("neo4j://db.example:7688", "alice", "s@cret", "lens")
    assert a.auth == ("alice", "s@cret")
    assert "s@cret" not in str(a) and "lens" in str(a)


def test_address_falls_back_to_the_environment() -> None:
    env = {"NEO4J_USER": "bob", "NEO4J_PASSWORD": "pw", "NEO4J_DATABASE": "graphs"}
    a = n4.parse_address("bolt+s://host", env=env)
    assert (a.uri, a.auth, a.database) == ("bolt+s://host", ("bob", "pw"), "graphs")
    # the address wins over the environment
    assert n4.parse_address("neo4j://carol:x@host/db1", env=env).auth == ("carol", "x")
    assert n4.parse_address("neo4j://host/db1", env=env).database == "db1"
    # no credentials anywhere: no auth (a server with NEO4J_AUTH=none)
    assert n4.parse_address("neo4j://host:7687", env={}).auth is None


@pytest.mark.parametrize("address", ["neo4j://", "neo4j://host:notaport", "neo4j://host/a/b", "http://host:7474"])
def test_bad_addresses_are_store_errors(address: str) -> None:
    with pytest.raises(StoreError):
        n4.parse_address(address, env={})


def test_open_store_dispatches_on_the_scheme() -> None:
    assert n4.is_neo4j_address("neo4j+s://h") and n4.is_neo4j_address("BOLT://h")
    assert not n4.is_neo4j_address("stores/neo4j.lbug") and not n4.is_neo4j_address("neo4j:/x")


# -- the schema ------------------------------------------------------------------------------------
def test_ddl_is_rendered_from_the_schema() -> None:
    statements = n4.ddl()
    for label, columns in schema.NODE_TABLES.items():
        key = next(iter(columns))
        assert f"CREATE CONSTRAINT {label.lower()}_{key} IF NOT EXISTS FOR (n:{label}) REQUIRE n.{key} IS UNIQUE" \
            in statements
    assert "CREATE INDEX hiddenstate_pass IF NOT EXISTS FOR (n:HiddenState) ON (n.pass)" in statements
    assert "CREATE INDEX activates_rank IF NOT EXISTS FOR ()-[r:ACTIVATES]-() ON (r.rank)" in statements
    assert "CREATE INDEX flows_to_score IF NOT EXISTS FOR ()-[r:FLOWS_TO]-() ON (r.score)" in statements
    assert all(s.startswith("CREATE ") and "IF NOT EXISTS" in s for s in statements)
    assert len(set(statements)) == len(statements)


def test_relationship_writes_match_endpoints_by_their_keys() -> None:
    cypher = n4.create_rels("ACTIVATES")
    assert "MATCH (a:HiddenState {uid: r.`from`})" in cypher and "MATCH (b:Neuron {uid: r.`to`})" in cypher
    assert "CREATE (a)-[:ACTIVATES {coef: r.coef, pre: r.pre, rank: r.rank}]->(b)" in cypher
    assert n4.merge_nodes("Model").startswith("UNWIND $rows AS r MERGE (n:Model {name: r.name})")


def test_opening_creates_the_schema_then_claims_the_version() -> None:
    driver = FakeDriver()
    fake_store(driver)
    sent = [c for c, _ in driver.log]
    assert set(n4.ddl()) <= set(sent)
    assert sent.index(n4.CLAIM_SCHEMA) > max(sent.index(s) for s in n4.ddl())
    assert driver.version == str(schema.SCHEMA_VERSION)


def test_other_versions_and_foreign_databases_are_refused() -> None:
    with pytest.raises(StoreError, match="schema v0"):
        fake_store(FakeDriver(version="0"))
    with pytest.raises(StoreError, match="holds other data"):
        fake_store(FakeDriver(other_data=True))
    with pytest.raises(StoreError, match="no lensgraph store"):
        fake_store(FakeDriver(), read_only=True)
    read = FakeDriver(version=str(schema.SCHEMA_VERSION))
    fake_store(read, read_only=True)
    assert not any(c.startswith("CREATE") for c, _ in read.log)  # a reader never writes


# -- batching and the completeness marker -------------------------------------------------------------
def test_batches_cover_the_table() -> None:
    table = _table("HiddenState", 45)
    chunks = list(n4.batches(table, 20))
    assert [len(c) for c in chunks] == [20, 20, 5]
    assert [r["uid"] for c in chunks for r in c] == table.column("uid").to_pylist()
    assert set(chunks[0][0]) == set(schema.NODE_TABLES["HiddenState"])


def test_a_pass_is_written_in_batches_and_marked_complete_last() -> None:
    driver = FakeDriver()
    store = fake_store(driver, batch_rows=3)
    graph = pass_graph(states=7)
    assert store.write_pass(graph) is True
    assert [len(p["rows"]) for p in driver.sent(n4.create_nodes("HiddenState"))] == [3, 3, 1]
    assert [len(p["rows"]) for p in driver.sent(n4.create_rels("ACTIVATES"))] == [3, 2]
    created = driver.sent(n4.CREATE_PASS)[0]["row"]
    assert created["complete"] is False and created["created"]  # hidden until the marker; a creation time set
    assert driver.log[-1] == (n4.MARK_COMPLETE, {"u": graph.uid})
    assert driver.index(n4.CREATE_PASS) < driver.index(n4.create_nodes("HiddenState"))
    assert not driver.sent("MATCH (:HiddenState")  # nothing to delete
    # a complete pass is a no-op
    before = len(driver.log)
    assert store.write_pass(graph) is False
    assert [c for c, _ in driver.log[before:]] == [n4.PASS_STATUS]


def test_leftovers_of_an_interrupted_pass_are_deleted_before_the_rewrite() -> None:
    driver = FakeDriver()
    store = fake_store(driver)
    graph = pass_graph()
    driver.status[graph.uid] = False  # a crash left it incomplete
    assert store.write_pass(graph) is True
    order = [driver.index(c) for c in (n4.DELETE_EDGES, n4.DELETE_STATES, n4.DELETE_PASS, n4.CREATE_PASS)]
    assert order == sorted(order)
    assert driver.status[graph.uid] is True


def test_the_model_is_merged_and_its_node_written_last() -> None:
    driver = FakeDriver()
    store = fake_store(driver, batch_rows=10)
    model = _table("Model", 1).to_pylist()[0]
    store.write_model(ModelGraph(model, _table("Token", 25), _table("Neuron", 4)))
    assert [len(p["rows"]) for p in driver.sent(n4.merge_nodes("Token"))] == [10, 10, 5]
    assert driver.log[-1] == (n4.merge_nodes("Model"), {"rows": [model]})  # all columns, plain values


# -- retries -----------------------------------------------------------------------------------------
def test_retry_backs_off_exponentially() -> None:
    calls, waits = [], []

    def work() -> str:
        calls.append(1)
        if len(calls) <= 2:
            raise TransientError("deadlock")
        return "done"

    assert n4.retry(work, n4.rolled_back, attempts=5, base_delay=1.0, sleep=waits.append) == "done"
    assert len(calls) == 3
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0  # base · 2^attempt, with jitter


def test_a_batch_is_retried_on_transient_errors() -> None:
    driver = FakeDriver()
    store = fake_store(driver, batch_rows=3)
    states = n4.create_nodes("HiddenState")
    driver.failures[states] = [TransientError("deadlock"), TransientError("lock timeout")]
    assert store.write_pass(pass_graph(states=7)) is True
    assert [len(p["rows"]) for p in driver.sent(states)] == [3, 3, 1]  # each batch committed once
    assert driver.failures[states] == []


def test_retries_are_bounded() -> None:
    driver = FakeDriver()
    store = fake_store(driver, attempts=3)
    driver.failures[n4.create_rels("FLOWS_TO")] = [TransientError("deadlock")] * 10
    graph = pass_graph()
    with pytest.raises(StoreError, match="stays hidden") as e:
        store.write_pass(graph)
    assert "deadlock" in str(e.value)
    assert len(driver.failures[n4.create_rels("FLOWS_TO")]) == 7  # 3 attempts
    assert driver.status[graph.uid] is False  # left hidden, for the next write to redo


def test_client_errors_are_not_retried() -> None:
    driver = FakeDriver()
    store = fake_store(driver)
    driver.failures["MATCH (n) RETURN"] = [ClientError("Invalid input"), ClientError("Invalid input")]
    with pytest.raises(StoreError, match="Invalid input"):
        store.rows("MATCH (n) RETURN n")
    assert len(driver.failures["MATCH (n) RETURN"]) == 1


def test_a_lost_connection_redoes_the_whole_pass() -> None:
    driver = FakeDriver()
    store = fake_store(driver)
    driver.failures[n4.create_rels("ACTIVATES")] = [ServiceUnavailable("connection reset")]
    graph = pass_graph()
    assert store.write_pass(graph) is True
    # the batch may have committed before the connection broke: the pass was deleted and written again
    assert len(driver.sent(n4.CREATE_PASS)) == 2 and driver.sent(n4.DELETE_PASS)
    assert driver.status[graph.uid] is True


def test_auth_failures_say_where_credentials_go() -> None:
    driver = FakeDriver()
    driver.failures[n4.SCHEMA_VERSION] = [AuthError("The client is unauthorized")]
    with pytest.raises(StoreError, match="NEO4J_PASSWORD"):
        fake_store(driver)


# -- result types --------------------------------------------------------------------------------------
def test_results_are_plain_python() -> None:
    driver = FakeDriver(version=str(schema.SCHEMA_VERSION))
    store = fake_store(driver, read_only=True)
    value = {"when": ntime.DateTime(2024, 5, 6, 7, 8, 9), "day": ntime.Date(2024, 5, 6),
             "took": ntime.Duration(seconds=90), "months": ntime.Duration(months=2),
             "sum": Decimal("12"), "mean": Decimal("0.5"), "list": (1, 2.5, "x", None, True)}
    driver.run = lambda q, p: [value]  # type: ignore[method-assign]
    row = store.rows("RETURN 1")[0]
    assert row == {"when": dt.datetime(2024, 5, 6, 7, 8, 9), "day": dt.date(2024, 5, 6),
                   "took": dt.timedelta(seconds=90), "months": "P2M", "sum": 12, "mean": 0.5,
                   "list": [1, 2.5, "x", None, True]}
    assert type(row["sum"]) is int and type(row["list"]) is list


def test_query_timeout_is_sent_with_reads() -> None:
    driver = FakeDriver(version=str(schema.SCHEMA_VERSION))
    store = fake_store(driver, read_only=True)
    seen = []
    driver.run = lambda q, p: seen.append(q) or []  # type: ignore[method-assign]
    store.query_timeout_s = 2.5
    store.rows("MATCH (n) RETURN n")
    assert seen[-1].timeout == 2.5 and seen[-1].text == "MATCH (n) RETURN n"


# -- a server that is down -------------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_is_down_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot reach Neo4j at bolt://127.0.0.1"):
        open_store(f"bolt://127.0.0.1:{_closed_port()}")


def test_the_cli_says_so_and_exits_4() -> None:
    result = CliRunner().invoke(main, ["passes", "--store", f"neo4j://neo4j:pw@127.0.0.1:{_closed_port()}"])
    assert result.exit_code == 4
    assert "cannot reach Neo4j" in result.output and "Traceback" not in result.output
    assert "pw@" not in result.output  # the password is never printed
