"""The catalog, the worker and `lensgraph submit / worker / jobs` on SQLite, end to end with real models and
real processes: prompt files with bad rows, a worker killed with SIGKILL mid-pass, a store that is locked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ingest.prompts import read_prompt_rows
from ingest.worker import Worker
from lensgraph.catalog import Catalog, catalog_url
from lensgraph.store import open_store
from tests.conftest import FRANCE, IOI, JAPAN
from tests.test_cli import lg

MODEL = "random:gpt2-tiny"
ROOT = Path(__file__).parent.parent


def _catalog(store: Path) -> Catalog:
    return Catalog(catalog_url(str(store)))


def _complete_passes(store: Path) -> list[dict]:
    db = open_store(str(store), read_only=True)
    try:
        return db.rows("MATCH (p:Pass) RETURN p.uid AS uid, p.prompt AS prompt, p.target AS target, "
                       "p.complete AS complete ORDER BY uid")
    finally:
        db.close()


# -- prompt files ------------------------------------------------------------------------------------------
def test_prompt_files_report_bad_rows_with_their_lines(tmp_path: Path) -> None:
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(f'"{FRANCE}"\n{{"prompt": \n\n{{"prompt": "x", "target": 5}}\n{{"prompt": "{IOI}"}}\n')
    specs, problems = read_prompt_rows(str(jsonl))
    assert [s.prompt for s in specs] == [FRANCE, IOI] and [s.where for s in specs] == [f"{jsonl}:1", f"{jsonl}:5"]
    assert problems == [f"{jsonl}:2: not valid JSON (Expecting value)", f"{jsonl}:4: `target` must be a string"]

    table = tmp_path / "p.csv"
    table.write_text('prompt,target\n"Paris, they say, is in",\nA prompt, Paris\ntoo,many,fields\n\n"last"\n')
    specs, problems = read_prompt_rows(str(table))
    assert [(s.prompt, s.target, s.where) for s in specs] == [
        ("Paris, they say, is in", None, f"{table}:2"), ("A prompt", " Paris", f"{table}:3"),
        ("last", None, f"{table}:6")]
    assert problems == [f"{table}:4: expected 2 fields, got 3"]
    headless = tmp_path / "h.csv"
    headless.write_text("just,text\n")
    with pytest.raises(Exception, match=r"h.csv:1: a CSV file needs a header row with a `prompt` column"):
        read_prompt_rows(str(headless))


def test_known_facts_and_counterfact_target_their_attribute(tmp_path: Path) -> None:
    facts = json.loads((ROOT / "data" / "known_facts.json").read_text())[:2]
    counterfact = {"case_id": 0, "requested_rewrite": {
        "prompt": "The mother tongue of {} is", "subject": "Danielle Darrieux",
        "target_new": {"str": "English", "id": "Q1860"}, "target_true": {"str": "French", "id": "Q150"}}}
    path = tmp_path / "facts.json"
    path.write_text(json.dumps([*facts, counterfact, {"requested_rewrite": {"prompt": "no subject slot"}}]))
    specs, problems = read_prompt_rows(str(path))
    assert [(s.prompt, s.target, s.attribute) for s in specs] == [
        ("Beats Music is owned by", " Apple", True), ("Audible.com is owned by", " Amazon", True),
        ("The mother tongue of Danielle Darrieux is", " French", True)]
    assert problems == [f"{path}[3]: a CounterFact record needs requested_rewrite.prompt, .subject and "
                        ".target_true.str as strings"]


# -- the catalog ---------------------------------------------------------------------------------------------
def test_leases_expire_and_dead_workers_park_a_job(tmp_path: Path) -> None:
    from ingest.prompts import PromptSpec

    catalog = Catalog(f"sqlite:///{tmp_path / 'c.sqlite'}")
    try:
        a, b = catalog.submit(MODEL, [PromptSpec("a"), PromptSpec("b")], None, 10, max_attempts=2)
        first = catalog.claim("w1", lease_s=-1)  # a lease already expired: as if w1 died at once
        assert (first.id, first.attempts) == (a, 1)
        again = catalog.claim("w2", lease_s=60)
        assert (again.id, again.attempts, again.worker) == (a, 2, "w2")
        assert catalog.heartbeat(a, "w2", lease_s=-1) and not catalog.heartbeat(a, "w1", 60)
        nxt = catalog.claim("w3", lease_s=60)  # a's attempts are spent: it is parked, b comes next
        assert nxt.id == b
        parked = catalog.job(a)
        assert parked["state"] == "failed" and "stopped (killed or lost) during attempt 2 of 2" in parked["error"]
        assert catalog.fail(b, "w3", "boom", permanent=False, retry_s=0) == "queued"
        assert catalog.counts() == {"queued": 1, "running": 0, "done": 0, "failed": 1}
        assert catalog.retry_failed() == 1 and catalog.counts()["queued"] == 2
    finally:
        catalog.close()
    reopened = Catalog(f"sqlite:///{tmp_path / 'c.sqlite'}")  # migrations: already at head, a no-op
    try:
        assert len(reopened.jobs()) == 2
    finally:
        reopened.close()


def test_the_migrations_build_exactly_the_tables(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from lensgraph.catalog.tables import metadata

    catalog = Catalog(f"sqlite:///{tmp_path / 'm.sqlite'}")
    try:
        with catalog.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"
    finally:
        catalog.close()


# -- submit, worker, jobs: the command line ------------------------------------------------------------------
def test_submit_then_worker_then_jobs(tmp_path: Path) -> None:
    store = tmp_path / "s.lbug"
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps([{"prompt": "Beats Music is owned by", "attribute": "Apple"},
                                 {"prompt": "Qwzx is owned by", "attribute": "Xqzvw Holdings"},
                                 {"no_prompt": 1}]))
    proc = lg("submit", "--model", MODEL, "-p", FRANCE, "-f", str(facts), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    assert "3 jobs queued" in proc.stdout
    assert f"skipped: {facts}[2]: expected a string or an object" in proc.stderr
    assert not store.exists()  # submit only queues: the worker writes the store

    proc = lg("worker", "--until-idle", "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count(" done: ") == 2
    assert f"{facts}[1]: the attribute 'Xqzvw Holdings' is several tokens for {MODEL}" in proc.stderr

    passes = _complete_passes(store)
    assert {(p["prompt"], p["complete"]) for p in passes} == {(FRANCE, True), ("Beats Music is owned by", True)}
    assert next(p for p in passes if p["prompt"] != FRANCE)["target"] == " Apple"
    proc = lg("jobs", "--store", str(store), "--format", "json")
    assert proc.returncode == 0 and "2 done, 1 failed" in proc.stderr
    failed = next(j for j in json.loads(proc.stdout) if j["state"] == "failed")
    assert failed["attempts"] == 1 and "several tokens" in failed["error"]  # bad input: not retried

    catalog = _catalog(store)
    try:
        index = {p["uid"]: p for p in catalog.passes()}
    finally:
        catalog.close()
    assert set(index) == {p["uid"] for p in passes}
    import torch
    import transformers

    for row in index.values():
        assert row["rows"] > 1000 and set(json.loads(row["timings"])) >= {"forward", "write"}
        assert (row["torch_version"], row["transformers_version"]) == (torch.__version__, transformers.__version__)

    bad = tmp_path / "bad.csv"
    bad.write_text("no prompt column\n")
    proc = lg("submit", "--model", MODEL, "-f", str(bad), "--store", str(store))
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "needs a header row" in proc.stderr


# -- the pipeline: a batch is written while the next computes --------------------------------------------------
PIPELINED = [FRANCE, IOI, JAPAN, "Beats Music is owned by", "The Eiffel Tower is in the city of"]


def _work_in_pairs(catalog: Catalog, store: Path, prompts: list[str], **worker: float) -> tuple[list[int], list]:
    """Queue the prompts and work them, two passes a batch, until none is left: the job ids, and the
    outcomes in the order they were recorded."""
    from ingest.prompts import PromptSpec

    ids = catalog.submit(MODEL, [PromptSpec(p) for p in prompts], None, 10)
    outcomes: list = []
    Worker(catalog, str(store), batch=2, **worker).run(only=ids, until_idle=True, poll_s=0.05,
                                                       on_outcome=outcomes.append)
    return ids, outcomes


def _states(store: Path) -> list[tuple]:
    db = open_store(str(store), read_only=True)
    try:
        return [tuple(r.values()) for r in db.rows(
            "MATCH (p:Pass)-[:HAS_STATE]->(h:HiddenState) RETURN p.prompt, h.uid, h.entropy, h.top_tokens, "
            "h.target_rank ORDER BY h.uid")]
    finally:
        db.close()


def test_a_batch_is_written_while_the_next_computes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 2: the write of each batch waits until the next one has started computing, which only a
    pipelined worker gets to, and holds a core the compute gives up meanwhile; the store then holds exactly
    what one run_batch per batch writes."""
    from ingest.cores import CORES
    from ingest.pipeline import Ingestor
    from ingest.prompts import PromptSpec

    started, events = threading.Condition(), []
    real_compute, real_write = Ingestor.compute, Ingestor.write
    computes = lambda: sum(e[0] == "compute" for e in events)  # noqa: E731

    def compute(self, prepared, skip):  # noqa: ANN001, ANN202
        with started:
            events.append(("compute", len(prepared), threading.current_thread().name))
            started.notify_all()
        return real_compute(self, prepared, skip)

    def write(self, store, computed):  # noqa: ANN001, ANN202
        n = sum(e[0] == "write" for e in events) + 1
        with started:  # batch n's write goes on once batch n+1 computes (the last batch has no next one)
            overlapped = n == 3 or started.wait_for(lambda: computes() > n, timeout=60)
        events.append(("write", len(computed.todo), threading.current_thread().name, overlapped,
                       CORES.for_compute))
        return real_write(self, store, computed)

    monkeypatch.setattr(Ingestor, "compute", compute)
    monkeypatch.setattr(Ingestor, "write", write)
    store = tmp_path / "p.lbug"
    catalog = _catalog(store)
    try:
        ids, outcomes = _work_in_pairs(catalog, store, PIPELINED)
        assert [o.state for o in outcomes] == ["done"] * 5
        assert [o.result.prompt for o in outcomes] == PIPELINED  # recorded batch by batch, in order
        assert catalog.counts(ids)["done"] == 5 and len(catalog.passes()) == 5
    finally:
        catalog.close()
    main = threading.current_thread().name
    assert [e[:3] for e in events] == [
        ("compute", 2, main), ("compute", 2, main), ("write", 2, "lensgraph-writer_0"), ("compute", 1, main),
        ("write", 2, "lensgraph-writer_0"), ("write", 1, "lensgraph-writer_0")]
    assert all(e[3] for e in events if e[0] == "write")  # each write overlapped the next batch's compute
    assert [e[4] for e in events if e[0] == "write"] == [max(1, CORES.total - 1)] * 3
    assert CORES.for_compute == CORES.total  # every core back once the writes are done

    monkeypatch.undo()
    sequential = tmp_path / "s.lbug"
    ingestor, db = Ingestor(MODEL), open_store(str(sequential))
    try:
        db.write_model(ingestor.static())
        for start in range(0, 5, 2):
            ingestor.run_batch(db, [ingestor.prepare(PromptSpec(p)) for p in PIPELINED[start:start + 2]])
    finally:
        db.close()
    assert _states(store) == _states(sequential) and len(_states(store)) > 5 * 100


