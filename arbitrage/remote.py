"""The CLI's client for a team server: with ``GPUARB_SERVER`` (its URL) and ``GPUARB_TOKEN`` set, `gpuarb run`,
`status`, `history`, `logs`, `down`, `report spend` and `export focus` ask the server instead of the local ledger,
and print what they print locally, ending with the same exit codes (the server sends each error's exit code).

One small class over httpx; ``transport`` lets tests hand it the server's ASGI app or a mock transport. The token
goes in the Authorization header only: never in a URL, a message or a log line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from arbitrage import errors
from arbitrage.errors import BackendUnavailable, GpuarbError, UsageError

ENV_SERVER = "GPUARB_SERVER"
ENV_TOKEN = "GPUARB_TOKEN"
API = "/api/v1"


class RemoteError(GpuarbError):
    """An error the server reported that this gpuarb has no class for: its message and exit code, as sent."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def server_url(env: Mapping[str, str] | None = None) -> str | None:
    """The team server's URL, or None when the CLI works on its own ledger."""
    values = os.environ if env is None else env
    url = (values.get(ENV_SERVER) or "").strip().rstrip("/")
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"{ENV_SERVER}: expected the server's URL (e.g. https://gpuarb.internal:8080), got "
                         f"{url[:80]!r}")
    return url


def _error_from(body: Any, status: int, where: str) -> GpuarbError:
    """The server's error as the CLI's own class (same message, same exit code)."""
    detail = body.get("error") if isinstance(body, dict) else None
    if not isinstance(detail, dict):
        if status == 422 and isinstance(body, dict):  # FastAPI's own validation answer
            return UsageError(f"{where}: the server refused the request: {str(body.get('detail'))[:300]}")
        return RemoteError(f"{where}: the server answered HTTP {status}", errors.EXIT_ERROR)
    message = str(detail.get("message") or f"HTTP {status}")
    cls = getattr(errors, str(detail.get("type")), None)
    code = detail.get("exit_code")
    if isinstance(cls, type) and issubclass(cls, GpuarbError):
        try:
            found = cls(message)
        except TypeError:
            found = RemoteError(message, int(code) if isinstance(code, int) else errors.EXIT_ERROR)
        return found
    return RemoteError(message, int(code) if isinstance(code, int) else errors.EXIT_ERROR)


class Client:
    """Calls to one team server with one token."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {token}", "User-Agent": "gpuarb-cli"})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Client | None:
        """The client ``GPUARB_SERVER``/``GPUARB_TOKEN`` describe (None without a server); UsageError for a
        server without a token."""
        values = os.environ if env is None else env
        url = server_url(values)
        if url is None:
            return None
        token = (values.get(ENV_TOKEN) or "").strip()
        if not token:
            raise UsageError(f"{ENV_TOKEN}: not set, and {ENV_SERVER} is ({url}); make one with "
                             "`gpuarb server token create --team TEAM --name NAME --role ci` on the server")
        return cls(url, token)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        where = f"{self.url}{path.split('?')[0]}"
        try:
            response = self._http.request(method, API + path, **kwargs)
        except httpx.TimeoutException:
            raise BackendUnavailable(f"{self.url}: the gpuarb server did not answer in time") from None
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"{self.url}: cannot reach the gpuarb server ({type(exc).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise _error_from(body, response.status_code, where)
        if body is None:
            raise RemoteError(f"{where}: the server's answer is not JSON", errors.EXIT_ERROR)
        return body

    def whoami(self) -> dict[str, Any]:
        return self._call("GET", "/whoami")

    def plan(self, spec_text: str, spec_name: str, *, objective: str = "cost", top: int = 5, fmt: str = "table",
             wide: bool = False, source: str | None = None, strict: bool = False) -> tuple[str, GpuarbError | None]:
        """`gpuarb plan` on the server (its prices, its credentials): what to print, and the error to end with."""
        body = self._call("POST", "/plan", json={"spec_text": spec_text, "spec_name": spec_name, "objective": objective,
                                                  "top": top, "format": fmt, "wide": wide, "source": source,
                                                  "strict": strict})
        error = body.get("error")
        return body["text"], None if error is None else _error_from({"error": error}, 200, self.url)

    def prices(self, *, gpus: Sequence[str] = (), count: int | None = None, spot: bool | None = None,
               providers: Sequence[str] = (), regions: Sequence[str] = (), fmt: str = "table",
               source: str | None = None, strict: bool = False, limit: int | None = None,
               quarantined: bool = False) -> tuple[str, GpuarbError | None]:
        """`gpuarb prices` on the server: what to print, and the error to end with."""
        params: list[tuple[str, Any]] = [("format", fmt), ("strict", strict), ("quarantined", quarantined)]
        params += [("gpu", g) for g in gpus] + [("provider", p) for p in providers] + [("region", r) for r in regions]
        for key, value in (("count", count), ("spot", spot), ("source", source), ("limit", limit)):
            if value is not None:
                params.append((key, value))
        body = self._call("GET", "/prices", params=params)
        error = body.get("error")
        return body["text"], None if error is None else _error_from({"error": error}, 200, self.url)

    def submit(self, spec_text: str, spec_name: str, *, backend: str | None = None,
               idempotency_key: str | None = None) -> tuple[dict[str, Any], bool]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = self._call("POST", "/runs", json={"spec_text": spec_text, "spec_name": spec_name,
                                                  "backend": backend}, headers=headers)
        return body["run"], bool(body["created"])

    def runs(self, *, limit: int | None = None, since: str | None = None,
             tags: Sequence[str] = ()) -> dict[str, Any]:
        params: list[tuple[str, Any]] = [("tag", t) for t in tags]
        if limit is not None:
            params.append(("limit", limit))
        if since:
            params.append(("since", since))
        return self._call("GET", "/runs", params=params)

    def run(self, ref: str) -> dict[str, Any]:
        return self._call("GET", f"/runs/{_segment(ref)}")

    def stop(self, ref: str) -> dict[str, Any]:
        return self._call("POST", f"/runs/{_segment(ref)}/stop")

    def logs(self, ref: str, tail: int = 1000) -> dict[str, Any]:
        return self._call("GET", f"/runs/{_segment(ref)}/logs", params={"tail": tail})

    def spend(self, by: str, *, since: str | None = None, tags: Sequence[str] = (), fmt: str = "json",
              rise_percent: float = 10.0) -> dict[str, Any]:
        params: list[tuple[str, Any]] = [("by", by), ("format", fmt), ("rise_percent", rise_percent)]
        params += [("tag", t) for t in tags]
        if since:
            params.append(("since", since))
        return self._call("GET", "/spend", params=params)

    def focus(self, *, since: str | None = None, granularity: str = "day", tags: Sequence[str] = (),
              fmt: str = "csv", billing_accounts: Sequence[str] = ()) -> dict[str, Any]:
        params: list[tuple[str, Any]] = [("granularity", granularity), ("format", fmt)]
        params += [("tag", t) for t in tags] + [("billing_account", b) for b in billing_accounts]
        if since:
            params.append(("since", since))
        return self._call("GET", "/export/focus", params=params)


def _segment(ref: str) -> str:
    from urllib.parse import quote

    if not ref.strip():
        raise UsageError("RUN: give a run id or name")
    return quote(ref.strip(), safe="")
