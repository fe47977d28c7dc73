"""The Neo4j backend against a real Neo4j 5 server: the writer, every query module, and `lensgraph copy`.

The server is `--neo4j-uri neo4j://user:pass@host:7687[/db]` (a scratch database: the tests empty it; they
refuse one that holds data other than theirs), else one started with testcontainers' Neo4j module. Where
neither is possible (no Docker engine answers, as on the project's build machines) every test here is
skipped with that reason: nothing in this file is faked.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("neo4j", reason="the neo4j extra is not installed: pip install -e '.[neo4j]'")

from ingest.prompts import PromptSpec  # noqa: E402
from lensgraph import schema  # noqa: E402
from lensgraph.store.copy import copy_store  # noqa: E402
from lensgraph.store.neo4j import Neo4jStore, parse_address  # noqa: E402
from queries import catalog, run  # noqa: E402
from tests.conftest import FRANCE, IOI, Ingested  # noqa: E402

IMAGE = "neo4j:5.26-community"
MARKER = "lensgraph-tests"  # (:Meta {key: MARKER}) marks a database these tests may empty


def _docker_answers() -> str | None:
    """None when a Docker engine answers, else why not."""
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return None
    except Exception as e:  # no socket, no permission, no daemon
        return " ".join(str(e).split())[:200] or type(e).__name__


@pytest.fixture(scope="session")
def neo4j_address(request: pytest.FixtureRequest) -> Iterator[str]:
    given = request.config.getoption("--neo4j-uri")
    if given:
        yield given
        return
    why = _docker_answers()
    if why:
        pytest.skip(f"no Neo4j to test against: no Docker engine answers ({why}); "
                    "run with --neo4j-uri neo4j://user:pass@host:7687 to use an existing server")
    try:
        from testcontainers.community.neo4j import Neo4jContainer
    except ImportError:
        try:  # testcontainers before 4.14
            from testcontainers.neo4j import Neo4jContainer
        except ImportError:
            pytest.skip("a Docker engine answers but testcontainers is not installed: pip install 'testcontainers[neo4j]'")

    with Neo4jContainer(IMAGE, username="neo4j", password="lensgraph-tests") as container:
        url = container.get_connection_url()  # bolt://host:port
        yield url.replace("bolt://", "bolt://neo4j:lensgraph-tests@", 1)


def _wipe(address: str) -> None:
    import neo4j

    a = parse_address(address)
    with neo4j.GraphDatabase.driver(a.uri, auth=a.auth) as driver:
        records, _, _ = driver.execute_query(
            "OPTIONAL MATCH (m:Meta {key: $k}) WITH count(m) AS marked MATCH (n) "
            "RETURN marked, count(n) AS n", {"k": MARKER}, database_=a.database)
        if records[0]["n"] and not records[0]["marked"]:
            pytest.skip(f"{a} holds data these tests did not write; point --neo4j-uri at a scratch database")
        driver.execute_query("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS",
                             database_=a.database)
        driver.execute_query("CREATE (:Meta {key: $k, value: 'may be emptied'})", {"k": MARKER},
                             database_=a.database)


@pytest.fixture
def fresh(neo4j_address: str) -> Iterator[Neo4jStore]:
    """An emptied database, opened as a lensgraph store."""
    _wipe(neo4j_address)
    store = Neo4jStore(neo4j_address, batch_rows=500)  # small batches: several per table
    yield store
    store.close()


def _count(store: Any, cypher: str, **params: Any) -> int:
    return store.rows(cypher, params)[0]["n"]


def test_writer_counts_reingest_and_interrupted_pass(fresh: Neo4jStore, tiny: dict[str, Ingested]) -> None:
    ing = tiny["random:llama-tiny"].ingestor
    fresh.write_model(ing.static())
    s = ing.loaded.spec
    assert fresh.has_model(ing.loaded.name)
    assert _count(fresh, "MATCH (n:Neuron) RETURN count(*) AS n") == s.n_layers * (s.d_mlp + s.n_heads * s.d_head)
    prepared = ing.prepare(PromptSpec(FRANCE))
    real = fresh._write_table

    def crash(cypher: str, table: Any) -> None:
        if "ACTIVATES" in cypher:
            raise KeyboardInterrupt
        real(cypher, table)

    fresh._write_table = crash  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        ing.run(fresh, prepared)
    fresh._write_table = real  # type: ignore[method-assign]
    assert fresh.pass_status(prepared.uid) is False and run(fresh, "passes") == []
    assert ing.run(fresh, prepared).written is True
    assert ing.run(fresh, prepared).written is False  # re-ingest: a no-op
    want = schema.expected_counts(s.n_layers, s.n_heads, s.d_head, s.d_mlp, prepared.position + 1, ing.promotes_k)
    assert _count(fresh, "MATCH (h:HiddenState) RETURN count(*) AS n") == want.nodes
    assert _count(fresh, "MATCH ()-[r:FLOWS_TO]->() RETURN count(*) AS n") == want.flows
    assert _count(fresh, "MATCH ()-[r:ACTIVATES]->() RETURN count(*) AS n") == want.activates
    assert _count(fresh, "MATCH ()-[r:PROMOTES]->() RETURN count(*) AS n") == want.promotes
    indexes = {r["name"] for r in fresh.rows("SHOW INDEXES YIELD name RETURN name")}
    assert {"hiddenstate_uid", "activates_rank", "flows_to_score"} <= indexes


def test_copy_from_the_embedded_store(fresh: Neo4jStore, tiny: dict[str, Ingested]) -> None:
    source = tiny["random:gpt2-tiny"].store
    first = copy_store(source, fresh)
    assert (first.models, first.copied) == (2, 4)
    for cypher in ("MATCH (h:HiddenState) RETURN count(*) AS n", "MATCH ()-[r:ACTIVATES]->() RETURN count(*) AS n",
                   "MATCH (t:Token) RETURN count(*) AS n", "MATCH ()-[r:PROMOTES]->() RETURN count(*) AS n"):
        assert _count(fresh, cypher) == _count(source, cypher), cypher
    again = copy_store(source, fresh)
    assert (again.copied, again.skipped, again.models) == (0, 4, 0)


# -- every query module gives the embedded store's answer ------------------------------------------------
@pytest.fixture(scope="module")
def copied(neo4j_address: str, tiny: dict[str, Ingested]) -> Iterator[Neo4jStore]:
    _wipe(neo4j_address)
    store = Neo4jStore(neo4j_address)
    copy_store(tiny["random:gpt2-tiny"].store, store)
    yield store
    store.close()


def _samples(tiny: dict[str, Ingested]) -> dict[str, Any]:
    """A value for every parameter a query module may require (add one when a new module needs it)."""
    ing = tiny["random:gpt2-tiny"]
    france, ioi = ing.passes[FRANCE].uid, ing.passes[IOI].uid
    store = ing.store
    token = store.rows("MATCH (h:HiddenState)-[r:PROMOTES]->(t:Token) WHERE h.pass = $p AND h.kind = 'head' "
                       "RETURN t.text AS t ORDER BY r.rank, t.text LIMIT 1", {"p": france})[0]["t"]
    uids = [r["uid"] for r in store.rows("MATCH (h:HiddenState) WHERE h.pass = $p RETURN h.uid AS uid", {"p": france})]
    return {"pass": france, "a": france, "b": ioi, "passes": [france, ioi],
            "uids": uids, "uid": uids[0], "state": uids[0], "token": token, "tokens": [token],
            "model": ing.ingestor.loaded.name, "layer": 0, "head": 0, "kind": "mlp"}


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, (int, float)):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("name", sorted(catalog()))
def test_query_module_matches_the_embedded_store(name: str, copied: Neo4jStore, tiny: dict[str, Ingested]) -> None:
    query = catalog()[name]
    samples = _samples(tiny)
    missing = [p.name for p in query.params if p.required and p.name not in samples]
    assert not missing, f"add a sample value for {missing} in tests/test_neo4j_server.py _samples"
    params = {p.name: samples[p.name] for p in query.params if p.required}
    embedded = run(tiny["random:gpt2-tiny"].store, name, **params)
    on_neo4j = run(copied, name, **params)
    assert len(on_neo4j) == len(embedded)
    key = lambda row: repr(sorted(row.items()))  # noqa: E731  (ties may come back in another order)
    assert _close(sorted(on_neo4j, key=key), sorted(embedded, key=key)), name