def test_stopping_the_worker_finishes_the_batches_it_claimed(tmp_path: Path) -> None:
    from ingest.prompts import PromptSpec

    store = tmp_path / "stop.lbug"
    catalog = _catalog(store)
    try:
        ids = catalog.submit(MODEL, [PromptSpec(p) for p in PIPELINED + ["The Louvre is in"]], None, 10)
        stop, outcomes = threading.Event(), []

        def first_then_stop(outcome) -> None:  # noqa: ANN001
            outcomes.append(outcome)
            stop.set()

        # batch 1 is recorded while batch 2 has been computed: both are written, batch 3 stays queued
        Worker(catalog, str(store), batch=2).run(only=ids, stop=stop, on_outcome=first_then_stop)
        assert [o.state for o in outcomes] == ["done"] * 4
        assert catalog.counts(ids) == {"queued": 2, "running": 0, "done": 4, "failed": 0}
    finally:
        catalog.close()
    assert len(_complete_passes(store)) == 4


def test_ctrl_c_finishes_the_write_and_gives_back_the_batch_computing(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or SIGTERM, which the worker command turns into it) lands while batch 2 computes: batch 1,
    being written meanwhile, is written and done; batch 2 goes back to the queue untried, and a new run
    finishes it."""
    from ingest.pipeline import Ingestor
    from ingest.prompts import PromptSpec

    real, calls = Ingestor.compute, []

    def interrupted(self, prepared, skip):  # noqa: ANN001, ANN202
        calls.append(len(prepared))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, prepared, skip)

    monkeypatch.setattr(Ingestor, "compute", interrupted)
    store = tmp_path / "c.lbug"
    catalog = _catalog(store)
    try:
        ids = catalog.submit(MODEL, [PromptSpec(p) for p in PIPELINED[:4]], None, 10)
        outcomes = []
        with pytest.raises(KeyboardInterrupt):
            Worker(catalog, str(store), batch=2).run(only=ids, until_idle=True, on_outcome=outcomes.append)
        assert [(o.job.prompt, o.state) for o in outcomes] == [(FRANCE, "done"), (IOI, "done")]
        assert [(catalog.job(i)["state"], catalog.job(i)["attempts"]) for i in ids] == [
            ("done", 1), ("done", 1), ("queued", 0), ("queued", 0)]
        assert sorted(p["prompt"] for p in _complete_passes(store)) == sorted([FRANCE, IOI])
        monkeypatch.undo()
        Worker(catalog, str(store), batch=2).run(only=ids, until_idle=True)
        assert catalog.counts(ids)["done"] == 4
    finally:
        catalog.close()
    assert len(_complete_passes(store)) == 4


def test_a_failed_write_retries_its_batch_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store fails once, writing the second batch (a fault injected into the real store: a disk that
    fills cannot be staged here); that batch is retried and done, the others are written once."""
    from lensgraph.errors import StoreError
    from lensgraph.store.embedded import EmbeddedStore

    real, calls = EmbeddedStore.write_passes, []

    def fails_once(self, graphs):  # noqa: ANN001, ANN202
        calls.append([g.pass_["prompt"] for g in graphs])
        if len(calls) == 2:
            raise StoreError("writing passes failed, nothing was kept: disk full")
        return real(self, graphs)

    monkeypatch.setattr(EmbeddedStore, "write_passes", fails_once)
    store = tmp_path / "f.lbug"
    catalog = _catalog(store)
    try:
        ids, outcomes = _work_in_pairs(catalog, store, PIPELINED, retry_s=0.05)
        assert [(o.job.prompt, o.state) for o in outcomes] == [
            (FRANCE, "done"), (IOI, "done"), (JAPAN, "queued"), (PIPELINED[3], "queued"),
            (PIPELINED[4], "done"), (JAPAN, "done"), (PIPELINED[3], "done")]
        assert "disk full" in outcomes[2].error
        assert catalog.counts(ids)["done"] == 5 and catalog.job(ids[2])["attempts"] == 2
    finally:
        catalog.close()
    assert sorted(p["prompt"] for p in _complete_passes(store)) == sorted(PIPELINED)


