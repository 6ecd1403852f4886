"""The team server's pages, rendered from realistic data and parsed back: well-formed, self-contained (nothing
fetched), escaped, with the nav, the test ids, the charts' bars and marks, and every amount as $1,234.56."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser

import pytest

from arbitrage import app, render
from arbitrage.money import format_amount
from arbitrage.params import Source
from arbitrage.server import pages

WHO = {"team": "ml-research", "name": "ana", "role": "admin"}
NOW = datetime(2026, 12, 2, 12, tzinfo=timezone.utc)
EVIL = "<script>alert(1)</script>"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


# ---------------------------------------------------------------------------------------------
# Parsing the pages back
# ---------------------------------------------------------------------------------------------

@dataclass
class Element:
    """One parsed element: its tag, attributes, and what it holds in order (text and child elements)."""

    tag: str
    attrs: dict[str, str]
    nodes: list[str | Element] = field(default_factory=list)

    @property
    def children(self) -> list[Element]:
        return [n for n in self.nodes if isinstance(n, Element)]

    def text(self) -> str:
        return "".join(n if isinstance(n, str) else n.text() for n in self.nodes)

    def walk(self) -> list[Element]:
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found

    def all(self, tag: str | None = None, testid: str | None = None) -> list[Element]:
        return [e for e in self.walk()[1:] if (tag is None or e.tag == tag)
                and (testid is None or e.attrs.get("data-testid") == testid)]

    def one(self, tag: str | None = None, testid: str | None = None) -> Element:
        found = self.all(tag, testid)
        assert len(found) == 1, f"{len(found)} elements {tag or ''}[data-testid={testid}]"
        return found[0]


class TreeBuilder(HTMLParser):
    """Builds the element tree and notes every end tag that does not close the innermost open element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self.stack = [self.root]
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].nodes.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].nodes.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"end tag for void element </{tag}>")
        elif len(self.stack) == 1 or self.stack[-1].tag != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1].tag}>")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].nodes.append(data)


def parse(page: str) -> Element:
    """The page's tree; fails unless every non-void element is closed, in order."""
    assert page.startswith("<!DOCTYPE html>")
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.problems == []
    assert [e.tag for e in builder.stack[1:]] == [], "elements left open"
    return builder.root


# ---------------------------------------------------------------------------------------------
# Realistic data, in the shapes the server passes
# ---------------------------------------------------------------------------------------------

def run_summary(run_id: str, name: str, state: str, created: str, *, spent: float, expected: float | None,
                tags: dict[str, str] | None = None, ended: str | None = None) -> dict:
    """A run as `arbitrage.app.run_summary` returns it."""
    return {
        "run_id": run_id, "name": name, "state": state, "backend": "skypilot", "created_at": created,
        "ended_at": ended, "placement": "aws us-east-1 p5.48xlarge spot",
        "price": "$35.65/h (aws, snapshot, as of 2026-09-25)", "expected_total_usd": expected, "spent_usd": spent,
        "currency": "USD", "budget_total_usd": 2000.0, "attempts": 2, "tags": tags or {}, "message": None,
    }


def run_detail(state: str) -> dict:
    """A run as `arbitrage.app.run_summary(..., detail=True)` returns it: two placements, two attempts, events."""
    run = run_summary("7f3a9c2e01b4", "llama3-finetune", state, "2026-12-01T08:00:00+00:00", spent=1234.56,
                      expected=1500.0, tags={"model": "llama3", "owner": "ana"})
    run["placements"] = [
        {"rank": 1, "placement": "aws us-east-1 p5.48xlarge spot", "usd_per_hour": 35.65,
         "expected_total_usd": 1500.0, "source": "snapshot", "as_of": "2026-09-25"},
        {"rank": 2, "placement": "gcp us-central1-a a3-highgpu-8g on-demand", "usd_per_hour": 88.25,
         "expected_total_usd": 3530.0, "source": "snapshot", "as_of": "2026-07-30"},
    ]
    run["attempts_detail"] = [
        {"n": 1, "placement": "aws us-east-1 p5.48xlarge spot", "cluster": "gpuarb-7f3a9c2e-1",
         "started_at": "2026-12-01T08:01:10+00:00", "ended_at": "2026-12-01T11:40:00+00:00", "outcome": "preempted",
         "restarts": 0, "message": "spot instance reclaimed"},
        {"n": 2, "placement": "aws us-east-1 p5.48xlarge spot", "cluster": "gpuarb-7f3a9c2e-2",
         "started_at": "2026-12-01T11:45:00+00:00", "ended_at": None, "outcome": None, "restarts": 1,
         "message": None},
    ]
    run["events"] = [
        {"at": "2026-12-01T08:00:00+00:00", "attempt": None, "kind": "planned", "message": "2 placements"},
        {"at": "2026-12-01T08:01:10+00:00", "attempt": 1, "kind": "launched", "message": None},
        {"at": "2026-12-01T11:40:00+00:00", "attempt": 1, "kind": "preempted", "message": EVIL},
        {"at": "2026-12-01T11:45:00+00:00", "attempt": 2, "kind": "resumed", "message": "from checkpoint"},
    ]
    return run


