"""The catalog's tables (SQLAlchemy Core). Change them only together with a migration in migrations/versions/."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

# Job states: queued → running → done | failed. A running job whose lease expired is claimable again.
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATES = (QUEUED, RUNNING, DONE, FAILED)

jobs = Table(
    "jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(300), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("target", Text),  # None: the model's prediction
    Column("target_is_attribute", Boolean, nullable=False, default=False),
    Column("position", Integer),  # None: the last token
    Column("top_k", Integer, nullable=False),
    Column("source", String(1000), nullable=False),  # file:line or --prompt, for messages
    Column("state", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("error", Text),
    Column("pass_uid", String(300), index=True),
    Column("written", Boolean),  # True: this job wrote the pass; False: it was already stored
    Column("worker", String(200)),
    Column("lease_until", DateTime),  # naive UTC, like every time here
    Column("run_after", DateTime),  # a retried job waits until then
    Column("created", DateTime, nullable=False),
    Column("started", DateTime),
    Column("finished", DateTime),
)

passes = Table(
    "passes", metadata,
    Column("uid", String(300), primary_key=True),  # the store's Pass uid: model @ settings hash
    Column("model", String(300), nullable=False, index=True),
    Column("prompt", Text, nullable=False),
    Column("settings_hash", String(100), nullable=False),
    Column("settings", Text),  # JSON: position, target id, top_k, promotes_k, schema version
    Column("target", Text),
    Column("prediction", Text),
    Column("prediction_prob", Float),
    Column("n_tokens", Integer),
    Column("rows", Integer),  # graph rows written: nodes and relationships
    Column("timings", Text),  # JSON seconds: forward, project, build, write
    Column("store", String(1000)),
    Column("job_id", Integer),
    Column("worker", String(200)),
    Column("lensgraph_version", String(50)),
    Column("torch_version", String(50)),
    Column("transformers_version", String(50)),
    Column("created", DateTime, nullable=False),
)
