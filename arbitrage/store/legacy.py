"""The SQLite ledger as gpuarb migrated it before Alembic: ``PRAGMA user_version`` 1 to 3.

A ledger file written then is first brought to v3 by these steps (in one transaction), then stamped as Alembic's
``0001_baseline`` (the same schema) and migrated onwards like any other database; afterwards its user_version is
set to ``MIGRATED_USER_VERSION`` so that a gpuarb from before Alembic refuses it as "newer" instead of reading
columns that are gone.
"""

from __future__ import annotations

from typing import Any

LEGACY_VERSION = 3
MIGRATED_USER_VERSION = 4

STEPS: tuple[str, ...] = (
    # v1
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, spec_path TEXT NOT NULL, spec_text TEXT NOT NULL,
        backend TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        ended_at TEXT, currency TEXT NOT NULL DEFAULT 'USD', budget_total_usd REAL, budget_hourly_usd REAL,
        expected_total_usd REAL, expected_hours REAL, egress_in_usd REAL NOT NULL DEFAULT 0,
        egress_out_usd REAL NOT NULL DEFAULT 0, supervisor_pid INTEGER, supervisor_host TEXT,
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE placements (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, rank INTEGER NOT NULL, provider TEXT NOT NULL,
        region TEXT NOT NULL, zone TEXT, instance_type TEXT NOT NULL, accelerator TEXT NOT NULL,
        gpus_per_node INTEGER NOT NULL, nodes INTEGER NOT NULL, spot INTEGER NOT NULL, usd_per_hour REAL NOT NULL,
        expected_hours REAL NOT NULL, expected_total_usd REAL NOT NULL, compute_usd REAL NOT NULL,
        preemption_usd REAL NOT NULL, egress_in_usd REAL NOT NULL, egress_out_usd REAL NOT NULL,
        price_source TEXT NOT NULL, price_as_of TEXT NOT NULL, price_ref TEXT NOT NULL,
        PRIMARY KEY (run_id, rank)
    );
    CREATE TABLE attempts (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, n INTEGER NOT NULL, rank INTEGER NOT NULL,
        cluster_name TEXT NOT NULL, handle TEXT, started_at TEXT NOT NULL, running_at TEXT, ended_at TEXT,
        outcome TEXT, message TEXT NOT NULL DEFAULT '', restarts INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, n), FOREIGN KEY (run_id, rank) REFERENCES placements(run_id, rank)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        attempt INTEGER, at TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE tags (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE INDEX events_by_run ON events(run_id, id);
    CREATE INDEX tags_by_kv ON tags(key, value);
    CREATE INDEX runs_by_created ON runs(created_at);
    """,
    # v2: supervisor liveness by heartbeat
    "ALTER TABLE runs ADD COLUMN heartbeat_at TEXT;",
    # v3: the work a run reported through GPUARB_METRICS
    "ALTER TABLE runs ADD COLUMN work_tokens REAL; ALTER TABLE runs ADD COLUMN work_tasks REAL;",
)


def bring_to_v3(execute: Any, version: int) -> None:
    """Run the steps after ``version`` through ``execute(sql)`` (inside the caller's transaction)."""
    for step in STEPS[version:LEGACY_VERSION]:
        for statement in step.split(";"):
            if statement.strip():
                execute(statement)
