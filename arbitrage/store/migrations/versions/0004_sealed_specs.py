"""A server run's job file with its secrets, sealed (encrypted with the server's key), beside the redacted copy.

Revision ID: 0004_sealed_specs
Revises: 0003_accounts
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_sealed_specs"
down_revision = "0003_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("spec_sealed", sa.Text))


def downgrade() -> None:
    op.drop_column("runs", "spec_sealed")
