"""The Ray Jobs API edge: connecting a JobSubmissionClient, whether the API answers, what its errors mean.

``ray`` and ``httpx`` are imported inside the functions: importing Ray costs seconds.
"""

from __future__ import annotations

import time
from typing import Any

from arbitrage.launch.backend import BackendUnavailable, LaunchError

INSTALL_HINT = "pip install 'ray[default]' (or pip install 'gpuarb[launch]')"

# Ray's SDK sets INFO on its own loggers and prints a line per working-dir upload and log tail.
_NOISY_LOGGERS = ("ray.dashboard.modules.job.sdk", "ray.dashboard.modules.dashboard_sdk",
                  "ray._private.runtime_env.packaging")


def connect(address: str) -> Any:
    """A JobSubmissionClient for ``address`` (its constructor checks the connection and the server version)."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:
        raise BackendUnavailable(f"cannot import Ray's Jobs SDK ({exc}): {INSTALL_HINT}") from None
    import logging

    for noisy in _NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return JobSubmissionClient(address)
    except Exception as exc:
        raise BackendUnavailable(f"Ray cluster at {address} is not reachable: {one_line(exc)}") from None


def api_answers(url: str) -> bool:
    """Whether the Jobs API at ``url`` lists jobs (the dashboard's job module is up)."""
    import httpx

    try:
        return httpx.get(f"{url}/api/jobs/", timeout=3.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_api(url: str, timeout: float) -> bool:
    """Whether the Jobs API at ``url`` answers within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not api_answers(url):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def job_exists(client: Any, sid: str) -> bool:
    """Whether the cluster already has a job with submission id ``sid``."""
    try:
        client.get_job_info(sid)
    except Exception as exc:
        if not_found(exc):
            return False
        raise LaunchError(f"cannot reach the Ray Jobs API: {one_line(exc)}") from None
    return True


def retryable_submit_error(exc: Exception) -> bool:
    """A submission refused because the fresh head's job agent is not ready yet (worth retrying)."""
    text = str(exc).lower()
    return any(word in text for word in ("agent", "503", "502", "connection", "try again"))


def not_found(exc: Exception) -> bool:
    """The Jobs API's way of saying a job does not exist."""
    text = str(exc).lower()
    return "404" in text or "does not exist" in text or "not found" in text


def one_line(exc: BaseException) -> str:
    """The first meaningful line of an exception's message (at most 300 characters)."""
    text = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return text[0][:300] if text else type(exc).__name__
