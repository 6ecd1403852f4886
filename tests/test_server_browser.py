"""The team server's pages in a real headless Chromium (Playwright), clicked through like a person would: sign-in
refused then accepted, the team's runs only, a run's events, stopping a live run, spend, budgets, prices, sign-out.

The real app runs under uvicorn on a loopback port over SQLite and PostgreSQL (the ``database_url`` fixture); its
data is seeded through the JSON API: two teams' runs from the bundled job files, one stopped, a budget, a run with
an HTML-ish name. The server runs unsupervised, so the launches a worker would have made are written to the ledger
the way the supervisor writes them; the app's clock is set hours back while seeding, so the runs have a history.
No console error, page error, failed request or error status may happen but the deliberate wrong-token sign-in.
A full-page screenshot of each page goes to $GPUARB_TEST_ARTIFACTS/server-pages/ (default tests/artifacts/).

Skips when Playwright or Chromium is missing, unless GPUARB_REQUIRE_BROWSER is set (then that fails).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import ROOT, SMALL_JOB

from arbitrage import app as usecases
from arbitrage.money import format_amount
from arbitrage.runstate import EventKind, RunState

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from arbitrage.server.api import ServerConfig, create_app  # noqa: E402
from arbitrage.server.pages import budget_status  # noqa: E402

JOBSPECS = ROOT / "jobspecs"
HTML_NAME = '<img src=x onerror="alert(1)"> & <b>co</b>'
HTML_JOB = SMALL_JOB.replace("name: smoke-l4", "name: '" + HTML_NAME.replace("'", "''") + "'")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
REQUIRE_ENV = "GPUARB_REQUIRE_BROWSER"
ML_BUDGET_USD = 60.0


# ---------------------------------------------------------------------------------------------
# The server: the real app under uvicorn, seeded through its API
# ---------------------------------------------------------------------------------------------

@dataclass
class Clock:
    """The app's clock while seeding: the real time moved ``offset`` (back, for runs submitted hours ago)."""

    offset: timedelta = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


@dataclass
class Site:
    """The running server: its base URL, tokens by 'team-role', and the seeded runs' ids by 'team/name'."""

    url: str
    tokens: dict[str, str]
    runs: dict[str, str] = field(default_factory=dict)

    def team_runs(self, team: str) -> set[str]:
        return {run_id for key, run_id in self.runs.items() if key.startswith(f"{team}/")}


def _serve(app: Any) -> tuple[Any, threading.Thread, str]:
    """Start ``app`` under uvicorn in a daemon thread on a free loopback port; (server, thread, base URL)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it listened"
        assert time.monotonic() < deadline, "uvicorn did not listen within 30 s"
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def _api(site: Site, who: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    import httpx

    answer = httpx.request(method, site.url + path, json=body, timeout=60,
                           headers={"Authorization": f"Bearer {site.tokens[who]}"})
    assert answer.status_code < 300, (method, path, answer.status_code, answer.text)
    return dict(answer.json())


def _submit(site: Site, who: str, spec_text: str, spec_name: str = "job.yaml") -> str:
    run = _api(site, who, "POST", "/api/v1/runs", {"spec_text": spec_text, "spec_name": spec_name})["run"]
    site.runs[f"{who.split('-')[0]}/{run['name']}"] = run["run_id"]
    return str(run["run_id"])


def _job(name: str) -> str:
    return (JOBSPECS / name).read_text()


def _launch(run_id: str, at: datetime) -> int:
    """What a worker writes when the backend accepts the launch of the run's best placement at ``at``."""
    ledger = usecases.open_ledger()
    rank = min(p.rank for p in ledger.placements(run_id))
    n = ledger.start_attempt(run_id, rank, lambda k: f"gpuarb-{run_id}-a{k}", at)
    handle = {"backend": "skypilot", "cluster_name": f"gpuarb-{run_id}-a{n}", "job_id": "1"}
    ledger.attempt_launched(run_id, n, handle, at + timedelta(minutes=4), "cluster up, job 1 submitted")
    return n


def _finish(run_id: str, n: int, at: datetime) -> None:
    """What a worker writes when the job exits 0 and its cluster is torn down."""
    ledger = usecases.open_ledger()
    ledger.end_attempt(run_id, n, "succeeded", at, "exit 0", kind=EventKind.FINISHED, run_state=RunState.SUCCEEDED)
    ledger.record(run_id, EventKind.TORN_DOWN, at + timedelta(minutes=1), f"gpuarb-{run_id}-a{n} torn down",
                  attempt=n)


