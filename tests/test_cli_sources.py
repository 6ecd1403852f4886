"""One CLI vocabulary for prices (issue 14): --gpu globs, empty results that say which filter emptied them,
--strict price sources (exit 7), and offline warnings said in full once per pause.

Live sources are loopback servers (pytest-httpserver) or a closed loopback port (connection refused, as a machine
offline sees it); nothing here reaches a real network.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, make_offer
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

import providers.azure as azure
import providers.lambda_cloud as lambda_cloud
import providers.spot_advisor as spot_advisor
from arbitrage.cli import app
from arbitrage.errors import EXIT_SOURCE_UNAVAILABLE, SourceUnavailable
from arbitrage.facts import load_facts
from arbitrage.params import canonical_gpus
from providers import cache
from providers.base import FetchContext
from providers.fetch import collect_offers, notices, offline_kind
from providers.snapshot import load_snapshot

cli = CliRunner()
FIXTURES = ROOT / "tests" / "fixtures"
AZURE_PAGE = json.loads((FIXTURES / "azure" / "page2.json").read_text())
LAMBDA_TYPES = json.loads((FIXTURES / "lambda" / "instance_types.json").read_text())
ADVISOR_FEED = json.loads((FIXTURES / "spot_advisor" / "spot-advisor-data.json").read_text())
SPEC = str(ROOT / "jobspecs" / "llama3-8b-finetune.yaml")
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
NOW = "2026-11-23T12:00:00Z"


def invoke(*args: str) -> Any:
    return cli.invoke(app, list(args))


# A port bound and never listened on, held for the whole module: connecting to it is refused at once, as it is for
# a machine offline, and no other socket can take the port meanwhile (a port released after bind() can come back as
# a client's own ephemeral source port, and a connect to it then reaches itself and does not fail).
_REFUSING = socket.socket()
_REFUSING.bind(("127.0.0.1", 0))


def closed_url() -> str:
    """A loopback URL nothing listens on: connecting is refused at once."""
    return f"http://127.0.0.1:{_REFUSING.getsockname()[1]}"


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("GPUARB_CACHE_DIR", str(folder))
    monkeypatch.delenv("GPUARB_SOURCE", raising=False)  # auto, as a user has it
    for key in ("LAMBDA_API_KEY", "RUNPOD_API_KEY", "VAST_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    return folder


def offline(monkeypatch: pytest.MonkeyPatch, *modules: Any) -> None:
    for module in modules:
        monkeypatch.setattr(module, "DEFAULT_URL", closed_url())


def online(monkeypatch: pytest.MonkeyPatch, server: HTTPServer, *modules: Any) -> None:
    for module in modules:
        monkeypatch.setattr(module, "DEFAULT_URL", server.url_for("").rstrip("/"))


# -- 1. --gpu globs ------------------------------------------------------------------------------------------------

def _offers(*args: str) -> list[dict[str, Any]]:
    result = invoke("prices", *args, "-f", "json", "--now", NOW)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["offers"]


def test_a_gpu_glob_is_every_gpu_it_names_case_insensitively() -> None:
    family = ("H100", "H100-MEGA", "H100-PCIE", "H100-NVL")
    assert canonical_gpus(["H100*"], load_facts()) == family
    globbed = _offers("--gpu", "H100*")
    assert _offers("--gpu", "h100*") == globbed
    one_by_one = [r for name in family for r in _offers("--gpu", name)]
    key = lambda r: (r["provider"], r["region"], r["zone"] or "", r["instance_type"])  # noqa: E731
    assert sorted(map(key, globbed)) == sorted(set(map(key, one_by_one)))
    assert {r["gpu_model"] for r in globbed} == {"H100", "H100-MEGA", "H100-PCIE", "H100-NVL"}
    snapshot = load_snapshot(load_facts())  # the snapshot's own count, without the filter code
    assert len(globbed) == sum(1 for o in snapshot if o.accelerator.startswith("H100") or
                               o.gpu_model.startswith("H100"))


def test_globs_match_aliases_mix_with_names_and_keep_the_order_given() -> None:
    facts = load_facts()
    assert canonical_gpus(["A100-4*"], facts) == ("A100",)  # the alias A100-40GB
    assert canonical_gpus(["[hb]200,A100"], facts) == ("H200", "B200", "A100")
    assert canonical_gpus(["H100", "h10?"], facts) == ("H100",)  # once each


@pytest.mark.parametrize("command", [["prices"], ["report", "prices"], ["risk"]])
def test_every_gpu_filter_takes_globs(command: list[str]) -> None:
    result = invoke(*command, "--gpu", "A100*", "-f", "json")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "A100-80GB" in text and '"A100"' in text


@pytest.mark.parametrize("command", [["prices"], ["report", "prices"], ["risk"]])
@pytest.mark.parametrize(("value", "needle"), [
    ("Z*", "--gpu: no known GPU matches the glob 'Z*' (known: H100, "),
    ("[", "--gpu: no known GPU matches the glob '['"),
    ("H10", "--gpu: unknown GPU 'H10' (did you mean H100?)"),
    ("H100,", "--gpu: unknown GPU ''"),
])
def test_a_glob_that_matches_nothing_is_one_line_naming_it(command: list[str], value: str, needle: str) -> None:
    result = invoke(*command, "--gpu", value)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gpuarb: error: {needle}"), lines
    assert "Traceback" not in result.output


# -- 2. Empty results say which filter emptied them ---------------------------------------------------------------

def _h100(offers: list[Any]) -> list[Any]:
    return [o for o in offers if "H100" in (o.accelerator, o.gpu_model)]


def test_count_is_gpus_per_node_and_the_line_says_so() -> None:
    snapshot = load_snapshot(load_facts())
    h100 = _h100(snapshot)
    at_aws = [o for o in h100 if o.provider == "aws"]
    most = max(o.gpus_per_node for o in at_aws)
    assert most == 8
    want = (f"no offer matches these filters: {len(h100):,} H100 offers, {len(at_aws):,} at aws, 0 with 16 GPUs per "
            f"node (--count is GPUs per node; the most at aws is 8: plan 16 GPUs as num_nodes: 2)")
    table = invoke("prices", "--gpu", "H100", "--provider", "aws", "--count", "16")
    assert table.exit_code == 3
    assert table.stderr.strip() == f"gpuarb: {want}"
    assert table.stdout.startswith("0 offers")
    doc = json.loads(invoke("prices", "--gpu", "H100", "--provider", "aws", "--count", "16", "-f", "json").stdout)
    assert doc["matching"] == 0 and doc["offers"] == [] and doc["empty_reason"] == want
    assert doc["filter_counts"] == [{"option": "--gpu", "value": "H100", "offers": len(h100)},
                                    {"option": "--provider", "value": "aws", "offers": len(at_aws)},
                                    {"option": "--count", "value": "16", "offers": 0}]
    csv = invoke("prices", "--gpu", "H100", "--provider", "aws", "--count", "16", "-f", "csv")
    assert csv.exit_code == 3 and csv.stdout.count("\n") == 1 and csv.stderr.strip() == f"gpuarb: {want}"
    md = invoke("prices", "--gpu", "H100", "--provider", "aws", "--count", "16", "-f", "markdown")
    assert md.exit_code == 3 and md.stdout.rstrip().endswith(f"No {want[3:]}.")
    report = invoke("report", "prices", "--gpu", "H100", "--provider", "aws", "--count", "16")
    assert report.exit_code == 3 and report.stderr.strip() == f"gpuarb: {want}"
    assert json.loads(invoke("prices", "--gpu", "H100", "-f", "json").stdout)["empty_reason"] is None


@pytest.mark.parametrize(("args", "tail"), [
    (("--gpu", "H100", "--count", "12"), "0 with 12 GPUs per node (--count is GPUs per node; the most is 8: plan 12 "
                                         "GPUs as num_nodes: 3 of 4 GPUs)"),
    (("--gpu", "H100", "--count", "3"), "0 with 3 GPUs per node (--count is GPUs per node; H100 offers come with 1, "
                                        "2, 4 or 8 GPUs per node)"),
    (("--gpu", "GH200", "--provider", "lambda", "--spot"), "0 with a spot price (none of them is sold as spot; drop "
                                                           "--spot)"),
    (("--gpu", "H100", "--provider", "hyperbolic"), "0 at hyperbolic (no offer from hyperbolic in these price "
                                                    "sources at all; H100 offers come from "),
    (("--provider", "hyperbolic",), "0 at hyperbolic (no offer from hyperbolic in these price sources at all"),
    (("--gpu", "T4", "--provider", "vast"), "0 at vast (T4 offers come from "),
    (("--gpu", "H100", "--provider", "aws", "--region", "xx-*"), "0 in xx-* (H100 at aws are in us-east-1, "),
    (("--provider", "vast", "--region", "eu-*"), "0 in eu-* ("),
])
def test_the_filter_that_removed_the_last_offer_is_named_with_a_hint(args: tuple[str, ...], tail: str) -> None:
    result = invoke("prices", *args)
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("gpuarb: no offer matches these filters: ") and tail in line, line


def test_counts_follow_the_filters_in_order_and_add_up() -> None:
    """Each count is the one before it narrowed by one more filter: check them against the snapshot directly."""
    snapshot = load_snapshot(load_facts())
    doc = json.loads(invoke("prices", "--gpu", "A100*", "--provider", "gcp", "--region", "us-*", "--spot",
                            "--count", "64", "-f", "json").stdout)
    counts = [(c["option"], c["offers"]) for c in doc["filter_counts"]]
    a100 = [o for o in snapshot if o.accelerator in ("A100", "A100-80GB")]
    gcp = [o for o in a100 if o.provider == "gcp"]
    us = [o for o in gcp if o.region.startswith("us-")]
    spot = [o for o in us if o.spot_usd_per_hour is not None]
    assert counts == [("--gpu", len(a100)), ("--provider", len(gcp)), ("--region", len(us)), ("--spot", len(spot)),
                      ("--count", 0)]
    assert doc["empty_reason"].startswith(f"no offer matches these filters: {len(a100):,} A100/A100-80GB offers, ")


def test_offers_fetched_for_one_provider_say_so_in_the_first_count(cache_dir: Path) -> None:
    """With --source cache only the asked providers are read: '2 offers at azure', not a count of the catalog."""
    offers = [make_offer(provider="azure", region="westus3", instance_type="Standard_NC24ads_A100_v4",
                         accelerator="A100-80GB", gpus_per_node=1, on_demand_usd_per_hour=3.67, spot_usd_per_hour=0.4,
                         source="live", as_of="2026-11-23T11:00:00+00:00", interconnect="none"),
              make_offer(provider="azure", region="southcentralus", instance_type="Standard_ND96asr_v4",
                         accelerator="A100", gpus_per_node=8, on_demand_usd_per_hour=27.2, spot_usd_per_hour=None,
                         source="live", as_of="2026-11-23T11:00:00+00:00", interconnect="infiniband")]
    cache.write_offers(cache_dir, "azure", offers, T0 - timedelta(hours=1))
    result = invoke("prices", "-s", "cache", "-p", "azure", "-g", "A100*", "-n", "4", "--now", NOW)
    assert result.exit_code == 3, result.output
    assert result.stderr.strip() == ("gpuarb: no offer matches these filters: 2 A100/A100-80GB offers at azure, 0 with "
                                     "4 GPUs per node (--count is GPUs per node; A100/A100-80GB offers at azure come "
                                     "with 1 or 8 GPUs per node)")


# -- 3. --strict ---------------------------------------------------------------------------------------------------

STRICT_COMMANDS = [
    ["prices"], ["plan", SPEC], ["run", SPEC, "--dry-run"], ["diff", SPEC, SPEC], ["risk"], ["report", "prices"],
    ["report", "plan", SPEC], ["breakeven", "--gpu", "H100"],
]


@pytest.mark.parametrize("command", STRICT_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_strict_with_the_snapshot_is_a_usage_error_on_every_command(command: list[str], monkeypatch) -> None:
    result = invoke(*command, "--source", "snapshot", "--strict")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == ("gpuarb: error: --strict: --source snapshot has no live or cached prices to "
                                     "insist on; give --source live, cache or auto")
    monkeypatch.setenv("GPUARB_SOURCE", "snapshot")
    result = invoke(*command, "--strict")
    assert result.exit_code == 2 and "GPUARB_SOURCE=snapshot has no live or cached prices" in result.stderr
    assert invoke(*command).exit_code == 0  # without --strict nothing changed


def test_live_strict_names_every_provider_and_why_in_one_line(cache_dir: Path, monkeypatch) -> None:
    offline(monkeypatch, azure)
    result = invoke("prices", "-g", "A100*", "-p", "azure", "-p", "lambda", "-s", "live", "--strict", "-f", "json")
    assert result.exit_code == EXIT_SOURCE_UNAVAILABLE == SourceUnavailable.exit_code == 7
    assert result.stdout == ""
    error = [line for line in result.stderr.splitlines() if line.startswith("gpuarb: error:")]
    assert len(error) == 1, result.stderr
    assert error[0].startswith("gpuarb: error: --strict --source live: no live prices from 2 providers: azure: live "
                               "fetch failed (cannot connect to http://127.0.0.1:")
    assert "; lambda: no credentials (set LAMBDA_API_KEY" in error[0]
    # Every warning is said in full as well, and without --strict the same command answers from the snapshot.
    assert "gpuarb: warning: azure: live fetch failed (cannot connect" in result.stderr
    loose = invoke("prices", "-g", "A100*", "-p", "azure", "-p", "lambda", "-s", "live", "-f", "json")
    assert loose.exit_code == 0 and {r["source"] for r in json.loads(loose.stdout)["offers"]} == {"snapshot"}


def test_live_strict_passes_when_every_provider_answered_live(cache_dir: Path, monkeypatch,
                                                               httpserver: HTTPServer) -> None:
    httpserver.expect_request(azure.PATH).respond_with_json(AZURE_PAGE)
    httpserver.expect_request(lambda_cloud.PATH).respond_with_json(LAMBDA_TYPES)
    online(monkeypatch, httpserver, azure, lambda_cloud)
    monkeypatch.setenv("LAMBDA_API_KEY", "secret_test_key")
    result = invoke("prices", "-p", "azure", "-p", "lambda", "-s", "live", "--strict", "-f", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["offers"]
    assert {r["provider"] for r in rows} == {"azure", "lambda"} and {r["source"] for r in rows} == {"live"}
    assert "warning" not in result.stderr


def test_local_sources_never_fail_strict(cache_dir: Path) -> None:
    """CoreWeave's published list and owned capacity are read from files: no onprem.yaml is no shortfall."""
    for source in ("live", "auto", "cache"):
        result = invoke("prices", "-p", "coreweave", "-p", "onprem", "-s", source, "--strict", "-f", "json")
        assert result.exit_code == 0, (source, result.output)
    assert invoke("prices", "-p", "nebius", "-s", "live", "--strict").exit_code == 0  # snapshot only: nothing to ask


