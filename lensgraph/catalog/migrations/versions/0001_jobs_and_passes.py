"""jobs and the pass index

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("target", sa.Text),
        sa.Column("target_is_attribute", sa.Boolean, nullable=False),
        sa.Column("position", sa.Integer),
        sa.Column("top_k", sa.Integer, nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("pass_uid", sa.String(300)),
        sa.Column("written", sa.Boolean),
        sa.Column("worker", sa.String(200)),
        sa.Column("lease_until", sa.DateTime),
        sa.Column("run_after", sa.DateTime),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("started", sa.DateTime),
        sa.Column("finished", sa.DateTime),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_index("ix_jobs_pass_uid", "jobs", ["pass_uid"])
    op.create_table(
        "passes",
        sa.Column("uid", sa.String(300), primary_key=True),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("settings_hash", sa.String(100), nullable=False),
        sa.Column("settings", sa.Text),
        sa.Column("target", sa.Text),
        sa.Column("prediction", sa.Text),
        sa.Column("prediction_prob", sa.Float),
        sa.Column("n_tokens", sa.Integer),
        sa.Column("rows", sa.Integer),
        sa.Column("timings", sa.Text),
        sa.Column("store", sa.String(1000)),
        sa.Column("job_id", sa.Integer),
        sa.Column("worker", sa.String(200)),
        sa.Column("lensgraph_version", sa.String(50)),
        sa.Column("torch_version", sa.String(50)),
        sa.Column("transformers_version", sa.String(50)),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_index("ix_passes_model", "passes", ["model"])


def downgrade() -> None:
    op.drop_table("passes")
    op.drop_table("jobs")
