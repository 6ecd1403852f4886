"""Full live refresh of six providers behind loopback servers with injected latency: concurrent vs serial.

Azure, GCP, Lambda, RunPod and Vast.ai adapters talk HTTP to local servers (127.0.0.1) serving the
test fixtures after a fixed delay per request; AWS runs real boto3 clients behind botocore Stubbers
with the same delay injected before every API call. The refresh's wall time should be about the
slowest provider's, not the sum of all of them.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
KEYS = {"LAMBDA_API_KEY": "bench", "RUNPOD_API_KEY": "bench", "VAST_API_KEY": "bench",
        "GPUARB_GCP_API_KEY": "bench", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
# Seconds of latency per request, per provider (a slow hyperscaler, quicker neoclouds).
LATENCY = {"aws": 0.30, "gcp": 0.40, "azure": 0.50, "lambda": 0.35, "runpod": 0.25, "vast": 0.45}


def _fixture(provider: str, name: str) -> Any:
    return json.loads((FIXTURES / provider / name).read_text())


def _http_servers() -> tuple[dict[str, str], list[Any]]:
    """One loopback server per REST provider; returns (endpoints, servers to stop)."""
    import logging

    from pytest_httpserver import HTTPServer
    from werkzeug import Request, Response

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    def answer(provider: str, request: Request) -> Any:
        if provider == "azure":
            return _fixture("azure", "page2.json")
        if provider == "gcp":
            return _fixture("gcp", "skus_page2.json" if request.args.get("pageToken") else "skus_page1.json")
        if provider == "lambda":
            return _fixture("lambda", "instance_types.json")
        if provider == "vast":
            return _fixture("vast", "bundles.json")
        payload = json.loads(request.get_data())  # runpod GraphQL
        if "GpuarbCatalog" in payload["query"]:
            return _fixture("runpod", "catalog.json")
        count = next(iter(payload["variables"].values()))["gpuCount"]
        return _fixture("runpod", f"stock_gpucount_{count}.json")

    endpoints, servers = {}, []
    for provider in ("azure", "gcp", "lambda", "runpod", "vast"):
        server = HTTPServer(host="127.0.0.1", port=0, threaded=True)

        def handler(request: Request, provider: str = provider) -> Response:
            time.sleep(LATENCY[provider])
            return Response(json.dumps(answer(provider, request)), status=200, content_type="application/json")

        server.expect_request("", method="GET").respond_with_handler(handler)
        server.expect_request("", method="POST").respond_with_handler(handler)
        server.start()
        servers.append(server)
        endpoints[provider] = server.url_for("").rstrip("/")
    return endpoints, servers


def _aws_sdk() -> tuple[dict[str, Any], list[Any]]:
    """Stubbed boto3 clients (the AWS test's fixtures) with the AWS latency before every call."""
    sys.path.insert(0, str(ROOT / "tests"))
    import test_provider_aws as aws_fixtures

    stubs = aws_fixtures.Stubs(aws_fixtures.REGIONS)
    aws_fixtures.queue_happy_path(stubs)

    def sleep(**_: Any) -> None:
        time.sleep(LATENCY["aws"])

    for client in (stubs.pricing, *stubs.ec2.values()):
        client.meta.events.register("before-parameter-build.*.*", sleep)
    for stub in stubs.all():
        stub.activate()
    sdk = {"aws_regions": aws_fixtures.REGIONS, "aws_instance_types": aws_fixtures.TYPES,
           "aws_client_factory": stubs.factory, "now": aws_fixtures.NOW}  # spot history starts at the fixtures' time
    return sdk, stubs.all()


def _refresh(providers: list[str], cache_dir: str) -> tuple[float, dict[str, int]]:
    from arbitrage import app
    from providers.base import FetchContext
    from providers.fetch import collect_offers

    facts = app.load_facts()
    endpoints, servers = _http_servers()
    sdk, stubbers = _aws_sdk()
    try:
        ctx = FetchContext(facts=facts, now=sdk.pop("now"), env={**KEYS, "GPUARB_CACHE_DIR": cache_dir},
                           endpoints=endpoints, sdk=sdk, retries=0, timeout_s=10.0)
        snapshot = app.load_snapshot(facts)
        start = time.perf_counter()
        _, statuses = collect_offers(snapshot, "live", ctx, providers)
        elapsed = time.perf_counter() - start
    finally:
        for server in servers:
            server.clear()
            server.stop()
        for stub in stubbers:
            stub.deactivate()
    bad = [s for s in statuses if s.used != "live"]
    if bad:
        raise RuntimeError(f"refresh benchmark: not live: {[(s.provider, s.message) for s in bad]}")
    return elapsed, {s.provider: s.offers for s in statuses}


def run(runs: int = 3) -> str:
    """Markdown section: wall time of one concurrent refresh vs the sum of each provider alone."""
    import statistics
    import tempfile

    names = sorted(LATENCY)
    concurrent: list[float] = []
    alone: dict[str, list[float]] = {n: [] for n in names}
    counts: dict[str, int] = {}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            elapsed, counts = _refresh(names, tmp)
            concurrent.append(elapsed)
        for name in names:
            with tempfile.TemporaryDirectory() as tmp:
                alone[name].append(_refresh([name], tmp)[0])
    alone_median = {n: statistics.median(v) for n, v in alone.items()}
    serial = sum(alone_median.values())
    lines = [
        "## Live refresh: six providers, concurrently",
        "",
        f"`python -m bench --only refresh` → `bench/refresh.py`. Loopback servers (127.0.0.1) serve the test fixtures "
        f"after an injected delay per request; AWS uses real boto3 clients behind botocore Stubbers with "
        f"the delay before every API call. Median of {runs} runs.",
        "",
        "| provider | delay per request s | requests' wall time alone s | offers |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {LATENCY[n]:.2f} | {alone_median[n]:.3f} | {counts.get(n, 0)} |" for n in names]
    lines += [
        "",
        f"Sum of the six alone: **{serial:.3f} s**; slowest alone: **{max(alone_median.values()):.3f} s**; "
        f"one concurrent refresh of all six: **{statistics.median(concurrent):.3f} s**.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