def test_cache_strict_needs_a_usable_cache(cache_dir: Path) -> None:
    result = invoke("prices", "-p", "azure", "-s", "cache", "--strict")
    assert result.exit_code == 7
    assert result.stderr.strip().splitlines()[-1] == ("gpuarb: error: --strict --source cache: no cached prices "
                                                      "from 1 provider: azure: no cached prices")
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / "offers-azure.json").write_text('{"schema": 1, "provider": "azure", "offers": [nul')
    corrupt = invoke("prices", "-p", "azure", "-s", "cache", "--strict")
    assert corrupt.exit_code == 7 and "azure: cache file " in corrupt.stderr and "ignored: not JSON" in corrupt.stderr
    offer = make_offer(provider="azure", region="westus3", instance_type="Standard_NC24ads_A100_v4",
                       accelerator="A100-80GB", gpus_per_node=1, on_demand_usd_per_hour=3.67, spot_usd_per_hour=None,
                       source="live", as_of="2026-11-20T00:00:00+00:00", interconnect="none")
    cache.write_offers(cache_dir, "azure", [offer], T0 - timedelta(days=3))  # stale, but cache mode takes it
    good = invoke("prices", "-p", "azure", "-s", "cache", "--strict", "-f", "json", "--now", NOW)
    assert good.exit_code == 0, good.output
    assert [r["source"] for r in json.loads(good.stdout)["offers"]] == ["cache"]