RUNS = [
    run_summary("a1b2c3d4e5f6", "bert-eval", "succeeded", "2026-11-28T09:15:00+00:00", spent=42.1,
                expected=40.0, ended="2026-11-28T10:30:00+00:00", tags={"model": "bert"}),
    run_summary("0c0ffee00001", EVIL, "running (unsupervised)", "2026-12-01T18:30:00+00:00", spent=1234.56,
                expected=2000.0, tags={"model": 'llama"3'}),
    run_summary("deadbeef0002", "sweep-7", "no-capacity", "2026-11-30T23:59:59.500000+00:00", spent=0.0,
                expected=None),
]

SPEND = [  # team "vision" spent nothing in 2026-10: its bar is there, zero high
    {"team": "ml-research", "month": "2026-10", "spent_usd": 812.4, "runs": 6},
    {"team": "ml-research", "month": "2026-11", "spent_usd": 12345.678, "runs": 31},
    {"team": "ml-research", "month": "2026-12", "spent_usd": 1234.56, "runs": 4},
    {"team": "vision", "month": "2026-11", "spent_usd": 310.0, "runs": 2},
    {"team": "vision", "month": "2026-12", "spent_usd": 95.25, "runs": 1},
    {"team": EVIL, "month": "2026-12", "spent_usd": 1.0, "runs": 1},
]


def budget(team: str, tag: str | None, cap: float, daily: list[float]) -> dict:
    """A monthly budget record with cumulative spend per day so far."""
    days, total = [], 0.0
    for i, amount in enumerate(daily, start=1):
        total = round(total + amount, 6)
        days.append({"day": f"2026-12-{i:02d}", "spent_usd": total})
    return {"team": team, "tag": tag, "month": "2026-12", "cap_usd": cap, "spent_usd": total,
            "percent": 100 * total / cap, "days": days, "days_in_month": 31}


BUDGETS = [
    budget("ml-research", None, 5000.0, [300.0, 450.5, 484.06]),  # $1,234.56: 24.7%, ok
    budget("ml-research", "model=llama3", 1000.0, [400.0, 450.0]),  # 85%
    budget("vision", None, 200.0, [150.0, 90.0]),  # over the cap
]


@pytest.fixture(scope="module")
def prices_record() -> dict:
    """The `gpuarb prices --gpu H100 --format json` record over the bundled snapshot, built as the CLI builds it."""
    found = app.find_prices(app.load_facts(), gpus=["H100"], source=Source.snapshot, now=NOW)
    doc = json.loads(render.prices_json(found.offers, len(found.offers), found.now, found.stale_days))
    doc["empty_reason"], doc["filter_counts"] = None, None
    return doc


@pytest.fixture(scope="module")
def every_page(prices_record: dict) -> dict[str, str]:
    return {
        "login": pages.login_page("That token is not valid."),
        "runs": pages.runs_page(WHO, RUNS), "runs-empty": pages.runs_page(WHO, []),
        "run-live": pages.run_page(WHO, run_detail("running")), "run-ended": pages.run_page(WHO, run_detail("failed")),
        "spend": pages.spend_page(WHO, SPEND), "spend-empty": pages.spend_page(WHO, []),
        "budgets": pages.budgets_page(WHO, BUDGETS), "budgets-empty": pages.budgets_page(WHO, []),
        "prices": pages.prices_page(WHO, prices_record),
        "error": pages.error_page(WHO, 404, "no run 'x'"), "error-anonymous": pages.error_page(None, 401, EVIL),
    }


# ---------------------------------------------------------------------------------------------
# Every page
# ---------------------------------------------------------------------------------------------

