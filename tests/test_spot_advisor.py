"""The Spot Instance Advisor source against a loopback server serving the real feed's shape: parse, cache, fallback."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import fetch_ctx
from pytest_httpserver import HTTPServer

from providers import spot_advisor as SA
from providers.base import ProviderError

FEED = json.loads((Path(__file__).parent / "fixtures" / "spot_advisor" / "spot-advisor-data.json").read_text())
PATH = "/spot-advisor-data.json"


def ctx(tmp_path: Path, server: HTTPServer | None = None, **kw: Any):
    c = fetch_ctx(SA.NAME, None, env={"GPUARB_CACHE_DIR": str(tmp_path)}, **kw)
    if server is not None:
        c = dataclasses.replace(c, endpoints={SA.NAME: server.url_for(PATH)})
    return c


def test_parse_keeps_linux_gpu_bands_of_the_real_shape(tmp_path) -> None:
    table = SA.parse_feed(FEED, fetch_ctx(SA.NAME).now)
    assert table.bands[("us-east-1", "p5.48xlarge")] == 4  # '>20%' in the copy of 2025-06-28
    assert table.bands[("eu-north-1", "p5.48xlarge")] == 0
    assert table.bands[("us-east-1", "p4d.24xlarge")] == 2
    assert ("us-east-1", "m7i.large") not in table.bands and ("us-east-1", "c7g.xlarge") not in table.bands
    assert table.source == "live" and table.as_of.startswith("2026-11-23")


@pytest.mark.parametrize("broken", [
    [], {"ranges": []}, {"ranges": FEED["ranges"]}, {"ranges": FEED["ranges"][:3] + FEED["ranges"][4:],
                                                       "spot_advisor": FEED["spot_advisor"]},
    {"ranges": FEED["ranges"], "spot_advisor": {"us-east-1": {"Linux": {"p5.48xlarge": {"s": 1, "r": 9}}}}},
    {"ranges": FEED["ranges"], "spot_advisor": {"us-east-1": {"Linux": {"m7i.large": {"s": 1, "r": 0}}}}},
])
def test_a_feed_of_another_shape_is_a_provider_error(broken) -> None:
    with pytest.raises(ProviderError, match=SA.NAME):
        SA.parse_feed(broken, fetch_ctx(SA.NAME).now)


def test_live_fetch_is_cached_and_served_fresh_without_the_network(httpserver: HTTPServer, tmp_path) -> None:
    httpserver.expect_oneshot_request(PATH, method="GET").respond_with_json(FEED)
    table, status = SA.load_advisor("auto", ctx(tmp_path, httpserver))
    assert status.used == "live" and table.bands[("us-west-2", "p4d.24xlarge")] == 4
    # Fresh: answered from the cache (a second request would find no handler and fail).
    again, status = SA.load_advisor("auto", ctx(tmp_path, httpserver))
    assert status.used == "cache" and again.bands == table.bands and again.as_of == table.as_of
    cached, status = SA.load_advisor("cache", ctx(tmp_path))
    assert status.used == "cache" and cached.bands == table.bands


def test_failure_falls_back_to_the_stale_cache_then_pauses(httpserver: HTTPServer, tmp_path) -> None:
    httpserver.expect_oneshot_request(PATH).respond_with_json(FEED)
    SA.load_advisor("auto", ctx(tmp_path, httpserver))
    later = fetch_ctx(SA.NAME).now + timedelta(seconds=SA.TTL_SECONDS + 60)
    httpserver.expect_request(PATH).respond_with_data("upstream down", status=503)
    table, status = SA.load_advisor("auto", ctx(tmp_path, httpserver, now=later))
    assert status.used == "cache" and status.level == "warning" and "HTTP 503" in status.message
    assert table.bands[("us-east-1", "p5.48xlarge")] == 4
    calls = len(httpserver.log)
    table, status = SA.load_advisor("auto", ctx(tmp_path, httpserver, now=later + timedelta(seconds=30)))
    assert status.used == "cache" and "pause" in status.message and len(httpserver.log) == calls  # no new request


def test_no_cache_and_no_feed_uses_the_bundled_dated_copy(httpserver: HTTPServer, tmp_path) -> None:
    httpserver.expect_request(PATH).respond_with_data("not json", content_type="application/json")
    table, status = SA.load_advisor("live", ctx(tmp_path, httpserver))
    assert status.used == "snapshot" and "invalid JSON" in status.message
    assert table.source == "snapshot" and table.as_of == "2025-06-28"
    assert table.bands[("us-east-1", "p5.48xlarge")] == 4 and len(table.bands) > 600
    snap, status = SA.load_advisor("snapshot", ctx(tmp_path))
    assert status.used == "snapshot" and status.message == "" and snap is table


def test_bundled_copy_matches_its_build_script(tmp_path) -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "scripts" / "build_spot_advisor.py"
    # Rebuild from the trimmed real feed into a temp file and compare the rows it shares with the bundled table.
    out, src = tmp_path / "advisor.csv", tmp_path / "feed.json"
    src.write_text(json.dumps(FEED))
    subprocess.run([sys.executable, str(script), str(src), "--out", str(out), "--as-of", "2025-06-28",
                    "--ref", "alexei-led/spotinfo@5eedf20"], check=True, capture_output=True)
    rebuilt = out.read_text().splitlines()[1:]
    bundled = set((Path(__file__).resolve().parent.parent / "arbitrage" / "data" / "spot_advisor.csv")
                  .read_text().splitlines()[1:])
    assert len(rebuilt) >= 10 and all(line in bundled for line in rebuilt)