def test_auto_strict_takes_a_fresh_cache_and_tries_again_within_the_pause(cache_dir: Path, monkeypatch,
                                                                          httpserver: HTTPServer) -> None:
    offline(monkeypatch, azure)
    assert invoke("prices", "-p", "azure", "--now", NOW).exit_code == 0  # fails, falls back, starts the pause
    paused = invoke("prices", "-p", "azure", "--strict", "--now", "2026-11-23T12:01:00Z")
    assert paused.exit_code == 7 and "azure: live fetch failed (cannot connect" in paused.stderr  # asked again
    httpserver.expect_request(azure.PATH).respond_with_json(AZURE_PAGE)
    online(monkeypatch, httpserver, azure)
    assert invoke("prices", "-p", "azure", "--now", "2026-11-23T12:02:00Z").exit_code == 0  # still paused: no call
    assert len(httpserver.log) == 0
    fresh = invoke("prices", "-p", "azure", "--strict", "--now", "2026-11-23T12:03:00Z", "-f", "json")
    assert fresh.exit_code == 0 and len(httpserver.log) == 1, fresh.output
    cached = invoke("prices", "-p", "azure", "--strict", "--now", "2026-11-23T12:30:00Z", "-f", "json")
    assert cached.exit_code == 0 and len(httpserver.log) == 1  # the fresh cache is what auto asked for
    assert {r["source"] for r in json.loads(cached.stdout)["offers"]} == {"cache"}