def _seed(site: Site, clock: Clock) -> None:
    """Two teams' runs over the last six hours: ml has one succeeded, one running, one stopped, two waiting (one
    with an HTML-ish name); infra has two waiting and one running. ml has a monthly budget."""
    clock.offset = -timedelta(hours=6)
    lora = _submit(site, "ml-member", _job("single-gpu-lora.yaml"), "single-gpu-lora.yaml")
    _finish(lora, _launch(lora, clock.now() + timedelta(minutes=2)), clock.now() + timedelta(hours=4))
    clock.offset = -timedelta(hours=3)
    llama = _submit(site, "ml-ci", _job("llama3-8b-finetune.yaml"), "llama3-8b-finetune.yaml")
    _launch(llama, clock.now() + timedelta(minutes=1))
    infra_pretrain = _submit(site, "infra-member", _job("pretrain-4node-infiniband.yaml"),
                             "pretrain-4node-infiniband.yaml")
    _launch(infra_pretrain, clock.now() + timedelta(minutes=3))
    clock.offset = -timedelta(hours=1)
    vit = _submit(site, "ml-ci", _job("spot-checkpointed-s3.yaml"), "spot-checkpointed-s3.yaml")
    assert _api(site, "ml-member", "POST", f"/api/v1/runs/{vit}/stop")["state"] == "cancelled"
    _submit(site, "infra-ci", SMALL_JOB)
    _submit(site, "infra-ci", _job("batch-inference-deadline.yaml"), "batch-inference-deadline.yaml")
    clock.offset = -timedelta(minutes=20)
    _submit(site, "ml-ci", _job("batch-inference-deadline.yaml"), "batch-inference-deadline.yaml")
    _submit(site, "ml-member", HTML_JOB)
    clock.offset = timedelta(0)
    assert _api(site, "ml-admin", "PUT", "/api/v1/budgets", {"monthly_usd": ML_BUDGET_USD})["team"] == "ml"


@pytest.fixture
def site(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("GPUARB_DATABASE_URL", database_url)
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path / "data"))
    clock = Clock()
    monkeypatch.setattr(usecases, "utcnow", clock.now)
    clock.offset = -timedelta(hours=7)  # the accounts were made before the first run
    tokens = {f"{team}-{role}": usecases.issue_token(team, f"{name}-{role}", role).token
              for team, name in (("ml", "ana"), ("infra", "ivo")) for role in ("admin", "member", "ci")}
    server, thread, url = _serve(create_app(ServerConfig(supervise=False)))
    try:
        found = Site(url, tokens)
        _seed(found, clock)
        yield found
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert not thread.is_alive(), "uvicorn did not stop within 30 s"


# ---------------------------------------------------------------------------------------------
# The browser
# ---------------------------------------------------------------------------------------------

def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{reason}, but {REQUIRE_ENV} is set: the browser test cannot run")
    pytest.skip(reason)


def _chromium_path() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).is_file():
        _unavailable("Chromium not installed (Debian: apt-get install chromium)")
    return found


@pytest.fixture
def browser_page() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install playwright)")
    executable = _chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            page = context.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


@dataclass
class Problems:
    """What went wrong in the page while the test clicked: console errors, page errors, failed requests, error
    statuses; the one refusal the test asks for (``expect_refusal``) is let through once."""

    seen: list[str] = field(default_factory=list)
    refusals_allowed: int = 0
    refused: list[str] = field(default_factory=list)
    refusals_logged: int = 0

    def watch(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.seen.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: self.seen.append(
            f"request failed: {request.method} {request.url} ({request.failure})"))
        page.on("response", self._response)

    def expect_refusal(self) -> None:
        self.refusals_allowed += 1

    def _is_deliberate(self, method: str, url: str, status: int) -> bool:
        return (self.refusals_allowed > 0 and method == "POST" and urlsplit(url).path == "/login"
                and status == 401)

    def _response(self, response: Any) -> None:
        if response.status < 400:
            return
        line = f"{response.request.method} {response.url}: {response.status}"
        if self._is_deliberate(response.request.method, response.url, response.status):
            self.refusals_allowed -= 1
            self.refused.append(line)
        else:
            self.seen.append(f"error status: {line}")

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        where = message.location.get("url", "") if isinstance(message.location, dict) else ""
        # Chromium logs a resource answered >= 400 to the console too: the deliberate refusal's is expected
        if (self.refusals_logged < len(self.refused) and urlsplit(where).path == "/login"
                and "status of 401" in message.text):
            self.refusals_logged += 1
            return
        self.seen.append(f"console error: {message.text} ({where})")


