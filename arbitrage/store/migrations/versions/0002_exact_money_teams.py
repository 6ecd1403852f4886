"""Money in integer micro-USD; runs get a team, a submitter, an idempotency key and a supervisor token.

Each REAL dollar column becomes a BIGINT ``*_micro_usd`` column holding the same amount rounded to the micro-USD
(every price gpuarb reads has at most six decimals, so prices move not at all; expected totals by under half a
micro-dollar). The team/idempotency key pair is unique, so a retried submission finds its run.

Revision ID: 0002_exact_money_teams
Revises: 0001_baseline
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_exact_money_teams"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

# table -> (old REAL dollar column, new micro-USD column, NOT NULL)
MONEY = {
    "runs": (("budget_total_usd", "budget_total_micro_usd", False),
             ("budget_hourly_usd", "budget_hourly_micro_usd", False),
             ("expected_total_usd", "expected_total_micro_usd", False),
             ("egress_in_usd", "egress_in_micro_usd", True),
             ("egress_out_usd", "egress_out_micro_usd", True)),
    "placements": (("usd_per_hour", "micro_usd_per_hour", True),
                   ("expected_total_usd", "expected_total_micro_usd", True),
                   ("compute_usd", "compute_micro_usd", True),
                   ("preemption_usd", "preemption_micro_usd", True),
                   ("egress_in_usd", "egress_in_micro_usd", True),
                   ("egress_out_usd", "egress_out_micro_usd", True)),
}


def _convert(table: str, to_micro: bool) -> None:
    for old, new, required in MONEY[table]:
        source, target = (old, new) if to_micro else (new, old)
        kind = sa.BigInteger() if to_micro else sa.Float()
        # SQLite adds a NOT NULL column only with a default; the values are all written just below.
        op.add_column(table, sa.Column(target, kind, nullable=not required,
                                       server_default="0" if required else None))
        if to_micro:
            op.execute(f"UPDATE {table} SET {target} = CAST(ROUND({source} * 1000000) AS BIGINT)")
        else:
            op.execute(f"UPDATE {table} SET {target} = {source} / 1000000.0")
        op.drop_column(table, source)
        if required and op.get_bind().dialect.name != "sqlite" and table == "placements":
            op.alter_column(table, target, server_default=None)  # no placement is ever priced by default


def upgrade() -> None:
    for table in MONEY:
        _convert(table, to_micro=True)
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("supervisor_token", sa.Text))
        batch.add_column(sa.Column("team", sa.Text))
        batch.add_column(sa.Column("submitted_by", sa.Text))
        batch.add_column(sa.Column("idempotency_key", sa.Text))
    op.create_index("runs_by_team_key", "runs", ["team", "idempotency_key"], unique=True)
    op.create_index("runs_by_team_created", "runs", ["team", "created_at"])


def downgrade() -> None:
    op.drop_index("runs_by_team_created", "runs")
    op.drop_index("runs_by_team_key", "runs")
    for column in ("idempotency_key", "submitted_by", "team", "supervisor_token"):
        op.drop_column("runs", column)
    for table in MONEY:
        _convert(table, to_micro=False)
