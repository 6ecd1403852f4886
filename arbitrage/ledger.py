"""The run ledger: every run, its planned placements, launch attempts, events, tags and cost, in SQLite.

One file (``paths.ledger_file()``: ``$GPUARB_DATA_DIR/ledger.sqlite3``, else under ``$XDG_DATA_HOME/gpuarb`` or
``~/.local/share/gpuarb``) in WAL mode, so `gpuarb status` reads while a supervisor writes. Every state change is
one transaction that writes the event and the state it implies together: a process killed at any point leaves a
consistent ledger (a run whose supervisor died is shown as such and its cluster is found by `gpuarb reap`).
The schema is versioned with ``PRAGMA user_version``; opening an older file migrates it in place, a newer one is
refused. Storage only: states and event kinds are the enums of ``arbitrage.runstate`` (stored as their string
values), and what a run has cost is worked out by ``arbitrage.billing`` over the rows read here.

The file is untrusted input too: a row that does not parse (a bad timestamp, a non-finite price, broken JSON) is
skipped by the list readers and reported once in ``Ledger.problems`` (by table and row), so one bad row never stops
`status`, `history`, `report spend` or `export focus`. A supervisor proves it is alive by a heartbeat in its run's
row (``heartbeat``), written every HEARTBEAT_SECONDS. The file is created 0600 in a 0700 folder.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from arbitrage import billing, paths
from arbitrage.errors import LedgerError, UsageError
from arbitrage.plural import plural
from arbitrage.runstate import EventKind, RunState

SCHEMA_VERSION = 3

# A supervisor writes its heartbeat this often; one not seen for HEARTBEAT_STALE_SECONDS is gone (killed, crashed,
# its machine down), whatever its pid says.
HEARTBEAT_SECONDS = 10.0
HEARTBEAT_STALE_SECONDS = 60.0
RUN_ID_MIN_PREFIX = 8  # a prefix of a run id must be at least this long (the date part); exact ids may be shorter
_RUN_ID_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz-")

_MIGRATIONS: tuple[str, ...] = (
    # v1
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        spec_path TEXT NOT NULL,
        spec_text TEXT NOT NULL,
        backend TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        ended_at TEXT,
        currency TEXT NOT NULL DEFAULT 'USD',
        budget_total_usd REAL,
        budget_hourly_usd REAL,
        expected_total_usd REAL,
        expected_hours REAL,
        egress_in_usd REAL NOT NULL DEFAULT 0,
        egress_out_usd REAL NOT NULL DEFAULT 0,
        supervisor_pid INTEGER,
        supervisor_host TEXT,
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE placements (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        rank INTEGER NOT NULL,
        provider TEXT NOT NULL,
        region TEXT NOT NULL,
        zone TEXT,
        instance_type TEXT NOT NULL,
        accelerator TEXT NOT NULL,
        gpus_per_node INTEGER NOT NULL,
        nodes INTEGER NOT NULL,
        spot INTEGER NOT NULL,
        usd_per_hour REAL NOT NULL,
        expected_hours REAL NOT NULL,
        expected_total_usd REAL NOT NULL,
        compute_usd REAL NOT NULL,
        preemption_usd REAL NOT NULL,
        egress_in_usd REAL NOT NULL,
        egress_out_usd REAL NOT NULL,
        price_source TEXT NOT NULL,
        price_as_of TEXT NOT NULL,
        price_ref TEXT NOT NULL,
        PRIMARY KEY (run_id, rank)
    );
    CREATE TABLE attempts (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        n INTEGER NOT NULL,
        rank INTEGER NOT NULL,
        cluster_name TEXT NOT NULL,
        handle TEXT,
        started_at TEXT NOT NULL,
        running_at TEXT,
        ended_at TEXT,
        outcome TEXT,
        message TEXT NOT NULL DEFAULT '',
        restarts INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, n),
        FOREIGN KEY (run_id, rank) REFERENCES placements(run_id, rank)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        attempt INTEGER,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE tags (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE INDEX events_by_run ON events(run_id, id);
    CREATE INDEX tags_by_kv ON tags(key, value);
    CREATE INDEX runs_by_created ON runs(created_at);
    """,
    # v2: supervisor liveness by heartbeat (NULL in rows written before: liveness then falls back to the pid)
    """
    ALTER TABLE runs ADD COLUMN heartbeat_at TEXT;
    """,
    # v3: the work a run reported through GPUARB_METRICS (NULL: never reported; see arbitrage.units.parse_metrics)
    """
    ALTER TABLE runs ADD COLUMN work_tokens REAL;
    ALTER TABLE runs ADD COLUMN work_tasks REAL;
    """,
)


