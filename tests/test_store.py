"""The database under the ledger and the server, on SQLite and PostgreSQL: migrations (a pre-Alembic SQLite
ledger in place, a fresh database to head, two processes at once), money stored exactly, idempotency keys, and
supervision claims that two replicas never both win."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import NOW, ROOT

from arbitrage import ledger as L
from arbitrage.errors import LedgerError, UsageError
from arbitrage.runstate import EventKind, RunState
from arbitrage.store import engine as store
from arbitrage.store import legacy
from arbitrage.store.schema import metadata

PLACEMENT = dict(provider="aws", region="us-east-1", zone="use1-az1", instance_type="p5.48xlarge",
                 accelerator="H100", gpus_per_node=8, nodes=1, spot=True, usd_per_hour=0.01075, expected_hours=10.0,
                 expected_total_usd=0.1075, compute_usd=0.1, preemption_usd=0.0075, egress_in_usd=0.0,
                 egress_out_usd=0.0, price_source="snapshot", price_as_of="2026-11-01", price_ref="test")


def _run(ledger: L.Ledger, *, team: str | None = None, key: str | None = None, now=NOW) -> str:
    return ledger.create_run(name="job", spec_path="/j.yaml", spec_text="name: job", backend="skypilot", now=now,
                             placements=[PLACEMENT], tags={"model": "llama3"}, budget_total_usd=123.45,
                             budget_hourly_usd=None, team=team, submitted_by="ci-bot" if team else None,
                             idempotency_key=key)


# -- the schema ----------------------------------------------------------------------------------------------

def _kind(column_type: sa.types.TypeEngine) -> str:
    for kind, classes in (("int", (sa.Integer,)), ("float", (sa.Float,)), ("text", (sa.Text, sa.String))):
        if isinstance(column_type, classes):
            return kind
    return type(column_type).__name__


def test_a_database_migrated_to_head_is_the_schema_the_queries_are_written_against(database_url):
    database = store.open_database(database_url)
    inspector = sa.inspect(database.engine)
    assert set(inspector.get_table_names()) - {"alembic_version", "sqlite_sequence"} == set(metadata.tables)
    for table in metadata.sorted_tables:
        found = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(found) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            assert _kind(found[column.name]["type"]) == _kind(column.type), f"{table.name}.{column.name}"
            assert found[column.name]["nullable"] == column.nullable or column.primary_key, \
                f"{table.name}.{column.name} nullable"
        money = [c.name for c in table.columns if "usd" in c.name]
        assert all(_kind(found[name]["type"]) == "int" for name in money), f"{table.name}: money is not integer"
    indexes = {i["name"] for i in inspector.get_indexes("runs")}
    assert {"runs_by_created", "runs_by_team_key", "runs_by_team_created"} <= indexes


def test_the_revision_list_is_alembics_own():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(ROOT / "arbitrage" / "store" / "migrations"))
    script = ScriptDirectory.from_config(config)
    assert script.get_current_head() == store.HEAD
    assert [r.revision for r in reversed(list(script.walk_revisions()))] == list(store.REVISIONS)


def test_reopening_a_database_at_head_does_not_import_alembic(tmp_path):
    store.open_database(tmp_path / "l.sqlite3")
    code = ("import sys; from arbitrage.store import engine; engine.open_database(sys.argv[1]); "
            "print('alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "l.sqlite3")], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


# -- a ledger from before Alembic ---------------------------------------------------------------------------

def _legacy_ledger(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    for step in legacy.STEPS[:version]:
        conn.executescript(step)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("INSERT INTO runs (id, name, spec_path, spec_text, backend, state, created_at, updated_at, ended_at,"
                 " budget_total_usd, expected_total_usd, expected_hours, egress_in_usd, egress_out_usd) VALUES"
                 " ('20261101-000000-abcdef', 'old', '/j.yaml', 'name: old', 'skypilot', 'succeeded',"
                 " '2026-11-01T00:00:00+00:00', '2026-11-01T02:00:00+00:00', '2026-11-01T02:00:00+00:00',"
                 " 500.0, 196.64, 2.0, 0.045, 0.1)")
    conn.execute("INSERT INTO placements VALUES ('20261101-000000-abcdef', 0, 'aws', 'us-east-1', NULL,"
                 " 'p5.48xlarge', 'H100', 8, 1, 0, 98.32, 2.0, 196.64, 196.64, 0.0, 0.0, 0.0, 'snapshot',"
                 " '2026-10-01', 'aws:p5')")
    conn.execute("INSERT INTO attempts (run_id, n, rank, cluster_name, handle, started_at, running_at, ended_at,"
                 " outcome) VALUES ('20261101-000000-abcdef', 1, 0, 'gpuarb-old-a1', '{\"backend\": \"skypilot\"}',"
                 " '2026-11-01T00:00:00+00:00', '2026-11-01T00:00:00+00:00', '2026-11-01T02:00:00+00:00',"
                 " 'succeeded')")
    conn.execute("INSERT INTO events (run_id, attempt, at, kind, message) VALUES ('20261101-000000-abcdef', NULL,"
                 " '2026-11-01T00:00:00+00:00', 'planned', '1 feasible placement')")
    conn.execute("INSERT INTO tags VALUES ('20261101-000000-abcdef', 'team', 'research')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_pre_alembic_ledger_migrates_in_place_keeping_every_row_and_every_cent(tmp_path, version):
    path = tmp_path / "ledger.sqlite3"
    _legacy_ledger(path, version)
    with L.Ledger.open(path) as ledger:
        run = ledger.run("20261101-000000-abcdef")
        assert (run.name, run.state, run.tags) == ("old", RunState.SUCCEEDED, {"team": "research"})
        assert (run.budget_total_usd, run.expected_total_usd, run.egress_in_usd, run.egress_out_usd) == \
               (500.0, 196.64, 0.045, 0.1)
        assert run.team is None and run.heartbeat_at is None and run.work_tokens is None
        [placement] = ledger.placements(run.id)
        assert placement.usd_per_hour == 98.32 and placement.expected_total_usd == 196.64
        assert ledger.spent_usd(run.id, NOW) == pytest.approx(2 * 98.32 + 0.145)
        assert [e.kind for e in ledger.events(run.id)] == [EventKind.PLANNED]
        assert ledger.check() == []
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT micro_usd_per_hour FROM placements").fetchone() == (98_320_000,)
    assert conn.execute("SELECT egress_in_micro_usd FROM runs").fetchone() == (45_000,)
    assert conn.execute("PRAGMA user_version").fetchone() == (legacy.MIGRATED_USER_VERSION,)
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (store.HEAD,)
    conn.close()


def test_an_empty_file_becomes_a_new_ledger(tmp_path):
    (tmp_path / "ledger.sqlite3").touch()
    with L.Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        assert ledger.runs() == []


def test_two_processes_opening_a_new_database_at_once_both_get_it_migrated_once(database_url):
    code = ("import sys; from arbitrage.ledger import Ledger; l = Ledger.open(sys.argv[1]); "
            "print(len(l.runs()))")
    procs = [subprocess.Popen([sys.executable, "-c", code, database_url], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-500:] for o in outs]
    assert [o[0].strip() for o in outs] == ["0", "0", "0"]
    with L.Ledger.open(database_url) as ledger:
        _run(ledger)
        assert len(ledger.runs()) == 1


# -- which database ----------------------------------------------------------------------------------------

def test_the_database_url_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(store.ENV_URL, raising=False)
    assert store.database_url() == f"sqlite:///{tmp_path / 'data' / 'ledger.sqlite3'}"
    monkeypatch.setenv(store.ENV_URL, f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}")
    with L.Ledger.open() as ledger:
        _run(ledger)
        assert ledger.path == tmp_path / "elsewhere.sqlite3"
    assert (tmp_path / "elsewhere.sqlite3").is_file() and not (tmp_path / "data" / "ledger.sqlite3").exists()


@pytest.mark.parametrize(("url", "error"), [
    ("not a url at all", "GPUARB_DATABASE_URL: not a database URL"),
    ("mysql://u@h/db", "'mysql' databases are not supported"),
])
def test_a_bad_database_url_is_a_usage_error(monkeypatch, url, error):
    monkeypatch.setenv(store.ENV_URL, url)
    with pytest.raises(UsageError, match=error):
        L.Ledger.open()


def test_an_unreachable_server_database_is_one_line_without_the_password():
    with pytest.raises(LedgerError) as caught:
        L.Ledger.open("postgresql://gpuarb:s3cret-pw@127.0.0.1:1/gpuarb")
    message = str(caught.value)
    assert "cannot open the run ledger" in message and "\n" not in message
    assert "s3cret-pw" not in message and "gpuarb:***@127.0.0.1:1/gpuarb" in message


# -- money, idempotency, claims --------------------------------------------------------------------------

def test_money_is_stored_as_integer_micro_usd_and_read_back_exactly(database_url):
    with L.Ledger.open(database_url) as ledger:
        run_id = _run(ledger)
        ledger.charge_egress(run_id, egress_in_usd=0.1)
        ledger.charge_egress(run_id, egress_in_usd=0.2)
        with ledger.database.engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT micro_usd_per_hour, expected_total_micro_usd FROM placements"))
            assert tuple(stored.one()) == (10_750, 107_500)
            assert conn.execute(sa.text("SELECT egress_in_micro_usd, budget_total_micro_usd FROM runs")).one() == \
                   (300_000, 123_450_000)
        run = ledger.run(run_id)
        assert run.egress_in_usd == 0.3 and run.budget_total_usd == 123.45  # not 0.30000000000000004
        assert ledger.placements(run_id)[0].usd_per_hour == 0.01075


def test_an_idempotency_key_names_one_run_per_team(database_url):
    with L.Ledger.open(database_url) as ledger:
        first = _run(ledger, team="ml", key="gh-run-881-attempt-1")
        with pytest.raises(L.KeyTaken) as taken:
            _run(ledger, team="ml", key="gh-run-881-attempt-1")
        assert taken.value.run_id == first and len(ledger.runs()) == 1
        other = _run(ledger, team="infra", key="gh-run-881-attempt-1")  # another team's key space
        assert ledger.run_by_key("ml", "gh-run-881-attempt-1").id == first
        assert ledger.run_by_key("infra", "gh-run-881-attempt-1").id == other
        assert ledger.run_by_key("ml", "unknown") is None
        _run(ledger), _run(ledger)  # CLI runs carry no key
        assert [r.id for r in ledger.runs(team="ml")] == [first]


def test_two_replicas_claiming_at_once_never_both_win_a_run(database_url):
    with L.Ledger.open(database_url) as ledger:
        runs = [_run(ledger, team="ml", now=NOW + timedelta(seconds=i)) for i in range(12)]
        local = _run(ledger)  # a CLI run: its own supervisor watches it
        done = _run(ledger, team="ml")
        ledger.record(done, EventKind.FINISHED, NOW, "done", state=RunState.SUCCEEDED)
    won: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)

    def replica(token: str) -> None:
        own = L.Ledger.open(database_url)
        barrier.wait()
        won[token] = []
        for _ in range(6):
            won[token] += own.claim_supervision(token=token, pid=1, host=token, now=NOW + timedelta(minutes=1),
                                                stale_seconds=60, limit=2)

    threads = [threading.Thread(target=replica, args=(f"replica-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [run_id for ids in won.values() for run_id in ids]
    assert sorted(claimed) == sorted(runs)  # every server run once; never the CLI's, never a finished one
    assert local not in claimed and done not in claimed
    with L.Ledger.open(database_url) as ledger:
        owners = {r.id: r.supervisor_token for r in ledger.runs(team="ml")}
        assert all(owners[run_id] == token for token, ids in won.items() for run_id in ids)


def test_a_run_whose_worker_died_is_taken_over_and_the_old_worker_loses_it(database_url):
    with L.Ledger.open(database_url) as ledger:
        run_id = _run(ledger, team="ml")
        assert ledger.claim_supervision(token="a", pid=10, host="h1", now=NOW, stale_seconds=60) == [run_id]
        assert ledger.claim_supervision(token="b", pid=10, host="h2", now=NOW + timedelta(seconds=30),
                                        stale_seconds=60) == []  # a's heartbeat is fresh
        assert ledger.heartbeat(run_id, 10, NOW + timedelta(seconds=40), token="a")
        later = NOW + timedelta(seconds=200)  # a stopped beating (kill -9)
        assert ledger.claim_supervision(token="b", pid=10, host="h2", now=later, stale_seconds=60) == [run_id]
        assert not ledger.heartbeat(run_id, 10, later, token="a")  # same pid, other host: the token tells
        assert ledger.heartbeat(run_id, 10, later, token="b")
        ledger.release_supervision(run_id, "b")
        assert ledger.claim_supervision(token="c", pid=11, host="h3", now=later, stale_seconds=60) == [run_id]


# -- the plan's spot history, read without SQLAlchemy -------------------------------------------------------

def test_the_plan_reads_spot_history_from_the_file_as_the_ledger_does_without_importing_sqlalchemy(tmp_path):
    from arbitrage import spothistory
    from arbitrage.spotrisk import observations

    path = tmp_path / "ledger.sqlite3"
    with L.Ledger.open(path) as ledger:
        for i, outcome in enumerate(["preempted", "succeeded"]):
            run_id = _run(ledger, now=NOW + timedelta(hours=i))
            n = ledger.start_attempt(run_id, 0, lambda k, r=run_id: f"gpuarb-{r}-a{k}", NOW + timedelta(hours=i))
            ledger.attempt_launched(run_id, n, {"backend": "skypilot"}, NOW + timedelta(hours=i), "up")
            ledger.end_attempt(run_id, n, outcome, NOW + timedelta(hours=i, minutes=45), outcome,
                               kind=EventKind.PREEMPTED if i == 0 else EventKind.FINISHED, restarts=i)
        via_ledger = observations([(ledger.placements(r.id), ledger.attempts(r.id)) for r in ledger.runs()],
                                  NOW + timedelta(hours=3))
    direct = observations(spothistory.read(path), NOW + timedelta(hours=3))
    assert direct == via_ledger and sum(o.preemptions for o in direct.values()) == 2
    code = ("import sys; from arbitrage.cli import main; sys.argv = ['gpuarb', 'plan', sys.argv[1]];\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('IMPORTED' if 'sqlalchemy' in sys.modules else 'CLEAN', file=sys.stderr)")
    env = {**__import__("os").environ, "GPUARB_DATA_DIR": str(tmp_path)}
    env.pop("GPUARB_DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "jobspecs" / "llama3-8b-finetune.yaml")],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert out.stderr.strip().endswith("CLEAN"), out.stderr[-2000:]
    assert "p5.48xlarge" in out.stdout or "H100" in out.stdout


def test_the_spot_history_in_two_queries_is_what_the_per_run_readers_give(database_url):
    from arbitrage.spotrisk import observations

    with L.Ledger.open(database_url) as ledger:
        on_demand = {**PLACEMENT, "spot": False}
        for i in range(4):
            run_id = ledger.create_run(name=f"j{i}", spec_path="/j.yaml", spec_text="name: j", backend="skypilot",
                                       now=NOW + timedelta(hours=i),
                                       placements=[PLACEMENT if i % 2 == 0 else on_demand, on_demand], tags={},
                                       budget_total_usd=None, budget_hourly_usd=None)
            n = ledger.start_attempt(run_id, 0, lambda k, r=run_id: f"c-{r}-{k}", NOW + timedelta(hours=i))
            ledger.attempt_launched(run_id, n, {"backend": "skypilot"}, NOW + timedelta(hours=i), "up")
            ledger.end_attempt(run_id, n, "preempted", NOW + timedelta(hours=i, minutes=30), "p",
                               kind=EventKind.PREEMPTED)
        per_run = [(ledger.placements(r.id), ledger.attempts(r.id)) for r in ledger.runs()]
        batched = ledger.spot_history()
        assert len(batched) == 2  # only the runs that had a spot placement
        later = NOW + timedelta(days=1)
        assert observations(batched, later) == observations(per_run, later)


def test_a_sealed_job_file_opens_only_with_its_key_and_the_default_key_file_is_private(tmp_path, monkeypatch):
    pytest.importorskip("cryptography")
    from arbitrage.store import sealed

    monkeypatch.delenv(sealed.ENV_KEY, raising=False)
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path / "data"))
    text = "name: j\nsecrets:\n  HF_TOKEN: hf_abcdefghijklmnopqrstuvwx\n"
    token = sealed.seal(text)
    assert "hf_abc" not in token and sealed.unseal(token) == text
    key_file = tmp_path / "data" / sealed.KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert sealed.seal(text) != token and sealed.unseal(sealed.seal(text)) == text  # the same key file again
    with pytest.raises(LedgerError, match="does not open with this server's key"):
        sealed.unseal(token[:-4] + "AAAA")
    monkeypatch.setenv(sealed.ENV_KEY, "bXlPc2Vjb25kS2V5Rm9yVGVzdHNPbmx5MTIzNDU2Nzg=")
    with pytest.raises(LedgerError, match="does not open"):
        sealed.unseal(token)  # sealed with the file's key, opened with another


def test_many_threads_opening_one_sqlite_ledger_at_once_never_fail(tmp_path):
    errors: list[BaseException] = []

    def opener(path: Path, barrier: threading.Barrier) -> None:
        try:
            barrier.wait()
            for _ in range(15):  # each open checks the -wal/-shm files that other connections create and remove
                with L.Ledger.open(path) as ledger:
                    _run(ledger)
                    ledger.runs(limit=1)
        except BaseException as exc:
            errors.append(exc)

    for round_ in range(6):  # fresh files: the first connections are the ones racing
        path = tmp_path / f"ledger-{round_}.sqlite3"
        barrier = threading.Barrier(6)
        threads = [threading.Thread(target=opener, args=(path, barrier)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_runs_live_since_a_time_are_those_still_going_or_ended_then_or_later(database_url):
    with L.Ledger.open(database_url) as ledger:
        old, recent, going = (_run(ledger, team="ml", now=NOW + timedelta(hours=i)) for i in range(3))
        ledger.record(old, EventKind.FINISHED, NOW + timedelta(hours=1), "done", state=RunState.SUCCEEDED)
        ledger.record(recent, EventKind.FINISHED, NOW + timedelta(hours=5), "done", state=RunState.SUCCEEDED)
        cutoff = NOW + timedelta(hours=4)
        assert {r.id for r in ledger.runs(team="ml", live_since=cutoff)} == {recent, going}
        assert {r.id for r in ledger.runs(live_since=NOW + timedelta(hours=5))} == {recent, going}  # at it: kept