def test_every_page_is_well_formed_titled_and_fetches_nothing(every_page: dict[str, str]) -> None:
    titles = {}
    for key, page in every_page.items():
        tree = parse(page)
        titles[key] = tree.one("head").one("title").text()
        linked = [v for e in tree.walk() for k, v in e.attrs.items() if k in ("src", "href", "action", "xlink:href")]
        assert not [u for u in linked if u.startswith(("http://", "https://", "//"))], key
        assert tree.all("script") == [] and tree.all("img") == [], key
        assert "url(" not in tree.one("style").text() and "@import" not in tree.one("style").text()
        icon = tree.one("link")  # the favicon is empty inline data: the browser asks for no /favicon.ico
        assert icon.attrs == {"rel": "icon", "href": "data:,"}
        assert all(th.attrs.get("scope") in ("col", "row") for th in tree.all("th")), key
    assert titles == {"login": "gpuarb · Sign in", "runs": "gpuarb · Runs", "runs-empty": "gpuarb · Runs",
                      "run-live": "gpuarb · Run llama3-finetune", "run-ended": "gpuarb · Run llama3-finetune",
                      "spend": "gpuarb · Spend", "spend-empty": "gpuarb · Spend", "budgets": "gpuarb · Budgets",
                      "budgets-empty": "gpuarb · Budgets", "prices": "gpuarb · Prices",
                      "error": "gpuarb · Not Found", "error-anonymous": "gpuarb · Unauthorized"}


def test_signed_in_pages_have_the_nav_who_and_sign_out(every_page: dict[str, str]) -> None:
    current = {"runs": "/", "runs-empty": "/", "run-live": "/", "run-ended": "/", "spend": "/spend",
               "spend-empty": "/spend", "budgets": "/budgets", "budgets-empty": "/budgets", "prices": "/prices",
               "error": None}
    for key, here in current.items():
        tree = parse(every_page[key])
        nav = tree.one("nav", "nav")
        links = [(a.attrs["href"], a.text()) for a in nav.all("a")]
        assert links == [("/", "Runs"), ("/spend", "Spend"), ("/budgets", "Budgets"), ("/prices", "Prices")]
        assert [a.attrs["href"] for a in nav.all("a") if a.attrs.get("aria-current") == "page"] == (
            [here] if here else [])
        assert tree.one(testid="signed-in").text() == "ml-research · ana (admin)"
        form = tree.one("form", "logout-form")
        assert (form.attrs["method"], form.attrs["action"]) == ("post", "/logout")
        assert form.one("button").text() == "Sign out"


def test_the_signed_in_name_is_escaped() -> None:
    tree = parse(pages.runs_page({"team": "t&t", "name": EVIL, "role": "member"}, RUNS))
    assert tree.one(testid="signed-in").text() == f"t&t · {EVIL} (member)"
    assert tree.all("script") == []


# ---------------------------------------------------------------------------------------------
# Sign in and errors
# ---------------------------------------------------------------------------------------------

def test_login_page_posts_one_password_token_field() -> None:
    tree = parse(pages.login_page())
    form = tree.one("form", "login-form")
    assert (form.attrs["method"], form.attrs["action"]) == ("post", "/login")
    (field_,) = form.all("input")
    assert (field_.attrs["type"], field_.attrs["name"]) == ("password", "token")
    assert form.one("label").attrs["for"] == field_.attrs["id"] and form.one("label").text() == "API token"
    assert form.one("button").attrs["type"] == "submit" and form.one("button").text() == "Sign in"
    assert tree.all(testid="login-error") == [] and tree.all("nav", "nav") == []
    assert tree.all(testid="logout-form") == []


def test_login_error_is_shown_escaped() -> None:
    page = pages.login_page(EVIL)
    assert EVIL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert parse(page).one(testid="login-error").text() == EVIL


def test_error_page_says_the_status_and_message() -> None:
    tree = parse(pages.error_page(None, 401, EVIL))
    assert tree.one(testid="error-status").text() == "401 Unauthorized"
    assert tree.one(testid="error-message").text() == EVIL
    assert tree.all(testid="logout-form") == [] and tree.all("script") == []
    assert parse(pages.error_page(WHO, 599, "odd")).one(testid="error-status").text() == "599 Error"


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------