def _artifacts() -> Path:
    folder = Path(os.environ.get("GPUARB_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts") / "server-pages"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _shooter(page: Any, prefix: str) -> Callable[[str], Path]:
    """A function saving a full-page screenshot as <prefix>-<name>.png and checking it was written."""
    folder = _artifacts()

    def shoot(name: str) -> Path:
        path = folder / f"{prefix}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0, path
        return path

    return shoot


# ---------------------------------------------------------------------------------------------
# Clicking through
# ---------------------------------------------------------------------------------------------

def _path(page: Any) -> str:
    return urlsplit(page.url).path


def _sign_in(page: Any, token: str) -> None:
    page.get_by_label("API token").fill(token)
    with page.expect_navigation():
        page.get_by_test_id("login-form").get_by_role("button", name="Sign in").click()


def _check_refused_and_signed_in(page: Any, site: Site, problems: Problems, shoot: Callable[[str], Path]) -> None:
    from playwright.sync_api import expect

    page.goto(site.url + "/")
    assert _path(page) == "/login"  # not signed in: sent to sign in
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shoot("login")
    good = site.tokens["ml-member"]
    problems.expect_refusal()
    _sign_in(page, good[:-1] + ("A" if good[-1] != "A" else "B"))  # a tampered token
    assert _path(page) == "/login" and problems.refused, problems.refused
    expect(page.get_by_test_id("login-error")).to_have_text("invalid or missing token")
    assert page.context.cookies() == []
    shoot("login-refused")
    _sign_in(page, good)
    assert _path(page) == "/"
    expect(page.get_by_test_id("signed-in")).to_have_text("ml · ana-member (member)")


def _check_runs_table(page: Any, site: Site, shoot: Callable[[str], Path]) -> None:
    from playwright.sync_api import expect

    rows = page.get_by_test_id("runs-table").get_by_test_id("run-row")
    expect(rows).to_have_count(len(site.team_runs("ml")))
    shown = {rows.nth(i).get_attribute("data-run-id") for i in range(rows.count())}
    assert shown == site.team_runs("ml") and not shown & site.team_runs("infra")
    expect(page.get_by_test_id("nav-runs")).to_have_attribute("aria-current", "page")
    expect(page.locator("main")).to_contain_text("5 runs, 3 live")
    html_row = rows.filter(has=page.get_by_role("link", name=HTML_NAME, exact=True))
    expect(html_row).to_have_count(1)  # the name is text: the markup in it is shown, not made
    assert page.locator("main img, main b").count() == 0
    states = {rows.nth(i).get_attribute("data-run-id"): rows.nth(i).get_by_test_id("run-state").inner_text()
              for i in range(rows.count())}
    assert states[site.runs["ml/vit-h-spot"]] == "cancelled" and states[site.runs["ml/mistral-7b-lora"]] == "succeeded"
    assert states[site.runs["ml/llama3-8b-finetune"]].startswith("running")
    spent = rows.filter(has=page.get_by_role("link", name="llama3-8b-finetune", exact=True)).locator("td.num").nth(1)
    assert spent.inner_text().startswith("$") and spent.inner_text() != "$0.00"  # three hours on a p5 spot
    shoot("runs")


def _check_run_page(page: Any, site: Site, shoot: Callable[[str], Path]) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name="llama3-8b-finetune", exact=True).click()
    page.wait_for_url(f"**/runs/{site.runs['ml/llama3-8b-finetune']}")
    expect(page.get_by_test_id("run-name")).to_have_text("llama3-8b-finetune")
    events = page.get_by_test_id("run-event")
    expect(events).to_have_count(2)
    expect(events.nth(0)).to_contain_text("planned")
    expect(events.nth(1)).to_contain_text("launched")
    expect(events.nth(1)).to_contain_text("cluster up, job 1 submitted")
    expect(page.get_by_test_id("attempt-row")).to_have_count(1)
    assert page.get_by_test_id("placement-row").count() >= 1
    expect(page.get_by_test_id("stop-form")).to_be_visible()  # it is running
    shoot("run")
    page.get_by_role("link", name="← All runs").click()
    page.wait_for_url(site.url + "/")
    page.get_by_role("link", name=HTML_NAME, exact=True).click()
    page.wait_for_url(f"**/runs/{site.runs['ml/' + HTML_NAME]}")
    expect(page.get_by_test_id("run-name")).to_have_text(HTML_NAME)
    assert page.title() == f"gpuarb · Run {HTML_NAME}"
    assert page.locator("main img, main b").count() == 0
    shoot("run-html-name")


