"""Run every benchmark and rewrite BENCHMARKS.md: `python -m bench [--runs N]`."""

from __future__ import annotations

import argparse
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from bench import cli_speed, refresh

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="process runs per timed command")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    header = (
        "# Benchmarks\n\n"
        f"Regenerate with `python -m bench --runs {args.runs}` from the repository root (after "
        "`pip install -e .`). Last run: "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}.\n\n"
    )
    body = cli_speed.run(args.runs) + "\n" + refresh.run(3)
    args.out.write_text(header + body, encoding="utf-8")
    print(header + body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
