"""The run ledger: every run, its planned placements, launch attempts, events, tags and cost.

It lives in the database ``arbitrage.store.engine`` opens: by default one SQLite file (``paths.ledger_file()``:
``$GPUARB_DATA_DIR/ledger.sqlite3``, else under ``$XDG_DATA_HOME/gpuarb`` or ``~/.local/share/gpuarb``) in WAL mode,
so `gpuarb status` reads while a supervisor writes; a team server's PostgreSQL with ``GPUARB_DATABASE_URL``. Every
state change is one transaction that writes the event and the state it implies together: a process killed at any
point leaves a consistent ledger (a run whose supervisor died is shown as such and its cluster is found by
`gpuarb reap`). Opening a database migrates it (Alembic; a SQLite ledger from before migrates in place) and
refuses one from a newer gpuarb. Money is stored as integer micro-USD and read back as the floats the rest of
gpuarb computes with (exact again through ``arbitrage.money.micro``). Storage only: states and event kinds are
the enums of ``arbitrage.runstate`` (stored as their string values), and what a run has cost is worked out by
``arbitrage.billing`` over the rows read here.

The file is untrusted input too: a row that does not parse (a bad timestamp, a non-finite price, broken JSON) is
skipped by the list readers and reported once in ``Ledger.problems`` (by table and row), so one bad row never stops
`status`, `history`, `report spend` or `export focus`. A supervisor proves it is alive by a heartbeat in its run's
row (``heartbeat``), written every HEARTBEAT_SECONDS; a server's workers claim runs to supervise by the same
heartbeat and a token of their own (``claim_supervision``), so two replicas never watch one run. The SQLite file is
created 0600 in a 0700 folder.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from arbitrage import billing
from arbitrage.errors import LedgerError, UsageError
from arbitrage.money import micro, usd
from arbitrage.plural import plural
from arbitrage.runstate import EventKind, RunState
from arbitrage.store import engine as store
from arbitrage.store.schema import attempts as T_ATTEMPTS
from arbitrage.store.schema import events as T_EVENTS
from arbitrage.store.schema import placements as T_PLACEMENTS
from arbitrage.store.schema import runs as T_RUNS
from arbitrage.store.schema import tags as T_TAGS

# A supervisor writes its heartbeat this often; one not seen for HEARTBEAT_STALE_SECONDS is gone (killed, crashed,
# its machine down), whatever its pid says.
HEARTBEAT_SECONDS = 10.0
HEARTBEAT_STALE_SECONDS = 60.0
RUN_ID_MIN_PREFIX = 8  # a prefix of a run id must be at least this long (the date part); exact ids may be shorter
_RUN_ID_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz-")

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


def _number(value: Any, *, optional: bool = False) -> Any:
    """A stored quantity (hours, tokens): a finite number >= 0 (None allowed when ``optional``); ValueError
    otherwise."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"not a quantity: {value!r}")
    return value


def _money(value: Any, *, optional: bool = False) -> Any:
    """A stored amount, integer micro-USD >= 0, as USD (None allowed when ``optional``); ValueError otherwise."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not an amount in micro-USD: {value!r}")
    return usd(value)


def _micro_or_none(value: float | None) -> int | None:
    return None if value is None else micro(value)


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
    # A server run: its team, who submitted it, the submission's idempotency key; the supervising worker's token.
    team: str | None = None
    submitted_by: str | None = None
    idempotency_key: str | None = None
    supervisor_token: str | None = None
    spec_sealed: str | None = None  # the job file with its secrets, encrypted (arbitrage/store/sealed.py)

    @property
    def terminal(self) -> bool:
        """True when this run will never change again."""
        return self.state.terminal


class KeyTaken(LedgerError):
    """A submission's idempotency key is already the team's run ``run_id`` (a retried CI step)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"idempotency key already used by run {run_id}")
        self.run_id = run_id


_PLACEMENT_MONEY = (("usd_per_hour", "micro_usd_per_hour"), ("expected_total_usd", "expected_total_micro_usd"),
                    ("compute_usd", "compute_micro_usd"), ("preemption_usd", "preemption_micro_usd"),
                    ("egress_in_usd", "egress_in_micro_usd"), ("egress_out_usd", "egress_out_micro_usd"))