def test_runs_table_is_newest_first_with_links_amounts_and_tags() -> None:
    page = pages.runs_page(WHO, RUNS)
    tree = parse(page)
    table = tree.one("table", "runs-table")
    assert [th.text() for th in table.one("thead").all("th")] == [
        "Name", "State", "Placement", "Expected", "Spent", "Created", "Tags"]
    rows = table.all("tr", "run-row")
    assert [r.attrs["data-run-id"] for r in rows] == ["0c0ffee00001", "deadbeef0002", "a1b2c3d4e5f6"]
    first = [td.text() for td in rows[0].all("td")]
    assert first == [EVIL, "running (unsupervised)", "aws us-east-1 p5.48xlarge spot", "$2,000.00", "$1,234.56",
                     "2026-12-01 18:30 UTC", 'model=llama"3']
    assert [td.text() for td in rows[1].all("td")][3:5] == ["-", "$0.00"]
    assert [r.one("a").attrs["href"] for r in rows] == ["/runs/0c0ffee00001", "/runs/deadbeef0002",
                                                        "/runs/a1b2c3d4e5f6"]
    badges = [r.one(testid="run-state") for r in rows]
    assert [b.attrs["class"] for b in badges] == ["badge state-running", "badge state-no-capacity",
                                                  "badge state-succeeded"]
    assert EVIL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "llama&quot;3" in page
    assert tree.all("script") == []


def test_no_runs_says_how_to_submit_one() -> None:
    tree = parse(pages.runs_page(WHO, []))
    text = tree.one(testid="runs-empty").text()
    assert "No runs yet" in text and "gpuarb run job.yaml" in text
    assert "GPUARB_SERVER" in text and "GPUARB_TOKEN" in text
    assert tree.all("table") == []


@pytest.mark.parametrize("state", ["planned", "launching", "running", "recovering", "running (unsupervised)"])
def test_a_live_run_has_a_stop_button(state: str) -> None:
    tree = parse(pages.run_page(WHO, run_detail(state)))
    form = tree.one("form", "stop-form")
    assert (form.attrs["method"], form.attrs["action"]) == ("post", "/runs/7f3a9c2e01b4/stop")
    assert form.one("button").attrs["type"] == "submit"


@pytest.mark.parametrize("state", ["succeeded", "failed", "no-capacity", "budget-stopped", "cancelled",
                                   "interrupted"])
def test_an_ended_run_has_no_stop_button(state: str) -> None:
    tree = parse(pages.run_page(WHO, run_detail(state)))
    assert tree.all(testid="stop-form") == []
    assert tree.one(testid="run-state").attrs["class"] == f"badge state-{state}"


def test_run_page_shows_summary_placements_attempts_and_events() -> None:
    page = pages.run_page(WHO, run_detail("running"))
    tree = parse(page)
    assert tree.one("h1", "run-name").text() == "llama3-finetune"
    summary = tree.one("dl", "run-summary")
    fields = dict(zip([d.text() for d in summary.all("dt")], [d.text() for d in summary.all("dd")], strict=True))
    assert fields["Spent"] == "$1,234.56" and fields["Expected"] == "$1,500.00" and fields["Budget"] == "$2,000.00"
    assert fields["Run id"] == "7f3a9c2e01b4" and fields["Tags"] == "model=llama3owner=ana"
    assert fields["Price"] == "$35.65/h (aws, snapshot, as of 2026-09-25)" and fields["Ended"] == "-"
    placements = tree.one("table", "placements-table").all("tr", "placement-row")
    assert [[td.text() for td in r.all("td")] for r in placements] == [
        ["1", "aws us-east-1 p5.48xlarge spot", "$35.65/h", "$1,500.00", "snapshot", "2026-09-25"],
        ["2", "gcp us-central1-a a3-highgpu-8g on-demand", "$88.25/h", "$3,530.00", "snapshot", "2026-07-30"]]
    attempts = tree.one("table", "attempts-table").all("tr", "attempt-row")
    assert [[td.text() for td in r.all("td")][4:6] for r in attempts] == [["2026-12-01 11:40 UTC", "preempted"],
                                                                        ["-", "-"]]
    events = tree.one("ol", "run-events").all("li", "run-event")
    assert [e.one("time").attrs["datetime"] for e in events] == [e["at"] for e in run_detail("running")["events"]]
    assert EVIL in events[2].text() and EVIL not in page and tree.all("script") == []


def test_a_run_not_launched_yet_says_so() -> None:
    run = run_detail("planned") | {"attempts_detail": [], "events": [], "placements": []}
    tree = parse(pages.run_page(WHO, run))
    assert tree.all(testid="attempts-table") == [] and tree.all(testid="run-events") == []
    assert "Nothing launched yet." in tree.text() and "No events yet." in tree.text()


# ---------------------------------------------------------------------------------------------
# Spend
# ---------------------------------------------------------------------------------------------

