"""One HTTP path for every REST/GraphQL adapter: deadlines, retries with backoff, Retry-After, JSON checks.

Every request has three limits: connecting (``CONNECT_TIMEOUT_S`` at most), each read (``ctx.timeout_s``), and the
whole answer, body included (``ctx.timeout_s`` in total), so a server that drips one byte a second still ends on
time. Retry-After is honoured up to ``ctx.max_backoff_s``; a server asking for longer is not waited for. Redirects
stop after ``MAX_REDIRECTS`` and bodies after ``MAX_BODY_BYTES``; neither is retried. Adapters that call a blocking
SDK in a thread are bounded by the per-provider deadline in providers/fetch.py: ``DaemonExecutor`` lets that
deadline end the command even while such a thread is still stuck on a dripping socket.
"""

from __future__ import annotations

import concurrent.futures
import email.utils
import json
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from arbitrage.plural import plural
from providers.base import FetchContext, ProviderError

if TYPE_CHECKING:
    import asyncio

    import httpx

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
CONNECT_TIMEOUT_S = 10.0
MAX_REDIRECTS = 5
MAX_BODY_BYTES = 64 << 20  # the largest price API page seen is a few MB


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()[:64]
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class _TooBig(Exception):
    """The body passed MAX_BODY_BYTES."""


async def _send(client: httpx.AsyncClient, method: str, url: str, timeout: Any,
                **kwargs: Any) -> tuple[httpx.Response, bytes]:
    """The response and its whole body (at most MAX_BODY_BYTES)."""
    async with client.stream(method, url, timeout=timeout, **kwargs) as response:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _TooBig()
            chunks.append(chunk)
        return response, b"".join(chunks)


async def request_json(client: httpx.AsyncClient, ctx: FetchContext, provider: str, method: str, url: str,
                       **kwargs: Any) -> Any:
    """Send a request and return its decoded JSON body, retrying 429/5xx and timeouts with backoff.

    Each try ends within ctx.timeout_s, body included; Retry-After is honoured up to ctx.max_backoff_s (longer:
    give up now). Raises ProviderError with a one-line reason.
    """
    import asyncio

    import httpx

    timeout = httpx.Timeout(ctx.timeout_s, connect=min(CONNECT_TIMEOUT_S, ctx.timeout_s))
    attempt = 0
    while True:
        attempt += 1
        delay: float | None = None
        try:
            response, body = await asyncio.wait_for(_send(client, method, url, timeout, **kwargs), ctx.timeout_s)
        except (httpx.TimeoutException, TimeoutError):
            reason = f"timed out after {ctx.timeout_s:g}s ({_short(url)})"
        except httpx.TooManyRedirects:
            raise ProviderError(provider, f"more than {MAX_REDIRECTS} redirects from {_short(url)}") from None
        except _TooBig:
            raise ProviderError(provider, f"answer from {_short(url)} is over {MAX_BODY_BYTES >> 20} MiB") from None
        except httpx.ConnectError as exc:
            # DNS failures and refused connections rarely heal within seconds: one retry, not ctx.retries.
            reason = f"cannot connect to {_short(url)} ({exc})"
            if attempt >= min(2, ctx.retries + 1):
                raise ProviderError(provider, reason) from None
        except httpx.HTTPError as exc:
            reason = f"connection failed ({type(exc).__name__}: {exc})"
        else:
            if response.status_code in RETRY_STATUS:
                reason = f"HTTP {response.status_code} from {_short(url)}"
                delay = retry_after_seconds(response.headers.get("Retry-After"))
                if delay is not None and delay > ctx.max_backoff_s:
                    raise ProviderError(provider, f"{reason} asks to retry after {delay:,.0f} s; not waiting "
                                                  f"longer than {ctx.max_backoff_s:g} s")
            elif response.status_code >= 400:
                detail = body.decode("utf-8", "replace").strip().replace("\n", " ")[:160]
                hint = " (check the API key)" if response.status_code in (401, 403) else ""
                raise ProviderError(provider, f"HTTP {response.status_code} from {_short(url)}{hint}: {detail}")
            else:
                try:
                    return json.loads(body)
                except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                    raise ProviderError(provider, f"invalid JSON from {_short(url)}") from None
        if attempt > ctx.retries:
            raise ProviderError(provider, f"{reason}; gave up after {plural(attempt, 'attempt')}")
        if delay is None:
            delay = ctx.backoff_s * 2 ** (attempt - 1)
        await asyncio.sleep(min(delay, ctx.max_backoff_s))


def _short(url: str) -> str:
    return url.split("?", 1)[0]


def new_client(ctx: FetchContext) -> httpx.AsyncClient:
    """An AsyncClient with gpuarb's user agent, the context's timeouts and at most MAX_REDIRECTS redirects."""
    import httpx

    from arbitrage import __version__

    timeout = httpx.Timeout(ctx.timeout_s, connect=min(CONNECT_TIMEOUT_S, ctx.timeout_s))
    return httpx.AsyncClient(timeout=timeout, headers={"User-Agent": f"gpuarb/{__version__}"},
                             follow_redirects=True, max_redirects=MAX_REDIRECTS)


class DaemonExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs each call in a daemon thread of its own and never waits for them at shutdown (a ThreadPoolExecutor
    only because asyncio's set_default_executor asks for one; it keeps no pool).

    An event loop using it as its default executor (``asyncio.to_thread``) can give up on a blocking SDK call
    at its deadline, and the process still exits: the abandoned thread dies with it.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        threading.Thread(target=run, name="gpuarb-fetch", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to wait for: threads still running were given up on at their deadline."""


def use_daemon_threads(loop: asyncio.AbstractEventLoop) -> None:
    """Make ``loop``'s threads (asyncio.to_thread) daemon threads that do not hold the process at exit."""
    loop.set_default_executor(DaemonExecutor())