def test_providers_refresh_strict(cache_dir: Path, monkeypatch) -> None:
    assert invoke("providers", "--strict").exit_code == 2
    monkeypatch.setattr("providers.fetch.adapter_ids", lambda: ("azure",))  # the others: snapshot only
    offline(monkeypatch, azure)
    result = invoke("providers", "--refresh", "--strict")
    assert result.exit_code == 7, result.output
    assert "--strict --source live: no live prices from 1 provider: azure: live fetch failed" in result.stderr


def _aws_spot_cache(cache_dir: Path) -> None:
    offer = make_offer(source="live", as_of="2026-11-23T11:50:00+00:00", spot_usd_per_hour=20.0)
    cache.write_offers(cache_dir, "aws", [offer], T0 - timedelta(minutes=10))


def test_plan_strict_insists_on_the_spot_advisor_feed_too(cache_dir: Path, monkeypatch, tmp_path: Path,
                                                          httpserver: HTTPServer) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: x\nresources: {accelerators: H100:8}\narbitrage:\n  work: {gpu_hours: 80}\n"
                   "  spot: always\n  checkpoint: {uri: s3://b/c, interval_minutes: 10}\n"
                   "  providers: {allow: [aws]}\n")
    _aws_spot_cache(cache_dir)  # prices: a fresh AWS cache, which auto takes
    monkeypatch.setattr(spot_advisor, "URL", closed_url() + "/spot-advisor-data.json")
    result = invoke("plan", str(job), "--strict", "--now", NOW, "-f", "json")
    assert result.exit_code == 7, result.output
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith(
        "gpuarb: error: --strict --source auto: no fresh cached or live feed of the AWS Spot Instance Advisor (spot "
        "rates): live fetch failed (cannot connect to http://127.0.0.1:")
    assert invoke("plan", str(job), "--now", NOW, "-f", "json").exit_code == 0  # without --strict: the bundled copy
    httpserver.expect_request("/spot-advisor-data.json").respond_with_json(ADVISOR_FEED)
    monkeypatch.setattr(spot_advisor, "URL", httpserver.url_for("/spot-advisor-data.json"))
    good = invoke("plan", str(job), "--strict", "--now", NOW, "-f", "json")
    assert good.exit_code == 0, good.output
    assert json.loads(good.stdout)["placements"][0]["source"] == "cache"