class Ledger:
    """The run ledger. Open with ``Ledger.open(where)``; every write method is one transaction."""

    def __init__(self, database: store.Database) -> None:
        self.database = database
        self.url = database.url  # what another thread or process opens to reach the same ledger
        # What messages name: the SQLite file, or the server database's URL without its password.
        self.path: Path | str = database.path if database.path is not None else database.where
        self.problems: list[str] = []  # rows the readers skipped, one line each (see _skip)

    # -- opening -----------------------------------------------------------------------------------

    @classmethod
    def open(cls, where: Path | str | None = None) -> Ledger:
        """Open (creating and migrating as needed) the ledger at ``where`` (a SQLite file's path or a database
        URL), else the database ``$GPUARB_DATABASE_URL`` names, else the SQLite ledger file."""
        return cls(store.open_database(where))

    def close(self) -> None:
        """Nothing to close: each operation takes a connection from the engine and gives it back."""

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        """One write transaction (SQLite: BEGIN IMMEDIATE); database errors become a LedgerError naming it."""
        try:
            with self.database.engine.connect() as conn, store.writing(conn).begin():
                yield conn
        except sa.exc.IntegrityError:
            raise
        except sa.exc.DBAPIError as exc:
            raise LedgerError(f"{self.path}: cannot write the run ledger: {store.one_line(exc)}") from None

    def _rows(self, statement: Any, args: Mapping[str, Any] | None = None) -> list[Any]:
        """A read in a transaction of its own, rows as mappings (``row["column"]``)."""
        try:
            with self.database.engine.connect() as conn, conn.begin():
                return list(conn.execute(statement, dict(args or {})).mappings().all())
        except sa.exc.DBAPIError as exc:
            raise LedgerError(f"{self.path}: cannot read the run ledger: {store.one_line(exc)}") from None

    # -- writing -----------------------------------------------------------------------------------

    def create_run(self, *, name: str, spec_path: str, spec_text: str, backend: str, now: datetime,
                   placements: list[dict[str, Any]], tags: Mapping[str, str], budget_total_usd: float | None,
                   budget_hourly_usd: float | None, supervisor_pid: int | None = None,
                   supervisor_host: str | None = None, message: str = "",
                   planned_data: Mapping[str, Any] | None = None, team: str | None = None,
                   submitted_by: str | None = None, idempotency_key: str | None = None,
                   spec_sealed: str | None = None) -> str:
        """Record a new run with its ranked placements (each a dict of PlacementRow fields but run_id/rank);
        ``planned_data`` is stored with the `planned` event (the runner's spot risk, launch/runner.py). A server
        run names its ``team`` and submitter; an ``idempotency_key`` the team already used raises KeyTaken with
        that run's id (nothing is written)."""
        run_id = f"{now.astimezone(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        best = placements[0] if placements else None
        try:
            with self._tx() as c:
                c.execute(T_RUNS.insert().values(
                    id=run_id, name=name, spec_path=spec_path, spec_text=spec_text, backend=backend,
                    state=RunState.PLANNED.value, created_at=_iso(now), updated_at=_iso(now),
                    budget_total_micro_usd=_micro_or_none(budget_total_usd),
                    budget_hourly_micro_usd=_micro_or_none(budget_hourly_usd),
                    expected_total_micro_usd=_micro_or_none(best and best["expected_total_usd"]),
                    expected_hours=best and best["expected_hours"], supervisor_pid=supervisor_pid,
                    supervisor_host=supervisor_host, message=message, team=team, submitted_by=submitted_by,
                    idempotency_key=idempotency_key, spec_sealed=spec_sealed))
                if placements:
                    c.execute(T_PLACEMENTS.insert(), [_placement_values(run_id, rank, p)
                                                      for rank, p in enumerate(placements)])
                if tags:
                    c.execute(T_TAGS.insert(), [{"run_id": run_id, "key": k, "value": str(v)}
                                                for k, v in sorted(tags.items())])
                feasible = plural(len(placements), 'feasible placement')
                self._event(c, run_id, None, now, EventKind.PLANNED, feasible, planned_data or {})
        except sa.exc.IntegrityError as exc:
            if idempotency_key is not None:
                taken = self.run_by_key(team, idempotency_key)
                if taken is not None:
                    raise KeyTaken(taken.id) from None
            raise LedgerError(f"{self.path}: cannot record run {name!r}: {store.one_line(exc)}") from None
        return run_id

    def _event(self, c: sa.Connection, run_id: str, attempt: int | None, now: datetime, kind: EventKind,
               message: str, data: Mapping[str, Any]) -> None:
        c.execute(T_EVENTS.insert().values(run_id=run_id, attempt=attempt, at=_iso(now), kind=EventKind(kind).value,
                                           message=message, data=json.dumps(dict(data), sort_keys=True)))

    def _set_state(self, c: sa.Connection, run_id: str, state: RunState, now: datetime,
                   message: str | None) -> None:
        state = RunState(state)
        values: dict[str, Any] = {"state": state.value, "updated_at": _iso(now),
                                  "ended_at": sa.func.coalesce(T_RUNS.c.ended_at, _iso(now) if state.terminal
                                                               else None)}
        if message is not None:
            values["message"] = message
        c.execute(T_RUNS.update().where(T_RUNS.c.id == run_id).values(**values))

    def record(self, run_id: str, kind: EventKind, now: datetime, message: str = "", *, attempt: int | None = None,
               state: RunState | None = None, data: Mapping[str, Any] | None = None) -> None:
        """Append an event and, in the same transaction, move the run to ``state`` (if given)."""
        with self._tx() as c:
            self._event(c, run_id, attempt, now, kind, message, data or {})
            if state is not None:
                self._set_state(c, run_id, state, now, message)

    def set_supervisor(self, run_id: str, pid: int | None, host: str | None, token: str | None = None) -> None:
        """Record which process watches the run (a detached supervisor replaces the submitting CLI); the new one
        has no heartbeat until it writes one."""
        with self._tx() as c:
            c.execute(T_RUNS.update().where(T_RUNS.c.id == run_id).values(
                supervisor_pid=pid, supervisor_host=host, supervisor_token=token, heartbeat_at=None))

    def heartbeat(self, run_id: str, pid: int, now: datetime, token: str | None = None) -> bool:
        """The supervisor ``pid`` (or, for a server worker, the one holding ``token``) is alive at ``now``; False
        when another one has taken the run over."""
        owner = T_RUNS.c.supervisor_token == token if token is not None else T_RUNS.c.supervisor_pid == pid
        with self._tx() as c:
            result = c.execute(T_RUNS.update().where(T_RUNS.c.id == run_id, owner).values(heartbeat_at=_iso(now)))
        return result.rowcount > 0

    def claim_supervision(self, *, token: str, pid: int, host: str, now: datetime, stale_seconds: float,
                          limit: int = 10, run_id: str | None = None) -> list[str]:
        """Take up to ``limit`` server runs (a team's, not finished) that nobody watches: no heartbeat yet, or none
        for ``stale_seconds`` (their worker died). Each claim is a conditional update in one transaction, so two
        workers (two replicas on one database) never both win a run; PostgreSQL also skips rows another claim
        holds locked. Returns the run ids claimed, oldest first."""
        cutoff = _iso(now - timedelta(seconds=stale_seconds))
        terminal = sorted(s.value for s in RunState if s.terminal)
        free = sa.or_(T_RUNS.c.heartbeat_at.is_(None), T_RUNS.c.heartbeat_at < cutoff)
        wanted = sa.and_(T_RUNS.c.team.is_not(None), T_RUNS.c.state.not_in(terminal), free)
        if run_id is not None:
            wanted = sa.and_(wanted, T_RUNS.c.id == run_id)
        query = sa.select(T_RUNS.c.id).where(wanted).order_by(T_RUNS.c.created_at, T_RUNS.c.id).limit(limit)
        claimed: list[str] = []
        with self._tx() as c:
            if self.database.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            for candidate in c.execute(query).scalars().all():
                result = c.execute(T_RUNS.update().where(T_RUNS.c.id == candidate, wanted).values(
                    supervisor_token=token, supervisor_pid=pid, supervisor_host=host, heartbeat_at=_iso(now)))
                if result.rowcount:
                    claimed.append(candidate)
        return claimed

    def release_supervision(self, run_id: str, token: str) -> None:
        """Give a claimed run back (a worker shutting down cleanly): another worker may take it at once."""
        with self._tx() as c:
            c.execute(T_RUNS.update().where(T_RUNS.c.id == run_id, T_RUNS.c.supervisor_token == token).values(
                heartbeat_at=None, supervisor_token=None))

    def start_attempt(self, run_id: str, rank: int, cluster_name_for: Callable[[int], str], now: datetime) -> int:
        """Open attempt n+1 on placement ``rank`` (state launching), its cluster named by number; returns n."""
        with self._tx() as c:
            n = c.execute(sa.select(sa.func.coalesce(sa.func.max(T_ATTEMPTS.c.n), 0) + 1)
                          .where(T_ATTEMPTS.c.run_id == run_id)).scalar_one()
            c.execute(T_ATTEMPTS.insert().values(run_id=run_id, n=n, rank=rank, cluster_name=cluster_name_for(n),
                                                 started_at=_iso(now)))
            self._set_state(c, run_id, RunState.LAUNCHING, now, None)
        return int(n)

    def attempt_launched(self, run_id: str, n: int, handle: Mapping[str, Any], now: datetime, message: str) -> None:
        """The backend accepted the launch: store the handle, mark the run running, log `launched`."""
        with self._tx() as c:
            c.execute(T_ATTEMPTS.update().where(T_ATTEMPTS.c.run_id == run_id, T_ATTEMPTS.c.n == n).values(
                handle=json.dumps(dict(handle), sort_keys=True), running_at=_iso(now)))
            self._event(c, run_id, n, now, EventKind.LAUNCHED, message, {"handle": dict(handle)})
            self._set_state(c, run_id, RunState.RUNNING, now, None)

    def end_attempt(self, run_id: str, n: int, outcome: str, now: datetime, message: str, *, kind: EventKind,
                    run_state: RunState | None = None, restarts: int | None = None) -> None:
        """Close an attempt (idempotent: the first end time wins), log ``kind`` and move the run if asked."""
        a = T_ATTEMPTS.c
        with self._tx() as c:
            c.execute(T_ATTEMPTS.update().where(a.run_id == run_id, a.n == n).values(
                ended_at=sa.func.coalesce(a.ended_at, _iso(now)), outcome=sa.func.coalesce(a.outcome, outcome),
                message=sa.case((a.message == "", message), else_=a.message),
                restarts=a.restarts if restarts is None else restarts))
            self._event(c, run_id, n, now, kind, message, {"outcome": outcome})
            if run_state is not None:
                self._set_state(c, run_id, run_state, now, message)

    def set_restarts(self, run_id: str, n: int, restarts: int) -> None:
        """Record how many preemption recoveries the backend reported for an attempt."""
        with self._tx() as c:
            c.execute(T_ATTEMPTS.update().where(T_ATTEMPTS.c.run_id == run_id, T_ATTEMPTS.c.n == n)
                      .values(restarts=restarts))

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

    def _tags(self, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
        for chunk in range(0, len(run_ids), 500):
            ids = list(run_ids[chunk:chunk + 500])
            for r in self._rows(sa.select(T_TAGS).where(T_TAGS.c.run_id.in_(ids))
                                .order_by(T_TAGS.c.run_id, T_TAGS.c.key)):
                found[r["run_id"]][r["key"]] = r["value"]
        return found

    def _run(self, row: Any, tags: Mapping[str, str] | None = None) -> RunRow:
        """A runs row as a RunRow; ValueError/LedgerError when a column does not hold what it must."""
        if tags is None:
            tags = self._tags([row["id"]])[row["id"]]
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
            budget_total_usd=_money(row["budget_total_micro_usd"], optional=True),
            budget_hourly_usd=_money(row["budget_hourly_micro_usd"], optional=True),
            expected_total_usd=_money(row["expected_total_micro_usd"], optional=True),
            expected_hours=_number(row["expected_hours"], optional=True),
            egress_in_usd=_money(row["egress_in_micro_usd"]), egress_out_usd=_money(row["egress_out_micro_usd"]),
            supervisor_pid=pid, supervisor_host=row["supervisor_host"], message=row["message"], tags=dict(tags),
            heartbeat_at=parse_time(row["heartbeat_at"]), work_tokens=_number(row["work_tokens"], optional=True),
            work_tasks=_number(row["work_tasks"], optional=True),
            team=row["team"], submitted_by=row["submitted_by"], idempotency_key=row["idempotency_key"],
            supervisor_token=row["supervisor_token"], spec_sealed=row["spec_sealed"])

    def _parsed_runs(self, rows: Sequence[Any]) -> list[RunRow]:
        tags = self._tags([r["id"] for r in rows])
        out = []
        for r in rows:
            try:
                out.append(self._run(r, tags[r["id"]]))
            except (ValueError, TypeError, LedgerError) as exc:
                self._skip(f"runs row {r['id']!r}", exc)
        return out

    def run(self, run_id: str) -> RunRow:
        """One run by exact id, or by a unique prefix (at least RUN_ID_MIN_PREFIX characters, matched literally).

        UsageError for an argument that cannot name a run (empty, wildcards, a short prefix); LedgerError when no
        run or several match, or the run's row does not parse.
        """
        wanted = run_id.strip().lower()
        if not wanted or not set(wanted) <= _RUN_ID_CHARS:
            raise UsageError(f"run id {run_id[:80]!r}: expected an id like 20261123-120000-abc123 "
                             "(letters, digits and '-')")
        rows = self._rows(sa.select(T_RUNS).where(T_RUNS.c.id == wanted))
        if not rows:
            if len(wanted) < RUN_ID_MIN_PREFIX:
                raise LedgerError(f"no run {run_id!r} in {self.path} (a prefix of an id must be at least "
                                  f"{RUN_ID_MIN_PREFIX} characters; see `gpuarb history`)")
            rows = self._rows(sa.select(T_RUNS).where(sa.func.substr(T_RUNS.c.id, 1, len(wanted)) == wanted)
                              .order_by(T_RUNS.c.id))
        if not rows:
            raise LedgerError(f"no run {run_id!r} in {self.path} (see `gpuarb history`)")
        if len(rows) > 1:
            raise LedgerError(f"run id {run_id!r} is ambiguous: {', '.join(r['id'] for r in rows[:5])}")
        try:
            return self._run(rows[0])
        except ValueError as exc:
            raise LedgerError(f"{self.path}: run {rows[0]['id']}: its row does not parse ({exc})") from None

    def run_by_key(self, team: str | None, key: str) -> RunRow | None:
        """The team's run submitted with idempotency key ``key``, or None."""
        team_is = T_RUNS.c.team.is_(None) if team is None else T_RUNS.c.team == team
        rows = self._rows(sa.select(T_RUNS).where(team_is, T_RUNS.c.idempotency_key == key))
        found = self._parsed_runs(rows)
        return found[0] if found else None

    def runs_named(self, name: str, *, team: str | None = None) -> list[RunRow]:
        """The runs whose job name is exactly ``name`` (of ``team`` when given), newest first (rows that do not
        parse are skipped and reported, as ``runs`` does)."""
        query = sa.select(T_RUNS).where(T_RUNS.c.name == name)
        if team is not None:
            query = query.where(T_RUNS.c.team == team)
        return self._parsed_runs(self._rows(query.order_by(T_RUNS.c.created_at.desc(), T_RUNS.c.id.desc())))

    def runs(self, *, since: datetime | None = None, tags: Mapping[str, str] | None = None,
             states: frozenset[RunState] | None = None, limit: int | None = None,
             team: str | None = None, before: datetime | None = None,
             live_since: datetime | None = None) -> list[RunRow]:
        """Runs newest first, filtered by creation time (``since`` <= created < ``before``), exact tag matches,
        state, team, and ``live_since``: still going, or ended at or after that time (what can have cost
        something since then)."""
        r = T_RUNS.c
        query = sa.select(T_RUNS)
        if live_since is not None:
            query = query.where(sa.or_(r.ended_at.is_(None), r.ended_at >= _iso(live_since)))
        if since is not None:
            query = query.where(r.created_at >= _iso(since))
        if before is not None:
            query = query.where(r.created_at < _iso(before))
        for key, value in (tags or {}).items():
            query = query.where(sa.exists().where(T_TAGS.c.run_id == r.id, T_TAGS.c.key == key,
                                                  T_TAGS.c.value == value))
        if states:
            query = query.where(r.state.in_(sorted(RunState(s).value for s in states)))
        if team is not None:
            query = query.where(r.team == team)
        query = query.order_by(r.created_at.desc(), r.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return self._parsed_runs(self._rows(query))

    def placements(self, run_id: str) -> list[PlacementRow]:
        """The run's planned placements, best first (rows that do not parse are skipped and reported)."""
        rows = self._rows(sa.select(T_PLACEMENTS).where(T_PLACEMENTS.c.run_id == run_id).order_by(T_PLACEMENTS.c.rank))
        return self._parsed_placements(rows)

    def _parsed_placements(self, rows: Sequence[Any]) -> list[PlacementRow]:
        out = []
        for r in rows:
            try:
                values = {k: v for k, v in r.items() if not k.endswith("micro_usd") and k != "micro_usd_per_hour"}
                values.update({name: _money(r[column]) for name, column in _PLACEMENT_MONEY})
                row = PlacementRow(**{**values, "spot": bool(r["spot"])})
                _number(row.expected_hours)
                if _count(row.nodes) < 1 or _count(row.gpus_per_node) < 1:
                    raise ValueError(f"{plural(row.nodes, 'node')} of {plural(row.gpus_per_node, 'GPU')}")
                out.append(row)
            except (ValueError, TypeError) as exc:
                self._skip(f"placements row {r['run_id']!r} #{r['rank']}", exc)
        return out

    def attempts(self, run_id: str) -> list[AttemptRow]:
        """The run's launch attempts in order (rows that do not parse, or whose placement does not, are skipped and
        reported: an attempt is billed at its placement's price)."""
        ranks = {p.rank for p in self.placements(run_id)}
        rows = self._rows(sa.select(T_ATTEMPTS).where(T_ATTEMPTS.c.run_id == run_id).order_by(T_ATTEMPTS.c.n))
        return self._parsed_attempts(rows, ranks)

    def _parsed_attempts(self, rows: Sequence[Any], ranks: set[int]) -> list[AttemptRow]:
        out = []
        for r in rows:
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

    def spot_history(self) -> list[tuple[list[PlacementRow], list[AttemptRow]]]:
        """(placements, attempts) of every run with a spot placement, in two queries (what the planner learns
        spot preemption rates from; a server database holds many runs)."""
        spot_runs = sa.select(T_PLACEMENTS.c.run_id).where(T_PLACEMENTS.c.spot == 1)
        placements: dict[str, list[Any]] = {}
        for r in self._rows(sa.select(T_PLACEMENTS).where(T_PLACEMENTS.c.run_id.in_(spot_runs))
                            .order_by(T_PLACEMENTS.c.run_id, T_PLACEMENTS.c.rank)):
            placements.setdefault(r["run_id"], []).append(r)
        attempts: dict[str, list[Any]] = {}
        for r in self._rows(sa.select(T_ATTEMPTS).where(T_ATTEMPTS.c.run_id.in_(spot_runs))
                            .order_by(T_ATTEMPTS.c.run_id, T_ATTEMPTS.c.n)):
            attempts.setdefault(r["run_id"], []).append(r)
        out = []
        for run_id, rows in placements.items():
            parsed = self._parsed_placements(rows)
            out.append((parsed, self._parsed_attempts(attempts.get(run_id, []), {p.rank for p in parsed})))
        return out

    def events(self, run_id: str, *, after: int = 0) -> list[EventRow]:
        """The run's events in the order they happened, those with an id above ``after`` (rows that do not parse
        are skipped and reported)."""
        out = []
        for r in self._rows(sa.select(T_EVENTS).where(T_EVENTS.c.run_id == run_id, T_EVENTS.c.id > after)
                            .order_by(T_EVENTS.c.id)):
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
            c.execute(T_RUNS.update().where(T_RUNS.c.id == run_id).values(work_tokens=tokens, work_tasks=tasks or None))

    def charge_egress(self, run_id: str, *, egress_in_usd: float = 0.0, egress_out_usd: float = 0.0) -> None:
        """Add data-transfer charges to the run (input staged at first launch, outputs sent home at the end)."""
        r = T_RUNS.c
        with self._tx() as c:
            c.execute(T_RUNS.update().where(r.id == run_id).values(
                egress_in_micro_usd=r.egress_in_micro_usd + micro(egress_in_usd),
                egress_out_micro_usd=r.egress_out_micro_usd + micro(egress_out_usd)))

    def check(self, now: datetime | None = None) -> list[str]:
        """Integrity problems (SQLite's own check, dangling rows, impossible states, rows that do not parse);
        empty when consistent. With ``now``, also live runs with an open attempt whose supervisor's heartbeat is
        older than HEARTBEAT_STALE_SECONDS (nothing watches them: `gpuarb reap` or `gpuarb down`)."""
        problems: list[str] = []
        if self.database.dialect == "sqlite":  # PostgreSQL enforces its constraints as it writes
            checked = [next(iter(r.values())) for r in self._rows(sa.text("PRAGMA integrity_check"))]
            problems += [line for line in checked if line != "ok"]
            problems += [f"foreign key: {tuple(r.values())}" for r in self._rows(sa.text("PRAGMA foreign_key_check"))]
        states = {s.value: s for s in RunState}
        for r in self._rows(sa.select(T_RUNS.c.id, T_RUNS.c.state)):
            if r["state"] not in states:
                problems.append(f"run {r['id']}: unknown state {r['state']!r}")
        open_attempt = sa.exists().where(T_ATTEMPTS.c.run_id == T_RUNS.c.id, T_ATTEMPTS.c.ended_at.is_(None))
        for r in self._rows(sa.select(T_RUNS.c.id).where(T_RUNS.c.state == RunState.RUNNING.value, ~open_attempt)):
            problems.append(f"run {r['id']}: running with no open attempt")
        for r in self._rows(sa.select(T_RUNS.c.id, T_RUNS.c.state, T_ATTEMPTS.c.n)
                            .join(T_ATTEMPTS, T_ATTEMPTS.c.run_id == T_RUNS.c.id)
                            .where(T_ATTEMPTS.c.ended_at.is_(None)).order_by(T_RUNS.c.id, T_ATTEMPTS.c.n)):
            if r["state"] in states and states[r["state"]].terminal:
                problems.append(f"run {r['id']}: {r['state']} but attempt {r['n']} was never closed")
        saved, self.problems = self.problems, []
        rows = [r for r in self._rows(sa.select(T_RUNS).order_by(T_RUNS.c.id)) if r["state"] in states]
        runs = self._parsed_runs(rows)
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


def _placement_values(run_id: str, rank: int, p: Mapping[str, Any]) -> dict[str, Any]:
    """A placement dict (PlacementRow's fields in USD) as the placements table's values (micro-USD)."""
    values = {"run_id": run_id, "rank": rank, "provider": p["provider"], "region": p["region"], "zone": p["zone"],
              "instance_type": p["instance_type"], "accelerator": p["accelerator"],
              "gpus_per_node": p["gpus_per_node"], "nodes": p["nodes"], "spot": int(p["spot"]),
              "expected_hours": p["expected_hours"], "price_source": p["price_source"],
              "price_as_of": p["price_as_of"], "price_ref": p["price_ref"]}
    values.update({column: micro(p[name]) for name, column in _PLACEMENT_MONEY})
    return values
