"""The ingest worker: claims jobs from the catalog, runs each pass and writes it — the only graph writer.

A job's lease is renewed by a heartbeat while its pass runs; a worker killed mid-pass leaves a lease that
expires, and the next worker runs the job again (the store wrote nothing visible: a pass is one transaction,
marked complete last). Bad input and unknown models fail a job at once; anything else (the store locked or
unreachable, a crash) queues it again after a pause, until its attempts are spent.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import lensgraph
from ingest.cores import CORES
from ingest.pipeline import Computed, Ingestor, PassResult, Prepared
from ingest.prompts import PromptSpec
from lensgraph import config
from lensgraph.catalog import Catalog, Job
from lensgraph.errors import InputError, LensgraphError, ModelError
from lensgraph.store import Store, open_store

LEASE_S = 60.0  # a job whose worker sent no heartbeat for this long is claimable again
RETRY_S = 5.0  # pause before a failed job's next attempt (times the attempts so far)


class SkippedRow(InputError):
    """A dataset row whose attribute is several tokens for this model: refused on its own, not its file."""


def prepare(ingestor: Ingestor, spec: PromptSpec, position: int | None) -> Prepared:
    """Ingestor.prepare, with the rule for dataset attributes (known facts, CounterFact): one that is
    several tokens for this model cannot be tracked as a target, so its row is refused with its pieces."""
    if spec.attribute and spec.target is not None:
        try:
            ingestor.token_id(spec.target, spec.where)
        except InputError as e:
            pieces = str(e).partition(" tokens (")[2].partition(")")[0]
            raise SkippedRow(f"{spec.where}: the attribute {spec.target.strip()!r} is several tokens for "
                             f"{ingestor.loaded.name} ({pieces}); rows whose attribute is not one token are "
                             "skipped") from None
    return ingestor.prepare(spec, position)


@dataclass
class Outcome:
    job: Job
    state: str  # done, queued (to be retried) or failed
    result: PassResult | None = None
    error: str = ""


class Lease:
    """Heartbeats for claimed jobs, from their claim until their outcomes are recorded (stop)."""

    def __init__(self, catalog: Catalog, worker: str, job_ids: list[int], lease_s: float) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(catalog, worker, job_ids, lease_s), daemon=True)
        self._thread.start()

    def _beat(self, catalog: Catalog, worker: str, job_ids: list[int], lease_s: float) -> None:
        while not self._done.wait(lease_s / 3):
            for job_id in job_ids:
                try:
                    catalog.heartbeat(job_id, worker, lease_s)
                except Exception:  # noqa: BLE001 — a missed beat only shortens the lease; the next may succeed
                    pass

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


@dataclass
class Staged:
    """A claimed batch on its way through the worker: staged, computed, then written and finished."""

    jobs: list[Job]
    lease: Lease
    ingestor: Ingestor | None = None
    ready: list[tuple[Job, Prepared]] = field(default_factory=list)  # the jobs whose prompt is good
    settled: list[Outcome] = field(default_factory=list)  # jobs that failed before their pass was computed
    skip: list[bool] = field(default_factory=list)  # passes stored already (Ingestor.stored)
    computed: Computed | None = None
    error: Exception | None = None  # the batch failed while staged or computed


class Worker:
    def __init__(self, catalog: Catalog, store: str, *, lease_s: float = LEASE_S, retry_s: float = RETRY_S,
                 say: Callable[[str], None] = lambda _: None,
                 ingestors: dict[tuple[str, int], Ingestor] | None = None, batch: int = config.BATCH) -> None:
        self.catalog, self.address, self.batch = catalog, store, batch
        self.lease_s, self.retry_s, self.say = lease_s, retry_s, say
        self.id = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 10_000}"
        self._ingestors = ingestors if ingestors is not None else {}  # (model, top_k) -> one loaded model
        self._store: Store | None = None

    def run(self, only: Collection[int] | None = None, until_idle: bool = False, poll_s: float = 1.0,
            stop: threading.Event | None = None, on_outcome: Callable[[Outcome], None] = lambda _: None) -> None:
        """Work jobs until `stop` is set, or (until_idle) no job of `only` (or of the queue) is left
        queued or running. The store is held open only while there is work, so other writers can run.

        Batches are pipelined: while batch i+1 is captured and projected, a writer thread writes batch i,
        whose outcomes are recorded once it is written. Only one thread uses the store at a time: batch
        i+1's store reads (which passes are stored already) come before batch i's write starts."""
        stop = stop or threading.Event()
        pending: Staged | None = None  # computed, to be written while the next batch computes
        writer = ThreadPoolExecutor(1, thread_name_prefix="lensgraph-writer")
        try:
            while True:
                jobs = [] if stop.is_set() else self._claim(only)
                if not jobs and pending is not None:  # nothing to overlap with, or asked to stop: write it now
                    self._report(self._finish(pending, writer.submit(self._write, pending)), on_outcome)
                    pending = None
                    continue
                if not jobs:
                    if stop.is_set():
                        return
                    self._close_store()
                    left = self.catalog.counts(only)
                    if until_idle and left["queued"] + left["running"] == 0:
                        return
                    stop.wait(poll_s)
                    continue
                before, pending = pending, self._stage(jobs)
                writing = writer.submit(self._write, before) if before is not None else None
                try:
                    self._compute(pending)
                finally:  # also when interrupted: the batch before is written and recorded
                    if before is not None:
                        self._report(self._finish(before, writing), on_outcome)
        finally:
            if pending is not None:  # interrupted before its write: to be run again, here or by another worker
                pending.lease.stop()
                for job in pending.jobs:
                    self.catalog.release(job.id, self.id)  # a no-op for a job with its outcome
            writer.shutdown()
            self._close_store()

    @staticmethod
    def _report(outcomes: list[Outcome], on_outcome: Callable[[Outcome], None]) -> None:
        for outcome in outcomes:
            on_outcome(outcome)

    def _claim(self, only: Collection[int] | None) -> list[Job]:
        """Up to `batch` jobs of one model and top-k: their passes share one projection (Ingestor.compute)."""
        model = next(iter(self._ingestors), (None,))[0]
        jobs: list[Job] = []
        while len(jobs) < self.batch:
            job = self.catalog.claim(self.id, self.lease_s, only, prefer_model=jobs[0].model if jobs else model)
            if job is None:
                break
            if jobs and (job.model, job.top_k) != (jobs[0].model, jobs[0].top_k):
                self.catalog.release(job.id, self.id)  # for the next batch
                break
            jobs.append(job)
        return jobs

    def _stage(self, jobs: list[Job]) -> Staged:
        """Load the batch's model and prepare its prompts (bad ones fail at once), and find the passes the
        store holds already. Runs while no write is in flight."""
        staged = Staged(jobs, Lease(self.catalog, self.id, [j.id for j in jobs], self.lease_s))
        try:
            self._prepare(staged)
        except BaseException:  # interrupted: the jobs go back to the queue
            staged.lease.stop()
            for job in jobs:
                self.catalog.release(job.id, self.id)
            raise
        return staged

    def _prepare(self, staged: Staged) -> None:
        jobs = staged.jobs
        try:
            staged.ingestor = self.ingestor(jobs[0].model, jobs[0].top_k)
        except LensgraphError as e:
            staged.settled = [self._failed(j, str(e), isinstance(e, ModelError)) for j in jobs]
            return
        for job in jobs:
            try:
                staged.ready.append((job, prepare(staged.ingestor, PromptSpec(
                    job.prompt, job.target, job.source, job.target_is_attribute), job.position)))
            except InputError as e:
                staged.settled.append(self._failed(job, str(e), permanent=True))
        try:
            store = self._open_store()
            ingestor = staged.ingestor
            if not store.has_model(ingestor.loaded.name):
                self.say(f"annotating the static neurons of {ingestor.loaded.name} (once per model and store)")
                store.write_model(ingestor.static())
            staged.skip = ingestor.stored(store, [p for _, p in staged.ready])
        except Exception as e:  # noqa: BLE001 — the batch's jobs fail with it when it is finished
            staged.error = e

    def _compute(self, staged: Staged) -> None:
        """Capture and project the batch's passes; touches no store (the batch before may be writing)."""
        if staged.error is None and staged.ready:
            try:
                staged.computed = staged.ingestor.compute([p for _, p in staged.ready], staged.skip)
            except Exception as e:  # noqa: BLE001 — as in _stage
                staged.error = e

    def _write(self, staged: Staged) -> list[PassResult]:
        """In the writer thread: the batch's passes, written to the store on a core that the next batch's
        compute leaves free meanwhile (ingest/cores.py)."""
        if staged.computed is None:
            return []
        with CORES.writing():
            return staged.ingestor.write(self._open_store(), staged.computed)

    def _finish(self, staged: Staged, writing: Future | None) -> list[Outcome]:
        """Wait for the batch's write and record its jobs' outcomes: done once written, else retried, then
        parked with the error's text (passes written before the error are kept)."""
        outcomes = list(staged.settled)
        try:
            results = writing.result() if writing is not None else []
            if staged.error is not None:
                raise staged.error
            store = self._open_store()
            for (job, p), result in zip(staged.ready, results):
                self._index(job, staged.ingestor, p, result, store)
                self.catalog.finish(job.id, self.id, result.uid, result.written)
                outcomes.append(Outcome(job, "done", result))
        except Exception as e:  # noqa: BLE001
            done = {o.job.id for o in outcomes}
            error = str(e) if isinstance(e, LensgraphError) else f"{type(e).__name__}: {e}"
            permanent = isinstance(e, (InputError, ModelError))
            outcomes += [self._failed(job, error, permanent) for job, _ in staged.ready if job.id not in done]
        finally:
            staged.lease.stop()
        _return_freed_memory()
        return outcomes

    def _failed(self, job: Job, error: str, permanent: bool) -> Outcome:
        self._close_store()  # reopen for the next job: this one may have failed with the store
        state = self.catalog.fail(job.id, self.id, error, permanent, self.retry_s)
        self.say(f"job {job.id} ({job.source}) {'failed' if state == 'failed' else 'will be retried'}: {error}")
        return Outcome(job, state, error=error)

    def ingestor(self, model: str, top_k: int) -> Ingestor:
        """The loaded model; one at a time, as a second would double the memory."""
        key = (model, top_k)
        if key not in self._ingestors:
            self._ingestors.clear()
            self.say(f"loading {model}")
            self._ingestors[key] = Ingestor(model, top_k=top_k, say=self.say)
        return self._ingestors[key]

    def _open_store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.address)
        return self._store

    def _close_store(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            try:
                store.close()
            except Exception:  # noqa: BLE001 — closing a store that already failed
                pass

    def _index(self, job: Job, ingestor: Ingestor, p: Prepared, result: PassResult, store: Store) -> None:
        """Add the pass to the catalog's index (also a pass that was already stored and is not indexed)."""
        if not result.written and self.catalog.has_pass(result.uid):
            return
        if result.written:
            texts = ingestor.tables.texts
            target = result.prediction if p.target_id is None else str(texts[p.target_id])
            prediction, prob = result.prediction, result.prediction_prob
        else:
            found = store.rows("MATCH (p:Pass) WHERE p.uid = $u RETURN p.target AS t, p.prediction AS pr, "
                               "p.prediction_prob AS pp", {"u": result.uid})[0]
            target, prediction, prob = found["t"], found["pr"], found["pp"]
        import torch
        import transformers

        self.catalog.record_pass({
            "uid": result.uid, "model": ingestor.loaded.name, "prompt": p.spec.prompt,
            "settings_hash": result.uid.rpartition("@")[2], "settings": json.dumps(p.settings, sort_keys=True),
            "target": target, "prediction": prediction, "prediction_prob": prob, "n_tokens": len(p.token_ids),
            "rows": result.rows if result.written else None,
            "timings": json.dumps({k: round(v, 4) for k, v in result.timings.items()}) if result.written else None,
            "store": self.address, "job_id": job.id, "worker": self.id, "lensgraph_version": lensgraph.__version__,
            "torch_version": torch.__version__, "transformers_version": transformers.__version__,
        })


def _return_freed_memory() -> None:
    """Hand the memory a finished batch freed back to the system: glibc keeps freed blocks in the arena of
    the thread that used them (the worker has two that allocate). After each of 3 batches of 64 SmolLM2
    passes the worker held 2.85-3.24 GB without this, 2.40-2.47 GB with it. Elsewhere than glibc, a no-op."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def wait_for(catalog: Catalog, ids: Collection[int], timeout_s: float, poll_s: float = 0.2) -> dict[str, int]:
    """Poll until none of the jobs is queued or running (or the time is up); their counts by state."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = catalog.counts(ids)
        if counts["queued"] + counts["running"] == 0 or time.monotonic() > deadline:
            return counts
        time.sleep(poll_s)
