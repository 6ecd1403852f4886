"""One CLI vocabulary (issue 14): the same --format names on every command that prints a result, one meaning per
short flag, a run's name accepted wherever a run id is, the --since forms people type, Title Case headers with
money as $1,234.56, and counts with the right plural.

The ledger is built through its public API with explicit times; the backend is the scripted FakeBackend.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import typer.main
from conftest import NOW, ROOT
from test_report_spend import build_ledger
from typer.testing import CliRunner

from arbitrage import app as usecases
from arbitrage import ledger as L
from arbitrage.cli import app
from arbitrage.errors import UsageError
from arbitrage.launch.backend import ClusterInfo, JobState, JobStatus
from arbitrage.launch.fake import FakeBackend
from arbitrage.params import MAX_SINCE_DAYS, parse_since
from arbitrage.report.focus import COLUMNS, focus_json, focus_number
from arbitrage.runstate import EventKind, RunState

SPEC = str(ROOT / "jobspecs" / "llama3-8b-finetune.yaml")
cli = CliRunner()
ROW = dict(provider="aws", region="us-east-1", zone=None, instance_type="p5.48xlarge", accelerator="H100",
           gpus_per_node=8, nodes=1, spot=False, usd_per_hour=98.32, expected_hours=10.0, expected_total_usd=983.2,
           compute_usd=983.2, preemption_usd=0.0, egress_in_usd=0.0, egress_out_usd=0.0, price_source="snapshot",
           price_as_of="2026-11-01", price_ref="test")


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> FakeBackend:
    backend = FakeBackend(scripts=[[JobStatus(JobState.RUNNING), JobStatus(JobState.SUCCEEDED, message="exit 0")]] * 5)
    monkeypatch.setattr(usecases, "make_backend", lambda name, ray_address=None, check=True: backend)
    return backend


def invoke(*args: str) -> Any:
    return cli.invoke(app, list(args))


def _record(data_dir: Path, name: str, created: datetime, *, live: bool, launched: bool = True,
            tags: dict[str, str] | None = None) -> str:
    """One run named ``name``, created at ``created``: still running (``live``) or succeeded an hour later."""
    with L.Ledger.open(data_dir / "ledger.sqlite3") as ledger:
        run_id = ledger.create_run(name=name, spec_path="/jobs/j.yaml", spec_text=f"name: {name}", backend="skypilot",
                                   now=created, placements=[ROW], tags=tags or {}, budget_total_usd=None,
                                   budget_hourly_usd=None)
        if not launched:
            return run_id
        n = ledger.start_attempt(run_id, 0, lambda k: f"gpuarb-{run_id}-a{k}", created)
        ledger.attempt_launched(run_id, n, {"backend": "skypilot", "cluster_name": f"gpuarb-{run_id}-a{n}"}, created,
                                "up")
        if not live:
            ledger.end_attempt(run_id, n, "succeeded", created + timedelta(hours=1), "exit 0",
                               kind=EventKind.FINISHED, run_state=RunState.SUCCEEDED)
    return run_id


# -- 1. --format: the same names everywhere ------------------------------------------------------------------------

def _commands() -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(group: Any, prefix: str) -> None:
        for name, cmd in group.commands.items():
            words = f"{prefix} {name}".strip()
            if hasattr(cmd, "commands"):
                walk(cmd, words)
            elif not cmd.hidden:
                out[words] = cmd
    walk(typer.main.get_command(app), "")
    return out


def _format_option(cmd: Any) -> Any:
    return next((p for p in cmd.params if "--format" in getattr(p, "opts", ())), None)


@pytest.mark.parametrize(("words", "choices", "default"), [
    ("status", ("table", "json", "csv", "markdown"), "table"),
    ("history", ("table", "json", "csv", "markdown"), "table"),
    ("report spend", ("table", "json", "csv", "markdown"), "table"),
    ("logs", ("table", "json"), "table"),
    ("down", ("table", "json"), "table"),
    ("reap", ("table", "json"), "table"),
    ("export focus", ("csv", "json"), None),  # csv unless --out names a .json file
])
def test_run_and_spend_commands_take_format_with_the_shared_names(words: str, choices: tuple[str, ...],
                                                                  default: str | None) -> None:
    option = _format_option(_commands()[words])
    assert option is not None and "-f" in option.opts, words
    assert tuple(option.type.choices) == choices
    assert (None if option.default is None else getattr(option.default, "value", option.default)) == default


def test_logs_json_is_one_document_with_run_attempt_cluster_and_lines(fake: FakeBackend, data_dir: Path) -> None:
    fake.log_lines = ["starting at step 0", "step 10/300 loss 3.679003", "done: 300 steps\n"]
    run_id = json.loads(invoke("run", SPEC, "--poll-seconds", "0.05", "--format", "json").stdout)["run_id"]
    table = invoke("logs", run_id)
    assert table.exit_code == 0 and table.stdout == "starting at step 0\nstep 10/300 loss 3.679003\ndone: 300 steps\n"
    for args in (["logs", run_id, "--format", "json"], ["logs", run_id, "-f", "json", "--follow"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc == {"run_id": run_id, "name": "llama3-8b-finetune", "attempt": 1,
                       "cluster": f"gpuarb-{run_id}-a1", "backend": "skypilot", "supervisor_log": None,
                       "lines": ["starting at step 0", "step 10/300 loss 3.679003", "done: 300 steps"]}
    assert invoke("logs", run_id, "--format", "csv").exit_code == 2  # not a format of logs: a usage error


def test_logs_json_names_a_detached_runs_supervisor_log_inside_the_document(fake: FakeBackend,
                                                                           data_dir: Path) -> None:
    run_id = json.loads(invoke("run", SPEC, "--poll-seconds", "0.05", "--format", "json").stdout)["run_id"]
    log = data_dir / "runs" / f"{run_id}.log"
    log.parent.mkdir()
    log.write_text("supervising\n")
    result = invoke("logs", run_id, "-f", "json")
    assert json.loads(result.stdout)["supervisor_log"] == str(log) and result.stderr == ""
    assert f"supervisor log: {log}" in invoke("logs", run_id).stderr


def test_logs_of_a_run_that_never_launched_is_one_line(fake: FakeBackend, data_dir: Path) -> None:
    run_id = _record(data_dir, "queued", NOW, live=True, launched=False)
    result = invoke("logs", run_id, "-f", "json")
    assert result.exit_code == 1 and "has not launched anything yet" in result.stderr and result.stdout == ""


def test_status_and_history_csv_and_markdown_carry_the_json_figures(data_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usecases, "utcnow", lambda: NOW)
    ids = build_ledger(data_dir / "ledger.sqlite3")
    summaries = json.loads(invoke("history", "-f", "json").stdout)
    rows = list(csv.DictReader(io.StringIO(invoke("history", "-f", "csv").stdout)))
    assert [r["run_id"] for r in rows] == [s["run_id"] for s in summaries] == [ids[k] for k in "CDAB"]
    for row, s in zip(rows, summaries, strict=True):
        assert float(row["spent_usd"]) == s["spent_usd"] and row["state"] == s["state"] and row["currency"] == "USD"
        assert row["tags"] == ",".join(f"{k}={v}" for k, v in sorted(s["tags"].items()))
    a = next(r for r in rows if r["run_id"] == ids["A"])
    assert (a["spent_usd"], a["expected_total_usd"], a["budget_total_usd"]) == ("2716.7", "2500.0", "5000.0")
    md = invoke("history", "--format", "markdown").stdout
    assert md.startswith("| Run | Name | State | Placement | Spent | Expected | Tags |\n"
                         "|---|---|---|---|---:|---:|---|")
    assert (f"| {ids['A']} | llama-ft | succeeded | aws us-east-1a p5.48xlarge on-demand | $2,716.70 | $2,500.00 | "
            "model=llama3-8b, team=research, version=v2 |") in md
    assert md.rstrip().endswith("4 runs, $3,006.70 spent (USD, compute at the recorded price + egress)")
    one = list(csv.DictReader(io.StringIO(invoke("status", ids["B"], "-f", "csv").stdout)))
    assert len(one) == 1 and one[0]["run_id"] == ids["B"] and one[0]["spent_usd"] == "200.0"
    assert "| mistral-sft |" in invoke("status", ids["B"], "-f", "markdown").stdout
    assert invoke("status", "-f", "csv").stdout.splitlines()[0].startswith("run_id,name,state,")


def test_empty_ledgers_answer_in_the_format_asked(data_dir: Path) -> None:
    assert json.loads(invoke("history", "-f", "json").stdout) == []
    assert invoke("history", "-f", "csv").stdout.startswith("run_id,name,state") and len(
        invoke("history", "-f", "csv").stdout.splitlines()) == 1
    assert invoke("history").stdout.strip() == "no runs match"
    assert json.loads(invoke("status", "-f", "json").stdout) == []
    assert "no runs yet" in invoke("status", "-f", "markdown").stdout


def test_reap_json_is_only_json_and_says_what_was_torn_down(fake: FakeBackend, data_dir: Path) -> None:
    assert json.loads(invoke("reap", "--backend", "skypilot", "-f", "json").stdout) == []
    run_id = json.loads(invoke("run", SPEC, "--poll-seconds", "0.05", "--format", "json").stdout)["run_id"]
    clusters = [ClusterInfo(name=f"gpuarb-{run_id}-a1", backend="skypilot", status="UP"),
                ClusterInfo(name="gpuarb-unknown-a1", backend="skypilot", status="UP")]
    fake.clusters = lambda: clusters  # type: ignore[method-assign]
    fake.torn_down.clear()
    listed = json.loads(invoke("reap", "--dry-run", "--backend", "skypilot", "-f", "json").stdout)
    assert [(z["cluster"], z["torn_down"]) for z in listed] == [(c.name, False) for c in clusters]
    assert fake.torn_down == []
    result = invoke("reap", "--yes", "--backend", "skypilot", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # no "torn down ..." lines mixed in
    assert [(z["cluster"], z["torn_down"]) for z in doc] == [(c.name, True) for c in clusters]
    assert doc[0]["run_id"] == run_id and doc[1]["run_id"] is None and "no run in the ledger" in doc[1]["reason"]
    assert sorted(fake.torn_down) == sorted(c.name for c in clusters)


# -- export focus --format json ----------------------------------------------------------------------------------

def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    return focus_number(value) if isinstance(value, (int, float)) else str(value)  # type: ignore[arg-type]


def test_focus_json_has_the_csvs_keys_and_values_digit_for_digit(data_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usecases, "utcnow", lambda: NOW)
    build_ledger(data_dir / "ledger.sqlite3")
    as_csv = invoke("export", "focus")
    as_json = invoke("export", "focus", "--format", "json")
    assert as_csv.exit_code == as_json.exit_code == 0, as_json.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    doc = json.loads(as_json.stdout)
    assert len(doc) == len(rows) > 4 and all(list(obj) == list(COLUMNS) for obj in doc)
    for obj, row in zip(doc, rows, strict=True):
        assert {k: _csv_cell(v) for k, v in obj.items()} == row
    # Money is written with the CSV's own digits (never re-rounded): e.g. run A's $2,703.80 day-split compute.
    costs = [row["BilledCost"] for row in rows]
    assert all(f'"BilledCost": {c},' in as_json.stdout for c in costs)
    assert sum(o["BilledCost"] for o in doc) == pytest.approx(sum(float(c) for c in costs))
    assert f"{len(doc)} FOCUS 1.2 rows from" in as_json.stderr


def test_focus_json_writes_numbers_exactly_never_in_exponent_form() -> None:
    row: dict[str, object] = dict.fromkeys(COLUMNS)
    row.update(BilledCost=1e-05, ListCost=1e16, ConsumedQuantity=0.1 + 0.2, x_GpuarbAttempt=2, Tags='{"a": "b"}',
               ChargeDescription='say "hi"\nnow')
    text, n = focus_json([row])
    assert n == 1 and '"BilledCost": 0.00001,' in text and '"ListCost": 10000000000000000,' in text
    assert '"ConsumedQuantity": 0.30000000000000004,' in text and '"x_GpuarbAttempt": 2' in text
    [obj] = json.loads(text)
    assert obj["BilledCost"] == 1e-05 and obj["Tags"] == '{"a": "b"}' and obj["ChargeDescription"] == 'say "hi"\nnow'
    assert obj["AvailabilityZone"] is None
    assert text == json.dumps([obj], indent=2).replace("1e-05", "0.00001").replace("1e+16", "10000000000000000") + "\n"
    assert focus_json([]) == ("[]\n", 0)


def test_focus_out_json_by_extension_or_format(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usecases, "utcnow", lambda: NOW)
    build_ledger(data_dir / "ledger.sqlite3")
    by_name = data_dir / "costs.json"
    assert invoke("export", "focus", "--out", str(by_name)).exit_code == 0
    assert isinstance(json.loads(by_name.read_text()), list)
    told = data_dir / "costs.txt"
    assert invoke("export", "focus", "-o", str(told), "-f", "json").exit_code == 0
    assert json.loads(told.read_text()) == json.loads(by_name.read_text())
    plain = data_dir / "costs.csv"
    assert invoke("export", "focus", "-o", str(plain)).exit_code == 0
    assert plain.read_text().startswith("AvailabilityZone,BilledCost,")
    empty = invoke("export", "focus", "--since", "2030-01-01", "-f", "json")
    assert json.loads(empty.stdout) == [] and "no charges (an empty array" in empty.stderr


# -- 2. short flags: one meaning each ------------------------------------------------------------------------------

def test_every_short_flag_means_one_long_option_everywhere() -> None:
    meanings: dict[str, set[str]] = defaultdict(set)
    for words, cmd in _commands().items():
        for p in cmd.params:
            opts = [*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ())]
            longs = sorted(o for o in opts if o.startswith("--"))
            for short in (o for o in opts if o.startswith("-") and not o.startswith("--")):
                meanings[short].add(longs[0] if longs else f"(none, in {words})")
    clashes = {short: sorted(longs) for short, longs in meanings.items() if len(longs) > 1}
    assert clashes == {}
    assert meanings["-b"] == {"--backend"} and meanings["-f"] == {"--format"}


def test_report_spend_by_has_no_short_flag(data_dir: Path) -> None:
    assert invoke("report", "spend", "--by", "provider", "-f", "json").exit_code == 0
    result = invoke("report", "spend", "-b", "provider")
    assert result.exit_code == 2 and "-b" in result.output


# -- 3. a run's name where a run id goes ---------------------------------------------------------------------------

def test_a_name_means_its_newest_run_for_status_logs_and_down(fake: FakeBackend, data_dir: Path) -> None:
    old = _record(data_dir, "nightly-eval", NOW - timedelta(days=2), live=False)
    new = _record(data_dir, "nightly-eval", NOW - timedelta(days=1), live=False)
    _record(data_dir, "other", NOW, live=False)
    assert json.loads(invoke("status", "nightly-eval", "-f", "json").stdout)["run_id"] == new
    doc = json.loads(invoke("logs", "nightly-eval", "-f", "json").stdout)
    assert (doc["run_id"], doc["cluster"]) == (new, f"gpuarb-{new}-a1")
    down = json.loads(invoke("down", "nightly-eval", "-f", "json").stdout)
    assert down == {"run_id": new, "state": "succeeded", "torn_down": f"gpuarb-{new}-a1"}
    assert old not in fake.torn_down and fake.torn_down == [f"gpuarb-{new}-a1"]


def test_the_one_live_run_of_a_name_wins_over_newer_finished_ones(fake: FakeBackend, data_dir: Path) -> None:
    live = _record(data_dir, "train", NOW - timedelta(hours=5), live=True)
    _record(data_dir, "train", NOW - timedelta(hours=1), live=False)  # a newer run of it finished
    result = invoke("down", "train", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"run_id": live, "state": "cancelled", "torn_down": f"gpuarb-{live}-a1"}
    assert fake.cancelled == [f"gpuarb-{live}-a1"]


def test_several_live_runs_of_a_name_are_one_line_listing_their_ids(fake: FakeBackend, data_dir: Path) -> None:
    a = _record(data_dir, "sweep", NOW - timedelta(hours=3), live=True)
    b = _record(data_dir, "sweep", NOW - timedelta(hours=2), live=True)
    _record(data_dir, "sweep", NOW - timedelta(hours=1), live=False)
    for command in ("status", "logs", "down"):
        result = invoke(command, "sweep")
        assert result.exit_code == 2, result.output
        [line] = result.stderr.strip().splitlines()
        assert f"run name 'sweep' matches 2 runs that are still live ({b}, {a}); give one of these ids" in line
    assert fake.cancelled == fake.torn_down == []
    assert invoke("down", a).exit_code == 0 and fake.torn_down == [f"gpuarb-{a}-a1"]  # the id still works


def test_an_id_wins_over_a_run_named_like_it(fake: FakeBackend, data_dir: Path) -> None:
    first = _record(data_dir, "alpha", NOW - timedelta(hours=2), live=False)
    impostor = _record(data_dir, first, NOW - timedelta(hours=1), live=False)  # a job named like first's id
    assert json.loads(invoke("status", first, "-f", "json").stdout)["run_id"] == first
    assert json.loads(invoke("status", first[:15], "-f", "json").stdout)["run_id"] == first  # a prefix too
    assert json.loads(invoke("status", impostor, "-f", "json").stdout)["name"] == first


def test_names_an_id_could_never_be_still_name_their_run(fake: FakeBackend, data_dir: Path) -> None:
    run_id = _record(data_dir, "Llama_FT.v2", NOW, live=False)
    assert json.loads(invoke("status", "Llama_FT.v2", "-f", "json").stdout)["run_id"] == run_id
    assert invoke("status", "llama_ft.v2").exit_code == 1  # names are exact


@pytest.mark.parametrize(("ref", "needle"), [
    ("nope", "no run 'nope' in"),
    ("my_job", "no run with id or name 'my_job' in"),
    ("20261123", "no run '20261123' in"),
])
def test_an_unknown_id_or_name_is_the_clear_one_line_error(fake: FakeBackend, data_dir: Path, ref: str,
                                                           needle: str) -> None:
    _record(data_dir, "j", NOW - timedelta(days=400), live=True)
    for command in ("status", "logs", "down"):
        result = invoke(command, ref)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        [line] = result.stderr.strip().splitlines()
        assert needle in line and "gpuarb history" in line
    assert fake.cancelled == fake.torn_down == []


def test_blank_and_wildcard_refs_never_match_a_name_or_an_id(fake: FakeBackend, data_dir: Path) -> None:
    _record(data_dir, "%", NOW, live=True)  # even a run literally named '%' matches only '%'
    for ref in ("", " ", "_", "*", "%%"):
        assert invoke("down", ref).exit_code in (1, 2)
    assert fake.torn_down == []


# -- 4. --since as people type it ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "back"), [
    ("1w", timedelta(weeks=1)), ("2w", timedelta(weeks=2)), ("1W", timedelta(weeks=1)),
    ("7d", timedelta(days=7)), ("1d12h", timedelta(hours=36)), ("1d 12h", timedelta(hours=36)),
    ("90m", timedelta(minutes=90)), ("1h30m", timedelta(minutes=90)), ("12h", timedelta(hours=12)),
    ("1.5d", timedelta(hours=36)), ("30s", timedelta(seconds=30)), ("2 weeks", timedelta(weeks=2)),
    ("3 days ago", timedelta(days=3)), ("1 hour, 30 minutes", timedelta(minutes=90)), ("0d", timedelta(0)),
    (f"{MAX_SINCE_DAYS}d", timedelta(days=MAX_SINCE_DAYS)),
])
def test_since_reads_durations_back_from_now(text: str, back: timedelta) -> None:
    assert parse_since(text, NOW) == NOW - back


@pytest.mark.parametrize(("text", "at"), [
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=timezone.utc)),
    ("2026-11-01T12:00Z", datetime(2026, 11, 1, 12, tzinfo=timezone.utc)),
    ("2026-11-01 12:00", datetime(2026, 11, 1, 12, tzinfo=timezone.utc)),
    ("2026-11-01T12:00:00+02:00", datetime(2026, 11, 1, 10, tzinfo=timezone.utc)),
])
def test_since_reads_iso_dates_and_times(text: str, at: datetime) -> None:
    assert parse_since(text, NOW) == at


@pytest.mark.parametrize(("text", "needle"), [
    ("", "empty"), ("   ", "empty"), ("yesterday", "cannot read 'yesterday'"), ("7x", "unknown unit 'x'"),
    ("1mo", "months and years vary in length"), ("2 years", "months and years vary in length"),
    ("1e9d", "unknown unit 'e'"), ("-5d", "cannot read"), ("1h30", "cannot read"), ("1.5.5h", "cannot read"),
    (f"{MAX_SINCE_DAYS + 1}d", "more than 36,500 days back"), ("99999999999w", "more than 36,500 days back"),
    ("2026-02-30", "cannot read"), ("d", "cannot read"),
])
def test_bad_since_is_one_usage_error_naming_the_option(text: str, needle: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_since(text, NOW)
    message = str(caught.value)
    assert message.startswith("--since: ") and needle in message and "\n" not in message


def test_history_since_one_week(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usecases, "utcnow", lambda: NOW)
    week = _record(data_dir, "in-the-week", NOW - timedelta(days=6), live=False)
    _record(data_dir, "before-it", NOW - timedelta(days=8), live=False)
    assert [s["run_id"] for s in json.loads(invoke("history", "--since", "1w", "-f", "json").stdout)] == [week]
    assert len(json.loads(invoke("history", "--since", "2w", "-f", "json").stdout)) == 2
    for command in (["history"], ["report", "spend"], ["export", "focus"]):
        result = invoke(*command, "--since", "1 fortnight")
        assert result.exit_code == 2 and "--since: '1 fortnight': unknown unit 'fortnight'" in result.stderr


# -- 5. headers, money and plurals ---------------------------------------------------------------------------------

def test_status_and_history_tables_have_title_case_headers_and_dollars(data_dir: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usecases, "utcnow", lambda: NOW)
    ids = build_ledger(data_dir / "ledger.sqlite3")
    status = invoke("status").stdout.splitlines()
    assert status[0].split() == ["Run", "Name", "State", "Placement", "Spent", "Expected"]
    history = invoke("history").stdout
    assert history.splitlines()[0].split() == ["Run", "Name", "State", "Placement", "Spent", "Expected", "Tags"]
    line_a = next(line for line in history.splitlines() if line.startswith(ids["A"]))
    assert "$2,716.70" in line_a and "$2,500.00" in line_a
    assert "run_id" not in history and "spent_usd" not in history
    assert history.rstrip().endswith("4 runs, $3,006.70 spent (USD, compute at the recorded price + egress)")
    one = invoke("history", "--tag", "team=infra").stdout
    assert "1 run, $30.00 spent" in one and "1 runs" not in one
    detail = invoke("status", ids["A"]).stdout
    assert "Spent: $2,716.70 of expected $2,500.00 (USD; budget $5,000.00)" in detail
    assert "Placement: aws us-east-1a p5.48xlarge on-demand" in detail and "Attempts:" in detail
    assert "run_id:" not in detail


def test_a_narrow_terminal_keeps_run_ids_whole(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usecases, "utcnow", lambda: NOW)
    ids = build_ledger(data_dir / "ledger.sqlite3")
    monkeypatch.setenv("COLUMNS", "80")
    lines = invoke("history").stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("Run ")
    assert {line.split()[0] for line in lines if line.startswith("2026")} == set(ids.values())


def test_counts_read_as_english(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usecases, "utcnow", lambda: NOW)
    ids = build_ledger(data_dir / "ledger.sqlite3")
    spend = invoke("report", "spend").stdout
    assert "1 run still active: its actual is spend so far, its expected is the whole plan." in spend
    assert "(s)" not in spend
    with L.Ledger.open(data_dir / "ledger.sqlite3") as ledger:
        ledger.end_attempt(ids["C"], 1, "succeeded", NOW, "exit 0", kind=EventKind.FINISHED,
                           run_state=RunState.SUCCEEDED)
    one_row = invoke("export", "focus", "--tag", "team=infra", "--since", "2026-11-22T09:00")
    assert one_row.exit_code == 0 and "1 FOCUS 1.2 row from" in one_row.stderr
