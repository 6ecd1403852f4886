"""One team-server replica for the load bench: `python -m bench.server_replica --port P --state DIR`, on the
database $GPUARB_DATABASE_URL, launching with bench.file_backend (jobs that outlive the replica)."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from arbitrage.server.api import ServerConfig, create_app
from bench.file_backend import FileBackend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=4.0, help="how long each job runs")
    parser.add_argument("--workers", type=int, default=64)
    args = parser.parse_args()
    backend = FileBackend(args.state, args.seconds)
    # Shorter than a real server's cadence (poll 10 s, heartbeat 10 s, stale 60 s) so the bench ends in minutes.
    config = ServerConfig(backend="skypilot", workers=args.workers, poll_seconds=2.0, heartbeat_seconds=2.0,
                          stale_seconds=8.0, claim_seconds=0.5, budget_seconds=30.0,
                          backend_factory=lambda name: backend)
    uvicorn.run(create_app(config), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
