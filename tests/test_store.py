"""The embedded store: completeness marker, idempotent re-ingest, crash leftovers, schema versions."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from ingest.prompts import PromptSpec
from lensgraph import schema
from lensgraph.errors import StoreError
from lensgraph.records import PassGraph
from lensgraph.store import open_store
from queries import run
from tests.conftest import FRANCE, IOI, Ingested


def _count(store, cypher: str, **params) -> int:  # noqa: ANN001
    return store.rows(cypher, params)[0]["n"]


def test_reingest_is_a_no_op(tiny: dict[str, Ingested]) -> None:
    ing = tiny["random:gpt2-tiny"]
    p = ing.passes[FRANCE]
    before = _count(ing.store, "MATCH (h:HiddenState) RETURN count(*) AS n")
    again = ing.ingestor.prepare(PromptSpec(FRANCE))
    assert again.uid == p.uid
    assert ing.ingestor.run(ing.store, again).written is False
    assert _count(ing.store, "MATCH (h:HiddenState) RETURN count(*) AS n") == before


def test_other_settings_make_another_pass(tiny: dict[str, Ingested]) -> None:
    ing = tiny["random:gpt2-tiny"]
    other = ing.ingestor.prepare(PromptSpec(FRANCE), position=2)
    assert other.uid != ing.passes[FRANCE].uid


def test_several_models_share_one_store(tiny: dict[str, Ingested]) -> None:
    store = tiny["random:gpt2-tiny"].store
    assert store is tiny["random:llama-tiny"].store
    models = {r["model"] for r in run(store, "passes")}
    assert models == {"random:gpt2-tiny", "random:llama-tiny"}
    assert _count(store, "MATCH (m:Model) RETURN count(*) AS n") == 2
    # each model's neurons and vocabulary are written once
    for name, ing in tiny.items():
        s = ing.ingestor.loaded.spec
        assert _count(store, "MATCH (n:Neuron) WHERE n.model = $m RETURN count(*) AS n", m=name) == \
            s.n_layers * (s.d_mlp + s.n_heads * s.d_head)
        assert _count(store, "MATCH (t:Token) WHERE t.model = $m RETURN count(*) AS n", m=name) == s.vocab_size


@pytest.fixture
def fresh(tiny: dict[str, Ingested], tmp_path: Path):  # noqa: ANN201
    """A new store holding random:llama-tiny's static nodes, and that model's ingestor."""
    ing = tiny["random:llama-tiny"].ingestor
    store = open_store(str(tmp_path / "fresh.lbug"))
    store.write_model(ing.static())
    yield store, ing
    store.close()


def _expect_one_complete_pass(store, ing, prepared) -> None:  # noqa: ANN001
    assert store.pass_status(prepared.uid) is True
    s = ing.loaded.spec
    want = schema.expected_counts(s.n_layers, s.n_heads, s.d_head, s.d_mlp, prepared.position + 1, ing.promotes_k)
    assert _count(store, "MATCH (h:HiddenState) WHERE h.pass = $p RETURN count(*) AS n", p=prepared.uid) == want.nodes
    assert _count(store, "MATCH (h:HiddenState)-[r:ACTIVATES]->() WHERE h.pass = $p RETURN count(*) AS n",
                  p=prepared.uid) == want.activates


def test_an_interrupted_write_keeps_nothing(fresh: tuple) -> None:
    store, ing = fresh
    prepared = ing.prepare(PromptSpec(IOI))
    real_copy = store._copy

    def interrupted(table, data):  # noqa: ANN001, ANN202
        if table == "ACTIVATES":
            raise KeyboardInterrupt  # Ctrl-C in the middle of the pass's rows
        real_copy(table, data)

    store._copy = interrupted
    with pytest.raises(KeyboardInterrupt):
        ing.run(store, prepared)
    store._copy = real_copy
    assert store.pass_status(prepared.uid) is None
    assert _count(store, "MATCH (h:HiddenState) RETURN count(*) AS n") == 0
    assert ing.run(store, prepared).written is True
    _expect_one_complete_pass(store, ing, prepared)


def test_an_incomplete_pass_is_hidden_then_replaced(fresh: tuple) -> None:
    """A pass present but not marked complete (another writer's leftovers) is invisible, then rewritten."""
    store, ing = fresh
    prepared = ing.prepare(PromptSpec(FRANCE))
    ing.run(store, prepared)
    store.rows("MATCH (p:Pass) WHERE p.uid = $u SET p.complete = false", {"u": prepared.uid})
    store.rows("MATCH (h:HiddenState)-[r:ACTIVATES]->() WHERE h.layer = 1 DELETE r")  # half-written
    assert run(store, "passes") == [] and len(run(store, "passes", incomplete=True)) == 1
    assert run(store, "target-heads", k=1000) == []
    assert ing.run(store, prepared).written is True
    _expect_one_complete_pass(store, ing, prepared)


CRASHER = """
import os, sys, time
from ingest.pipeline import Ingestor
from ingest.prompts import PromptSpec
from lensgraph.store import open_store
ing = Ingestor("random:llama-tiny")
store = open_store(sys.argv[1])
store.write_model(ing.static())
ing.run(store, ing.prepare(PromptSpec(sys.argv[3])))  # committed before the crash: must survive it
real_copy = store._copy
def slow(table, data):
    real_copy(table, data)
    if table == "ACTIVATES":
        print("mid-pass", flush=True)
        time.sleep(60)
store._copy = slow
ing.run(store, ing.prepare(PromptSpec(sys.argv[2])))
"""


def test_kill_9_mid_pass_leaves_no_visible_pass(tiny: dict[str, Ingested], tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    path = str(tmp_path / "killed.lbug")
    proc = subprocess.Popen([sys.executable, "-c", CRASHER, path, IOI, FRANCE], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parent.parent)
    try:
        assert proc.stdout.readline().strip() == "mid-pass"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    ing = tiny["random:llama-tiny"].ingestor
    store = open_store(path)  # replays the WAL: the open transaction is discarded
    try:
        kept, prepared = ing.prepare(PromptSpec(FRANCE)), ing.prepare(PromptSpec(IOI))
        assert store.pass_status(kept.uid) is True
        assert store.pass_status(prepared.uid) is None
        assert _count(store, "MATCH (h:HiddenState) WHERE h.pass = $p RETURN count(*) AS n", p=prepared.uid) == 0
        assert ing.run(store, prepared).written is True
        _expect_one_complete_pass(store, ing, prepared)
        _expect_one_complete_pass(store, ing, kept)
    finally:
        store.close()


def test_a_store_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "old.lbug")
    store = open_store(path)
    store.rows("MATCH (m:Meta) WHERE m.key = 'schema_version' SET m.value = '0'")
    store.close()
    with pytest.raises(StoreError, match="schema v0"):
        open_store(path)


def test_unwritable_and_missing_store_paths(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a writable directory"):
        open_store(str(tmp_path / "no" / "such" / "dir" / "s.lbug"))
    with pytest.raises(StoreError, match="no store at"):
        open_store(str(tmp_path / "absent.lbug"), read_only=True)
    (tmp_path / "junk.lbug").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError):
        open_store(str(tmp_path / "junk.lbug"))


def test_a_long_run_on_one_handle_keeps_every_pass(tiny: dict[str, Ingested], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The store reopens itself every REOPEN_ROWS rows written (to free LadybugDB's buffer pool): nothing is
    lost. Here every 3 tiny passes' rows."""
    from lensgraph.store import embedded

    ing = tiny["random:gpt2-tiny"].ingestor
    store = open_store(str(tmp_path / "long.lbug"))
    reopened = []
    real_reopen = store._reopen
    monkeypatch.setattr(store, "_reopen", lambda: (reopened.append(1), real_reopen()))
    try:
        store.write_model(ing.static())
        prompts = [f"Prompt number {i} is" for i in range(11)]
        for i, prompt in enumerate(prompts):
            result = ing.run(store, ing.prepare(PromptSpec(prompt)))
            assert result.written
            if i == 0:
                monkeypatch.setattr(embedded, "REOPEN_ROWS", 3 * result.rows)
        assert len(reopened) == 3  # after the 3rd, 6th and 9th pass
        assert sorted(r["prompt"] for r in run(store, "passes")) == sorted(prompts)
        assert ing.run(store, ing.prepare(PromptSpec(prompts[0]))).written is False
    finally:
        store.close()


def test_a_batch_is_written_in_transactions_of_at_most_write_rows(tiny: dict[str, Ingested], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingestor.write groups a batch's passes into transactions of up to WRITE_ROWS rows (here 2.5 passes'
    worth: 2, 2, 1), each pass written once and reported with its own rows."""
    from ingest import pipeline
    from lensgraph.store.embedded import EmbeddedStore

    ing = tiny["random:gpt2-tiny"].ingestor
    prompts = [f"Prompt number {i} is" for i in range(5)]
    prepared = [ing.prepare(PromptSpec(p)) for p in prompts]
    computed = ing.compute(prepared, [False] * len(prepared))
    real, groups = EmbeddedStore.write_passes, []

    def recorded(self, graphs):  # noqa: ANN001, ANN202
        groups.append([g.pass_["prompt"] for g in graphs])
        return real(self, graphs)

    monkeypatch.setattr(EmbeddedStore, "write_passes", recorded)
    store = open_store(str(tmp_path / "groups.lbug"))
    try:
        store.write_model(ing.static())
        first = ing.compute(prepared[:1], [False])
        pass_rows = ing.write(store, first)[0].rows  # every pass of these prompts has as many rows
        monkeypatch.setattr(pipeline, "WRITE_ROWS", int(2.5 * pass_rows))
        groups.clear()
        results = ing.write(store, computed)
        assert groups == [prompts[0:2], prompts[2:4], prompts[4:]]
        assert [r.written for r in results] == [False, True, True, True, True]  # the first was stored above
        assert all(r.rows == pass_rows for r in results[1:])
        assert sorted(r["prompt"] for r in run(store, "passes")) == sorted(prompts)
    finally:
        store.close()


def _smollm2_states(pass_uid: str, n_sources: int) -> pa.Table:
    """The HiddenState rows of a SmolLM2 pass (30 layers, 9 heads) in ingest's order: uids and pass only."""
    uids = []
    for layer in range(30):
        uids += [schema.state_uid(pass_uid, layer, k) for k in ("resid_pre", "ln1")]
        for kind in ("query", "key", "head", "value"):
            sources = range(n_sources) if kind in schema.SOURCE_KINDS else [None]
            uids += [schema.state_uid(pass_uid, layer, kind, h, s) for h in range(9) for s in sources]
        uids += [schema.state_uid(pass_uid, layer, k)
                 for k in ("concat", "attn_out", "resid_mid", "ln2", "mlp_out", "resid_post")]
    uids.append(schema.state_uid(pass_uid, None, schema.FINAL_KIND))
    return pa.Table.from_pylist([{"uid": u, "pass": pass_uid} for u in uids],
                                schema=schema.arrow_schema("HiddenState"))


def _states_only(uid: str, n_sources: int) -> PassGraph:
    def empty(rel: str) -> pa.Table:
        return schema.arrow_schema(rel).empty_table()

    return PassGraph({"uid": uid, "model": "smollm2-135m", "prompt": uid}, _smollm2_states(uid, n_sources),
                     empty("FLOWS_TO"), empty("ACTIVATES"), empty("PROMOTES"))


def test_every_state_is_found_by_its_uid_after_many_writes(tmp_path: Path) -> None:
    """LadybugDB 0.22's primary-key hash index lost exactly this one key: 20 passes of 5 source positions in one
    COPY, then 20 of 14 (the state uids of the France and IOI passes of the 1,000-pass benchmark). The row
    stayed; lookups by its uid found nothing, so queries that read states by uid dropped it silently. The store
    builds ART primary-key indexes instead; this fails if it ever goes back to the hash index."""
    store = open_store(str(tmp_path / "keys.lbug"))
    try:
        groups = [[_states_only(f"smollm2-135m@{h}{c}", n) for c in ["", *(f"c{i}" for i in range(19))]]
                  for h, n in (("7d11a9f2605810a2", 5), ("fc282a8286eac627", 14))]
        uids = []
        for graphs in groups:
            assert all(store.write_passes(graphs))
            uids += [u for g in graphs for u in g.states.column("uid").to_pylist()]
        found = store.rows("UNWIND $u AS x MATCH (h:HiddenState) WHERE h.uid = x RETURN count(*) AS n", {"u": uids})
        assert found[0]["n"] == len(uids) == 20 * 3481 + 20 * 8341
    finally:
        store.close()


def test_a_v1_store_is_upgraded_when_opened_for_writing(tiny: dict[str, Ingested], tmp_path: Path) -> None:
    """v1 had no HAS_STATE edges and hash primary-key indexes: a writable open adds the edges and rebuilds the
    indexes as ART, and queries then see every pass as before; a read-only open says how to upgrade."""
    import ladybug

    path = tmp_path / "v1.lbug"
    store = open_store(str(path))
    ing = tiny["random:gpt2-tiny"].ingestor
    store.write_model(ing.static())
    for prompt in (FRANCE, IOI):
        ing.run(store, ing.prepare(PromptSpec(prompt)))
    want = run(store, "trajectory-mean", kind="resid_post", model="")
    store.close()
    db = ladybug.Database(str(path))  # make it what v1 wrote: no HAS_STATE, hash indexes
    conn = ladybug.Connection(db)
    conn.execute("DROP TABLE HAS_STATE")
    for table, key in (("HiddenState", "uid"), ("Pass", "uid")):
        conn.execute(f"DROP INDEX {table}._PK")
        conn.execute(f"CREATE HASH INDEX _PK FOR (n:{table}) ON (n.{key})")
    conn.execute("MATCH (m:Meta) WHERE m.key = 'schema_version' SET m.value = '1'")
    conn.close()
    db.close()
    with pytest.raises(StoreError, match="lensgraph upgrade"):
        open_store(str(path), read_only=True)
    open_store(str(path)).close()
    store = open_store(str(path), read_only=True)
    try:
        assert {r["k"] for r in store.rows("CALL show_indexes() RETURN index_type AS k")} == {"ART"}
        states = _count(store, "MATCH (h:HiddenState) RETURN count(*) AS n")
        assert _count(store, "MATCH (:Pass)-[r:HAS_STATE]->(:HiddenState) RETURN count(r) AS n") == states > 0
        assert run(store, "trajectory-mean", kind="resid_post", model="") == want
    finally:
        store.close()


def test_a_store_with_double_probability_lists_is_still_written_and_read(tiny: dict[str, Ingested], tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Stores created before the lists of probabilities became FLOAT[] hold DOUBLE[]: a pass written into one
    reads back the same single-precision values as from a new store."""
    ing = tiny["random:gpt2-tiny"].ingestor
    read = "MATCH (h:HiddenState) WHERE h.pass = $p RETURN h.uid AS u, h.top_probs AS t, h.bottom_probs AS b ORDER BY u"
    got = {}
    for name, kind in (("old", "DOUBLE[]"), ("new", "FLOAT[]")):
        with monkeypatch.context() as m:
            for column in ("top_probs", "bottom_probs"):
                m.setitem(schema.NODE_TABLES["HiddenState"], column, kind)
            open_store(str(tmp_path / f"{name}.lbug")).close()  # created with these types
        store = open_store(str(tmp_path / f"{name}.lbug"))
        try:
            store.write_model(ing.static())
            prepared = ing.prepare(PromptSpec(FRANCE))
            ing.run(store, prepared)
            got[name] = store.rows(read, {"p": prepared.uid})
            types = {r["name"]: r["type"] for r in store.rows("CALL table_info('HiddenState') RETURN *")}
            assert types["top_probs"] == types["bottom_probs"] == kind
        finally:
            store.close()
    assert got["old"] == got["new"] and len(got["new"]) > 100


def test_a_query_too_big_for_the_buffer_pool_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A query that runs out of the buffer pool is refused with the setting to raise, and the store keeps
    answering (LadybugDB 0.22 kept such a query's memory, failing every later query: the store reopens)."""
    from lensgraph.store import embedded

    monkeypatch.setattr(embedded, "BUFFER_POOL_BYTES", 64 << 20)
    store = open_store(str(tmp_path / "small.lbug"))
    try:
        big = "UNWIND range(1, 20000000) AS x RETURN x % 1000003 AS k, count(*) AS n ORDER BY n DESC, k LIMIT 1"
        with pytest.raises(StoreError, match="buffer pool \\(64 MB\\) is too small.*LENSGRAPH_BUFFER_POOL_MB"):
            store.rows(big)
        assert store.rows("MATCH (m:Meta) RETURN m.value AS v") == [{"v": str(schema.SCHEMA_VERSION)}]
    finally:
        store.close()


def test_reads_at_once_are_the_reads_one_by_one(tmp_path: Path) -> None:
    """rows_many runs independent reads on connections of their own: the same rows as rows, values converted
    alike (sum() comes back from LadybugDB as a Decimal), and a failing query among them reported as rows does."""
    store = open_store(str(tmp_path / "s.lbug"))
    try:
        queries = [("UNWIND range(1, 3000) AS x RETURN x, x * 0.5 AS half, [x, -x] AS pair, cast(x AS STRING) AS s", {}),
                   ("UNWIND range(1, 100) AS x RETURN sum(x) AS total", {}),
                   ("MATCH (m:Meta) WHERE m.key = $k RETURN m.value AS v", {"k": "schema_version"})]
        together = store.rows_many(queries)
        assert together == [store.rows(cypher, params) for cypher, params in queries]
        assert len(together[0]) == 3000 and together[0][-1] == {"x": 3000, "half": 1500.0, "pair": [3000, -3000],
                                                                 "s": "3000"}
        assert together[1] == [{"total": 5050}] and type(together[1][0]["total"]) is int
        with pytest.raises(StoreError, match="query failed.*Nope"):
            store.rows_many([queries[0], ("MATCH (n:Nope) RETURN n", {})])
        assert store.rows_many(queries[2:]) == [[{"v": str(schema.SCHEMA_VERSION)}]]
    finally:
        store.close()
