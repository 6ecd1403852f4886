"""The server's workers: claim the runs nobody watches from the database and supervise each to its end; run the
team budget breaker.

A replica claims with a token of its own (host, pid, random), through ``Ledger.claim_supervision``: a run is
claimable while it is live, belongs to a team, and has no heartbeat fresher than ``stale_seconds``. A supervised
run's heartbeat is written every ``heartbeat_seconds`` by its runner, so a replica killed with -9 stops beating
and its runs are claimed by the next replica (or by itself once restarted) within ``stale_seconds`` plus one
claim round, and taken up where they were (the runner watches the attempt that was running; it never launches a
second cluster). Two replicas on one database never both win a claim.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import replace
from typing import Any

from arbitrage import app as usecases

log = logging.getLogger("gpuarb.server")


class SupervisorPool:
    """Background threads: one claiming runs, one per supervised run (at most ``workers``), one for budgets."""

    def __init__(self, settings: Any, facts: Any) -> None:
        self.settings = settings
        self.facts = facts
        self.host = socket.gethostname()
        self.token = f"{self.host}:{os.getpid()}:{secrets.token_hex(8)}"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._active: dict[str, threading.Thread] = {}
        self._threads: list[threading.Thread] = []
        self.options = replace(usecases.run_options(poll_seconds=settings.poll_seconds),
                               heartbeat_seconds=settings.heartbeat_seconds)

    def start(self) -> None:
        for target, name in ((self._claim_loop, "gpuarb-claims"), (self._budget_loop, "gpuarb-budgets")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("supervising as %s with %d workers", self.token, self.settings.workers)

    def stop(self) -> None:
        """Stop claiming; the runs supervised here are given back so another replica takes them up at once."""
        self._stop.set()
        with self._lock:
            running = list(self._active)
        ledger = usecases.open_ledger()
        for run_id in running:
            try:
                ledger.release_supervision(run_id, self.token)
            except Exception:  # the database is gone too: the claims go stale instead
                log.exception("could not give back run %s", run_id)

    @property
    def active(self) -> list[str]:
        with self._lock:
            return sorted(self._active)

    def claim_once(self) -> list[str]:
        """One claim round: take as many unwatched runs as there are free workers and start supervising them."""
        with self._lock:
            for run_id in [r for r, t in self._active.items() if not t.is_alive()]:
                del self._active[run_id]
            free = self.settings.workers - len(self._active)
        if free <= 0:
            return []
        claimed = usecases.open_ledger().claim_supervision(
            token=self.token, pid=os.getpid(), host=self.host, now=usecases.utcnow(),
            stale_seconds=self.settings.stale_seconds, limit=free)
        for run_id in claimed:
            thread = threading.Thread(target=self._supervise, args=(run_id,), name=f"gpuarb-run-{run_id}", daemon=True)
            with self._lock:
                self._active[run_id] = thread
            thread.start()
            log.info("run %s: supervising", run_id)
        return claimed

    def _claim_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.claim_once()
            except Exception:  # a database hiccup must not end the loop: the next round tries again
                log.exception("claim round failed")
            self._stop.wait(self.settings.claim_seconds)

    def _budget_loop(self) -> None:
        while not self._stop.wait(self.settings.budget_seconds):
            try:
                usecases.enforce_team_budgets(say=lambda line: log.info("%s", line))
            except Exception:
                log.exception("budget round failed")

    def _supervise(self, run_id: str) -> None:
        factory = self.settings.backend_factory
        try:
            backend = None
            if factory is not None:
                backend = factory(usecases.open_ledger().run(run_id).backend)
            state = usecases.supervise_claimed(run_id, self.token, self.facts, self.options, backend=backend,
                                               say=lambda line: log.info("run %s: %s", run_id, line))
            log.info("run %s ended: %s", run_id, state)
        except Exception:
            log.exception("run %s: supervision failed", run_id)
