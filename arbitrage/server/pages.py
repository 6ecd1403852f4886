"""The team server's HTML pages as pure functions: plain data in, one self-contained HTML document out.

Login, runs, one run, spend by team and month, budget burn-downs, prices and errors. Each page carries its CSS
inline and draws its charts as inline SVG: no script, no font, image or stylesheet fetched (the favicon is an
empty data: URL, so a browser asks the server for nothing else). Every text that comes from data is escaped with
``html.escape``; every amount goes through ``arbitrage.money.format_amount``. The main elements carry
``data-testid`` attributes for the browser tests. Formatting only: the numbers come from the use cases
(``arbitrage.app.run_summary``, the spend and budget queries, the ``gpuarb prices --format json`` record).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from html import escape
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from arbitrage.money import format_amount
from arbitrage.plural import plural
from arbitrage.report.svg import nice_ticks
from arbitrage.runstate import RunState

Who = Mapping[str, str]

LIVE_STATES = tuple(s.value for s in RunState if not s.terminal)
NAV = (("runs", "Runs", "/"), ("spend", "Spend", "/spend"), ("budgets", "Budgets", "/budgets"),
       ("prices", "Prices", "/prices"))
CURRENT = ' aria-current="page"'
# one colour per team in the spend chart (Tableau 10), repeating past ten teams
TEAM_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
               "#bab0ac")
THRESHOLDS = (50, 80, 100)  # percent of a budget's cap that the burn-down marks (and alerts are sent at)

CSS = """
:root{color-scheme:light;--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--accent:#2563eb}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--ink);
 margin:0;background:#f9fafb}
header.top{background:#111827;color:#f9fafb}
header.top .bar{max-width:1180px;margin:0 auto;padding:10px 20px;display:flex;gap:18px;align-items:center;
 flex-wrap:wrap}
header.top .brand{font-weight:700;font-size:16px;color:#fff;text-decoration:none;margin-right:8px}
header.top nav a{color:#d1d5db;text-decoration:none;padding:4px 8px;border-radius:4px}
header.top nav a:hover{color:#fff;background:#374151}
header.top nav a[aria-current=page]{color:#fff;background:#374151}
header.top .who{margin-left:auto;color:#d1d5db;font-size:13px}
header.top form{margin:0}
header.top button{font:inherit;font-size:13px;background:transparent;color:#f9fafb;border:1px solid #6b7280;
 border-radius:4px;padding:3px 10px;cursor:pointer}
main{max-width:1180px;margin:0 auto;padding:18px 20px 40px}
h1{font-size:22px;margin:6px 0 10px}h2{font-size:17px;margin:26px 0 8px}
a{color:var(--accent)}
p.meta,.muted{color:var(--muted);font-size:13px}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 18px;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
thead th{background:#f3f4f6;border-bottom:2px solid #d1d5db;white-space:nowrap}
tbody tr:nth-child(even){background:#f9fafb}
tfoot td,tfoot th{font-weight:600;border-top:2px solid #d1d5db}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap;
 background:#e5e7eb;color:#374151}
.state-planned{background:#e5e7eb;color:#374151}.state-launching{background:#dbeafe;color:#1e40af}
.state-running{background:#dcfce7;color:#166534}.state-recovering{background:#fef3c7;color:#92400e}
.state-succeeded{background:#d1fae5;color:#065f46}.state-failed{background:#fee2e2;color:#991b1b}
.state-no-capacity{background:#ffedd5;color:#9a3412}.state-budget-stopped{background:#ede9fe;color:#5b21b6}
.state-cancelled{background:#f3f4f6;color:#4b5563}.state-interrupted{background:#fce7f3;color:#9d174d}
.status-ok{background:#dcfce7;color:#166534}.status-50{background:#fef9c3;color:#854d0e}
.status-80{background:#ffedd5;color:#9a3412}.status-over{background:#fee2e2;color:#991b1b}
.tag{display:inline-block;background:#eef2ff;color:#3730a3;border-radius:4px;padding:0 6px;margin:1px 2px;
 font-size:12px}
dl.summary{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;background:#fff;padding:12px 16px;
 border:1px solid var(--line);border-radius:6px}
dl.summary dt{color:var(--muted)}dl.summary dd{margin:0}
ol.timeline{list-style:none;padding:0;margin:6px 0;border-left:2px solid #d1d5db}
ol.timeline li{position:relative;padding:3px 0 8px 16px}
ol.timeline li::before{content:"";position:absolute;left:-6px;top:8px;width:10px;height:10px;border-radius:50%;
 background:#9ca3af}
ol.timeline time{color:var(--muted);font-size:12.5px;margin-right:8px}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:12px 16px;margin:0 0 18px}
.card h2{margin:0 0 4px}
.empty{background:#fff;border:1px dashed #d1d5db;border-radius:6px;padding:16px}
.error{color:#991b1b;background:#fee2e2;border-radius:4px;padding:8px 12px}
code{background:#f3f4f6;border-radius:3px;padding:0 4px;font-size:12.5px}
form.stop button{background:#b91c1c;color:#fff;border:0;border-radius:4px;padding:6px 14px;font:inherit;
 cursor:pointer}
form.login{background:#fff;border:1px solid var(--line);border-radius:6px;padding:18px;max-width:420px}
form.login label{display:block;font-weight:600;margin-bottom:4px}
form.login input{width:100%;font:inherit;padding:6px 8px;border:1px solid #d1d5db;border-radius:4px}
form.login button{margin-top:12px;font:inherit;background:var(--accent);color:#fff;border:0;border-radius:4px;
 padding:6px 16px;cursor:pointer}
svg.chart{max-width:100%;height:auto;background:#fff}
svg.chart text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;font-size:11px;
 fill:#374151}
svg.chart .grid{stroke:#e5e7eb}svg.chart .axis{stroke:#9ca3af}
details summary{cursor:pointer;color:var(--muted);font-size:13px}
.stale{color:#b45309}
"""


# ---------------------------------------------------------------------------------------------
# Small pieces
# ---------------------------------------------------------------------------------------------

def _e(value: object) -> str:
    """Text from data, escaped for HTML text and attribute values."""
    return escape("" if value is None else str(value), quote=True)


def _or_dash(value: object) -> str:
    return "-" if value is None or value == "" else _e(value)


def _num(value: float) -> str:
    """An SVG coordinate: two decimals at most."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _when(iso: str | None) -> str:
    """'2026-12-01 09:30 UTC' in a <time> element (the ISO text as it came when it does not parse)."""
    if not iso:
        return "-"
    try:
        moment = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return _e(iso)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    shown = moment.strftime("%Y-%m-%d %H:%M") + (" UTC" if moment.tzinfo is not None else "")
    return f'<time datetime="{_e(iso)}">{_e(shown)}</time>'


def _sort_moment(iso: str | None) -> datetime:
    """A run's creation time for sorting (unparseable or missing: the oldest)."""
    try:
        moment = datetime.fromisoformat(iso or "")
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def base_state(state: str) -> str:
    """The state itself from a state label: 'running (unsupervised)' -> 'running'."""
    return (state or "").split(" ", 1)[0]


def is_live(state: str) -> bool:
    """True when the run in this state (or state label) is not over yet."""
    return base_state(state) in LIVE_STATES


def _badge(state: str) -> str:
    return f'<span class="badge state-{_e(base_state(state))}" data-testid="run-state">{_e(state)}</span>'


def _tags(tags: object) -> str:
    if not tags:
        return ""
    if isinstance(tags, Mapping):
        items: Iterable[str] = (f"{k}={v}" for k, v in sorted(tags.items()))
    elif isinstance(tags, (list, tuple)):
        items = (str(t) for t in tags)
    else:
        items = (str(tags),)
    return "".join(f'<span class="tag">{_e(t)}</span>' for t in items)


def _run_href(run_id: str) -> str:
    return "/runs/" + quote(str(run_id), safe="")


def _head_row(columns: Sequence[str | tuple[str, str]]) -> str:
    """A <thead> row; a column given as (label, 'num') is right-aligned."""
    cells = []
    for col in columns:
        label, cls = (col, "") if isinstance(col, str) else col
        klass = f' class="{cls}"' if cls else ""
        cells.append(f'<th scope="col"{klass}>{_e(label)}</th>')
    return f"<thead><tr>{''.join(cells)}</tr></thead>"


def _empty(testid: str, html_text: str) -> str:
    return f'<div class="empty" data-testid="{testid}">{html_text}</div>'


def _header(who: Who | None, current: str) -> str:
    if who is None:
        return ('<header class="top"><div class="bar"><a class="brand" href="/">gpuarb</a>'
                '<nav aria-label="Main"><a href="/login">Sign in</a></nav></div></header>')
    links = "".join(f'<a href="{href}" data-testid="nav-{key}"{CURRENT if key == current else ""}>{label}</a>'
                    for key, label, href in NAV)
    signed_in = f"{_e(who.get('team'))} · {_e(who.get('name'))} ({_e(who.get('role'))})"
    return ('<header class="top"><div class="bar"><a class="brand" href="/">gpuarb</a>'
            f'<nav aria-label="Main" data-testid="nav">{links}</nav>'
            f'<span class="who" data-testid="signed-in">{signed_in}</span>'
            '<form method="post" action="/logout" data-testid="logout-form">'
            '<button type="submit">Sign out</button></form></div></header>')


def _document(title: str, who: Who | None, current: str, body: str) -> str:
    """The whole page: head with the inline CSS, the header with the nav, and ``body`` in <main>."""
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>gpuarb · {_e(title)}</title>"
            '<link rel="icon" href="data:,">'
            f"<style>{CSS}</style></head>"
            f"<body>{_header(who, current)}<main>{body}</main></body></html>\n")


# ---------------------------------------------------------------------------------------------
# Sign in, errors
# ---------------------------------------------------------------------------------------------

def login_page(error: str | None = None) -> str:
    """The sign-in form: one API token field, posted to /login; ``error`` shown above it."""
    shown = (f'<p class="error" role="alert" data-testid="login-error">{_e(error)}</p>' if error else "")
    body = ("<h1>Sign in</h1>"
            f"{shown}"
            '<form class="login" method="post" action="/login" data-testid="login-form">'
            '<label for="token">API token</label>'
            '<input type="password" id="token" name="token" required autocomplete="current-password" '
            'spellcheck="false">'
            '<button type="submit">Sign in</button>'
            '<p class="muted">The token an admin issued you (it starts with <code>gpa_</code>).</p>'
            "</form>")
    return _document("Sign in", None, "login", body)


def error_page(who: Who | None, status: int, message: str) -> str:
    """An error: its status code and phrase, the one-line message, and the way back."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    back = '<a href="/">Back to runs</a>' if who is not None else '<a href="/login">Sign in</a>'
    body = (f'<h1 data-testid="error-status">{int(status)} {_e(phrase)}</h1>'
            f'<p class="error" data-testid="error-message">{_e(message)}</p>'
            f"<p>{back}</p>")
    return _document(f"{phrase}", who, "", body)


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------

RUN_COLUMNS = ("Name", "State", "Placement", ("Expected", "num"), ("Spent", "num"), "Created", "Tags")


def _run_row(run: Mapping[str, Any]) -> str:
    price = run.get("price")
    placement = (f'<span title="{_e(price)}">{_e(run.get("placement"))}</span>' if price and run.get("placement")
                 else _or_dash(run.get("placement")))
    return (f'<tr data-testid="run-row" data-run-id="{_e(run.get("run_id"))}">'
            f'<td><a href="{_e(_run_href(run.get("run_id", "")))}">{_e(run.get("name"))}</a></td>'
            f"<td>{_badge(run.get('state', ''))}</td>"
            f"<td>{placement}</td>"
            f'<td class="num">{_e(format_amount(run.get("expected_total_usd")))}</td>'
            f'<td class="num">{_e(format_amount(run.get("spent_usd")))}</td>'
            f"<td>{_when(run.get('created_at'))}</td>"
            f"<td>{_tags(run.get('tags'))}</td></tr>")


def runs_page(who: Who, runs: list[dict]) -> str:
    """The team's runs, newest first: name (linked), state, placement, expected and spent USD, created, tags."""
    if not runs:
        body = ("<h1>Runs</h1>" + _empty("runs-empty",
                "<p>No runs yet. Submit one from your machine with the server and your token set:</p>"
                "<pre><code>export GPUARB_SERVER=&lt;this server's URL&gt;\n"
                "export GPUARB_TOKEN=&lt;your API token&gt;\n"
                "gpuarb run job.yaml</code></pre>"))
        return _document("Runs", who, "runs", body)
    ordered = sorted(runs, key=lambda r: _sort_moment(r.get("created_at")), reverse=True)
    live = sum(1 for r in ordered if is_live(r.get("state", "")))
    rows = "".join(_run_row(r) for r in ordered)
    body = ("<h1>Runs</h1>"
            f'<p class="meta">{_e(plural(len(ordered), "run"))}, {live} live; newest first. Amounts in USD.</p>'
            f'<table data-testid="runs-table">{_head_row(RUN_COLUMNS)}<tbody>{rows}</tbody></table>')
    return _document("Runs", who, "runs", body)


def _summary_list(run: Mapping[str, Any]) -> str:
    fields = (
        ("Run id", f"<code>{_e(run.get('run_id'))}</code>"),
        ("State", _badge(run.get("state", ""))),
        ("Backend", _or_dash(run.get("backend"))),
        ("Placement", _or_dash(run.get("placement"))),
        ("Price", _or_dash(run.get("price"))),
        ("Expected", _e(format_amount(run.get("expected_total_usd")))),
        ("Spent", f'<span data-testid="run-spent">{_e(format_amount(run.get("spent_usd")))}</span>'),
        ("Budget", _e(format_amount(run.get("budget_total_usd")))),
        ("Currency", _or_dash(run.get("currency"))),
        ("Attempts", _e(run.get("attempts", 0))),
        ("Created", _when(run.get("created_at"))),
        ("Ended", _when(run.get("ended_at"))),
        ("Tags", _tags(run.get("tags")) or "-"),
        ("Message", _or_dash(run.get("message"))),
    )
    items = "".join(f"<dt>{_e(label)}</dt><dd>{value}</dd>" for label, value in fields)
    return f'<dl class="summary" data-testid="run-summary">{items}</dl>'


def _placements_table(placements: Sequence[Mapping[str, Any]]) -> str:
    if not placements:
        return '<p class="muted">No placements were planned.</p>'
    rows = "".join(
        f'<tr data-testid="placement-row"><td class="num">{_e(p.get("rank"))}</td><td>{_e(p.get("placement"))}</td>'
        f'<td class="num">{_e(format_amount(p.get("usd_per_hour")))}/h</td>'
        f'<td class="num">{_e(format_amount(p.get("expected_total_usd")))}</td>'
        f'<td>{_or_dash(p.get("source"))}</td><td>{_or_dash(p.get("as_of"))}</td></tr>'
        for p in placements)
    head = _head_row((("Rank", "num"), "Placement", ("Price", "num"), ("Expected total", "num"), "Source", "As of"))
    return f'<table data-testid="placements-table">{head}<tbody>{rows}</tbody></table>'


def _attempts_table(attempts: Sequence[Mapping[str, Any]]) -> str:
    if not attempts:
        return '<p class="muted">Nothing launched yet.</p>'
    rows = "".join(
        f'<tr data-testid="attempt-row"><td class="num">{_e(a.get("n"))}</td><td>{_e(a.get("placement"))}</td>'
        f'<td><code>{_or_dash(a.get("cluster"))}</code></td><td>{_when(a.get("started_at"))}</td>'
        f'<td>{_when(a.get("ended_at"))}</td><td>{_or_dash(a.get("outcome"))}</td>'
        f'<td class="num">{_e(a.get("restarts", 0))}</td><td>{_or_dash(a.get("message"))}</td></tr>'
        for a in attempts)
    head = _head_row((("#", "num"), "Placement", "Cluster", "Started", "Ended", "Outcome", ("Restarts", "num"),
                      "Message"))
    return f'<table data-testid="attempts-table">{head}<tbody>{rows}</tbody></table>'


def _events_timeline(events: Sequence[Mapping[str, Any]]) -> str:
    if not events:
        return '<p class="muted">No events yet.</p>'
    items = "".join(
        f'<li data-testid="run-event">{_when(ev.get("at"))}<span class="badge">{_e(ev.get("kind"))}</span>'
        + (f' <span class="muted">attempt {_e(ev.get("attempt"))}</span>' if ev.get("attempt") is not None else "")
        + (f" {_e(ev.get('message'))}" if ev.get("message") else "") + "</li>"
        for ev in events)
    return f'<ol class="timeline" data-testid="run-events">{items}</ol>'


def run_page(who: Who, run: dict) -> str:
    """One run: its summary, planned placements, launch attempts and events; a stop button while it is live."""
    run_id = run.get("run_id", "")
    stop = ""
    if is_live(run.get("state", "")):
        stop = (f'<form class="stop" method="post" action="{_e(_run_href(run_id) + "/stop")}" '
                'data-testid="stop-form"><button type="submit">Stop this run</button></form>')
    body = (f'<p><a href="/">← All runs</a></p><h1 data-testid="run-name">{_e(run.get("name"))}</h1>'
            f"{_summary_list(run)}{stop}"
            f"<h2>Placements</h2>{_placements_table(run.get('placements') or [])}"
            f"<h2>Attempts</h2>{_attempts_table(run.get('attempts_detail') or [])}"
            f"<h2>Events</h2>{_events_timeline(run.get('events') or [])}")
    return _document(f"Run {run.get('name', run_id)}", who, "runs", body)


# ---------------------------------------------------------------------------------------------
# Spend: a grouped bar chart (one group per month, one bar per team) and the same numbers as a table
# ---------------------------------------------------------------------------------------------

CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_PLOT_H = 84, 16, 16, 240
BAR_W, BAR_GAP, GROUP_GAP = 22, 3, 26
CHART_MIN_W, LEGEND_ROW_H, LEGEND_COL_W, LEGEND_CHARS = 720, 18, 190, 24


def _team_colors(teams: Sequence[str]) -> dict[str, str]:
    return {team: TEAM_COLORS[i % len(TEAM_COLORS)] for i, team in enumerate(teams)}


def _y_axis(ticks: Sequence[float], y_of: Any, left: float, right: float) -> str:
    """Horizontal grid lines with their dollar labels."""
    parts = []
    for tick in ticks:
        y = _num(y_of(tick))
        parts.append(f'<line class="grid" x1="{left}" x2="{_num(right)}" y1="{y}" y2="{y}"/>'
                     f'<text x="{left - 6}" y="{y}" text-anchor="end" dominant-baseline="middle">'
                     f"{_e(format_amount(tick))}</text>")
    return "".join(parts)


def _legend(colors: Mapping[str, str], top: float, width: float) -> str:
    """One swatch and name per team, in rows that fit ``width``."""
    per_row = max(1, int((width - CHART_LEFT) // LEGEND_COL_W))
    parts = []
    for i, (team, color) in enumerate(colors.items()):
        x = CHART_LEFT + (i % per_row) * LEGEND_COL_W
        y = top + (i // per_row) * LEGEND_ROW_H
        shown = team if len(team) <= LEGEND_CHARS else team[: LEGEND_CHARS - 1] + "…"
        parts.append(f'<g data-testid="legend-item"><title>{_e(team)}</title><rect x="{x}" y="{_num(y)}" '
                     f'width="12" height="12" fill="{color}"/><text x="{x + 17}" y="{_num(y + 10)}">{_e(shown)}</text>'
                     "</g>")
    return f'<g data-testid="spend-legend">{"".join(parts)}</g>'


def _spend_chart(months: Sequence[str], teams: Sequence[str], cells: Mapping[tuple[str, str], Mapping[str, Any]]) \
        -> str:
    colors = _team_colors(teams)
    group_w = len(teams) * (BAR_W + BAR_GAP) - BAR_GAP
    width = max(CHART_MIN_W, CHART_LEFT + len(months) * (group_w + GROUP_GAP) + CHART_RIGHT)
    slot_w = (width - CHART_LEFT - CHART_RIGHT) / len(months)  # each month's share of the axis, its bars centred
    top_value = max((float(c.get("spent_usd") or 0) for c in cells.values()), default=0.0)
    ticks = nice_ticks(top_value, 4)
    y_max = ticks[-1] or 1.0
    baseline = CHART_TOP + CHART_PLOT_H

    def y_of(value: float) -> float:
        return baseline - CHART_PLOT_H * max(value, 0.0) / y_max

    bars, labels = [], []
    for m_index, month in enumerate(months):
        x0 = CHART_LEFT + m_index * slot_w + (slot_w - group_w) / 2
        for t_index, team in enumerate(teams):
            cell = cells.get((month, team), {})
            spent = float(cell.get("spent_usd") or 0.0)
            count = int(cell.get("runs") or 0)
            x, y = x0 + t_index * (BAR_W + BAR_GAP), y_of(spent)
            tip = f"{team} · {month}: {format_amount(spent)} ({plural(count, 'run')})"
            bars.append(f'<rect data-testid="spend-bar" data-team="{_e(team)}" data-month="{_e(month)}" '
                        f'x="{_num(x)}" y="{_num(y)}" width="{BAR_W}" height="{_num(baseline - y)}" '
                        f'fill="{colors[team]}"><title>{_e(tip)}</title></rect>')
        labels.append(f'<text x="{_num(x0 + group_w / 2)}" y="{baseline + 16}" text-anchor="middle">'
                      f"{_e(month)}</text>")
    legend_top = baseline + 44
    legend_rows = -(-len(teams) // max(1, int((width - CHART_LEFT) // LEGEND_COL_W)))
    height = legend_top + legend_rows * LEGEND_ROW_H + 6
    axis_title = (f'<text x="14" y="{CHART_TOP + CHART_PLOT_H / 2}" text-anchor="middle" '
                  f'transform="rotate(-90 14 {CHART_TOP + CHART_PLOT_H / 2})">Spent (USD)</text>')
    month_title = (f'<text x="{_num(CHART_LEFT + (width - CHART_LEFT - CHART_RIGHT) / 2)}" y="{baseline + 32}" '
                   'text-anchor="middle">Month</text>')
    return (f'<svg class="chart" data-testid="spend-chart" role="img" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" aria-labelledby="spend-chart-title">'
            '<title id="spend-chart-title">Spend by team and month (USD)</title>'
            f"{_y_axis(ticks, y_of, CHART_LEFT, width - CHART_RIGHT)}"
            f'<line class="axis" x1="{CHART_LEFT}" x2="{width - CHART_RIGHT}" y1="{baseline}" y2="{baseline}"/>'
            f'{"".join(bars)}{"".join(labels)}{axis_title}{month_title}'
            f"{_legend(colors, legend_top, width)}</svg>")


def _spend_table(items: Sequence[Mapping[str, Any]]) -> str:
    ordered = sorted(items, key=lambda i: (str(i.get("month")), str(i.get("team"))), reverse=False)
    rows = "".join(f'<tr data-testid="spend-row"><td>{_e(i.get("month"))}</td><td>{_e(i.get("team"))}</td>'
                   f'<td class="num">{_e(i.get("runs", 0))}</td>'
                   f'<td class="num">{_e(format_amount(i.get("spent_usd")))}</td></tr>' for i in ordered)
    total = sum(float(i.get("spent_usd") or 0.0) for i in items)
    runs = sum(int(i.get("runs") or 0) for i in items)
    foot = (f'<tfoot><tr><th scope="row" colspan="2">Total</th><td class="num">{runs}</td>'
            f'<td class="num" data-testid="spend-total">{_e(format_amount(total))}</td></tr></tfoot>')
    head = _head_row(("Month", "Team", ("Runs", "num"), ("Spent", "num")))
    return f'<table data-testid="spend-table">{head}<tbody>{rows}</tbody>{foot}</table>'


def spend_page(who: Who, months: list[dict]) -> str:
    """Spend by team and month: a grouped bar chart (a bar per team in every month) and the same as a table."""
    if not months:
        body = "<h1>Spend</h1>" + _empty("spend-empty", "<p>No spend recorded yet: no run has been charged.</p>")
        return _document("Spend", who, "spend", body)
    month_names = sorted({str(i.get("month")) for i in months})
    teams = sorted({str(i.get("team")) for i in months})
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for item in months:
        key = (str(item.get("month")), str(item.get("team")))
        cell = cells.setdefault(key, {"spent_usd": 0.0, "runs": 0})
        cell["spent_usd"] += float(item.get("spent_usd") or 0.0)
        cell["runs"] += int(item.get("runs") or 0)
    body = ("<h1>Spend</h1>"
            f'<p class="meta">{_e(plural(len(teams), "team"))} over {_e(plural(len(month_names), "month"))}, '
            "USD charged by the run ledger.</p>"
            f"<figure>{_spend_chart(month_names, teams, cells)}</figure>"
            f"<h2>By month and team</h2>{_spend_table(months)}")
    return _document("Spend", who, "spend", body)


# ---------------------------------------------------------------------------------------------
# Budgets: a burn-down per budget (cumulative spend against the cap, 50/80/100% marked)
# ---------------------------------------------------------------------------------------------

BURN_W, BURN_H = 640, 240
BURN_LEFT, BURN_RIGHT, BURN_TOP, BURN_BOTTOM = 84, 96, 14, 34


def budget_status(percent: float) -> tuple[str, str]:
    """The status word of a budget at ``percent`` of its cap, and its CSS class: ok, 50%, 80%, over cap."""
    if percent >= 100:
        return "over cap", "status-over"
    if percent >= 80:
        return "80%", "status-80"
    if percent >= 50:
        return "50%", "status-50"
    return "ok", "status-ok"


def _budget_testid(budget: Mapping[str, Any]) -> str:
    tag = budget.get("tag")
    return f"budget-{budget.get('team')}" + (f"-{tag}" if tag else "")


def _day_number(text: str) -> int | None:
    try:
        return date.fromisoformat(text).day
    except (TypeError, ValueError):
        return None


def _burn_points(days: Sequence[Mapping[str, Any]]) -> list[tuple[int, float]]:
    """(day of month, cumulative USD at its end), starting from (0, 0)."""
    points = [(0, 0.0)]
    for entry in days:
        day = _day_number(str(entry.get("day")))
        if day is not None:
            points.append((day, float(entry.get("spent_usd") or 0.0)))
    return sorted(points)


def _burn_chart(budget: Mapping[str, Any], label: str) -> str:
    cap = float(budget.get("cap_usd") or 0.0)
    spent = float(budget.get("spent_usd") or 0.0)
    days_in_month = int(budget.get("days_in_month") or 31)
    points = _burn_points(budget.get("days") or [])
    peak = max([cap, spent] + [v for _, v in points])
    ticks = nice_ticks(peak * 1.08, 4)
    y_max = ticks[-1] or 1.0
    plot_w = BURN_W - BURN_LEFT - BURN_RIGHT
    baseline = BURN_H - BURN_BOTTOM
    plot_h = baseline - BURN_TOP

    def x_of(day: float) -> float:
        return BURN_LEFT + plot_w * day / days_in_month

    def y_of(value: float) -> float:
        return baseline - plot_h * max(value, 0.0) / y_max

    right = BURN_LEFT + plot_w
    parts = [_y_axis(ticks, y_of, BURN_LEFT, right),
             f'<line class="axis" x1="{BURN_LEFT}" x2="{right}" y1="{baseline}" y2="{baseline}"/>']
    for day in sorted({1, 8, 15, 22, days_in_month}):
        parts.append(f'<text x="{_num(x_of(day))}" y="{baseline + 14}" text-anchor="middle">{day}</text>')
    parts.append(f'<text x="{_num(BURN_LEFT + plot_w / 2)}" y="{baseline + 28}" text-anchor="middle">'
                 f"Day of {_e(budget.get('month'))}</text>")
    last_day, last_value = points[-1]
    if cap > last_value:  # what is left: the band from spend so far up to the cap, to the month's end
        parts.append(f'<rect data-testid="budget-remaining" x="{_num(x_of(last_day))}" y="{_num(y_of(cap))}" '
                     f'width="{_num(x_of(days_in_month) - x_of(last_day))}" '
                     f'height="{_num(y_of(last_value) - y_of(cap))}" fill="#dcfce7" opacity="0.7">'
                     f"<title>{_e(f'remaining {format_amount(cap - last_value)}')}</title></rect>")
    for threshold in THRESHOLDS:
        parts.append(_threshold_line(threshold, cap, y_of(cap * threshold / 100), right))
    path = " ".join(f"{_num(x_of(d))},{_num(y_of(v))}" for d, v in points)
    parts.append(f'<polyline data-testid="budget-spend-line" points="{path}" fill="none" stroke="#2563eb" '
                 'stroke-width="2.5"/>')
    parts.append(f'<circle cx="{_num(x_of(last_day))}" cy="{_num(y_of(last_value))}" r="3.5" fill="#2563eb">'
                 f"<title>{_e(f'spent {format_amount(last_value)} by day {last_day}')}</title></circle>")
    return (f'<svg class="chart" role="img" data-testid="burndown-chart" viewBox="0 0 {BURN_W} {BURN_H}" '
            f'width="{BURN_W}" height="{BURN_H}"><title>{_e(label)}</title>{"".join(parts)}</svg>')


def _threshold_line(threshold: int, cap: float, y: float, right: float) -> str:
    """A threshold as a dashed line labelled on the right; 100% is the cap itself, drawn solid red."""
    amount = format_amount(cap * threshold / 100)
    if threshold == 100:
        style, testid, text = 'stroke="#dc2626" stroke-width="2"', "budget-cap-line", f"cap {amount}"
    else:
        style = 'stroke="#d97706" stroke-width="1" stroke-dasharray="5 4"'
        testid, text = f"budget-threshold-{threshold}", f"{threshold}% {amount}"
    return (f'<line data-testid="{testid}" data-threshold="{threshold}" x1="{BURN_LEFT}" x2="{_num(right)}" '
            f'y1="{_num(y)}" y2="{_num(y)}" {style}><title>{_e(f"{threshold}% of the cap: {amount}")}</title></line>'
            f'<text x="{_num(right + 6)}" y="{_num(y)}" dominant-baseline="middle">{_e(text)}</text>')


def _days_table(budget: Mapping[str, Any]) -> str:
    rows = "".join(f'<tr><td>{_e(d.get("day"))}</td><td class="num">{_e(format_amount(d.get("spent_usd")))}</td>'
                   "</tr>" for d in budget.get("days") or [])
    if not rows:
        return '<p class="muted">Nothing spent this month yet.</p>'
    return (f"<details><summary>Spend by day (cumulative)</summary><table>"
            f'{_head_row(("Day", ("Spent so far", "num")))}<tbody>{rows}</tbody></table></details>')


def _budget_card(budget: Mapping[str, Any]) -> str:
    cap = float(budget.get("cap_usd") or 0.0)
    spent = float(budget.get("spent_usd") or 0.0)
    percent = float(budget.get("percent") or 0.0)
    word, klass = budget_status(percent)
    scope = f"{budget.get('team')}" + (f" · {budget.get('tag')}" if budget.get("tag") else " · whole team")
    label = f"{scope}, {budget.get('month')}: spent {format_amount(spent)} of {format_amount(cap)}"
    left = cap - spent
    remaining = (f"remaining {format_amount(left)}" if left >= 0 else f"over the cap by {format_amount(-left)}")
    return (f'<section class="card" data-testid="{_e(_budget_testid(budget))}" data-team="{_e(budget.get("team"))}"'
            f' data-month="{_e(budget.get("month"))}">'
            f"<h2>{_e(scope)} <span class=\"muted\">{_e(budget.get('month'))}</span> "
            f'<span class="badge {klass}" data-testid="budget-status">{_e(word)}</span></h2>'
            f'<p>Spent <strong>{_e(format_amount(spent))}</strong> of {_e(format_amount(cap))} '
            f"({percent:.1f}%); <span data-testid=\"budget-remaining-text\">{_e(remaining)}</span>.</p>"
            f"<figure>{_burn_chart(budget, label)}</figure>{_days_table(budget)}</section>")


def budgets_page(who: Who, budgets: list[dict]) -> str:
    """One burn-down per monthly budget: cumulative spend against its cap, with the 50/80/100% marks."""
    if not budgets:
        body = ("<h1>Budgets</h1>" + _empty("budgets-empty",
                "<p>No budget is set. An admin sets a team's monthly cap with</p>"
                "<pre><code>gpuarb server budget set --team T --monthly-usd N</code></pre>"))
        return _document("Budgets", who, "budgets", body)
    ordered = sorted(budgets, key=lambda b: (str(b.get("team")), b.get("tag") or "", str(b.get("month"))))
    body = ("<h1>Budgets</h1>"
            f'<p class="meta">{_e(plural(len(ordered), "budget"))}; alerts go out at '
            f"{', '.join(f'{t}%' for t in THRESHOLDS)} of a cap. USD.</p>"
            + "".join(_budget_card(b) for b in ordered))
    return _document("Budgets", who, "budgets", body)


# ---------------------------------------------------------------------------------------------
# Prices: the `gpuarb prices --format json` record as a table
# ---------------------------------------------------------------------------------------------

PRICE_COLUMNS = ("Provider", "Region", "Instance type", "GPUs", ("On-demand $/h", "num"), ("Spot $/h", "num"),
                 "Source", "As of (age)")


def _hourly(value: float | None) -> str:
    """An hourly price to the cent, the exact figure in its tooltip."""
    if value is None:
        return "-"
    return f'<span title="{_e(f"${value:g}/h")}">{_e(format_amount(value))}</span>'


def _age_text(offer: Mapping[str, Any]) -> str:
    age = offer.get("age_days")
    as_of = f"{'~' if offer.get('as_of_estimated') else ''}{offer.get('as_of') or 'undated'}"
    shown_age = None if age is None else f"{age * 24:.0f}h" if age < 1 else f"{age:.0f}d"
    text = as_of if shown_age is None else f"{as_of} ({shown_age})"
    return f'<span class="stale">{_e(text)} stale</span>' if offer.get("stale") else _e(text)


def _price_row(offer: Mapping[str, Any]) -> str:
    where = offer.get("region") or "-"
    if offer.get("zone"):
        where = f"{where} ({offer['zone']})"
    memory = offer.get("gpu_memory_gb")
    gpus = f"{offer.get('gpus_per_node')}x {offer.get('gpu_model')}" + (f" {memory:g}GB" if memory else "")
    source = (f'<span title="{_e(offer.get("price_ref"))}">{_e(offer.get("source"))}</span>'
              if offer.get("price_ref") else _or_dash(offer.get("source")))
    return (f'<tr data-testid="price-row"><td>{_e(offer.get("provider"))}</td><td>{_e(where)}</td>'
            f'<td>{_e(offer.get("instance_type"))}</td><td>{_e(gpus)}</td>'
            f'<td class="num">{_hourly(offer.get("on_demand_usd_per_hour"))}</td>'
            f'<td class="num">{_hourly(offer.get("spot_usd_per_hour"))}</td>'
            f"<td>{source}</td><td>{_age_text(offer)}</td></tr>")


def _prices_empty(prices: Mapping[str, Any]) -> str:
    """Why nothing matched, and the offers left after each filter ({option, value, offers} records)."""
    reason = prices.get("empty_reason") or "no offer matches these filters"
    steps = "".join(f"<li><code>{_e(c.get('option'))} {_e(c.get('value'))}</code>: "
                    f"{_e(plural(int(c.get('offers') or 0), 'offer'))} left</li>"
                    for c in prices.get("filter_counts") or [] if isinstance(c, Mapping))
    return _empty("prices-empty", f"<p>No offers: {_e(reason)}.</p>" + (f"<ol>{steps}</ol>" if steps else ""))


def prices_page(who: Who, prices: dict) -> str:
    """The price report: each offer's provider, region, instance, GPUs, on-demand and spot $/h, source and age."""
    offers = prices.get("offers") or []
    if not offers:
        return _document("Prices", who, "prices", "<h1>Prices</h1>" + _prices_empty(prices))
    matching, shown = prices.get("matching", len(offers)), prices.get("shown", len(offers))
    stale_days = prices.get("stale_after_days")
    meta = (f"{_e(plural(int(matching), 'offer'))} matching"
            + (f", {_e(shown)} shown" if shown != matching else "")
            + ", cheapest per GPU-hour first; USD per instance-hour"
            + (f"; ages counted to {_when(prices.get('now'))}" if prices.get("now") else "")
            + (f", stale after {_e(f'{stale_days:g}')} days" if isinstance(stale_days, (int, float)) else "") + ".")
    rows = "".join(_price_row(o) for o in offers)
    body = (f'<h1>Prices</h1><p class="meta" data-testid="prices-meta">{meta}</p>'
            f'<table data-testid="prices-table">{_head_row(PRICE_COLUMNS)}<tbody>{rows}</tbody></table>'
            '<p class="muted">~ before a date: the price list carries no date, so its as-of date is estimated. '
            "A price's exact figure and where it was read are in the tooltips.</p>")
    return _document("Prices", who, "prices", body)
