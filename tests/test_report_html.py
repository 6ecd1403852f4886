"""The HTML reports' structure, parsed: every chart and bar names provider, source and as-of; nothing is fetched
from the network; all text is escaped."""

from __future__ import annotations

from datetime import datetime, timezone
from html.parser import HTMLParser

import pytest
from conftest import ROOT, make_offer

from arbitrage.facts import Facts
from arbitrage.report.html import plan_html, prices_html
from arbitrage.report.plan import build_plan_report
from arbitrage.report.prices import build_price_report
from arbitrage.specfile import read_jobspec
from providers.snapshot import load_snapshot

MOMENT = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
SOURCES = {"snapshot", "cache", "live"}


class Page(HTMLParser):
    """Collects figures (with their bars, SVGs and caption), tables (head and rows) and every tag seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.figures: list[dict] = []
        self.tables: list[dict] = []
        self._figure: dict | None = None
        self._bar: dict | None = None
        self._bar_depth = 0
        self._caption = False
        self._table: dict | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._in_head = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "figure":
            self._figure = {"attrs": a, "bars": [], "svgs": 0, "caption": ""}
        elif tag == "svg" and self._figure is not None:
            self._figure["svgs"] += 1
        elif tag == "g" and "bar" in a.get("class", "").split():
            self._bar = {"attrs": a, "text": ""}
            self._bar_depth = 1
        elif tag == "g" and self._bar is not None:
            self._bar_depth += 1
        elif tag == "figcaption":
            self._caption = True
        elif tag == "table":
            self._table = {"head": [], "rows": []}
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure" and self._figure is not None:
            self.figures.append(self._figure)
            self._figure = None
        elif tag == "g" and self._bar is not None:
            self._bar_depth -= 1
            if self._bar_depth == 0:
                assert self._figure is not None, "a bar outside a figure"
                self._figure["bars"].append(self._bar)
                self._bar = None
        elif tag == "figcaption":
            self._caption = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            (self._table["head"] if self._in_head else self._table["rows"]).append(self._row)
            self._row = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "table" and self._table is not None:
            self.tables.append(self._table)
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._bar is not None:
            self._bar["text"] += data
        if self._caption and self._figure is not None:
            self._figure["caption"] += data
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def check_self_contained(page: Page, html: str) -> None:
    names = {t for t, _ in page.tags}
    assert not names & {"script", "link", "img", "iframe", "object", "embed"}
    for _, attrs in page.tags:
        for key in ("src", "href"):
            assert key not in attrs, attrs
    assert "url(" not in html and "@import" not in html and "http://" not in html.split("<body>")[0]


def check_figures(page: Page) -> None:
    assert page.figures
    for fig in page.figures:
        attrs = fig["attrs"]
        assert fig["svgs"] == 1 and fig["bars"]
        assert attrs["data-providers"] and attrs["data-as-of"]
        assert set(attrs["data-sources"].split()) <= SOURCES and attrs["data-sources"]
        assert "Source and as-of per provider" in fig["caption"]
        for provider in attrs["data-providers"].split():
            assert f"{provider}:" in fig["caption"]
        for bar in fig["bars"]:
            a = bar["attrs"]
            assert a["data-provider"] in attrs["data-providers"].split()
            assert a["data-source"] in SOURCES and a["data-as-of"]
            assert f"{a['data-source']}, as of {a['data-as-of']}" in bar["text"]  # visible label and tooltip


def check_table_provenance(page: Page) -> int:
    checked = 0
    for table in page.tables:
        head = table["head"][0]
        if "Source (as of)" not in head:
            continue
        col = head.index("Source (as of)")
        for row in table["rows"]:
            assert "as of" in row[col], row
            checked += 1
    return checked


@pytest.fixture(scope="module")
def prices_page(facts: Facts) -> tuple[str, Page]:
    html = prices_html(build_price_report(load_snapshot(facts), facts), "2026-11-23T12:00:00+00:00",
                       "snapshot: 935 offers")
    return html, parse(html)


def test_prices_html_every_figure_has_provenance(prices_page: tuple[str, Page]) -> None:
    html, page = prices_page
    check_self_contained(page, html)
    check_figures(page)
    assert check_table_provenance(page) > 50
    kinds = [f["attrs"]["data-kind"] for f in page.figures]
    assert kinds[0] == "summary" and kinds.count("provider") >= 10
    svg_ids = {a.get("id") for t, a in page.tags if t == "svg"}
    assert {"chart-summary", "chart-h100", "chart-a100-80gb"} <= svg_ids
    series = {b["attrs"]["data-series"] for f in page.figures for b in f["bars"]}
    assert series == {"on-demand", "spot"}


def test_prices_html_summary_chart_ranks_by_effective_price(prices_page: tuple[str, Page]) -> None:
    _, page = prices_page
    summary = page.figures[0]
    on_demand = [float(b["attrs"]["data-value"]) for b in summary["bars"] if b["attrs"]["data-series"] == "on-demand"]
    assert on_demand == sorted(on_demand)


def test_plan_html_has_breakdown_baselines_and_rejections(facts: Facts) -> None:
    spec = read_jobspec(str(ROOT / "jobspecs" / "llama3-8b-finetune.yaml"), facts)
    offers = load_snapshot(facts)
    catalog = {"aws": {"source": "snapshot", "as_of": "undated", "price_ref": "x", "offers": 1}}
    html = plan_html(build_plan_report(spec, offers, facts, MOMENT, "cost", 3, catalog))
    page = parse(html)
    check_self_contained(page, html)
    check_figures(page)
    (fig,) = page.figures
    labels = [b["attrs"]["data-value"] for b in fig["bars"]]
    assert len(labels) == 5  # top 3, naive, cheapest listed
    text = " ".join(page.text)
    assert "Savings vs naive" in text and "Rejected" in text and "misses the deadline" in text
    assert check_table_provenance(page) == 5


def test_all_text_is_escaped(facts: Facts) -> None:
    evil = make_offer(provider="lambda", instance_type='<img src=x onerror="alert(1)">',
                      price_ref='"><script>alert(1)</script>', as_of="<b>2026</b>")
    html = prices_html(build_price_report([evil], facts), "<now>", "<script>")
    page = parse(html)
    check_self_contained(page, html)
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html
    check_figures(page)