def test_diff_strict_with_two_saved_plans_loads_no_prices(tmp_path: Path) -> None:
    plan = invoke("plan", SPEC, "-f", "json", "--now", NOW)
    assert plan.exit_code == 0
    saved = tmp_path / "plan.json"
    saved.write_text(plan.stdout)
    assert invoke("diff", str(saved), str(saved), "--source", "live", "--strict").exit_code == 0


def test_the_exit_code_is_listed_where_exit_codes_are() -> None:
    import arbitrage.errors as errors
    from arbitrage.cli import _HELP

    assert "SourceUnavailable (7)" in (errors.__doc__ or "")
    assert "7 --strict" in _HELP.replace("\n", " ")
    readme = (ROOT / "README.md").read_text()
    assert "| 7 | `--strict`:" in readme


# -- 4. Offline warnings once per pause ----------------------------------------------------------------------------

def _warnings(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("gpuarb: warning:")]


def test_offline_is_said_in_full_once_then_in_one_short_line_until_a_fetch_succeeds(
        cache_dir: Path, monkeypatch, httpserver: HTTPServer) -> None:
    offline(monkeypatch, azure, lambda_cloud)
    monkeypatch.setenv("LAMBDA_API_KEY", "secret_test_key")
    ask = ("prices", "-p", "azure", "-p", "lambda", "-f", "json")
    first = invoke(*ask, "--now", NOW)
    assert first.exit_code == 0
    full = _warnings(first)
    assert len(full) == 2 and all("live fetch failed (cannot connect to http://127.0.0.1:" in w for w in full)
    state = json.loads((cache_dir / "offline-state.json").read_text())
    assert state["schema"] == 1 and sorted(state["providers"]) == ["azure", "lambda"]
    assert {r["kind"] for r in state["providers"].values()} == {"unreachable"}
    # Within the pause (no fetch) and after it (fetch, same failure): one short line, nothing else.
    for when in ("2026-11-23T12:05:00Z", "2026-11-23T12:20:00Z", "2026-11-23T13:40:00Z"):
        again = invoke(*ask, "--now", when)
        assert again.exit_code == 0
        assert _warnings(again) == ["gpuarb: warning: still offline since 12:00 UTC: azure, lambda (using snapshot "
                                    "prices)"], when
    next_day = invoke(*ask, "--now", "2026-11-24T09:00:00Z")
    assert _warnings(next_day) == ["gpuarb: warning: still offline since 2026-11-23 12:00 UTC: azure, lambda (using "
                                   "snapshot prices)"]
    # --strict always says everything in full.
    strict = invoke(*ask, "--strict", "--now", "2026-11-24T09:01:00Z")
    assert strict.exit_code == 7 and len(_warnings(strict)) == 2 and "still offline" not in strict.stderr
    # Azure answers again: it is forgotten, and lambda alone is still offline.
    httpserver.expect_request(azure.PATH).respond_with_json(AZURE_PAGE)
    online(monkeypatch, httpserver, azure)
    back = invoke(*ask, "--now", "2026-11-24T09:20:00Z")
    assert _warnings(back) == ["gpuarb: warning: still offline since 2026-11-23 12:00 UTC: lambda (using snapshot "
                               "prices)"]
    assert sorted(json.loads((cache_dir / "offline-state.json").read_text())["providers"]) == ["lambda"]
    # Azure goes offline again: a new pause, said in full; it has cached prices now.
    offline(monkeypatch, azure)
    later = invoke(*ask, "--now", "2026-11-25T08:00:00Z")
    lines = _warnings(later)
    assert len(lines) == 2, lines
    assert lines[0].startswith("gpuarb: warning: azure: live fetch failed (cannot connect") and \
        lines[0].endswith("; using cached prices")
    assert lines[1] == "gpuarb: warning: still offline since 2026-11-23 12:00 UTC: lambda (using snapshot prices)"
    httpserver.expect_request(lambda_cloud.PATH).respond_with_json(LAMBDA_TYPES)
    online(monkeypatch, httpserver, azure, lambda_cloud)
    assert _warnings(invoke(*ask, "--now", "2026-11-25T09:00:00Z")) == []
    assert not (cache_dir / "offline-state.json").exists()  # every provider reachable: no state left


