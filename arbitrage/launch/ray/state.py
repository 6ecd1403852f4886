"""The Ray backend's records on disk: one JSON file per cluster name, written under a file lock.

``<state_dir>/<name>.json`` records the mode (``head``: a head gpuarb started here; ``address``: an attached
cluster), the Jobs API URL, the head's pid/ports/temp dir and the jobs submitted (with cancel requests and final
states), so another gpuarb process (status, logs, down, reap) finds everything from the name alone. A torn-down
cluster's file moves to ``<state_dir>/done/``; job output is saved to ``<state_dir>/logs/<submission id>.log``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from arbitrage.launch.backend import CLUSTER_PREFIX
from arbitrage.paths import open_private, private_dir, write_private


class StateStore:
    """The cluster state files under ``state_dir``: read, locked read-modify-write, archive at teardown."""

    def __init__(self, state_dir: Path, clock: Callable[[], datetime]) -> None:
        self.state_dir = state_dir
        self.clock = clock

    def path(self, name: str) -> Path:
        """The JSON file of a live cluster."""
        return self.state_dir / f"{name}.json"

    def saved_log(self, sid: str) -> Path:
        """Where a job's output is kept once its head is gone."""
        return self.state_dir / "logs" / f"{sid}.log"

    def find(self, name: str) -> tuple[dict[str, Any] | None, bool]:
        """(state, live): the live cluster's state, else the archived one of a torn-down cluster."""
        state = read_json(self.path(name))
        if state is not None:
            return state, True
        return read_json(self.state_dir / "done" / f"{name}.json"), False

    def live(self) -> list[dict[str, Any]]:
        """Every live cluster's state (files named CLUSTER_PREFIX*), in name order."""
        if not self.state_dir.is_dir():
            return []
        states = (read_json(path) for path in sorted(self.state_dir.glob(f"{CLUSTER_PREFIX}*.json")))
        return [state for state in states if state is not None]

    def write(self, name: str, state: Mapping[str, Any]) -> None:
        """Replace the live cluster's state."""
        with self.lock(name):
            write_json(self.path(name), state)

    def update(self, name: str, change: Callable[[dict[str, Any]], object]) -> None:
        """Read-modify-write the live state under a file lock (another gpuarb process may write too)."""
        with self.lock(name):
            path = self.path(name)
            state = read_json(path)
            if state is None:
                done = self.state_dir / "done" / f"{name}.json"
                state, path = read_json(done), done
            if state is None:
                return
            change(state)
            write_json(path, state)

    def archive(self, name: str, state: dict[str, Any]) -> None:
        """Move a torn-down cluster's state to ``done/``, stamped with when."""
        state["torn_down_at"] = self.clock().isoformat()
        done = private_dir(self.state_dir / "done", own=True)
        with self.lock(name):
            write_json(done / f"{name}.json", state)
            self.path(name).unlink(missing_ok=True)
        (self.state_dir / f".{name}.lock").unlink(missing_ok=True)

    def remove(self, name: str) -> None:
        """Forget a cluster whose head never started."""
        with self.lock(name):
            self.path(name).unlink(missing_ok=True)

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive lock on one cluster's state, across processes."""
        import fcntl

        private_dir(self.state_dir, own=True)
        with open_private(self.state_dir / f".{name}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def handle_detail(state: Mapping[str, Any]) -> dict[str, str]:
    """The part of a cluster's state a Handle carries (JSON strings, stored in the ledger)."""
    detail = {"mode": state["mode"], "dashboard_url": state["dashboard_url"]}
    if state["mode"] == "head":
        detail.update(temp_dir=state["temp_dir"], leader_pid=str(state["leader_pid"]))
    else:
        detail["address"] = str(state["address"])
    return detail


def latest_job(jobs: Mapping[str, Any]) -> str | None:
    """The submission id submitted last (ties: the larger id)."""
    if not jobs:
        return None
    return max(jobs, key=lambda s: (str(jobs[s].get("submitted_at", "")), s))


def parse_time(text: Any) -> datetime | None:
    """An ISO timestamp from a state file, or None when absent or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


_MAX_STATE_BYTES = 16 << 20


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when missing, unreadable, over 16 MiB, not a regular file or not an
    object (a state file is untrusted: it never crashes the backend)."""
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_STATE_BYTES + 1)
        if len(raw) > _MAX_STATE_BYTES:
            return None
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replace ``path`` atomically (temp file + os.replace), the file 0600."""
    write_private(path, json.dumps(data, indent=2, sort_keys=True))
