"""Provider faults end on time: a deadline on every request (connect, read and total: a server dripping one byte
at a time still ends), a cap on Retry-After and on redirects, a cap on bodies, and a per-provider deadline that
holds even for an SDK call stuck in a thread. Loopback servers only.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Any

import pytest
from conftest import fetch_ctx
from pytest_httpserver import HTTPServer
from werkzeug import Response

from arbitrage.facts import load_facts
from providers import http
from providers.base import FetchContext, ProviderError
from providers.fetch import collect_offers


def _get(ctx: FetchContext, url: str) -> Any:
    async def go() -> Any:
        async with http.new_client(ctx) as client:
            return await http.request_json(client, ctx, "testcloud", "GET", url)

    return asyncio.run(go())


class _Drip:
    """A loopback HTTP server that sends its headers, then one byte of body every ``every`` seconds."""

    def __init__(self, every: float, length: int = 40) -> None:
        self.every, self.length = every, length
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/prices"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % self.length)
            for _ in range(self.length):
                if self.stop.is_set():
                    break
                conn.sendall(b" ")
                time.sleep(self.every)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_a_server_dripping_a_byte_at_a_time_still_ends_on_time() -> None:
    drip = _Drip(every=0.25)  # each read comes well within the 1 s read timeout; the whole body takes 10 s
    try:
        ctx = fetch_ctx("testcloud", timeout_s=1.0, retries=1)
        started = time.monotonic()
        with pytest.raises(ProviderError, match=r"timed out after 1s .*gave up after 2 attempts"):
            _get(ctx, drip.url)
        assert time.monotonic() - started < 4.0
    finally:
        drip.close()


def test_a_long_retry_after_is_not_waited_for(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/p").respond_with_response(Response("busy", status=429,
                                                                   headers={"Retry-After": "86400"}))
    ctx = fetch_ctx("testcloud", httpserver, max_backoff_s=8.0, retries=3)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # what the retry loop would wait (a wall clock here is flaky)
        slept.append(seconds)

    import asyncio

    monkeypatch.setattr(asyncio, "sleep", sleep)
    with pytest.raises(ProviderError, match=r"HTTP 429 .* asks to retry after 86,400 s; not waiting"):
        _get(ctx, httpserver.url_for("/p"))
    assert slept == [] and len(httpserver.log) == 1


def test_retry_after_values_that_are_no_answer() -> None:
    assert http.retry_after_seconds("nan") is None
    assert http.retry_after_seconds("Mon, 99 Foo 99999 99:99:99 GMT") is None
    assert http.retry_after_seconds("1e400") == float("inf")
    assert http.retry_after_seconds("x" * 10_000) is None
    now = datetime(2026, 11, 23, tzinfo=timezone.utc)
    assert http.retry_after_seconds("Mon, 23 Nov 2026 00:00:30 GMT", now) == 30.0


def test_a_redirect_loop_stops_after_a_few_requests(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/loop").respond_with_response(Response("", status=302,
                                                                      headers={"Location": "/loop"}))
    ctx = fetch_ctx("testcloud", httpserver, retries=3)
    with pytest.raises(ProviderError, match=f"more than {http.MAX_REDIRECTS} redirects"):
        _get(ctx, httpserver.url_for("/loop"))
    assert len(httpserver.log) <= http.MAX_REDIRECTS + 1


def test_an_oversized_body_is_refused(httpserver: HTTPServer, monkeypatch) -> None:
    monkeypatch.setattr(http, "MAX_BODY_BYTES", 1000)
    httpserver.expect_request("/big").respond_with_data("[" + "1," * 5000 + "1]", content_type="application/json")
    with pytest.raises(ProviderError, match="is over"):
        _get(fetch_ctx("testcloud", httpserver), httpserver.url_for("/big"))
    assert len(httpserver.log) == 1


class _StuckSdk:
    """An adapter whose blocking SDK call (in a thread, as AWS's boto3 calls are) never finishes in time."""

    name = "lambda"
    ttl_seconds = 900
    credentials_hint = "-"

    def has_credentials(self, ctx: FetchContext) -> bool:
        return True

    async def fetch(self, ctx: FetchContext) -> list[Any]:
        await asyncio.to_thread(time.sleep, 8)
        return []


def test_the_provider_deadline_holds_for_an_sdk_call_stuck_in_a_thread(tmp_path, monkeypatch) -> None:
    import providers.fetch as fetch_module

    monkeypatch.setattr(fetch_module, "get_adapter", lambda name: _StuckSdk())
    ctx = FetchContext(facts=load_facts(), now=datetime(2026, 11, 23, tzinfo=timezone.utc),
                       env={"GPUARB_CACHE_DIR": str(tmp_path)})
    started = time.monotonic()
    _, [status] = collect_offers([], "live", ctx, ["lambda"], deadline_s=0.5)
    assert time.monotonic() - started < 3.0
    assert status.level == "warning" and "no answer within 0.5s" in status.message