def _ctx(cache_dir: Path, server: HTTPServer | None, now: datetime = T0, url: str | None = None,
         timeout_s: float = 5.0) -> FetchContext:
    """A context for azure alone; a generous timeout, so a loaded CI machine never turns an answer into a
    timeout (the timeout test asks for a short one)."""
    base = url or (server.url_for("").rstrip("/") if server else closed_url())
    return FetchContext(facts=load_facts(), now=now, env={"GPUARB_CACHE_DIR": str(cache_dir)},
                        endpoints={"azure": base}, retries=1, backoff_s=0.01, max_backoff_s=0.02, timeout_s=timeout_s)


def _say(cache_dir: Path, mode: str, ctx: FetchContext, **kw: Any) -> list[str]:
    _, statuses = collect_offers(load_snapshot(ctx.facts), mode, ctx, ["azure"])
    return notices(statuses, mode, cache_dir, ctx.now, **kw)


def test_a_timeout_is_a_pause_too_and_a_change_of_failure_is_said_in_full(tmp_path: Path,
                                                                          httpserver: HTTPServer) -> None:
    from conftest import slow_response

    httpserver.expect_request(azure.PATH).respond_with_handler(slow_response(1.0))
    ctx = _ctx(tmp_path, httpserver, timeout_s=0.3)
    first = _say(tmp_path, "live", ctx)
    assert len(first) == 1 and "timed out after 0.3s" in first[0]
    assert cache.read_offline(tmp_path)["azure"].kind == "timeout"
    assert _say(tmp_path, "live", ctx) == ["warning: still offline since 12:00 UTC: azure (using snapshot prices)"]
    # Now the connection is refused: another way of failing, said in full, and the pause starts again.
    refused = _ctx(tmp_path, None, T0 + timedelta(hours=1))
    changed = _say(tmp_path, "live", refused)
    assert len(changed) == 1 and "cannot connect to" in changed[0]
    assert cache.read_offline(tmp_path)["azure"].kind == "unreachable"
    assert cache.read_offline(tmp_path)["azure"].since == T0 + timedelta(hours=1)


