"""A new provider is one adapter module plus one card: a fake one, registered here, is planned and dry-run end to end.

The fake provider (tests/fake_provider.py) is known to nothing in the code: its card goes in through
``providers.registry.register``, its egress prices through the facts override folder
(``$GPUARB_CONFIG_DIR/facts/egress.csv``), its API key and price list through the environment. The CLI
(in-process) then reads the fake's live prices, ranks its offer first, and renders a SkyPilot task pinned to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from arbitrage.facts import load_facts
from providers import registry
from tests.fake_provider import CARD, ENV_KEY, NAME, PRICES_ENV

ROOT = Path(__file__).resolve().parent.parent

JOB = """\
name: fake-e2e
resources:
  accelerators: H100:8
  disk_size: 200
run: python train.py
arbitrage:
  work: {gpu_hours: 64}
  providers: {allow: [fakecloud, lambda, runpod, vast]}
  data: {uri: fake://datasets/pile, region: fake-east-1, size_gb: 50}
  outputs_gb: 5
"""

PRICES = [
    {"region": "fake-east-1", "zone": "fake-east-1a", "instance": "fk.8xh100", "gpu": "H100", "gpus": 8,
     "usd_per_hour": 6.40},
    {"region": "fake-west-2", "zone": "fake-west-2b", "instance": "fk.8xh100", "gpu": "H100", "gpus": 8,
     "usd_per_hour": 7.20},
    {"region": "fake-east-1", "zone": "fake-east-1a", "instance": "fk.1xtpu", "gpu": "not-a-gpu", "gpus": 1,
     "usd_per_hour": 0.10},
]

# The fake's egress per GB along each path, appended to the bundled table in the override file.
FAKE_EGRESS = {"internet": 0.07, "inter_region": 0.02, "same_region": 0.0}


@pytest.fixture
def fake_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fake card registered, its prices and key in the environment, its egress in the facts override."""
    bundled = (ROOT / "arbitrage" / "data" / "egress.csv").read_text(encoding="utf-8").rstrip("\n")
    # egress.csv columns: provider,path,from_continent,unit,up_to,usd_per_unit,source,as_of,notes
    rows = [f'{NAME},{path},,GB,,{usd},"fake price list (test)",2026-11,' for path, usd in FAKE_EGRESS.items()]
    facts_dir = tmp_path / "config" / "facts"
    facts_dir.mkdir(parents=True)
    (facts_dir / "egress.csv").write_text(bundled + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    prices = tmp_path / "fakecloud-prices.json"
    prices.write_text(json.dumps(PRICES), encoding="utf-8")
    job = tmp_path / "job.yaml"
    job.write_text(JOB, encoding="utf-8")

    monkeypatch.setenv("GPUARB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("GPUARB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(ENV_KEY, "fk-test-key")
    monkeypatch.setenv(PRICES_ENV, str(prices))
    for key in ("LAMBDA_API_KEY", "RUNPOD_API_KEY", "VAST_API_KEY"):  # the others fall back to the snapshot
        monkeypatch.delenv(key, raising=False)

    registry.register(CARD)
    load_facts.cache_clear()  # read the override folder
    try:
        yield job
    finally:
        registry.unregister(NAME)
        load_facts.cache_clear()


def _app():
    from arbitrage.cli import app

    return app


def test_the_fake_provider_is_known_only_through_its_card(fake_world: Path) -> None:
    assert registry.card(NAME) is CARD
    assert NAME in registry.provider_ids() and NAME in registry.adapter_ids()
    assert registry.provider_for_scheme("fake") == NAME
    assert registry.get_adapter(NAME).name == NAME
    facts = load_facts()
    assert facts.egress_tiers and {t.path for t in facts.egress_tiers if t.provider == NAME} == set(FAKE_EGRESS)


def test_fake_provider_offer_wins_the_plan_from_live_prices(fake_world: Path) -> None:
    result = CliRunner().invoke(_app(), ["plan", str(fake_world), "--source", "live", "--format", "json",
                                         "--top", "0"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    best = plan["placements"][0]
    assert (best["provider"], best["region"], best["zone"], best["instance_type"]) == \
        (NAME, "fake-east-1", "fake-east-1a", "fk.8xh100")
    assert best["source"] == "live" and best["price_ref"] == "fakecloud price list fakecloud-prices.json"
    assert best["hourly_usd"] == pytest.approx(6.40)
    assert best["egress_usd"] == pytest.approx(0.0)  # data and outputs stay in the fake's own region
    # The other allowed providers were planned too (from the snapshot), and cost more.
    others = [p for p in plan["placements"] if p["provider"] != NAME]
    assert others and {p["provider"] for p in others} <= {"lambda", "runpod", "vast"}
    assert all(p["source"] == "snapshot" for p in others)
    assert min(p["total_usd"] for p in others) > best["total_usd"]
    # Moving the data out of the fake's region is priced from the override's fake egress rows.
    west = next(p for p in plan["placements"] if p["provider"] == NAME and p["region"] == "fake-west-2")
    assert west["egress_in_usd"] == pytest.approx(50 * FAKE_EGRESS["inter_region"])
    assert west["egress_out_usd"] == pytest.approx(5 * FAKE_EGRESS["inter_region"])
    lambda_best = next(p for p in others if p["provider"] == "lambda")
    assert lambda_best["egress_in_usd"] == pytest.approx(50 * FAKE_EGRESS["internet"])
    assert plan["catalog"][NAME]["source"] == "live"


def test_fake_provider_dry_run_renders_a_task_pinned_by_its_card(fake_world: Path) -> None:
    result = CliRunner().invoke(_app(), ["run", str(fake_world), "--dry-run", "--source", "live",
                                         "--format", "json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["backend"] == "skypilot"
    assert shown["placement"].startswith(f"#1 {NAME} fake-east-1a 1x fk.8xh100 on-demand: $6.40/h")
    task = yaml.safe_load(shown["task"])
    # The card pins the zone and the accelerator (SkyPilotPin("fakecloud", pin_zone=True)).
    assert task["resources"]["infra"] == "fakecloud/fake-east-1/fake-east-1a"
    assert task["resources"]["instance_type"] == "fk.8xh100"
    assert task["resources"]["accelerators"] == {"H100": 8}
    assert task["resources"]["use_spot"] is False and task["resources"]["disk_size"] == 200
    assert task["run"] == "python train.py" and task["num_nodes"] == 1
    assert f"# placement: {NAME} fake-east-1/fake-east-1a fk.8xh100 on-demand" in shown["task"]


def test_an_unregistered_provider_is_unknown_again(fake_world: Path) -> None:
    registry.unregister(NAME)
    try:
        result = CliRunner().invoke(_app(), ["plan", str(fake_world), "--source", "live"])
        assert result.exit_code == 2
        assert "unknown provider 'fakecloud'" in result.output
    finally:
        registry.register(CARD)