# -- crash safety ---------------------------------------------------------------------------------------------
CRASHING_WORKER = """
import sys, time
from ingest.worker import Worker
from lensgraph.catalog import Catalog
from lensgraph.store.embedded import EmbeddedStore
real_copy = EmbeddedStore._copy
def slow(self, table, data):
    real_copy(self, table, data)
    if table == "ACTIVATES":  # half the pass is in the open transaction
        print("mid-pass", flush=True)
        time.sleep(120)
EmbeddedStore._copy = slow
Worker(Catalog(sys.argv[1]), sys.argv[2], lease_s=2).run(until_idle=True)
"""


def test_kill_9_worker_mid_pass_then_restart(tmp_path: Path) -> None:
    store = tmp_path / "k.lbug"
    proc = lg("submit", "--model", "random:llama-tiny", "-p", IOI, "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    url = catalog_url(str(store))
    crasher = subprocess.Popen([sys.executable, "-c", CRASHING_WORKER, url, str(store)], stdout=subprocess.PIPE,
                               text=True, cwd=ROOT)
    try:
        assert crasher.stdout.readline().strip() == "mid-pass"
    finally:
        os.kill(crasher.pid, signal.SIGKILL)
        crasher.wait()
    assert _complete_passes(store) == []  # nothing of the killed pass is visible
    catalog = _catalog(store)
    try:
        (job,) = catalog.jobs()
        assert (job["state"], job["attempts"]) == ("running", 1)
    finally:
        catalog.close()

    proc = lg("worker", "--until-idle", "--lease", "2", "--poll", "0.2", "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    (found,) = _complete_passes(store)  # the pass appears once, complete
    assert found["prompt"] == IOI and found["complete"] is True
    catalog = _catalog(store)
    try:
        (job,) = catalog.jobs()
        assert (job["state"], job["attempts"], job["pass_uid"]) == ("done", 2, found["uid"])
    finally:
        catalog.close()
    db = open_store(str(store), read_only=True)
    try:  # and its states exactly once: the killed transaction left no rows behind
        states = db.rows("MATCH (h:HiddenState) RETURN count(*) AS n, count(DISTINCT h.uid) AS u")[0]
        assert states["n"] == states["u"] > 0
    finally:
        db.close()


HOLDER = """
import sys, time
from lensgraph.store import open_store
store = open_store(sys.argv[1])  # the write lock: no other process can write now
print("holding", flush=True)
time.sleep(120)
"""


def test_a_locked_store_fails_the_job_which_is_retried(tmp_path: Path) -> None:
    from ingest.prompts import PromptSpec

    store = tmp_path / "locked.lbug"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(store)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert holder.stdout.readline().strip() == "holding"
    catalog = _catalog(store)
    try:
        (once,) = catalog.submit(MODEL, [PromptSpec(FRANCE)], None, 10, max_attempts=1)
        (twice,) = catalog.submit(MODEL, [PromptSpec(IOI)], None, 10, max_attempts=3)
        outcomes = []

        def release_after_the_first_retry(outcome) -> None:  # noqa: ANN001
            outcomes.append((outcome.job.id, outcome.state))
            if outcome.state == "queued" and holder.poll() is None:
                os.kill(holder.pid, signal.SIGKILL)
                holder.wait()

        Worker(catalog, str(store), retry_s=0.1).run(until_idle=True, poll_s=0.1,
                                                     on_outcome=release_after_the_first_retry)
        assert outcomes == [(once, "failed"), (twice, "queued"), (twice, "done")]
        parked, retried = catalog.job(once), catalog.job(twice)
        assert parked["state"] == "failed" and "cannot open the store" in parked["error"]
        assert "lock" in parked["error"].lower()
        assert (retried["state"], retried["attempts"]) == ("done", 2)
    finally:
        catalog.close()
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert [p["prompt"] for p in _complete_passes(store)] == [IOI]  # the store is sound, the run went on


# -- the bundled model, end to end ----------------------------------------------------------------------------
@pytest.mark.slow
def test_ingest_known_facts_with_smollm2(tmp_path: Path) -> None:
    """`lensgraph ingest` of ROME known facts with real weights: targets are the attributes; a fact whose
    attribute is several tokens for SmolLM2 (' HBO') is skipped on its own and the rest is ingested."""
    facts = json.loads((ROOT / "data" / "known_facts.json").read_text())
    rows = [facts[0], next(f for f in facts if f["attribute"] == "HBO"), facts[1]]
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(rows))
    store = tmp_path / "smol.lbug"
    proc = lg("ingest", "--model", "smollm2-135m", "-f", str(path), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    assert "2 passes written, 0 already stored, 1 skipped" in proc.stdout
    assert f"skipped: {path}[1]: the attribute 'HBO' is several tokens for smollm2-135m (' H', 'BO')" in proc.stderr
    assert "ingest smollm2-135m: 100%" in proc.stderr  # the progress bar ran to the end
    passes = _complete_passes(store)
    assert {(p["prompt"], p["target"]) for p in passes} == {("Beats Music is owned by", " Apple"),
                                                           ("Audible.com is owned by", " Amazon")}
    catalog = _catalog(store)
    try:
        assert catalog.counts() == {"queued": 0, "running": 0, "done": 2, "failed": 0}
        index = catalog.passes()
    finally:
        catalog.close()
    assert sorted(p["target"] for p in index) == [" Amazon", " Apple"]
    assert all(p["n_tokens"] >= 5 and p["lensgraph_version"] for p in index)