def test_spend_chart_has_a_bar_per_team_and_month_with_exact_amounts() -> None:
    page = pages.spend_page(WHO, SPEND)
    tree = parse(page)
    chart = tree.one("svg", "spend-chart")
    bars = chart.all("rect", "spend-bar")
    teams, months = sorted({s["team"] for s in SPEND}), ["2026-10", "2026-11", "2026-12"]
    assert len(bars) == len(teams) * len(months) == 9
    by_cell = {(b.attrs["data-team"], b.attrs["data-month"]): b for b in bars}
    assert set(by_cell) == {(t, m) for t in teams for m in months}
    assert by_cell[("ml-research", "2026-11")].one("title").text() == "ml-research · 2026-11: $12,345.68 (31 runs)"
    assert by_cell[("vision", "2026-12")].one("title").text() == "vision · 2026-12: $95.25 (1 run)"
    empty = by_cell[("vision", "2026-10")]
    assert float(empty.attrs["height"]) == 0 and empty.one("title").text() == "vision · 2026-10: $0.00 (0 runs)"
    heights = {k: float(b.attrs["height"]) for k, b in by_cell.items()}
    assert heights[("ml-research", "2026-11")] == max(heights.values())
    assert heights[("ml-research", "2026-12")] / heights[("ml-research", "2026-10")] == pytest.approx(
        1234.56 / 812.4, rel=1e-3)
    legend = chart.one("g", "spend-legend")
    assert [item.one("title").text() for item in legend.all("g", "legend-item")] == teams
    assert [item.one("text").text() for item in legend.all("g", "legend-item")] == [
        "<script>alert(1)</scrip…", "ml-research", "vision"]  # long names cut, whole in the tooltip
    colours = {item.one("title").text(): item.one("rect").attrs["fill"] for item in legend.all("g", "legend-item")}
    assert all(b.attrs["fill"] == colours[b.attrs["data-team"]] for b in bars)
    labels = [t.text() for t in chart.all("text")]
    assert set(months) <= set(labels) and "Spent (USD)" in labels and "$0.00" in labels
    assert EVIL not in page and tree.all("script") == []


def test_spend_table_holds_the_same_numbers() -> None:
    tree = parse(pages.spend_page(WHO, SPEND))
    table = tree.one("table", "spend-table")
    rows = [[td.text() for td in r.all("td")] for r in table.all("tr", "spend-row")]
    assert rows[0] == ["2026-10", "ml-research", "6", "$812.40"]
    assert ["2026-11", "ml-research", "31", "$12,345.68"] in rows and len(rows) == len(SPEND)
    assert tree.one(testid="spend-total").text() == format_amount(sum(s["spent_usd"] for s in SPEND)) == "$14,798.89"


def test_no_spend_says_so() -> None:
    tree = parse(pages.spend_page(WHO, []))
    assert "No spend recorded yet" in tree.one(testid="spend-empty").text() and tree.all("svg") == []


# ---------------------------------------------------------------------------------------------
# Budgets
# ---------------------------------------------------------------------------------------------

def _y(line: Element) -> float:
    """The height of a horizontal <line>."""
    assert line.attrs["y1"] == line.attrs["y2"]
    return float(line.attrs["y1"])


def test_burn_down_marks_the_cap_and_the_thresholds() -> None:
    tree = parse(pages.budgets_page(WHO, BUDGETS))
    card = tree.one("section", "budget-ml-research")
    chart = card.one("svg", "burndown-chart")
    cap, half, most = (chart.one("line", "budget-cap-line"), chart.one("line", "budget-threshold-50"),
                       chart.one("line", "budget-threshold-80"))
    assert [x.attrs["data-threshold"] for x in (half, most, cap)] == ["50", "80", "100"]
    (axis,) = [line for line in chart.all("line") if line.attrs.get("class") == "axis"]
    baseline = _y(axis)
    # the marks sit at 50%, 80% and 100% of the cap's height above the zero line
    assert (baseline - _y(half)) / (baseline - _y(cap)) == pytest.approx(0.5, abs=0.01)
    assert (baseline - _y(most)) / (baseline - _y(cap)) == pytest.approx(0.8, abs=0.01)
    texts = [t.text() for t in chart.all("text")]
    assert {"cap $5,000.00", "50% $2,500.00", "80% $4,000.00"} <= set(texts)
    points = [tuple(map(float, p.split(","))) for p in chart.one("polyline", "budget-spend-line").attrs[
        "points"].split()]
    assert len(points) == 4 and points[0][1] == pytest.approx(baseline)  # from day 0, then three days
    assert [p[1] for p in points] == sorted((p[1] for p in points), reverse=True)  # cumulative: it only climbs
    assert chart.one("rect", "budget-remaining").one("title").text() == "remaining $3,765.44"
    assert card.one(testid="budget-remaining-text").text() == "remaining $3,765.44"
    assert card.one(testid="budget-status").text() == "ok"
    assert "$1,234.56" in card.text() and "24.7%" in card.text()


