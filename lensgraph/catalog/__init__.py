"""The catalog: the job queue and the index of stored passes, in SQL through SQLAlchemy.

SQLite by default, in a file next to the embedded store (`<store>.catalog.sqlite`); a Postgres URL in
production (`--catalog` / $LENSGRAPH_CATALOG). Alembic migrates the schema every time a catalog is opened.
Several workers can share a Postgres catalog (claims use FOR UPDATE SKIP LOCKED); with SQLite run one worker.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, case, create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from lensgraph.catalog.tables import DONE, FAILED, QUEUED, RUNNING, STATES, jobs, passes
from lensgraph.errors import InputError, StoreError

__all__ = ["Catalog", "Job", "catalog_url", "DONE", "FAILED", "QUEUED", "RUNNING", "STATES"]

MAX_ATTEMPTS = 3


def now() -> _dt.datetime:
    """Naive UTC: SQLite keeps no time zone, so every time in the catalog is UTC without one."""
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


def catalog_url(store: str, given: str | None = None) -> str:
    """--catalog, else $LENSGRAPH_CATALOG, else SQLite beside the embedded store (./lensgraph.catalog.sqlite
    for a Neo4j store)."""
    url = given or os.environ.get("LENSGRAPH_CATALOG")
    if url:
        return url if "://" in url else f"sqlite:///{url}"
    from lensgraph.store.neo4j import is_neo4j_address

    path = "lensgraph.catalog.sqlite" if is_neo4j_address(store) else f"{store}.catalog.sqlite"
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class Job:
    id: int
    model: str
    prompt: str
    target: str | None
    target_is_attribute: bool
    position: int | None
    top_k: int
    source: str
    state: str
    attempts: int
    max_attempts: int
    error: str | None
    pass_uid: str | None
    worker: str | None

    @classmethod
    def of(cls, row: Any) -> Job:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{creds.partition(':')[0]}{':***' if ':' in creds else ''}{at}{host}" if at else url


class Catalog:
    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        try:
            if self.sqlite:
                self.engine = create_engine(url, connect_args={"timeout": 30, "isolation_level": None})
                _immediate_transactions(self.engine)
            else:
                self.engine = create_engine(url, pool_pre_ping=True)
        except (ArgumentError, NoSuchModuleError, ImportError) as e:
            raise StoreError(f"cannot use the catalog {_shown(url)}: {e} (Postgres needs `pip install "
                             "psycopg[binary]` and a postgresql+psycopg:// URL)") from None
        if self.sqlite:
            path = url.partition(":///")[2]
            if path and path != ":memory:" and not Path(path).resolve().parent.is_dir():
                raise StoreError(f"cannot open the catalog {path}: its directory does not exist")
        try:
            self.migrate()
        except SQLAlchemyError as e:
            raise StoreError(f"cannot open the catalog {_shown(url)}: {_first_line(e)}") from None

    def migrate(self) -> None:
        """Bring the schema to the newest migration (a no-op when it is there)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    # -- the queue ----------------------------------------------------------------------------------
    def submit(self, model: str, specs: Iterable[Any], position: int | None, top_k: int,
               max_attempts: int = MAX_ATTEMPTS) -> list[int]:
        """Queue one job per PromptSpec; their ids, in order."""
        t = now()
        rows = [{"model": model, "prompt": s.prompt, "target": s.target, "target_is_attribute": s.attribute,
                 "position": position, "top_k": top_k, "source": s.where, "state": QUEUED, "attempts": 0,
                 "max_attempts": max_attempts, "created": t} for s in specs]
        ids = []
        with self._begin() as conn:
            for row in rows:  # one by one: inserted_primary_key is portable, RETURNING batches are not
                ids.append(conn.execute(insert(jobs).values(**row)).inserted_primary_key[0])
        return ids

    def claim(self, worker: str, lease_s: float, only: Collection[int] | None = None,
              prefer_model: str | None = None) -> Job | None:
        """Take the next job: queued, or running with an expired lease (its worker died). A job whose
        workers died max_attempts times is parked as failed instead."""
        while True:
            t = now()
            claimable = or_(jobs.c.state == QUEUED, and_(jobs.c.state == RUNNING, jobs.c.lease_until < t))
            ready = and_(claimable, or_(jobs.c.run_after.is_(None), jobs.c.run_after <= t))
            if only is not None:
                ready = and_(ready, jobs.c.id.in_(list(only)))
            order = [jobs.c.id] if prefer_model is None else [case((jobs.c.model == prefer_model, 0), else_=1), jobs.c.id]
            pick = select(jobs).where(ready).order_by(*order).limit(1)
            if not self.sqlite:
                pick = pick.with_for_update(skip_locked=True)  # other workers skip the row we hold
            with self._begin() as conn:
                row = conn.execute(pick).mappings().first()
                if row is None:
                    return None
                mine = and_(jobs.c.id == row["id"], claimable)  # still claimable: compare and set
                if row["attempts"] >= row["max_attempts"]:
                    reason = (f"its worker stopped (killed or lost) during attempt {row['attempts']} of "
                              f"{row['max_attempts']}")
                    if row["error"]:
                        reason += f"; earlier: {row['error']}"
                    conn.execute(update(jobs).where(mine).values(state=FAILED, error=reason, finished=t,
                                                                 lease_until=None))
                    continue
                done = conn.execute(update(jobs).where(mine).values(
                    state=RUNNING, attempts=row["attempts"] + 1, worker=worker, started=t,
                    lease_until=t + _dt.timedelta(seconds=lease_s)))
                if done.rowcount == 1:
                    return Job.of({**row, "state": RUNNING, "attempts": row["attempts"] + 1, "worker": worker})

    def heartbeat(self, job_id: int, worker: str, lease_s: float) -> bool:
        """Extend the lease; False when the job is no longer this worker's."""
        with self._begin() as conn:
            return conn.execute(update(jobs).where(self._owned(job_id, worker)).values(
                lease_until=now() + _dt.timedelta(seconds=lease_s))).rowcount == 1

    def finish(self, job_id: int, worker: str, pass_uid: str, written: bool) -> None:
        with self._begin() as conn:
            conn.execute(update(jobs).where(self._owned(job_id, worker)).values(
                state=DONE, pass_uid=pass_uid, written=written, error=None, finished=now(), lease_until=None))

    def fail(self, job_id: int, worker: str, error: str, permanent: bool, retry_s: float) -> str:
        """Record an error: the job is queued again after a pause, or parked as failed when the error is
        permanent (bad input, unknown model) or its attempts are spent. Its new state."""
        with self._begin() as conn:
            row = conn.execute(select(jobs.c.attempts, jobs.c.max_attempts).where(self._owned(job_id, worker))).first()
            if row is None:
                return ""
            t = now()
            if permanent or row.attempts >= row.max_attempts:
                values = {"state": FAILED, "finished": t}
            else:  # back off a little longer after each attempt
                values = {"state": QUEUED, "run_after": t + _dt.timedelta(seconds=retry_s * row.attempts)}
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(error=error, lease_until=None, **values))
            return values["state"]

    def release(self, job_id: int, worker: str) -> None:
        """Give a job back untried (the worker was stopped politely)."""
        with self._begin() as conn:
            conn.execute(update(jobs).where(self._owned(job_id, worker)).values(
                state=QUEUED, attempts=jobs.c.attempts - 1, lease_until=None, worker=None))

    def retry_failed(self, ids: Collection[int] | None = None) -> int:
        """Queue failed jobs again with fresh attempts; how many."""
        where = jobs.c.state == FAILED
        if ids is not None:
            where = and_(where, jobs.c.id.in_(list(ids)))
        with self._begin() as conn:
            return conn.execute(update(jobs).where(where).values(state=QUEUED, attempts=0, run_after=None,
                                                                 finished=None)).rowcount

    @staticmethod
    def _owned(job_id: int, worker: str) -> Any:
        return and_(jobs.c.id == job_id, jobs.c.worker == worker, jobs.c.state == RUNNING)

    # -- reading the queue --------------------------------------------------------------------------
    def job(self, job_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return None if row is None else _plain(row)

    def jobs(self, state: str | None = None, ids: Collection[int] | None = None, limit: int = 100,
             newest_first: bool = True) -> list[dict[str, Any]]:
        q = select(jobs)
        if state is not None:
            if state not in STATES:
                raise InputError(f"no job state {state!r}; choose one of {', '.join(STATES)}")
            q = q.where(jobs.c.state == state)
        if ids is not None:
            q = q.where(jobs.c.id.in_(list(ids)))
        q = q.order_by(jobs.c.id.desc() if newest_first else jobs.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [_plain(r) for r in conn.execute(q).mappings()]

    def counts(self, ids: Collection[int] | None = None) -> dict[str, int]:
        """Jobs per state (every state present, zero when none)."""
        q = select(jobs.c.state, func.count()).group_by(jobs.c.state)
        if ids is not None:
            q = q.where(jobs.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            found = dict(conn.execute(q).all())
        return {s: found.get(s, 0) for s in STATES}

    # -- the pass index -----------------------------------------------------------------------------
    def record_pass(self, row: dict[str, Any]) -> None:
        with self._begin() as conn:
            conn.execute(delete(passes).where(passes.c.uid == row["uid"]))
            conn.execute(insert(passes).values(created=now(), **row))

    def has_pass(self, uid: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(passes.c.uid).where(passes.c.uid == uid)).first() is not None

    def passes(self, model: str = "", limit: int = 1000) -> list[dict[str, Any]]:
        q = select(passes).order_by(passes.c.created.desc(), passes.c.uid).limit(limit)
        if model:
            q = q.where(passes.c.model == model)
        with self.engine.connect() as conn:
            return [_plain(r) for r in conn.execute(q).mappings()]

    def _begin(self) -> Any:
        return self.engine.begin()


def _immediate_transactions(engine: Engine) -> None:
    """SQLite: take the write lock when a transaction begins (BEGIN IMMEDIATE), so that two processes
    never both read a job as free and then race to claim it; WAL lets readers go on meanwhile."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA busy_timeout=30000")

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _plain(row: Any) -> dict[str, Any]:
    """A row as JSON-ready values: times as ISO 8601 UTC."""
    return {k: (v.isoformat(timespec="seconds") + "Z" if isinstance(v, _dt.datetime) else v) for k, v in row.items()}


def _first_line(e: BaseException) -> str:
    return str(getattr(e, "orig", None) or e).splitlines()[0]