def _check_stop(page: Any, site: Site, shoot: Callable[[str], Path]) -> None:
    from playwright.sync_api import expect

    run_id = site.runs["ml/nightly-embeddings"]
    page.get_by_test_id("nav-runs").click()
    page.wait_for_url(site.url + "/")
    page.get_by_role("link", name="nightly-embeddings", exact=True).click()
    page.wait_for_url(f"**/runs/{run_id}")
    expect(page.get_by_test_id("run-summary").get_by_test_id("run-state")).to_have_text("planned (queued)")
    with page.expect_navigation():
        page.get_by_test_id("stop-form").get_by_role("button", name="Stop this run").click()
    assert _path(page) == f"/runs/{run_id}"
    expect(page.get_by_test_id("run-summary").get_by_test_id("run-state")).to_have_text("cancelled")
    expect(page.get_by_test_id("stop-form")).to_have_count(0)
    expect(page.get_by_test_id("run-event").last).to_contain_text("cancelled by ana-member (team ml)")
    shoot("run-cancelled")
    page.get_by_test_id("nav-runs").click()
    page.wait_for_url(site.url + "/")
    expect(page.locator(f'[data-testid=run-row][data-run-id="{run_id}"]').get_by_test_id("run-state")) \
        .to_have_text("cancelled")
    expect(page.locator("main")).to_contain_text("5 runs, 2 live")


def _check_spend_budgets_prices(page: Any, site: Site, shoot: Callable[[str], Path]) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("nav-spend").click()
    page.wait_for_url(site.url + "/spend")
    chart = page.get_by_test_id("spend-chart")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200, box
    bars = chart.get_by_test_id("spend-bar")
    assert bars.count() >= 1 and {bars.nth(i).get_attribute("data-team") for i in range(bars.count())} == {"ml"}
    assert max(float(bars.nth(i).get_attribute("height") or 0) for i in range(bars.count())) > 10
    total = page.get_by_test_id("spend-total").inner_text()
    assert total.startswith("$") and total != "$0.00"
    shoot("spend")
    page.get_by_test_id("nav-budgets").click()
    page.wait_for_url(site.url + "/budgets")
    card = page.get_by_test_id("budget-ml")
    expect(card).to_be_visible()
    expect(card.get_by_test_id("burndown-chart")).to_be_visible()
    expect(card.get_by_test_id("budget-cap-line")).to_have_count(1)
    budget = _api(site, "ml-member", "GET", "/api/v1/budgets")["budgets"][0]
    assert budget["spent_usd"] > 0 and budget["cap_usd"] == ML_BUDGET_USD
    # live runs go on accruing between the page and this API call: the same amount, give or take a few cents
    shown = re.search(r"Spent \$([0-9,]+\.[0-9]{2}) of " + re.escape(format_amount(ML_BUDGET_USD)), card.inner_text())
    assert shown is not None and abs(float(shown.group(1).replace(",", "")) - budget["spent_usd"]) <= 0.05
    expect(card.get_by_test_id("budget-status")).to_have_text(budget_status(budget["percent"])[0])
    shoot("budgets")
    page.get_by_test_id("nav-prices").click()
    page.wait_for_url(site.url + "/prices")
    rows = page.get_by_test_id("prices-table").get_by_test_id("price-row")
    assert rows.count() > 10
    expect(rows.first).to_be_visible()
    expect(page.get_by_test_id("prices-meta")).to_contain_text("matching")
    shoot("prices")


def _check_sign_out(page: Any, site: Site, shoot: Callable[[str], Path]) -> None:
    from playwright.sync_api import expect

    with page.expect_navigation():
        page.get_by_test_id("logout-form").get_by_role("button", name="Sign out").click()
    assert _path(page) == "/login"
    expect(page.get_by_test_id("login-form")).to_be_visible()
    assert page.context.cookies() == []
    shoot("signed-out")
    page.goto(site.url + "/")
    assert _path(page) == "/login"
    page.goto(site.url + "/budgets")
    assert _path(page) == "/login"


def test_a_member_clicks_through_the_team_pages(browser_page: Any, site: Site, database_url: str) -> None:
    page = browser_page
    problems = Problems()
    problems.watch(page)
    shoot = _shooter(page, urlsplit(database_url).scheme.split("+")[0])
    _check_refused_and_signed_in(page, site, problems, shoot)
    _check_runs_table(page, site, shoot)
    _check_run_page(page, site, shoot)
    _check_stop(page, site, shoot)
    _check_spend_budgets_prices(page, site, shoot)
    _check_sign_out(page, site, shoot)
    assert problems.seen == []
    assert len(problems.refused) == 1 and problems.refusals_allowed == 0
