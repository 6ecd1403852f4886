"""The team server's API over SQLite and PostgreSQL: who may do what (every endpoint tried with no token, a
malformed one, an unknown one, a tampered, an expired and a revoked one, a disabled account, the wrong team and a
role too small), idempotent submissions, supervision by the workers (claimed once, taken over when a worker dies),
team budgets at submission and by the breaker, and secrets kept out of responses, the audit and the ledger.

The workers supervise with the FakeBackend (a scripted stand-in for SkyPilot, handed in as the server's backend);
tests/test_server_e2e.py runs the real server process with real launches.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ROOT, SMALL_JOB

from arbitrage import app as usecases
from arbitrage.launch.backend import JobState, JobStatus
from arbitrage.launch.fake import FakeBackend
from arbitrage.runstate import RunState

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from arbitrage.server.api import ServerConfig, create_app  # noqa: E402

JOB = (ROOT / "jobspecs" / "llama3-8b-finetune.yaml").read_text()
RUNNING = JobStatus(JobState.RUNNING)
DONE = JobStatus(JobState.SUCCEEDED, message="exit 0")


class Env:
    """The server under test: its client, tokens by name, and the backend its workers launch with."""

    def __init__(self, client: TestClient, tokens: dict[str, str], backend: FakeBackend, url: str) -> None:
        self.client, self.tokens, self.backend, self.url = client, tokens, backend, url

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def submit(self, who: str = "ml-ci", spec: str = SMALL_JOB, key: str | None = None) -> Any:
        headers = {**self.h(who), **({"Idempotency-Key": key} if key else {})}
        return self.client.post("/api/v1/runs", headers=headers, json={"spec_text": spec, "spec_name": "job.yaml"})


@pytest.fixture
def server(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GPUARB_DATABASE_URL", database_url)
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path / "data"))
    tokens = {f"{team}-{role}": usecases.issue_token(team, f"{role}-bot", role).token
              for team in ("ml", "infra") for role in ("admin", "member", "ci")}
    tokens["ml-ci2"] = usecases.issue_token("ml", "other-pipeline", "ci").token
    backend = FakeBackend(scripts=[[RUNNING, RUNNING, DONE]] * 20)
    config = ServerConfig(supervise=False, backend_factory=lambda name: backend, poll_seconds=0.05,
                          heartbeat_seconds=0.2, stale_seconds=1.0, claim_seconds=0.1)
    with TestClient(create_app(config)) as client:
        yield Env(client, tokens, backend, database_url)


def _tokens_of_every_kind(env: Env) -> dict[str, str | None]:
    good = env.tokens["ml-ci"]
    expired = usecases.issue_token("ml", "old-bot", "ci", expires_days=1).token
    revoked = usecases.issue_token("ml", "gone-bot", "ci").token
    disabled = usecases.issue_token("ml", "left-the-company", "member").token
    with usecases.open_accounts() as accounts:
        accounts.revoke(revoked.split("_")[1], usecases.utcnow())
        accounts.disable_account("ml", "left-the-company", usecases.utcnow())
        with usecases.open_ledger().database.engine.connect() as conn, conn.begin():  # expire it: time passed
            conn.execute(sa.text("UPDATE tokens SET expires_at = :t WHERE id = :id"),
                         {"t": "2020-01-01T00:00:00+00:00", "id": expired.split("_")[1]})
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    return {"none": None, "garbage": "hello", "malformed": "gpa_XYZ_short", "unknown": "gpa_0123456789ab_" + "x" * 43,
            "tampered": flipped, "expired": expired, "revoked": revoked, "disabled": disabled}


ENDPOINTS = [("GET", "/api/v1/whoami", None), ("POST", "/api/v1/plan", {"spec_text": SMALL_JOB}),
             ("POST", "/api/v1/runs", {"spec_text": SMALL_JOB}), ("GET", "/api/v1/runs", None),
             ("GET", "/api/v1/runs/{run}", None), ("POST", "/api/v1/runs/{run}/stop", None),
             ("GET", "/api/v1/runs/{run}/logs", None), ("GET", "/api/v1/spend", None),
             ("GET", "/api/v1/export/focus", None), ("GET", "/api/v1/prices", None), ("GET", "/api/v1/budgets", None),
             ("PUT", "/api/v1/budgets", {"monthly_usd": 10}), ("GET", "/api/v1/audit", None)]


def test_every_endpoint_refuses_every_bad_token_the_same_way_and_audits_why(server):
    run_id = server.submit().json()["run"]["run_id"]
    bad = _tokens_of_every_kind(server)
    runs_before = len(usecases.open_ledger().runs())
    for method, path, body in ENDPOINTS:
        for kind, token in bad.items():
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            answer = server.client.request(method, path.format(run=run_id), headers=headers, json=body)
            assert answer.status_code == 401, (method, path, kind, answer.text)
            assert answer.json() == {"error": {"type": "AuthError", "message": "invalid or missing token",
                                               "exit_code": 8}}, (path, kind)
            assert answer.headers["www-authenticate"] == "Bearer"
    assert len(usecases.open_ledger().runs()) == runs_before  # nothing was submitted by a refused request
    with usecases.open_accounts() as accounts:
        refused = [e for e in accounts.audit(limit=1000) if e.status == 401]
    reasons = {e.detail for e in refused}
    assert {f"refused: {r}" for r in ("missing", "malformed", "unknown", "tampered", "expired", "revoked",
                                      "disabled")} <= reasons
    assert len(refused) == len(ENDPOINTS) * len(bad)
    basic = server.client.get("/api/v1/whoami", headers={"Authorization": f"Basic {server.tokens['ml-ci']}"})
    assert basic.status_code == 401  # a scheme other than Bearer is not a token


def test_a_team_sees_and_stops_only_its_own_runs(server):
    ml = server.submit("ml-ci").json()["run"]["run_id"]
    infra = server.submit("infra-ci").json()["run"]["run_id"]
    listed = server.client.get("/api/v1/runs", headers=server.h("ml-member")).json()["runs"]
    assert [r["run_id"] for r in listed] == [ml]
    for method, path in (("GET", "/api/v1/runs/{run}"), ("POST", "/api/v1/runs/{run}/stop"),
                         ("GET", "/api/v1/runs/{run}/logs")):
        answer = server.client.request(method, path.format(run=infra), headers=server.h("ml-admin"))
        assert answer.status_code == 404, (path, answer.text)  # as if it did not exist
        assert answer.json()["error"]["exit_code"] == 1
    by_name = server.client.get("/api/v1/runs/smoke-l4", headers=server.h("infra-member")).json()
    assert by_name["run_id"] == infra  # a name resolves within the team only
    assert usecases.open_ledger().run(infra).state == RunState.PLANNED  # untouched by ml's attempts
    # every other endpoint answers a token with its own team's data only
    ledger = usecases.open_ledger()
    for run_id in (ml, infra):  # both ran an hour, so both have spend and FOCUS rows
        started = usecases.utcnow() - timedelta(hours=1)
        n = ledger.start_attempt(run_id, 0, lambda k, r=run_id: f"gpuarb-{r}-a{k}", started)
        ledger.attempt_launched(run_id, n, {"backend": "skypilot", "cluster_name": f"c-{run_id}", "job_id": "1"},
                                started, "up")
    assert server.client.put("/api/v1/budgets", headers=server.h("ml-admin"), json={"monthly_usd": 500}).status_code \
        == 200
    for path in ("/api/v1/spend?by=name&format=json", "/api/v1/export/focus?format=csv", "/api/v1/budgets",
                 "/api/v1/audit", "/api/v1/runs", "/api/v1/whoami"):
        seen = server.client.get(path, headers=server.h("infra-admin"))
        assert seen.status_code == 200, (path, seen.text)
        assert ml not in seen.text and '"team": "ml"' not in seen.text and "team ml" not in seen.text, path
    focus = server.client.get("/api/v1/export/focus?format=csv", headers=server.h("infra-admin")).json()
    assert focus["count"] > 0 and infra in focus["text"]


def test_roles_decide_who_may_stop_and_who_may_set_budgets(server):
    mine = server.submit("ml-ci").json()["run"]["run_id"]
    theirs = server.submit("ml-ci2").json()["run"]["run_id"]
    refused = server.client.post(f"/api/v1/runs/{theirs}/stop", headers=server.h("ml-ci"))
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "Forbidden"
    assert server.client.post(f"/api/v1/runs/{mine}/stop", headers=server.h("ml-ci")).json()["state"] == "cancelled"
    assert server.client.post(f"/api/v1/runs/{theirs}/stop",
                              headers=server.h("ml-member")).json()["state"] == "cancelled"
    for who in ("ml-ci", "ml-member"):
        assert server.client.put("/api/v1/budgets", headers=server.h(who), json={"monthly_usd": 5}).status_code == 403
        assert server.client.get("/api/v1/audit", headers=server.h(who)).status_code == 403
    set_ = server.client.put("/api/v1/budgets", headers=server.h("ml-admin"), json={"monthly_usd": 1234.56})
    assert set_.status_code == 200 and set_.json()["cap_usd"] == 1234.56 and set_.json()["team"] == "ml"
    audit = server.client.get("/api/v1/audit", headers=server.h("ml-admin")).json()["audit"]
    assert all(e["team"] in ("ml", None) for e in audit) and any(e["status"] == 403 for e in audit)


def test_a_retried_submission_with_the_same_key_is_the_same_run(server):
    first = server.submit(key="gh-4242-train")
    again = server.submit(key="gh-4242-train")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["run"]["run_id"] == again.json()["run"]["run_id"] and again.json()["created"] is False
    other_team = server.submit("infra-ci", key="gh-4242-train")
    assert other_team.status_code == 201
    answers: list[Any] = []
    threads = [threading.Thread(target=lambda: answers.append(server.submit(key="gh-4243-train")))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
    assert len({a.json()["run"]["run_id"] for a in answers}) == 1
    bad_key = server.submit(key="has spaces")
    assert bad_key.status_code == 400 and "Idempotency-Key" in bad_key.json()["error"]["message"]


def test_bad_submissions_are_one_line_errors_with_the_cli_exit_codes(server):
    cases = {"name: x\nresources: {accelerators: H10:8}\n": (400, 2, "H10"),
             "name: [unclosed\n": (400, 2, "job.yaml"),
             "name: x\nresources: {accelerators: H100:8}\narbitrage:\n  work: {gpu_hours: 64}\n"
             "  budget: {max_total_usd: 1}\n": (402, 4, "over budget")}
    for text, (status, code, words) in cases.items():
        answer = server.submit(spec=text)
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert error["exit_code"] == code and words in error["message"] and "\n" not in error["message"]
    assert server.client.post("/api/v1/runs", headers=server.h("ml-ci"), json={"nope": 1}).status_code == 422


def test_secrets_never_reach_a_response_the_audit_or_the_ledger(server):
    token = server.tokens["ml-ci"]
    secret = token.split("_", 2)[2]
    run_id = server.submit().json()["run"]["run_id"]
    seen = [server.client.get(f"/api/v1/runs/{run_id}?token={token}", headers=server.h("ml-ci")).text,
            server.client.get("/api/v1/runs", headers={"Authorization": f"Bearer {token}x"}).text,
            server.client.get(f"/api/v1/runs/{token}", headers=server.h("ml-ci")).text]
    assert not any(secret in text for text in seen)
    engine = usecases.open_ledger().database.engine
    with engine.connect() as conn:
        for table in sa.inspect(engine).get_table_names():
            for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                assert secret not in " ".join(str(v) for v in row), table


def test_the_workers_supervise_a_submitted_run_to_the_end_and_two_pools_never_share_one(server):
    from arbitrage.server.supervisor import SupervisorPool

    settings = ServerConfig(backend_factory=lambda name: server.backend, poll_seconds=0.05, heartbeat_seconds=0.2,
                            stale_seconds=5.0, claim_seconds=0.1, workers=4)
    facts = usecases.load_facts()
    ids = [server.submit().json()["run"]["run_id"] for _ in range(6)]
    pools = [SupervisorPool(settings, facts), SupervisorPool(settings, facts)]
    claimed: list[str] = []
    rounds = [threading.Thread(target=lambda p=p: claimed.extend(p.claim_once())) for p in pools]
    for t in rounds:
        t.start()
    for t in rounds:
        t.join()
    deadline = time.monotonic() + 60
    while len(claimed) < len(ids) and time.monotonic() < deadline:
        for p in pools:
            claimed.extend(p.claim_once())
        time.sleep(0.05)
    assert sorted(claimed) == sorted(ids)  # each exactly once across both pools
    ledger = usecases.open_ledger()
    while any(not ledger.run(r).terminal for r in ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [ledger.run(r).state for r in ids] == [RunState.SUCCEEDED] * len(ids)
    assert len(server.backend.launched) == len(ids) and len(server.backend.torn_down) == len(ids)
    shown = server.client.get(f"/api/v1/runs/{ids[0]}", headers=server.h("ml-ci")).json()
    assert shown["state"] == "succeeded" and [e["kind"] for e in shown["events"]][-2:] == ["finished", "torn-down"]


def test_a_run_whose_worker_died_is_taken_up_by_another_without_a_second_launch(server):
    from arbitrage.server.supervisor import SupervisorPool

    run_id = server.submit().json()["run"]["run_id"]
    ledger = usecases.open_ledger()
    # a worker claimed it, launched, then died (kill -9): its heartbeat stops
    dead = ledger.claim_supervision(token="dead-replica", pid=1, host="gone", now=usecases.utcnow(),
                                    stale_seconds=1.0)
    assert dead == [run_id]
    n = ledger.start_attempt(run_id, 0, lambda k: f"gpuarb-{run_id}-a{k}", usecases.utcnow())
    handle = {"backend": "skypilot", "cluster_name": f"gpuarb-{run_id}-a{n}", "job_id": "1"}
    ledger.attempt_launched(run_id, n, handle, usecases.utcnow(), "up")
    server.backend.launched.append(None)  # type: ignore[arg-type]  # the dead worker's launch, script 1
    pool = SupervisorPool(ServerConfig(backend_factory=lambda name: server.backend, poll_seconds=0.05,
                                       heartbeat_seconds=0.2, stale_seconds=1.0), usecases.load_facts())
    assert pool.claim_once() == []  # its heartbeat is still fresh
    time.sleep(2.2)  # heartbeats are kept to the second: past 1 s of staleness
    assert pool.claim_once() == [run_id]
    deadline = time.monotonic() + 30
    while not ledger.run(run_id).terminal and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ledger.run(run_id).state == RunState.SUCCEEDED
    assert len(server.backend.launched) == 1  # watched, not launched again
    assert any("supervision resumed" in e.message for e in ledger.events(run_id))


def test_a_team_budget_refuses_a_submission_over_it_and_the_breaker_stops_live_runs(server):
    sent: list[tuple[str, dict[str, Any]]] = []
    with usecases.open_accounts() as accounts:
        accounts.ensure_team("ml", usecases.utcnow(), webhook_url="https://hooks.example.test/services/T0/B0/x")
    run_id = server.submit().json()["run"]["run_id"]
    expected = server.client.get(f"/api/v1/runs/{run_id}", headers=server.h("ml-ci")).json()["expected_total_usd"]
    ledger = usecases.open_ledger()
    started = usecases.utcnow() - timedelta(hours=2)
    n = ledger.start_attempt(run_id, 0, lambda k: f"gpuarb-{run_id}-a{k}", started)
    ledger.attempt_launched(run_id, n, {"backend": "skypilot", "cluster_name": f"c{n}", "job_id": "1"}, started, "up")
    spent = ledger.spent_usd(run_id, usecases.utcnow())
    cap = round(spent * 1.5, 2)
    assert server.client.put("/api/v1/budgets", headers=server.h("ml-admin"), json={"monthly_usd": cap}).status_code \
        == 200
    over = server.submit()  # spent + this plan's expected cost > cap: refused, exit 4
    assert over.status_code == 402 and over.json()["error"]["exit_code"] == 4 and "monthly cap" in \
        over.json()["error"]["message"], (over.text, expected, cap)
    assert server.submit("infra-ci").status_code == 201  # another team's cap is its own
    actions = usecases.enforce_team_budgets(post=lambda url, body: sent.append((url, body)))
    assert [t for t, _ in actions[0].alerts] == [50] and actions[0].stopped == ()  # 67%: one alert, no stop
    with usecases.open_accounts() as accounts:
        accounts.set_budget("ml", spent * 0.9, usecases.utcnow())
    actions = usecases.enforce_team_budgets(post=lambda url, body: sent.append((url, body)))
    assert [t for t, _ in actions[0].alerts] == [80, 100] and actions[0].stopped == (run_id,)
    assert usecases.enforce_team_budgets(post=lambda url, body: sent.append((url, body)))[0].alerts == ()  # once
    texts = [body["text"] for _, body in sent]
    assert len(texts) == 3 and "team ml has spent" in texts[0] and "(67%)" in texts[0]
    assert texts[2].endswith("its live runs are being stopped")
    assert all(url == "https://hooks.example.test/services/T0/B0/x" for url, _ in sent)
    assert ledger.run(run_id).state == RunState.BUDGET_STOPPED
    assert "team budget reached" in ledger.run(run_id).message
    budgets = server.client.get("/api/v1/budgets", headers=server.h("ml-ci")).json()["budgets"]
    assert budgets[0]["percent"] > 100 and budgets[0]["days"][-1]["spent_usd"] == budgets[0]["spent_usd"]


def test_the_month_window_and_spend_clip_to_calendar_months():
    label, start, following = usecases.month_window(datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc))
    assert (label, start.isoformat(), following.isoformat()) == (
        "2026-12", "2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")
    assert usecases.month_window(datetime(2027, 1, 1, tzinfo=timezone.utc))[0] == "2027-01"


def test_pages_need_a_signed_in_token_and_show_only_the_team(server):
    server.submit("ml-ci")
    server.submit("infra-ci")
    assert server.client.get("/", follow_redirects=False).status_code == 303
    wrong = server.client.post("/login", data={"token": "gpa_nope"})
    assert wrong.status_code == 401 and "invalid or missing token" in wrong.text
    signed = server.client.post("/login", data={"token": server.tokens["ml-member"]}, follow_redirects=False)
    assert signed.status_code == 303 and "httponly" in signed.headers["set-cookie"].lower()
    page = server.client.get("/")
    assert page.status_code == 200 and page.text.count('data-testid="run-row"') == 1
    for path in ("/spend", "/budgets", "/prices"):
        assert server.client.get(path).status_code == 200, path
    server.client.post("/logout")
    assert server.client.get("/", follow_redirects=False).status_code == 303


def test_the_breaker_stops_a_supervised_run_and_its_worker_tears_the_cluster_down(server):
    from arbitrage.server.supervisor import SupervisorPool

    server.backend.scripts = [[RUNNING]] * 5  # a job that would run forever
    run_id = server.submit().json()["run"]["run_id"]
    pool = SupervisorPool(ServerConfig(backend_factory=lambda name: server.backend, poll_seconds=0.05,
                                       heartbeat_seconds=0.2, stale_seconds=5.0), usecases.load_facts())
    assert pool.claim_once() == [run_id]
    ledger = usecases.open_ledger()
    deadline = time.monotonic() + 30
    while ledger.run(run_id).state != RunState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.1)  # a second of spend at the placement's price
    with usecases.open_accounts() as accounts:
        accounts.set_budget("ml", 0.000001, usecases.utcnow())  # the cap is already passed
    [action] = usecases.enforce_team_budgets(post=lambda url, body: None)
    assert action.stopped == (run_id,)
    while not server.backend.torn_down and time.monotonic() < deadline:
        time.sleep(0.05)
    [attempt] = ledger.attempts(run_id)
    assert server.backend.torn_down == [attempt.cluster_name] and server.backend.cancelled == [attempt.cluster_name]
    assert attempt.outcome == "budget-stopped" and ledger.run(run_id).state == RunState.BUDGET_STOPPED
    assert ledger.check() == []


def test_the_openapi_schema_describes_the_api_and_needs_no_token(server):
    schema = server.client.get("/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/runs", "/api/v1/runs/{ref}", "/api/v1/runs/{ref}/stop", "/api/v1/runs/{ref}/logs",
            "/api/v1/plan", "/api/v1/spend", "/api/v1/export/focus", "/api/v1/prices", "/api/v1/budgets",
            "/api/v1/whoami", "/api/v1/audit"} <= set(paths)
    assert not any(p.startswith(("/login", "/runs/", "/spend")) for p in paths)  # pages are not the API
    assert server.client.get("/api/v1/nothing-here", headers=server.h("ml-ci")).status_code == 404


SECRET_JOB = (SMALL_JOB + "secrets:\n  HF_TOKEN: hf_q8WnTz3LkP0xYvR7sJm2AbCdEfGh\n"
              "envs:\n  WANDB_API_KEY: 9f8e7d6c5b4a39281706f5e4d3c2b1a0\n")


def test_secrets_in_a_job_file_are_sealed_and_a_worker_launches_with_them(server, monkeypatch):
    from arbitrage.server.supervisor import SupervisorPool

    monkeypatch.setenv("GPUARB_SECRET_KEY", "Lx4Qz1k2bE3nQh9cW0mVf6aYtR8pS5uDj7oKxGiHlNs=")
    answer = server.submit(spec=SECRET_JOB)
    assert answer.status_code == 201, answer.text
    run_id = answer.json()["run"]["run_id"]
    assert "hf_q8Wn" not in answer.text
    engine = usecases.open_ledger().database.engine
    with engine.connect() as conn:  # nowhere in the clear; the redacted copy says <redacted>
        for table in sa.inspect(engine).get_table_names():
            for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                text = " ".join(str(v) for v in row)
                assert "hf_q8WnTz3LkP0xYvR7sJm2AbCdEfGh" not in text and "9f8e7d6c5b4a3928" not in text, table
    run = usecases.open_ledger().run(run_id)
    assert run.spec_sealed and "<redacted>" in run.spec_text
    pool = SupervisorPool(ServerConfig(backend_factory=lambda name: server.backend, poll_seconds=0.05,
                                       heartbeat_seconds=0.2, stale_seconds=5.0), usecases.load_facts())
    assert pool.claim_once() == [run_id]
    deadline = time.monotonic() + 30
    while not usecases.open_ledger().run(run_id).terminal and time.monotonic() < deadline:
        time.sleep(0.05)
    launched = server.backend.launched[-1].spec.task
    assert launched["secrets"] == {"HF_TOKEN": "hf_q8WnTz3LkP0xYvR7sJm2AbCdEfGh"}
    assert launched["envs"]["WANDB_API_KEY"] == "9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def test_a_sealed_job_file_under_another_key_fails_its_run_saying_why(server, monkeypatch):
    from arbitrage.server.supervisor import SupervisorPool

    monkeypatch.setenv("GPUARB_SECRET_KEY", "Lx4Qz1k2bE3nQh9cW0mVf6aYtR8pS5uDj7oKxGiHlNs=")
    run_id = server.submit(spec=SECRET_JOB).json()["run"]["run_id"]
    monkeypatch.setenv("GPUARB_SECRET_KEY", "bXlPc2Vjb25kS2V5Rm9yVGVzdHNPbmx5MTIzNDU2Nzg=")  # another key
    pool = SupervisorPool(ServerConfig(backend_factory=lambda name: server.backend, poll_seconds=0.05,
                                       heartbeat_seconds=0.2, stale_seconds=5.0), usecases.load_facts())
    pool.claim_once()
    deadline = time.monotonic() + 30
    ledger = usecases.open_ledger()
    while not ledger.run(run_id).terminal and time.monotonic() < deadline:
        time.sleep(0.05)
    run = ledger.run(run_id)
    assert run.state == RunState.FAILED and "does not open with this server's key" in run.message
    assert server.backend.launched == []  # never launched with redacted secrets
    monkeypatch.setenv("GPUARB_SECRET_KEY", "not a key")
    refused = server.submit(spec=SECRET_JOB)
    assert refused.status_code == 400 and "GPUARB_SECRET_KEY: not a key" in refused.json()["error"]["message"]
