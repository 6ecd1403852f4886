"""The plan says which prices are estimates at launch (the launcher picks what the pin leaves open), and why."""

from __future__ import annotations

import json

from conftest import NOW, make_offer, make_spec
from typer.testing import CliRunner

from arbitrage import app as usecases
from arbitrage.cli import app
from arbitrage.planner import plan

SPEC = "jobspecs/llama3-8b-finetune.yaml"


def test_plan_json_and_table_mark_launch_estimates() -> None:
    out = CliRunner().invoke(app, ["plan", SPEC, "--format", "json", "--source", "snapshot", "--top", "0"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)["placements"]
    by_kind = {(r["provider"], r["spot"], bool(r["zone"])): r for r in rows}
    aws_spot = by_kind[("aws", True, True)]  # SkyPilot picks the zone of the region itself
    assert aws_spot["launch_price"] == "estimate" and "is not pinned" in aws_spot["launch_note"]
    exact = [r for r in rows if r["provider"] in ("nebius", "lambda")]
    assert exact and all(r["launch_price"] == "exact" and r["launch_note"] is None for r in exact)
    table = CliRunner().invoke(app, ["plan", SPEC, "--source", "snapshot"]).output
    assert "~$" in table and "~$/h: an estimate at launch" in table
    if rows[0]["launch_note"]:
        assert f"launch: the price is an estimate: {rows[0]['launch_note']}" in table


def test_launch_notes_come_from_the_backend_the_run_would_use(facts) -> None:
    spec = make_spec(spot="always")
    offers = [make_offer(zone="use1-az4", spot_usd_per_hour=40.0),
              make_offer(provider="lambda", region="us-east-1", zone=None)]
    result = plan(spec, offers, facts, NOW)
    noted = usecases.with_launch_notes(result)
    spot = [b for b in noted.placements if b.placement.spot and b.placement.offer.provider == "aws"]
    assert spot and all("not pinned" in b.launch_note for b in spot)
    assert all(b.launch_note == "" for b in usecases.with_launch_notes(result, "local").placements)
    # the costs are untouched: a note, never a different price
    assert [b.total_usd for b in noted.placements] == [b.total_usd for b in result.placements]
    assert usecases.with_launch_notes(plan(make_spec(), offers, facts, NOW)).placements[0].launch_note == ""


def test_every_backend_has_a_price_note_and_plan_imports_no_launcher() -> None:
    import subprocess
    import sys

    from arbitrage.launch import backends

    assert set(backends.PRICE_NOTES) <= set(backends.BACKENDS)
    code = ("import sys; from arbitrage import app; app.plan_job('jobspecs/llama3-8b-finetune.yaml', app.load_facts(),"
            " source=app.Source.snapshot); print(sorted(m for m in sys.modules if m.startswith('arbitrage.launch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # the launch-price note comes from skytask alone: no backend, no Backend protocol on the plan path
    assert out.strip() == "['arbitrage.launch', 'arbitrage.launch.backends', 'arbitrage.launch.skytask']"
