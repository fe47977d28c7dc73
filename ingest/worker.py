"""The ingest worker: claims jobs from the catalog, runs each pass and writes it — the only graph writer.

A job's lease is renewed by a heartbeat while its pass runs; a worker killed mid-pass leaves a lease that
expires, and the next worker runs the job again (the store wrote nothing visible: a pass is one transaction,
marked complete last). Bad input and unknown models fail a job at once; anything else (the store locked or
unreachable, a crash) queues it again after a pause, until its attempts are spent.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import lensgraph
from ingest.pipeline import Ingestor, PassResult, Prepared
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
        queued or running. The store is held open only while there is work, so other writers can run."""
        stop = stop or threading.Event()
        try:
            while not stop.is_set():
                jobs = self._claim(only)
                if not jobs:
                    self._close_store()
                    left = self.catalog.counts(only)
                    if until_idle and left["queued"] + left["running"] == 0:
                        return
                    stop.wait(poll_s)
                    continue
                for outcome in self.work(jobs):
                    on_outcome(outcome)
        finally:
            self._close_store()

    def _claim(self, only: Collection[int] | None) -> list[Job]:
        """Up to `batch` jobs of one model and top-k: their passes share one projection (Ingestor.run_batch)."""
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

    def work(self, jobs: list[Job]) -> list[Outcome]:
        """Run claimed jobs (one model and top-k) to their outcomes, heartbeating their leases meanwhile."""
        beating = threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=([j.id for j in jobs], beating), daemon=True)
        heart.start()
        outcomes: list[Outcome] = []
        try:
            try:
                ingestor = self.ingestor(jobs[0].model, jobs[0].top_k)
            except LensgraphError as e:
                return [self._failed(j, str(e), isinstance(e, ModelError)) for j in jobs]
            ready: list[tuple[Job, Prepared]] = []
            for job in jobs:
                try:
                    ready.append((job, prepare(ingestor, PromptSpec(job.prompt, job.target, job.source,
                                                                    job.target_is_attribute), job.position)))
                except InputError as e:
                    outcomes.append(self._failed(job, str(e), permanent=True))
            try:
                store = self._open_store()
                if not store.has_model(ingestor.loaded.name):
                    self.say(f"annotating the static neurons of {ingestor.loaded.name} (once per model and store)")
                    store.write_model(ingestor.static())
                results = ingestor.run_batch(store, [p for _, p in ready])
                for (job, p), result in zip(ready, results):
                    self._index(job, ingestor, p, result, store)
                    self.catalog.finish(job.id, self.id, result.uid, result.written)
                    outcomes.append(Outcome(job, "done", result))
            except KeyboardInterrupt:
                for job, _ in ready:
                    self.catalog.release(job.id, self.id)
                raise
            except Exception as e:  # noqa: BLE001 — retried, then parked with its text; written passes are kept
                done = {o.job.id for o in outcomes}
                error = str(e) if isinstance(e, LensgraphError) else f"{type(e).__name__}: {e}"
                permanent = isinstance(e, (InputError, ModelError))
                outcomes += [self._failed(job, error, permanent) for job, _ in ready if job.id not in done]
        finally:
            beating.set()
            heart.join()
        return outcomes

    def _failed(self, job: Job, error: str, permanent: bool) -> Outcome:
        self._close_store()  # reopen for the next job: this one may have failed with the store
        state = self.catalog.fail(job.id, self.id, error, permanent, self.retry_s)
        self.say(f"job {job.id} ({job.source}) {'failed' if state == 'failed' else 'will be retried'}: {error}")
        return Outcome(job, state, error=error)

    def _heartbeat(self, job_ids: list[int], done: threading.Event) -> None:
        while not done.wait(self.lease_s / 3):
            for job_id in job_ids:
                try:
                    self.catalog.heartbeat(job_id, self.id, self.lease_s)
                except Exception:  # noqa: BLE001 — a missed beat only shortens the lease; the next may succeed
                    pass

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


def wait_for(catalog: Catalog, ids: Collection[int], timeout_s: float, poll_s: float = 0.2) -> dict[str, int]:
    """Poll until none of the jobs is queued or running (or the time is up); their counts by state."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = catalog.counts(ids)
        if counts["queued"] + counts["running"] == 0 or time.monotonic() > deadline:
            return counts
        time.sleep(poll_s)
