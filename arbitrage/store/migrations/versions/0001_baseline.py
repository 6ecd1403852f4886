"""The ledger as gpuarb kept it before Alembic (SQLite PRAGMA user_version 3): runs, placements, attempts, events,
tags, money in REAL dollars.

A ledger file from then is brought up to this schema by its own v1-v3 steps (``arbitrage.store.legacy``) and
stamped with this revision; a new database starts here.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("spec_path", sa.Text, nullable=False),
        sa.Column("spec_text", sa.Text, nullable=False),
        sa.Column("backend", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.Column("ended_at", sa.Text),
        sa.Column("currency", sa.Text, nullable=False, server_default="USD"),
        sa.Column("budget_total_usd", sa.Float),
        sa.Column("budget_hourly_usd", sa.Float),
        sa.Column("expected_total_usd", sa.Float),
        sa.Column("expected_hours", sa.Float),
        sa.Column("egress_in_usd", sa.Float, nullable=False, server_default="0"),
        sa.Column("egress_out_usd", sa.Float, nullable=False, server_default="0"),
        sa.Column("supervisor_pid", sa.Integer),
        sa.Column("supervisor_host", sa.Text),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("heartbeat_at", sa.Text),
        sa.Column("work_tokens", sa.Float),
        sa.Column("work_tasks", sa.Float),
    )
    op.create_table(
        "placements",
        sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("rank", sa.Integer, primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("zone", sa.Text),
        sa.Column("instance_type", sa.Text, nullable=False),
        sa.Column("accelerator", sa.Text, nullable=False),
        sa.Column("gpus_per_node", sa.Integer, nullable=False),
        sa.Column("nodes", sa.Integer, nullable=False),
        sa.Column("spot", sa.Integer, nullable=False),
        sa.Column("usd_per_hour", sa.Float, nullable=False),
        sa.Column("expected_hours", sa.Float, nullable=False),
        sa.Column("expected_total_usd", sa.Float, nullable=False),
        sa.Column("compute_usd", sa.Float, nullable=False),
        sa.Column("preemption_usd", sa.Float, nullable=False),
        sa.Column("egress_in_usd", sa.Float, nullable=False),
        sa.Column("egress_out_usd", sa.Float, nullable=False),
        sa.Column("price_source", sa.Text, nullable=False),
        sa.Column("price_as_of", sa.Text, nullable=False),
        sa.Column("price_ref", sa.Text, nullable=False),
    )
    op.create_table(
        "attempts",
        sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("cluster_name", sa.Text, nullable=False),
        sa.Column("handle", sa.Text),
        sa.Column("started_at", sa.Text, nullable=False),
        sa.Column("running_at", sa.Text),
        sa.Column("ended_at", sa.Text),
        sa.Column("outcome", sa.Text),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("restarts", sa.Integer, nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["run_id", "rank"], ["placements.run_id", "placements.rank"]),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempt", sa.Integer),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_table(
        "tags",
        sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_index("events_by_run", "events", ["run_id", "id"])
    op.create_index("tags_by_kv", "tags", ["key", "value"])
    op.create_index("runs_by_created", "runs", ["created_at"])


def downgrade() -> None:
    for table in ("tags", "events", "attempts", "placements", "runs"):
        op.drop_table(table)
