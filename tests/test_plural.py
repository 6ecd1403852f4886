"""Counts read as English (issue 14: '1 feasible placements'): the helper, and real outputs at a count of 1."""

from __future__ import annotations

import pytest
from conftest import NOW, make_offer, make_spec

from arbitrage import ledger as L
from arbitrage.plural import count_text, noun, plural
from arbitrage.render import plan_text
from arbitrage.report import markdown, spend
from arbitrage.report.plan import build_plan_report
from arbitrage.report.terminal import plan_renderables


@pytest.mark.parametrize(("n", "word", "many", "want"), [
    (1, "run", None, "1 run"), (2, "run", None, "2 runs"), (0, "placement", None, "0 placements"),
    (1, "GPU", None, "1 GPU"), (8, "GPU", None, "8 GPUs"), (1200, "offer", None, "1,200 offers"),
    (1.0, "year", None, "1 year"), (3.0, "year", None, "3 years"), (0.5, "byte", None, "0.5 bytes"),
    (1.5, "hour", None, "1.5 hours"), (1, "entry", "entries", "1 entry"), (3, "entry", "entries", "3 entries"),
    (1, "feasible placement", None, "1 feasible placement"), (1001, "run", None, "1,001 runs"),
])
def test_plural_agrees_with_the_count(n: float, word: str, many: str | None, want: str) -> None:
    assert plural(n, word, many) == want
    assert noun(n, word, many) == want.split(" ", 1)[1]


def test_count_text_and_the_old_home_of_plural() -> None:
    assert [count_text(n) for n in (0, 1, 2.0, 1234567, 0.25)] == ["0", "1", "2", "1,234,567", "0.25"]
    assert spend.plural is plural  # report/spend.py re-uses the one helper


def test_a_plan_with_one_feasible_placement_says_so(facts, capsys: pytest.CaptureFixture[str]) -> None:
    spec = make_spec()
    report = build_plan_report(spec, [make_offer()], facts, NOW, "cost", 0,
                               {"aws": {"source": "snapshot", "as_of": "2026-11-01", "price_ref": "test", "offers": 1}})
    result = report.plan
    assert len(result.placements) == result.candidates == 1
    # `gpuarb plan`'s table title and capacity line
    out = plan_text(result, 0, report.catalog)
    assert "t: H100:8 x 1 node, " in out and "node(s)" not in out
    assert "\n1 feasible of 1 candidate, 1 distinct choice (USD;" in out
    assert "Capacity: the 1 feasible placement has none (no source asked); it is ranked on price alone" in out
    # `gpuarb report plan` (terminal and markdown)
    title = plan_renderables(report, "")[0].title
    assert title.startswith("t: H100:8 x 1 node, ") and "\n1 feasible of 1 candidate (USD;" in title
    md = markdown.plan_markdown(report)
    assert "x 1 node ·" in md and "1 feasible of 1 candidate." in md and "(1 offer)" in md
    assert "1 candidates" not in md and "1 offers" not in md


def test_the_ledger_records_one_feasible_placement(tmp_path, facts) -> None:
    from arbitrage.costmodel import Placement, estimate
    from arbitrage.launch.runner import placement_row

    spec = make_spec()
    cost = estimate(spec, Placement(make_offer(), 1, spot=False), facts)
    with L.Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        run_id = ledger.create_run(name="t", spec_path="job.yaml", spec_text="name: t", backend="fake", now=NOW,
                                   placements=[placement_row(cost)], tags={}, budget_total_usd=None,
                                   budget_hourly_usd=None)
        assert [e.message for e in ledger.events(run_id)] == ["1 feasible placement"]
