"""The spot history the planner learns from, read straight from the SQLite ledger file with the standard library.

`gpuarb plan` weighs spot preemption by what earlier runs saw (``spotrisk.observations``); going through the
ledger proper would import SQLAlchemy (~170 ms) into every plan. This reader opens the file read-only, touches
only columns every ledger version has had (placements' rank/provider/region/instance type/nodes/spot, attempts'
rank and times), and skips a row that does not parse, as the ledger's readers do. A server database
(``GPUARB_DATABASE_URL``) is read through the ledger instead (``app.ledger_history``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from arbitrage.errors import LedgerError


@dataclass(frozen=True, slots=True)
class SpotPlacement:
    """What ``spotrisk.observations`` reads of a placement."""

    rank: int
    provider: str
    region: str
    instance_type: str
    nodes: int
    spot: bool


@dataclass(frozen=True, slots=True)
class SpotAttempt:
    """What ``spotrisk.observations`` reads of an attempt."""

    rank: int
    running_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    restarts: int


def _time(text: object) -> datetime | None:
    if text is None:
        return None
    stamp = datetime.fromisoformat(str(text))
    if stamp.tzinfo is None:
        raise ValueError("timestamp without a timezone")
    return stamp


def read(path: Path) -> list[tuple[list[SpotPlacement], list[SpotAttempt]]]:
    """(placements, attempts) of every run that had a spot placement, from the ledger file at ``path``."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise LedgerError(f"{path}: cannot read the run ledger: {exc}") from None
    try:
        placements: dict[str, list[SpotPlacement]] = {}
        for run_id, rank, provider, region, itype, nodes, spot in conn.execute(
                "SELECT run_id, rank, provider, region, instance_type, nodes, spot FROM placements"
                " WHERE run_id IN (SELECT run_id FROM placements WHERE spot = 1) ORDER BY run_id, rank"):
            if isinstance(rank, int) and isinstance(nodes, int) and nodes > 0 and isinstance(provider, str):
                placements.setdefault(run_id, []).append(
                    SpotPlacement(rank, provider, str(region), str(itype), nodes, bool(spot)))
        attempts: dict[str, list[SpotAttempt]] = {}
        for run_id, rank, running, ended, outcome, restarts in conn.execute(
                "SELECT run_id, rank, running_at, ended_at, outcome, restarts FROM attempts ORDER BY run_id, n"):
            if run_id not in placements:
                continue
            try:
                attempts.setdefault(run_id, []).append(SpotAttempt(
                    int(rank), _time(running), _time(ended), outcome if isinstance(outcome, str) else None,
                    restarts if isinstance(restarts, int) and restarts >= 0 else 0))
            except (TypeError, ValueError):
                continue  # a row that does not parse: the ledger's own readers report it
    except sqlite3.Error as exc:
        raise LedgerError(f"{path}: cannot read the run ledger: {exc}") from None
    finally:
        conn.close()
    return [(placements[run_id], attempts.get(run_id, [])) for run_id in placements]
