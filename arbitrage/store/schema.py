"""The database's tables as they are at the newest migration (SQLAlchemy Core), for the ledger and the server.

What the tables were before is in ``arbitrage/store/migrations/versions`` (Alembic): this module is the shape the
queries are written against, and ``tests/test_store.py`` checks that a database migrated to head matches it.

Conventions, the same in SQLite and PostgreSQL:
- money is integer micro-USD in ``BIGINT`` columns named ``*_micro_usd`` (``arbitrage.money``): stored exactly,
  added as integers; a price of $98.32/h is 98_320_000;
- times are ISO-8601 UTC text with an offset (``2026-12-02T10:00:00+00:00``), so they sort as they compare;
- enums (run states, event kinds, roles) are their string values.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

runs = sa.Table(
    "runs", metadata,
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
    sa.Column("budget_total_micro_usd", sa.BigInteger),
    sa.Column("budget_hourly_micro_usd", sa.BigInteger),
    sa.Column("expected_total_micro_usd", sa.BigInteger),
    sa.Column("expected_hours", sa.Float),
    sa.Column("egress_in_micro_usd", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("egress_out_micro_usd", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("supervisor_pid", sa.Integer),
    sa.Column("supervisor_host", sa.Text),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("heartbeat_at", sa.Text),
    sa.Column("work_tokens", sa.Float),
    sa.Column("work_tasks", sa.Float),
    # Who watches the run: a random token per supervisor, so two server replicas (or two hosts with the same pid)
    # can tell their claims apart; NULL for a run whose supervisor is only known by pid (a CLI before 0002).
    sa.Column("supervisor_token", sa.Text),
    # The team a run belongs to (NULL: a run made by the CLI on its own ledger), who submitted it, and the key a
    # retried submission carries (unique per team: the same key twice is the same run).
    sa.Column("team", sa.Text),
    sa.Column("submitted_by", sa.Text),
    sa.Column("idempotency_key", sa.Text),
    # A server run's job file with its secrets, sealed with the server's key (arbitrage/store/sealed.py); the
    # spec_text column keeps it with the secrets redacted.
    sa.Column("spec_sealed", sa.Text),
)
sa.Index("runs_by_created", runs.c.created_at)
sa.Index("runs_by_team_key", runs.c.team, runs.c.idempotency_key, unique=True)
sa.Index("runs_by_team_created", runs.c.team, runs.c.created_at)

placements = sa.Table(
    "placements", metadata,
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
    sa.Column("micro_usd_per_hour", sa.BigInteger, nullable=False),  # the whole cluster
    sa.Column("expected_hours", sa.Float, nullable=False),
    sa.Column("expected_total_micro_usd", sa.BigInteger, nullable=False),
    sa.Column("compute_micro_usd", sa.BigInteger, nullable=False),
    sa.Column("preemption_micro_usd", sa.BigInteger, nullable=False),
    sa.Column("egress_in_micro_usd", sa.BigInteger, nullable=False),
    sa.Column("egress_out_micro_usd", sa.BigInteger, nullable=False),
    sa.Column("price_source", sa.Text, nullable=False),
    sa.Column("price_as_of", sa.Text, nullable=False),
    sa.Column("price_ref", sa.Text, nullable=False),
)

attempts = sa.Table(
    "attempts", metadata,
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

events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attempt", sa.Integer),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("data", sa.Text, nullable=False, server_default="{}"),
)
sa.Index("events_by_run", events.c.run_id, events.c.id)

tags = sa.Table(
    "tags", metadata,
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
sa.Index("tags_by_kv", tags.c.key, tags.c.value)

# -- the server's accounts ------------------------------------------------------------------------------------

teams = sa.Table(
    "teams", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("webhook_url", sa.Text),  # budget alerts go here (Slack-compatible JSON); NULL: none
)

accounts = sa.Table(
    "accounts", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("team", sa.Text, sa.ForeignKey("teams.name"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),  # admin | member | ci
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("disabled_at", sa.Text),
    sa.UniqueConstraint("team", "name", name="accounts_team_name"),
)

tokens = sa.Table(
    "tokens", metadata,
    sa.Column("id", sa.Text, primary_key=True),  # the public part of gpa_<id>_<secret>
    sa.Column("account_id", sa.Text, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("secret_sha256", sa.Text, nullable=False),  # hex SHA-256 of the secret part; the secret is never kept
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Text),
    sa.Column("revoked_at", sa.Text),
    sa.Column("last_used_at", sa.Text),
)

audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("token_id", sa.Text),  # NULL: no token, or one that did not parse
    sa.Column("account_id", sa.Text),
    sa.Column("team", sa.Text),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("run_id", sa.Text),
    sa.Column("remote", sa.Text),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
)
sa.Index("audit_by_at", audit.c.at)

budgets = sa.Table(
    "budgets", metadata,
    sa.Column("team", sa.Text, sa.ForeignKey("teams.name"), primary_key=True),
    # '' and '' for the team's own cap; a tag's cap covers the team's runs with that tag
    sa.Column("tag_key", sa.Text, primary_key=True, server_default=""),
    sa.Column("tag_value", sa.Text, primary_key=True, server_default=""),
    sa.Column("monthly_cap_micro_usd", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
)

budget_alerts = sa.Table(
    "budget_alerts", metadata,
    sa.Column("team", sa.Text, primary_key=True),
    sa.Column("tag_key", sa.Text, primary_key=True),
    sa.Column("tag_value", sa.Text, primary_key=True),
    sa.Column("month", sa.Text, primary_key=True),  # YYYY-MM (UTC)
    sa.Column("threshold", sa.Integer, primary_key=True),  # 50, 80, 100 (percent of the cap)
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("spent_micro_usd", sa.BigInteger, nullable=False),
    sa.Column("delivered", sa.Text, nullable=False, server_default=""),  # '' or why the webhook post failed
)

ROLES = ("admin", "member", "ci")