_E = TypeVar("_E", RunState, EventKind)


def _iso(ts: datetime) -> str:
    if ts.tzinfo is None:
        raise ValueError("ledger timestamps must be timezone-aware")
    return ts.astimezone(timezone.utc).isoformat(timespec="seconds")


def parse_time(text: str | None) -> datetime | None:
    """A ledger timestamp back as an aware datetime (None stays None); ValueError for anything else."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(f"not a timestamp: {text!r}")
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp without a timezone: {text!r}")
    return stamp


def _time(text: Any) -> datetime:
    """A required ledger timestamp."""
    stamp = parse_time(text)
    if stamp is None:
        raise ValueError("missing timestamp")
    return stamp


def _money(value: Any, *, optional: bool = False) -> Any:
    """A stored amount: a finite number >= 0 (None allowed when ``optional``); ValueError otherwise."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"not an amount: {value!r}")
    return value


def _count(value: Any) -> int:
    """A stored count: an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a count: {value!r}")
    return value


@dataclass(frozen=True)
class PlacementRow:
    """A planned placement as recorded for a run (rank 0 is the plan's best)."""

    run_id: str
    rank: int
    provider: str
    region: str
    zone: str | None
    instance_type: str
    accelerator: str
    gpus_per_node: int
    nodes: int
    spot: bool
    usd_per_hour: float  # whole cluster
    expected_hours: float
    expected_total_usd: float
    compute_usd: float
    preemption_usd: float
    egress_in_usd: float
    egress_out_usd: float
    price_source: str
    price_as_of: str
    price_ref: str

    @property
    def label(self) -> str:
        """One-line name of the placement, as the CLI prints it."""
        where = self.zone or self.region
        kind = "spot" if self.spot else "on-demand"
        nodes = f"{self.nodes}x " if self.nodes > 1 else ""
        return f"{self.provider} {where} {nodes}{self.instance_type} {kind}"


@dataclass(frozen=True)
class AttemptRow:
    """One launch attempt of a run on one placement."""

    run_id: str
    n: int
    rank: int
    cluster_name: str
    handle: dict[str, Any] | None
    started_at: datetime
    running_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    message: str
    restarts: int


@dataclass(frozen=True)
class EventRow:
    """Something that happened to a run, in order."""

    id: int
    run_id: str
    attempt: int | None
    at: datetime
    kind: EventKind
    message: str
    data: dict[str, Any]


@dataclass(frozen=True)
class RunRow:
    """A run as recorded: what, where, state, and the expected cost."""

    id: str
    name: str
    spec_path: str
    spec_text: str
    backend: str
    state: RunState
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    currency: str
    budget_total_usd: float | None
    budget_hourly_usd: float | None
    expected_total_usd: float | None
    expected_hours: float | None
    egress_in_usd: float
    egress_out_usd: float
    supervisor_pid: int | None
    supervisor_host: str | None
    message: str
    tags: dict[str, str]
    heartbeat_at: datetime | None = None  # the supervisor's last heartbeat (None: none yet, or an older gpuarb)
    # The work the job reported in its GPUARB_METRICS file (None: it never reported any).
    work_tokens: float | None = None
    work_tasks: float | None = None

    @property
    def terminal(self) -> bool:
        """True when this run will never change again."""
        return self.state.terminal


class Ledger:
    """The SQLite run ledger. Open with ``Ledger.open(path)``; every write method is one transaction."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.problems: list[str] = []  # rows the readers skipped, one line each (see _skip)

    # -- opening -----------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | None = None) -> Ledger:
        """Open (creating and migrating as needed) the ledger at ``path`` or the default location."""
        path = path or paths.ledger_file()
        try:
            paths.private_dir(path.parent)
            # Created 0600 before SQLite opens it (one from an older gpuarb loses group/other access); SQLite gives
            # the -wal and -shm files the same mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                info = part.stat() if part.exists() else None
                if info is not None and info.st_uid == os.getuid() and info.st_mode & 0o077:
                    part.chmod(0o600)
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            ledger = cls(conn, path)
            ledger._migrate()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{path}: cannot open the run ledger: {exc}") from None
        except OSError as exc:
            raise LedgerError(f"{path}: cannot create the run ledger: {exc.strerror or exc}") from None
        return ledger

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LedgerError(f"{self.path}: ledger schema v{version} is newer than this gpuarb (v{SCHEMA_VERSION});"
                              " upgrade gpuarb")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._tx():
                for statement in _MIGRATIONS[target - 1].split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {target}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # -- writing -----------------------------------------------------------------------------------

    def create_run(self, *, name: str, spec_path: str, spec_text: str, backend: str, now: datetime,
                   placements: list[dict[str, Any]], tags: Mapping[str, str], budget_total_usd: float | None,
                   budget_hourly_usd: float | None, supervisor_pid: int | None = None,
                   supervisor_host: str | None = None, message: str = "",
                   planned_data: Mapping[str, Any] | None = None) -> str:
        """Record a new run with its ranked placements (each a dict of PlacementRow fields but run_id/rank);
        ``planned_data`` is stored with the `planned` event (the runner's spot risk, launch/runner.py)."""
        run_id = f"{now.astimezone(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        best = placements[0] if placements else None
        with self._tx() as c:
            c.execute(
                "INSERT INTO runs (id, name, spec_path, spec_text, backend, state, created_at, updated_at,"
                " budget_total_usd, budget_hourly_usd, expected_total_usd, expected_hours, supervisor_pid,"
                " supervisor_host, message) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, name, spec_path, spec_text, backend, RunState.PLANNED.value, _iso(now), _iso(now),
                 budget_total_usd, budget_hourly_usd, best and best["expected_total_usd"],
                 best and best["expected_hours"], supervisor_pid, supervisor_host, message))
            for rank, p in enumerate(placements):
                c.execute(
                    "INSERT INTO placements (run_id, rank, provider, region, zone, instance_type, accelerator,"
                    " gpus_per_node, nodes, spot, usd_per_hour, expected_hours, expected_total_usd, compute_usd,"
                    " preemption_usd, egress_in_usd, egress_out_usd, price_source, price_as_of, price_ref)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (run_id, rank, p["provider"], p["region"], p["zone"], p["instance_type"], p["accelerator"],
                     p["gpus_per_node"], p["nodes"], int(p["spot"]), p["usd_per_hour"], p["expected_hours"],
                     p["expected_total_usd"], p["compute_usd"], p["preemption_usd"], p["egress_in_usd"],
                     p["egress_out_usd"], p["price_source"], p["price_as_of"], p["price_ref"]))
            c.executemany("INSERT INTO tags (run_id, key, value) VALUES (?,?,?)",
                          [(run_id, k, str(v)) for k, v in sorted(tags.items())])
            feasible = plural(len(placements), 'feasible placement')
            self._event(c, run_id, None, now, EventKind.PLANNED, feasible, planned_data or {})
        return run_id

    def _event(self, c: sqlite3.Connection, run_id: str, attempt: int | None, now: datetime, kind: EventKind,
               message: str, data: Mapping[str, Any]) -> None:
        c.execute("INSERT INTO events (run_id, attempt, at, kind, message, data) VALUES (?,?,?,?,?,?)",
                  (run_id, attempt, _iso(now), EventKind(kind).value, message, json.dumps(dict(data), sort_keys=True)))

    def _set_state(self, c: sqlite3.Connection, run_id: str, state: RunState, now: datetime,
                   message: str | None) -> None:
        state = RunState(state)
        ended = _iso(now) if state.terminal else None
        if message is None:
            c.execute("UPDATE runs SET state=?, updated_at=?, ended_at=COALESCE(ended_at, ?) WHERE id=?",
                      (state.value, _iso(now), ended, run_id))
        else:
            c.execute("UPDATE runs SET state=?, updated_at=?, ended_at=COALESCE(ended_at, ?), message=? WHERE id=?",
                      (state.value, _iso(now), ended, message, run_id))

    def record(self, run_id: str, kind: EventKind, now: datetime, message: str = "", *, attempt: int | None = None,
               state: RunState | None = None, data: Mapping[str, Any] | None = None) -> None:
        """Append an event and, in the same transaction, move the run to ``state`` (if given)."""
        with self._tx() as c:
            self._event(c, run_id, attempt, now, kind, message, data or {})
            if state is not None:
                self._set_state(c, run_id, state, now, message)

    def set_supervisor(self, run_id: str, pid: int | None, host: str | None) -> None:
        """Record which process watches the run (a detached supervisor replaces the submitting CLI); the new one
        has no heartbeat until it writes one."""
        with self._tx() as c:
            c.execute("UPDATE runs SET supervisor_pid=?, supervisor_host=?, heartbeat_at=NULL WHERE id=?",
                      (pid, host, run_id))

    def heartbeat(self, run_id: str, pid: int, now: datetime) -> bool:
        """The supervisor ``pid`` is alive at ``now``; False when another process has taken the run over."""
        with self._tx() as c:
            cursor = c.execute("UPDATE runs SET heartbeat_at=? WHERE id=? AND supervisor_pid=?",
                               (_iso(now), run_id, pid))
        return cursor.rowcount > 0

    def start_attempt(self, run_id: str, rank: int, cluster_name_for: Callable[[int], str], now: datetime) -> int:
        """Open attempt n+1 on placement ``rank`` (state launching), its cluster named by number; returns n."""
        with self._tx() as c:
            n = c.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM attempts WHERE run_id=?", (run_id,)).fetchone()[0]
            c.execute("INSERT INTO attempts (run_id, n, rank, cluster_name, started_at) VALUES (?,?,?,?,?)",
                      (run_id, n, rank, cluster_name_for(n), _iso(now)))
            self._set_state(c, run_id, RunState.LAUNCHING, now, None)
        return n

    def attempt_launched(self, run_id: str, n: int, handle: Mapping[str, Any], now: datetime, message: str) -> None:
        """The backend accepted the launch: store the handle, mark the run running, log `launched`."""
        with self._tx() as c:
            c.execute("UPDATE attempts SET handle=?, running_at=? WHERE run_id=? AND n=?",
                      (json.dumps(dict(handle), sort_keys=True), _iso(now), run_id, n))
            self._event(c, run_id, n, now, EventKind.LAUNCHED, message, {"handle": dict(handle)})
            self._set_state(c, run_id, RunState.RUNNING, now, None)

    def end_attempt(self, run_id: str, n: int, outcome: str, now: datetime, message: str, *, kind: EventKind,
                    run_state: RunState | None = None, restarts: int | None = None) -> None:
        """Close an attempt (idempotent: the first end time wins), log ``kind`` and move the run if asked."""
        with self._tx() as c:
            c.execute("UPDATE attempts SET ended_at=COALESCE(ended_at, ?), outcome=COALESCE(outcome, ?),"
                      " message=CASE WHEN message='' THEN ? ELSE message END,"
                      " restarts=COALESCE(?, restarts) WHERE run_id=? AND n=?",
                      (_iso(now), outcome, message, restarts, run_id, n))
            self._event(c, run_id, n, now, kind, message, {"outcome": outcome})
            if run_state is not None:
                self._set_state(c, run_id, run_state, now, message)

    def set_restarts(self, run_id: str, n: int, restarts: int) -> None:
        """Record how many preemption recoveries the backend reported for an attempt."""
        with self._tx() as c:
            c.execute("UPDATE attempts SET restarts=? WHERE run_id=? AND n=?", (restarts, run_id, n))

    # -- reading -----------------------------------------------------------------------------------

    def _enum(self, cls: type[_E], value: str, where: str) -> _E:
        """A stored state or event kind back as its enum; a value this gpuarb does not know is a LedgerError."""
        try:
            return cls(value)
        except ValueError:
            raise LedgerError(f"{self.path}: {where}: unknown {cls.__name__} {value!r}") from None

    def _skip(self, where: str, exc: Exception) -> None:
        """Remember a row a reader could not use (once per row), for the command to report."""
        line = f"{self.path}: {where}: skipped, it does not parse ({exc})"
        if line not in self.problems:
            self.problems.append(line)

    def _run(self, row: sqlite3.Row) -> RunRow:
        """A runs row as a RunRow; ValueError/LedgerError when a column does not hold what it must."""
        tags = {r["key"]: r["value"] for r in
                self._conn.execute("SELECT key, value FROM tags WHERE run_id=? ORDER BY key", (row["id"],))}
        for column in ("name", "spec_path", "spec_text", "backend", "message"):
            if not isinstance(row[column], str):
                raise ValueError(f"{column} is {row[column]!r}")
        pid = row["supervisor_pid"]
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31):
            raise ValueError(f"supervisor_pid is {pid!r}")
        return RunRow(
            id=row["id"], name=row["name"], spec_path=row["spec_path"], spec_text=row["spec_text"],
            backend=row["backend"], state=self._enum(RunState, row["state"], f"run {row['id']}"),
            created_at=_time(row["created_at"]), updated_at=_time(row["updated_at"]),
            ended_at=parse_time(row["ended_at"]), currency=row["currency"],
            budget_total_usd=_money(row["budget_total_usd"], optional=True),
            budget_hourly_usd=_money(row["budget_hourly_usd"], optional=True),
            expected_total_usd=_money(row["expected_total_usd"], optional=True),
            expected_hours=_money(row["expected_hours"], optional=True), egress_in_usd=_money(row["egress_in_usd"]),
            egress_out_usd=_money(row["egress_out_usd"]), supervisor_pid=pid,
            supervisor_host=row["supervisor_host"], message=row["message"], tags=tags,
            heartbeat_at=parse_time(row["heartbeat_at"]),
            work_tokens=_money(row["work_tokens"], optional=True), work_tasks=_money(row["work_tasks"], optional=True))

    def run(self, run_id: str) -> RunRow:
        """One run by exact id, or by a unique prefix (at least RUN_ID_MIN_PREFIX characters, matched literally).

        UsageError for an argument that cannot name a run (empty, wildcards, a short prefix); LedgerError when no
        run or several match, or the run's row does not parse.
        """
        wanted = run_id.strip().lower()
        if not wanted or not set(wanted) <= _RUN_ID_CHARS:
            raise UsageError(f"run id {run_id[:80]!r}: expected an id like 20261123-120000-abc123 "
                             "(letters, digits and '-')")
        rows = self._conn.execute("SELECT * FROM runs WHERE id = ?", (wanted,)).fetchall()
        if not rows:
            if len(wanted) < RUN_ID_MIN_PREFIX:
                raise LedgerError(f"no run {run_id!r} in {self.path} (a prefix of an id must be at least "
                                  f"{RUN_ID_MIN_PREFIX} characters; see `gpuarb history`)")
            rows = self._conn.execute("SELECT * FROM runs WHERE substr(id, 1, ?) = ? ORDER BY id",
                                      (len(wanted), wanted)).fetchall()
        if not rows:
            raise LedgerError(f"no run {run_id!r} in {self.path} (see `gpuarb history`)")
        if len(rows) > 1:
            raise LedgerError(f"run id {run_id!r} is ambiguous: {', '.join(r['id'] for r in rows[:5])}")
        try:
            return self._run(rows[0])
        except ValueError as exc:
            raise LedgerError(f"{self.path}: run {rows[0]['id']}: its row does not parse ({exc})") from None

    def runs_named(self, name: str) -> list[RunRow]:
        """The runs whose job name is exactly ``name``, newest first (rows that do not parse are skipped and
        reported, as ``runs`` does)."""
        out = []
        for r in self._conn.execute("SELECT * FROM runs WHERE name = ? ORDER BY created_at DESC, id DESC",
                                    (name,)).fetchall():
            try:
                out.append(self._run(r))
            except (ValueError, TypeError, LedgerError) as exc:
                self._skip(f"runs row {r['id']!r}", exc)
        return out

    def runs(self, *, since: datetime | None = None, tags: Mapping[str, str] | None = None,
             states: frozenset[RunState] | None = None, limit: int | None = None) -> list[RunRow]:
        """Runs newest first, filtered by creation time, exact tag matches and state."""
        sql = "SELECT * FROM runs r WHERE 1=1"
        args: list[Any] = []
        if since is not None:
            sql += " AND r.created_at >= ?"
            args.append(_iso(since))
        for key, value in (tags or {}).items():
            sql += " AND EXISTS (SELECT 1 FROM tags t WHERE t.run_id=r.id AND t.key=? AND t.value=?)"
            args += [key, value]
        if states:
            sql += f" AND r.state IN ({','.join('?' * len(states))})"
            args += sorted(RunState(s).value for s in states)
        sql += " ORDER BY r.created_at DESC, r.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        out = []
        for r in self._conn.execute(sql, args).fetchall():
            try:
                out.append(self._run(r))
            except (ValueError, TypeError, LedgerError) as exc:
                self._skip(f"runs row {r['id']!r}", exc)
        return out

    def placements(self, run_id: str) -> list[PlacementRow]:
        """The run's planned placements, best first (rows that do not parse are skipped and reported)."""
        out = []
        for r in self._conn.execute("SELECT * FROM placements WHERE run_id=? ORDER BY rank", (run_id,)).fetchall():
            try:
                row = PlacementRow(**{**dict(r), "spot": bool(r["spot"])})
                for name in ("usd_per_hour", "expected_hours", "expected_total_usd", "compute_usd", "preemption_usd",
                             "egress_in_usd", "egress_out_usd"):
                    _money(getattr(row, name))
                if _count(row.nodes) < 1 or _count(row.gpus_per_node) < 1:
                    raise ValueError(f"{plural(row.nodes, 'node')} of {plural(row.gpus_per_node, 'GPU')}")
                out.append(row)
            except (ValueError, TypeError) as exc:
                self._skip(f"placements row {r['run_id']!r} #{r['rank']}", exc)
        return out

    def attempts(self, run_id: str) -> list[AttemptRow]:
        """The run's launch attempts in order (rows that do not parse, or whose placement does not, are skipped and
        reported: an attempt is billed at its placement's price)."""
        out = []
        ranks = {p.rank for p in self.placements(run_id)}
        for r in self._conn.execute("SELECT * FROM attempts WHERE run_id=? ORDER BY n", (run_id,)).fetchall():
            if r["rank"] not in ranks:
                self._skip(f"attempts row {r['run_id']!r} #{r['n']}", ValueError(f"no placement #{r['rank']}"))
                continue
            try:
                handle = json.loads(r["handle"]) if r["handle"] else None
                if handle is not None and not isinstance(handle, dict):
                    raise ValueError(f"handle is {type(handle).__name__}, not an object")
                out.append(AttemptRow(
                    run_id=r["run_id"], n=_count(r["n"]), rank=_count(r["rank"]), cluster_name=r["cluster_name"],
                    handle=handle, started_at=_time(r["started_at"]), running_at=parse_time(r["running_at"]),
                    ended_at=parse_time(r["ended_at"]), outcome=r["outcome"], message=r["message"],
                    restarts=_count(r["restarts"])))
            except (ValueError, TypeError) as exc:
                self._skip(f"attempts row {r['run_id']!r} #{r['n']}", exc)
        return out

    def events(self, run_id: str) -> list[EventRow]:
        """The run's events in the order they happened (rows that do not parse are skipped and reported)."""
        out = []
        for r in self._conn.execute("SELECT * FROM events WHERE run_id=? ORDER BY id", (run_id,)).fetchall():
            try:
                data = json.loads(r["data"])
                out.append(EventRow(id=r["id"], run_id=r["run_id"], attempt=r["attempt"], at=_time(r["at"]),
                                    kind=self._enum(EventKind, r["kind"], f"run {run_id} event {r['id']}"),
                                    message=r["message"], data=data if isinstance(data, dict) else {}))
            except (ValueError, TypeError, LedgerError) as exc:
                self._skip(f"events row {r['id']}", exc)
        return out

    def spent_usd(self, run_id: str, now: datetime) -> float:
        """Compute billed so far over all attempts, plus the egress already charged to the run (see billing)."""
        placements = {p.rank: p for p in self.placements(run_id)}
        run = self.run(run_id)
        return billing.spent_usd(self.attempts(run_id), placements, now, egress_in_usd=run.egress_in_usd,
                                 egress_out_usd=run.egress_out_usd)

    def set_work(self, run_id: str, *, tokens: float, tasks: float) -> None:
        """Record the work the run reported so far (the metrics file's running totals replace the earlier ones)."""
        for value in (tokens, tasks):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"work must be a finite count >= 0, got {value!r}")
        with self._tx() as c:
            c.execute("UPDATE runs SET work_tokens=?, work_tasks=? WHERE id=?", (tokens, tasks or None, run_id))

    def charge_egress(self, run_id: str, *, egress_in_usd: float = 0.0, egress_out_usd: float = 0.0) -> None:
        """Add data-transfer charges to the run (input staged at first launch, outputs sent home at the end)."""
        with self._tx() as c:
            c.execute("UPDATE runs SET egress_in_usd = egress_in_usd + ?, egress_out_usd = egress_out_usd + ?"
                      " WHERE id=?", (egress_in_usd, egress_out_usd, run_id))

    def check(self, now: datetime | None = None) -> list[str]:
        """Integrity problems (SQLite's own check, dangling rows, impossible states, rows that do not parse);
        empty when consistent. With ``now``, also live runs with an open attempt whose supervisor's heartbeat is
        older than HEARTBEAT_STALE_SECONDS (nothing watches them: `gpuarb reap` or `gpuarb down`)."""
        problems = [r[0] for r in self._conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [f"foreign key: {tuple(r)}" for r in self._conn.execute("PRAGMA foreign_key_check")]
        states = {s.value: s for s in RunState}
        for r in self._conn.execute("SELECT id, state FROM runs"):
            if r["state"] not in states:
                problems.append(f"run {r['id']}: unknown state {r['state']!r}")
        for r in self._conn.execute("SELECT r.id FROM runs r WHERE r.state = ? AND NOT EXISTS"
                                    " (SELECT 1 FROM attempts a WHERE a.run_id=r.id AND a.ended_at IS NULL)",
                                    (RunState.RUNNING.value,)):
            problems.append(f"run {r['id']}: running with no open attempt")
        for r in self._conn.execute("SELECT r.id, r.state, a.n FROM runs r JOIN attempts a ON a.run_id=r.id"
                                    " WHERE a.ended_at IS NULL ORDER BY r.id, a.n"):
            if r["state"] in states and states[r["state"]].terminal:
                problems.append(f"run {r['id']}: {r['state']} but attempt {r['n']} was never closed")
        saved, self.problems = self.problems, []
        runs: list[RunRow] = []
        for r in self._conn.execute("SELECT * FROM runs ORDER BY id").fetchall():
            if r["state"] not in states:
                continue  # reported above
            try:
                runs.append(self._run(r))
            except (ValueError, TypeError, LedgerError) as exc:
                self._skip(f"runs row {r['id']!r}", exc)
        attempts = {}
        for run in runs:
            self.placements(run.id), self.events(run.id)
            attempts[run.id] = self.attempts(run.id)
        found, self.problems = self.problems, saved + [p for p in self.problems if p not in saved]
        problems += found
        if now is not None:
            for run in runs:
                if run.terminal or not any(a.ended_at is None for a in attempts[run.id]):
                    continue
                if run.heartbeat_at is None or (now - run.heartbeat_at).total_seconds() > HEARTBEAT_STALE_SECONDS:
                    seen = "never" if run.heartbeat_at is None else run.heartbeat_at.isoformat(timespec="seconds")
                    problems.append(f"run {run.id}: {run.state} with an open attempt and no supervisor heartbeat "
                                    f"since {seen}")
        return problems
