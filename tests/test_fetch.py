"""Source selection per provider: fresh cache, live, stale cache, snapshot; and the cache's safety."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from arbitrage.facts import load_facts
from providers import cache
from providers.azure import PATH
from providers.base import FetchContext
from providers.fetch import FAILURE_COOLDOWN_S, collect_offers
from providers.snapshot import load_snapshot

FIXTURE = Path(__file__).parent / "fixtures" / "azure" / "page2.json"
T0 = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def context(server: HTTPServer, tmp_path: Path, now: datetime = T0) -> FetchContext:
    return FetchContext(facts=load_facts(), now=now, env={"GPUARB_CACHE_DIR": str(tmp_path)},
                        endpoints={"azure": server.url_for("").rstrip("/")}, retries=1, backoff_s=0.01,
                        max_backoff_s=0.02, timeout_s=1.0)


def run(server: HTTPServer, tmp_path: Path, mode: str, now: datetime = T0) -> tuple[list[Any], Any]:
    facts = load_facts()
    offers, statuses = collect_offers(load_snapshot(facts), mode, context(server, tmp_path, now), ["azure"])
    return offers, statuses[0]


def serve_ok(server: HTTPServer) -> None:
    server.expect_request(PATH).respond_with_json(json.loads(FIXTURE.read_text()))


def test_live_fetch_replaces_snapshot_and_fills_cache(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_ok(httpserver)
    offers, status = run(httpserver, tmp_path, "live")
    assert status.used == "live" and status.offers == len(offers) == 2
    assert {o.source for o in offers} == {"live"}
    entry = cache.read(tmp_path, "azure")
    assert entry is not None and entry.fetched_at == T0 and len(entry.offers) == 2
    assert {o.source for o in entry.offers} == {"cache"}


def test_auto_uses_fresh_cache_without_calling_the_api(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_ok(httpserver)
    run(httpserver, tmp_path, "live")
    calls = len(httpserver.log)
    offers, status = run(httpserver, tmp_path, "auto", T0 + timedelta(hours=1))
    assert status.used == "cache" and len(httpserver.log) == calls
    assert all(o.source == "cache" and o.as_of.startswith("2026-11-23T12") for o in offers)


def test_auto_refreshes_a_stale_cache(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_ok(httpserver)
    run(httpserver, tmp_path, "live")
    _, status = run(httpserver, tmp_path, "auto", T0 + timedelta(days=2))
    assert status.used == "live"


def test_bad_fetch_never_overwrites_the_cache_and_falls_back_to_it(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_ok(httpserver)
    run(httpserver, tmp_path, "live")
    before = (tmp_path / "offers-azure.json").read_text()
    httpserver.clear()
    httpserver.expect_request(PATH).respond_with_data("{broken", content_type="application/json")
    offers, status = run(httpserver, tmp_path, "live", T0 + timedelta(days=1))
    assert status.used == "cache" and status.level == "warning"
    assert "azure: live fetch failed (invalid JSON" in status.message and "using cached prices" in status.message
    assert len(offers) == 2
    entry = cache.read(tmp_path, "azure")
    assert entry is not None and entry.fetched_at == T0 and len(entry.offers) == 2 and entry.failure
    assert json.loads(before)["offers"] == json.loads((tmp_path / "offers-azure.json").read_text())["offers"]


def test_failure_without_cache_falls_back_to_snapshot(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request(PATH).respond_with_data("down", status=500)
    offers, status = run(httpserver, tmp_path, "live")
    assert status.used == "snapshot" and status.level == "warning" and "HTTP 500" in status.message
    assert offers and all(o.source == "snapshot" for o in offers)


def test_auto_pauses_after_a_failure(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request(PATH).respond_with_data("down", status=503)
    run(httpserver, tmp_path, "auto")
    calls = len(httpserver.log)
    _, status = run(httpserver, tmp_path, "auto", T0 + timedelta(seconds=FAILURE_COOLDOWN_S // 2))
    assert len(httpserver.log) == calls and "retrying after" in status.message
    run(httpserver, tmp_path, "auto", T0 + timedelta(seconds=FAILURE_COOLDOWN_S + 1))
    assert len(httpserver.log) > calls


def test_cache_mode_and_snapshot_mode_make_no_calls(httpserver: HTTPServer, tmp_path: Path) -> None:
    _, status = run(httpserver, tmp_path, "cache")
    assert status.used == "snapshot" and "no cached prices" in status.message
    _, status = run(httpserver, tmp_path, "snapshot")
    assert status.used == "snapshot"
    assert len(httpserver.log) == 0


def test_corrupt_cache_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "offers-azure.json").write_text("{not json")
    assert cache.read(tmp_path, "azure") is None


def test_providers_without_an_adapter_stay_on_the_snapshot(httpserver: HTTPServer, tmp_path: Path) -> None:
    facts = load_facts()
    offers, statuses = collect_offers(load_snapshot(facts), "live", context(httpserver, tmp_path), ["nebius"])
    assert statuses[0].used == "snapshot" and offers and all(o.provider == "nebius" for o in offers)


@pytest.mark.parametrize("mode", ["auto", "live"])
def test_cli_warns_on_stderr_and_still_answers(httpserver: HTTPServer, tmp_path: Path, monkeypatch, mode) -> None:
    from typer.testing import CliRunner

    from arbitrage.cli import app

    httpserver.expect_request(PATH).respond_with_data("denied", status=403)  # not retried: keeps the test fast
    monkeypatch.setenv("GPUARB_CACHE_DIR", str(tmp_path))
    import providers.azure as azure

    monkeypatch.setattr(azure, "DEFAULT_URL", httpserver.url_for("").rstrip("/"))
    result = CliRunner().invoke(app, ["prices", "-g", "H100", "-p", "azure", "-s", mode, "-f", "json"])
    assert result.exit_code == 0
    assert "gpuarb: warning: azure: live fetch failed" in result.output


class _Broken:
    """An adapter with a bug, and one whose SDK is missing: neither may fail the command."""

    name = "azure"
    ttl_seconds = 60
    credentials_hint = "-"

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def has_credentials(self, ctx: FetchContext) -> bool:
        return True

    async def fetch(self, ctx: FetchContext) -> list[Any]:
        raise self.exc


@pytest.mark.parametrize(("exc", "needle"), [
    (KeyError("Items"), "adapter error KeyError"),
    (ModuleNotFoundError("No module named 'boto3'", name="boto3"), "need the 'boto3' package"),
])
def test_adapter_bugs_and_missing_sdks_fall_back(tmp_path: Path, monkeypatch, exc, needle: str) -> None:
    import providers.fetch as fetch_module

    monkeypatch.setattr(fetch_module, "get_adapter", lambda name: _Broken(exc))
    facts = load_facts()
    ctx = FetchContext(facts=facts, now=T0, env={"GPUARB_CACHE_DIR": str(tmp_path)})
    offers, [status] = collect_offers(load_snapshot(facts), "live", ctx, ["azure"])
    assert status.used == "snapshot" and status.level == "warning" and needle in status.message
    assert offers


def test_plan_never_asks_a_denied_provider(httpserver: HTTPServer, tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    import providers.azure as azure
    from arbitrage.cli import app

    serve_ok(httpserver)
    monkeypatch.setenv("GPUARB_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(azure, "DEFAULT_URL", httpserver.url_for("").rstrip("/"))
    job = tmp_path / "job.yaml"
    job.write_text("name: x\nresources: {accelerators: H100:8}\narbitrage:\n  work: {gpu_hours: 80}\n"
                   "  providers: {deny: [azure, vast, runpod, lambda, gcp, aws]}\n")
    result = CliRunner().invoke(app, ["plan", str(job), "-s", "live", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert len(httpserver.log) == 0
    job.write_text(job.read_text().replace("deny: [azure, ", "deny: ["))
    assert CliRunner().invoke(app, ["plan", str(job), "-s", "live", "-f", "json"]).exit_code == 0
    assert len(httpserver.log) == 1


def test_sold_out_everywhere_is_a_live_empty_answer_not_a_failure(tmp_path: Path, monkeypatch) -> None:
    """A provider that answers 'nothing to buy now' replaces older prices: no fallback, no cooldown."""
    import providers.fetch as fetch_module
    from providers.base import NoCapacity

    monkeypatch.setattr(fetch_module, "get_adapter", lambda name: _Broken(NoCapacity("azure", "sold out")))
    facts = load_facts()
    ctx = FetchContext(facts=facts, now=T0, env={"GPUARB_CACHE_DIR": str(tmp_path)})
    offers, [status] = collect_offers(load_snapshot(facts), "live", ctx, ["azure"])
    assert (status.used, status.offers, status.level) == ("live", 0, "warning")
    assert "sold out" in status.message and not [o for o in offers if o.provider == "azure"]
    entry = cache.read(tmp_path, "azure")
    assert entry is not None and entry.offers == () and entry.failure is None and entry.fetched_at == T0


def test_every_live_and_cached_answer_passes_the_quality_gate(tmp_path: Path) -> None:
    """A live answer with an absurd price: the price is set aside (with its reason) live and again from the cache."""
    from providers import registry
    from tests.fake_provider import CARD, ENV_KEY, NAME, PRICES_ENV

    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps([
        {"region": "fake-east-1", "instance": "fk.8xh100", "gpu": "H100", "gpus": 8, "usd_per_hour": 24.0},
        {"region": "fake-west-2", "instance": "fk.8xh100", "gpu": "H100", "gpus": 8, "usd_per_hour": 0.08},
    ]), encoding="utf-8")
    env = {"GPUARB_CACHE_DIR": str(tmp_path), ENV_KEY: "k", PRICES_ENV: str(prices)}
    ctx = FetchContext(facts=load_facts(), now=T0, env=env)
    registry.register(CARD)
    try:
        offers, statuses = collect_offers([], "live", ctx, [NAME])
        assert [o.region for o in offers] == ["fake-east-1"] and statuses[0].offers == 1
        (aside,) = statuses[0].quarantined
        assert (aside.offer.region, aside.option, aside.rule) == ("fake-west-2", "on-demand", "out-of-band")
        assert "$0.010/GPU-h is outside H100's plausible" in aside.reason
        entry = cache.read(tmp_path, NAME)  # the cache keeps the answer as received...
        assert entry is not None and len(entry.offers) == 2
        offers, statuses = collect_offers([], "cache", ctx, [NAME])  # ...and the gate runs again on every read
        assert [o.region for o in offers] == ["fake-east-1"] and statuses[0].used == "cache"
        assert [q.rule for q in statuses[0].quarantined] == ["out-of-band"]
        # An answer whose every price is set aside is a failed fetch: the last good cache answers instead.
        prices.write_text(json.dumps([{"region": "fake-east-1", "instance": "fk.8xh100", "gpu": "H100", "gpus": 8,
                                       "usd_per_hour": 0.08}]), encoding="utf-8")
        offers, statuses = collect_offers([], "live", ctx, [NAME])
        assert statuses[0].used == "cache" and statuses[0].level == "warning"
        assert "the price quality gate set aside its only price (on-demand $0.010/GPU-h is" in statuses[0].message
        assert [o.region for o in offers] == ["fake-east-1"]
    finally:
        registry.unregister(NAME)
