"""One HTTP path for every REST/GraphQL adapter: timeouts, retries with backoff, Retry-After, JSON checks."""

from __future__ import annotations

import email.utils
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from providers.base import FetchContext, ProviderError

if TYPE_CHECKING:
    import httpx

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


async def request_json(client: httpx.AsyncClient, ctx: FetchContext, provider: str, method: str, url: str,
                       **kwargs: Any) -> Any:
    """Send a request and return its decoded JSON body, retrying 429/5xx and timeouts with backoff.

    Honors Retry-After (capped at ctx.max_backoff_s); raises ProviderError with a one-line reason.
    """
    import asyncio

    import httpx

    attempt = 0
    while True:
        attempt += 1
        delay: float | None = None
        try:
            response = await client.request(method, url, timeout=ctx.timeout_s, **kwargs)
        except httpx.TimeoutException:
            reason = f"timed out after {ctx.timeout_s:g}s ({_short(url)})"
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
            elif response.status_code >= 400:
                detail = response.text.strip().replace("\n", " ")[:160]
                hint = " (check the API key)" if response.status_code in (401, 403) else ""
                raise ProviderError(provider, f"HTTP {response.status_code} from {_short(url)}{hint}: {detail}")
            else:
                try:
                    return response.json()
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise ProviderError(provider, f"invalid JSON from {_short(url)}") from None
        if attempt > ctx.retries:
            raise ProviderError(provider, f"{reason}; gave up after {attempt} attempts")
        if delay is None:
            delay = ctx.backoff_s * 2 ** (attempt - 1)
        await asyncio.sleep(min(delay, ctx.max_backoff_s))


def _short(url: str) -> str:
    return url.split("?", 1)[0]


def new_client(ctx: FetchContext) -> httpx.AsyncClient:
    """An AsyncClient with gpuarb's user agent and the context's timeout."""
    import httpx

    from arbitrage import __version__

    return httpx.AsyncClient(timeout=ctx.timeout_s, headers={"User-Agent": f"gpuarb/{__version__}"},
                             follow_redirects=True)