def test_failures_that_need_the_user_are_said_every_time(tmp_path: Path, httpserver: HTTPServer) -> None:
    ctx = _ctx(tmp_path, None)
    assert len(_say(tmp_path, "live", ctx)) == 1  # offline: remembered
    httpserver.expect_request(azure.PATH).respond_with_data("denied", status=403)
    denied = _ctx(tmp_path, httpserver, T0 + timedelta(minutes=1))
    for _ in range(2):
        lines = _say(tmp_path, "live", denied)
        assert len(lines) == 1 and "HTTP 403" in lines[0] and "check the API key" in lines[0]
    assert cache.read_offline(tmp_path) == {}  # failing another way ended the pause


@pytest.mark.parametrize("content", [
    b"{not json", b"\x00\xff\x89PNG", b"[]", b'{"schema": 99, "providers": {}}', b'{"schema": 1, "providers": []}',
    b'{"schema": 1, "providers": {"azure": {"kind": "unreachable", "since": "yesterday"}}}',
    b'{"schema": 1, "providers": {"azure": {"kind": 5, "since": "2026-11-23T12:00:00+00:00"}}}',
    b'{"schema": 1, "providers": {"azure": {"kind": "unreachable", "since": "2026-11-23T12:00:00"}}}',
    b'{"schema": 1, "providers": {"azure": null}}',
])
def test_a_corrupt_state_file_means_the_warning_is_said_in_full_again(content: bytes, tmp_path: Path) -> None:
    (tmp_path / "offline-state.json").write_bytes(content)
    lines = _say(tmp_path, "live", _ctx(tmp_path, None))
    assert len(lines) == 1 and "live fetch failed (cannot connect" in lines[0]
    state = json.loads((tmp_path / "offline-state.json").read_text())  # replaced by a good one
    assert state["schema"] == 1 and state["providers"]["azure"]["kind"] == "unreachable"


