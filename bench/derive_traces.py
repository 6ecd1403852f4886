"""Derive the compact replayable spot traces in bench/traces/ from a clone of skypilot-org/spot-traces.

`python -m bench.derive_traces PATH` where PATH is a checkout or bare clone of
https://github.com/skypilot-org/spot-traces. Each GPU trace becomes run lengths of "a whole gang of spot
instances is available" (1) or not (0) at the trace's probe interval; the raw files are not copied.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "traces" / "aws-gpu-spot-traces.json"
# GPU traces only (the CPU traces of the same repository are not GPU jobs).
PREFIXES = ("availability/1-node/", "availability/16-node/", "preemption/1-node/aws-04-22-2023/",
            "preemption/4-node/")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _nodes(path: str) -> int:
    return int(path.split("/")[1].split("-")[0])


def derive(repo: Path) -> dict[str, Any]:
    """All GPU traces of the repository at HEAD as run-length encoded availability of a full gang."""
    commit = _git(repo, "rev-parse", "HEAD").strip()
    paths = sorted(p for p in _git(repo, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
                   if p.endswith(".json") and p.startswith(PREFIXES))
    traces = []
    for path in paths:
        raw = json.loads(_git(repo, "show", f"HEAD:{path}"))
        nodes = _nodes(path)
        data = [int(x) for x in raw["data"]]
        runs = [[int(up), len(list(group))] for up, group in itertools.groupby(x >= nodes for x in data)]
        kind, _, folder, name = path.split("/")
        traces.append({
            "name": f"{folder}/{name.removesuffix('.json')}",
            "kind": kind,
            "nodes": nodes,
            "gap_seconds": raw["metadata"]["gap_seconds"],
            "ticks": len(data),
            "runs": runs,
        })
    return {
        "source": "https://github.com/skypilot-org/spot-traces",
        "commit": commit,
        "licence": "the repository has no LICENSE file; traces published by the authors of 'Can't Be Late' "
                   "(NSDI 2024) for research; only derived availability run lengths are kept here",
        "meaning": "runs of [1 = a spot instance for every node of the gang is available, 0 = not] x probes",
        "traces": traces,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("repo", type=Path, help="checkout or bare clone of skypilot-org/spot-traces")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    payload = derive(args.repo)
    # One trace per line: small diffs when the source changes.
    head = {k: v for k, v in payload.items() if k != "traces"}
    rows = ",\n".join(json.dumps(t, separators=(",", ":")) for t in payload["traces"])
    text = json.dumps(head, indent=1)[:-2] + ',\n "traces": [\n' + rows + "\n ]\n}\n"
    json.loads(text)
    args.out.write_text(text, encoding="utf-8")
    print(f"{args.out}: {len(payload['traces'])} traces, {len(text) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