def test_each_budget_has_its_card_and_status_word() -> None:
    tree = parse(pages.budgets_page(WHO, BUDGETS))
    status = {c.attrs["data-testid"]: c.one(testid="budget-status").text() for c in tree.all("section")}
    assert status == {"budget-ml-research": "ok", "budget-ml-research-model=llama3": "80%",
                      "budget-vision": "over cap"}
    over = tree.one("section", "budget-vision")
    assert over.one(testid="budget-remaining-text").text() == "over the cap by $40.00"
    assert over.all(testid="budget-remaining") == []  # nothing left to shade
    assert "ml-research · model=llama3" in tree.one("section", "budget-ml-research-model=llama3").one("h2").text()


@pytest.mark.parametrize(("percent", "word"), [(0.0, "ok"), (49.99, "ok"), (50.0, "50%"), (79.9, "50%"),
                                               (80.0, "80%"), (99.99, "80%"), (100.0, "over cap"),
                                               (250.0, "over cap")])
def test_budget_status_words(percent: float, word: str) -> None:
    assert pages.budget_status(percent)[0] == word


def test_a_budget_with_an_escaped_team_and_no_spend_yet() -> None:
    record = budget(EVIL, None, 100.0, [])
    page = pages.budgets_page(WHO, [record])
    tree = parse(page)
    (card,) = tree.all("section")
    assert card.attrs["data-testid"] == f"budget-{EVIL}" and EVIL not in page
    assert "Nothing spent this month yet." in card.text()
    assert card.one("line", "budget-cap-line") and card.one(testid="budget-status").text() == "ok"


def test_no_budget_says_how_to_set_one() -> None:
    tree = parse(pages.budgets_page(WHO, []))
    assert "gpuarb server budget set --team T --monthly-usd N" in tree.one(testid="budgets-empty").text()


# ---------------------------------------------------------------------------------------------
# Prices
# ---------------------------------------------------------------------------------------------

def test_prices_page_shows_every_offer_of_the_real_record(prices_record: dict) -> None:
    page = pages.prices_page(WHO, prices_record)
    tree = parse(page)
    table = tree.one("table", "prices-table")
    assert [th.text() for th in table.one("thead").all("th")] == [
        "Provider", "Region", "Instance type", "GPUs", "On-demand $/h", "Spot $/h", "Source", "As of (age)"]
    rows = table.all("tr", "price-row")
    assert len(rows) == len(prices_record["offers"]) > 100
    for row, offer in zip(rows, prices_record["offers"], strict=True):
        cells = [td.text() for td in row.all("td")]
        assert cells[0] == offer["provider"] and cells[2] == offer["instance_type"]
        assert cells[1].startswith(offer["region"])
        assert cells[3].startswith(f"{offer['gpus_per_node']}x {offer['gpu_model']}")
        assert cells[4] == format_amount(offer["on_demand_usd_per_hour"])
        assert cells[5] == format_amount(offer["spot_usd_per_hour"])
        as_of = ("~" if offer["as_of_estimated"] else "") + offer["as_of"]
        assert cells[6] == offer["source"] and cells[7].startswith(f"{as_of} ({offer['age_days']:.0f}d)")
        assert cells[7].endswith(" stale") == bool(offer["stale"])
    assert {r.all("td")[0].text() for r in rows} >= {"aws", "gcp", "lambda"}
    assert f"{len(rows)} offers matching" in tree.one(testid="prices-meta").text()


def test_prices_with_no_match_say_which_filter_emptied_them() -> None:
    found = app.find_prices(app.load_facts(), gpus=["H100"], regions=["nowhere-*"], source=Source.snapshot,
                            now=NOW)
    assert found.empty is not None
    doc = json.loads(render.prices_json(found.offers, 0, found.now, found.stale_days))
    doc["empty_reason"], doc["filter_counts"] = found.empty.reason, [c.record() for c in found.empty.counts]
    tree = parse(pages.prices_page(WHO, doc))
    empty = tree.one(testid="prices-empty")
    assert found.empty.reason in empty.text()
    assert [li.text() for li in empty.all("li")][-1] == "--region nowhere-*: 0 offers left"
    assert tree.all("table") == []