def test_a_state_path_that_cannot_be_written_never_fails_the_command(tmp_path: Path) -> None:
    (tmp_path / "offline-state.json").mkdir()  # not a regular file: unreadable, and os.replace onto it fails
    for _ in range(2):
        lines = _say(tmp_path, "live", _ctx(tmp_path, None))
        assert len(lines) == 1 and "cannot connect" in lines[0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".offline-state")]  # no temp file left behind


def test_state_round_trip_and_an_empty_state_removes_the_file(tmp_path: Path) -> None:
    record = cache.OfflineRecord("timeout", T0, "no answer within 60s")
    cache.write_offline(tmp_path, {"gcp": record, "aws": cache.OfflineRecord("unreachable", T0, "x")})
    assert cache.read_offline(tmp_path)["gcp"] == record
    cache.write_offline(tmp_path, {})
    assert not (tmp_path / "offline-state.json").exists()
    cache.write_offline(tmp_path, {})  # nothing to remove: fine


@pytest.mark.parametrize(("reason", "kind"), [
    ("cannot connect to https://prices.azure.com/api/retail/prices ([Errno -2] Name or service not known)",
     "unreachable"),
    ("cannot connect to http://127.0.0.1:9/x (All connection attempts failed)", "unreachable"),
    ("AWS pricing:GetProducts in us-east-1 failed: EndpointConnectionError: Could not connect to the endpoint URL: "
     "\"https://api.pricing.us-east-1.amazonaws.com/\"; gave up after 4 attempts", "unreachable"),
    ("every region failed (us-east-1, us-west-2); first: AWS ec2:DescribeSpotPriceHistory in us-east-1 failed: "
     "ConnectTimeoutError: Connect timeout on endpoint URL; gave up after 4 attempts", "timeout"),
    ("connection failed (ReadError: [Errno 104] Connection reset by peer); gave up after 4 attempts", "unreachable"),
    ("timed out after 20s (https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus); gave up after 4 "
     "attempts", "timeout"),
    ("no answer within 60s", "timeout"),
    ("HTTP 503 from https://prices.azure.com/api/retail/prices; gave up after 4 attempts", None),
    ("HTTP 401 from https://cloud.lambda.ai/api/v1/instance-types (check the API key): {\"error\": {}}", None),
    ("invalid JSON from https://prices.azure.com/api/retail/prices", None),
    ("the price quality gate set aside all 3 prices (first: $0.010/GPU-h is outside H100's plausible band)", None),
    ("adapter error KeyError: 'Items'", None),
])
def test_which_failures_count_as_offline(reason: str, kind: str | None) -> None:
    assert offline_kind(reason) == kind


def test_plan_offline_says_the_advisor_once_and_its_prices_in_one_line(cache_dir: Path, monkeypatch,
                                                                      tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: x\nresources: {accelerators: H100:8}\narbitrage:\n  work: {gpu_hours: 80}\n"
                   "  spot: always\n  checkpoint: {uri: s3://b/c, interval_minutes: 10}\n"
                   "  providers: {allow: [aws, azure]}\n")
    _aws_spot_cache(cache_dir)
    offline(monkeypatch, azure)
    monkeypatch.setattr(spot_advisor, "URL", closed_url() + "/spot-advisor-data.json")
    first = invoke("plan", str(job), "--now", NOW, "-f", "json")
    assert first.exit_code == 0, first.output
    assert [w.split(":")[2].strip() for w in _warnings(first)] == ["azure", "aws-spot-advisor"]
    second = invoke("plan", str(job), "--now", "2026-11-23T12:02:00Z", "-f", "json")
    assert _warnings(second) == ["gpuarb: warning: still offline since 12:00 UTC: azure (using snapshot prices)"]
