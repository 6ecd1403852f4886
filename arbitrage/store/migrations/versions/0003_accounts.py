"""The server's accounts: teams, users and CI service accounts with a role, their hashed tokens, the audit log,
monthly budgets per team and per tag, and the budget alerts already sent.

Revision ID: 0003_accounts
Revises: 0002_exact_money_teams
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_accounts"
down_revision = "0002_exact_money_teams"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("webhook_url", sa.Text),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("team", sa.Text, sa.ForeignKey("teams.name"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("disabled_at", sa.Text),
        sa.UniqueConstraint("team", "name", name="accounts_team_name"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("secret_sha256", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text),
        sa.Column("revoked_at", sa.Text),
        sa.Column("last_used_at", sa.Text),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("token_id", sa.Text),
        sa.Column("account_id", sa.Text),
        sa.Column("team", sa.Text),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("run_id", sa.Text),
        sa.Column("remote", sa.Text),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("audit_by_at", "audit", ["at"])
    op.create_table(
        "budgets",
        sa.Column("team", sa.Text, sa.ForeignKey("teams.name"), primary_key=True),
        sa.Column("tag_key", sa.Text, primary_key=True, server_default=""),
        sa.Column("tag_value", sa.Text, primary_key=True, server_default=""),
        sa.Column("monthly_cap_micro_usd", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    op.create_table(
        "budget_alerts",
        sa.Column("team", sa.Text, primary_key=True),
        sa.Column("tag_key", sa.Text, primary_key=True),
        sa.Column("tag_value", sa.Text, primary_key=True),
        sa.Column("month", sa.Text, primary_key=True),
        sa.Column("threshold", sa.Integer, primary_key=True),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("spent_micro_usd", sa.BigInteger, nullable=False),
        sa.Column("delivered", sa.Text, nullable=False, server_default=""),
    )


def downgrade() -> None:
    for table in ("budget_alerts", "budgets", "audit", "tokens", "accounts", "teams"):
        op.drop_table(table)
