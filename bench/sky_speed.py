"""SkyPilot's `sky gpus list` (formerly `sky show-gpus`) and `sky launch --dryrun`, offline, timed like gpuarb's CLI.

Everything runs under a temporary HOME holding SkyPilot's v8 catalogs copied from ../shared/catalog-snapshot
(AWS, GCP, Lambda, Nebius, Hyperbolic) and a private API server port, so nothing touches the user's ~/.sky and the
server this starts is stopped again. SkyPilot 0.14 routes every command through a local API server that the
first command starts. Clouds are enabled the way SkyPilot's own tests do it offline: by writing the enabled-cloud
list into the state database (`global_user_state.set_enabled_clouds`); the server's start-up credential check
erases that list again (no credentials here), so it is re-seeded once that check has finished.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_CATALOG = ROOT.parent / "shared" / "catalog-snapshot"
CLOUDS = {"aws": "AWS", "gcp": "GCP", "lambda": "Lambda", "nebius": "Nebius", "hyperbolic": "Hyperbolic"}
TASK = """name: bench
resources:
  accelerators: {H100: 8, A100-80GB: 8}
num_nodes: 1
run: echo hi
"""
GPUS_LIST = ["gpus", "list", "H100", "--infra", "aws"]
LAUNCH = ["launch", "--dryrun", "-y", "task.yaml"]
SEED = """
from sky import global_user_state
from sky.clouds import cloud
for capability in cloud.CloudCapability:
    global_user_state.set_enabled_clouds({clouds!r}, capability, 'default')
"""


def _sky() -> str | None:
    exe = Path(sys.executable).with_name("sky")
    return str(exe) if exe.exists() else shutil.which("sky")


def skip_reason() -> str | None:
    """Why the SkyPilot comparison cannot run here, or None."""
    if importlib.util.find_spec("sky") is None or _sky() is None:
        return "SkyPilot is not installed (`pip install skypilot`)"
    if not SHARED_CATALOG.is_dir():
        return f"{SHARED_CATALOG} is missing (the SkyPilot catalogs)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SkyHome:
    """A throwaway HOME with the catalogs, a private API server port, and helpers to run `sky` in it."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = _free_port()
        self.env = {**os.environ, "HOME": str(home), "SKYPILOT_API_SERVER_LOCAL_PORT": str(self.port),
                    "SKYPILOT_DISABLE_USAGE_COLLECTION": "1", "COLUMNS": "200"}
        self.env.pop("SKY_RUNTIME_DIR", None)
        self.env.pop("SKYPILOT_API_SERVER_ENDPOINT", None)
        catalogs = home / ".sky" / "catalogs" / "v8"
        for cloud in [*CLOUDS, "common"]:
            source = SHARED_CATALOG / cloud
            if source.is_dir():
                shutil.copytree(source, catalogs / cloud)
        (home / "task.yaml").write_text(TASK, encoding="utf-8")

    def sky(self, args: list[str], timeout: float = 300) -> tuple[float, int, str]:
        """(wall seconds, exit code, output) of one `sky` process."""
        sky = _sky()
        assert sky is not None
        start = time.perf_counter()
        proc = subprocess.run([sky, *args], cwd=self.home, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        return time.perf_counter() - start, proc.returncode, proc.stdout + proc.stderr

    def seed_clouds(self) -> None:
        """Enable the clouds whose catalogs are here, as SkyPilot's tests do."""
        code = SEED.format(clouds=[CLOUDS[c] for c in CLOUDS if (SHARED_CATALOG / c).is_dir()])
        subprocess.run([sys.executable, "-c", code], env=self.env, cwd=self.home, check=True, capture_output=True,
                       timeout=120)

    def boot_check_done(self) -> bool:
        log = self.home / ".sky" / "api_server" / "server.log"
        return log.exists() and "skypilot-server-on-boot-check finished" in log.read_text(errors="replace")

    def wait_boot_check(self, timeout_s: float = 180) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.boot_check_done():
                return True
            time.sleep(1)
        return False

    def stop(self) -> None:
        """Stop the API server of this HOME, then any process still serving its private port."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.sky(["api", "stop"], timeout=120)
        for pid in _pids_with(f"--port={self.port}"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _pids_with(fragment: str) -> list[int]:
    """Processes whose command line contains ``fragment`` (the API server we started carries our port)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmdline and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


@contextlib.contextmanager
def sky_home() -> Iterator[SkyHome]:
    """A SkyHome whose server is stopped (and folder removed) on the way out."""
    with tempfile.TemporaryDirectory(prefix="gpuarb-bench-sky-") as tmp:
        home = SkyHome(Path(tmp))
        try:
            yield home
        finally:
            home.stop()


def _ok(label: str, out: str) -> bool:
    if label == "launch":
        return "Considered resources" in out
    return "H100" in out and "p5.48xlarge" in out


def _cell(samples: list[float]) -> str:
    if not samples:
        return "- | - | -"
    return f"{statistics.median(samples):.2f} | {min(samples):.2f} | {max(samples):.2f}"


def run(cold_runs: int = 3, warm_runs: int = 5) -> str:
    """Markdown section: cold (server start-up included) and warm medians of both commands."""
    lines = ["## SkyPilot, offline, for comparison", ""]
    reason = skip_reason()
    if reason:
        return "\n".join([*lines, f"Skipped: {reason}.", ""])
    import sky

    notes: list[str] = []
    results: dict[str, dict[str, list[float]]] = {"gpus": {"cold": [], "warm": []}, "launch": {"cold": [], "warm": []}}
    commands = {"gpus": GPUS_LIST, "launch": LAUNCH}
    last_out: dict[str, str] = {}
    with sky_home() as home:
        home.seed_clouds()
        for label, args in commands.items():
            for _ in range(cold_runs):
                home.stop()
                home.seed_clouds()
                seconds, code, out = home.sky(args)
                last_out[label] = out
                if _ok(label, out):
                    results[label]["cold"].append(seconds)
                else:
                    notes.append(f"cold `sky {' '.join(args)}` failed (exit {code}): {out.strip().splitlines()[-1]}")
        home.stop()
        start_s, _, _ = home.sky(["api", "start"])
        booted = home.wait_boot_check()
        home.seed_clouds()
        for label, args in commands.items():
            for _ in range(warm_runs):
                seconds, code, out = home.sky(args)
                last_out[label] = out
                if _ok(label, out):
                    results[label]["warm"].append(seconds)
                else:
                    notes.append(f"warm `sky {' '.join(args)}` failed (exit {code}): {out.strip().splitlines()[-1]}")
    launch_tail = (last_out.get("launch", "").strip().splitlines() or [""])[-1].strip()
    if "rsync" in launch_tail:
        ending = ("- The dry run prints the optimizer's table and then stops at a provisioning prerequisite missing "
                  f"on this machine (`{launch_tail[:140]}`). The time covers the optimizer; with rsync installed "
                  "the dry run would end a step later.")
    else:
        ending = f"- `sky launch --dryrun` ended with: `{launch_tail[:140]}`."
    lines += [
        f"`python -m bench --only sky` → `bench/sky_speed.py`, SkyPilot {sky.__version__}, under a temporary HOME "
        "holding SkyPilot's v8 catalogs from `../shared/catalog-snapshot` (AWS, GCP, Lambda, Nebius, Hyperbolic) "
        "and a private API server port; the server it starts is stopped at the end. Clouds are enabled as "
        "SkyPilot's own tests do offline, by writing the enabled-cloud list into its state database "
        "(`global_user_state.set_enabled_clouds`).",
        "",
        f"Cold: the API server is stopped before each run, so the command starts it ({cold_runs} runs). Warm: the "
        f"server is already up ({warm_runs} runs; `sky api start` itself took {start_s:.1f} s"
        + ("" if booted else ", and its start-up check had not finished after 180 s") + "). Wall seconds of the "
        "`sky` process. `sky launch --dryrun` gets a task asking for `{H100: 8, A100-80GB: 8}`, like "
        "`jobspecs/llama3-8b-finetune.yaml`; compare with `gpuarb prices --gpu H100` and `gpuarb plan` in CLI speed.",
        "",
        "| command | cold median s | cold min s | cold max s | warm median s | warm min s | warm max s |",
        "|---|---|---|---|---|---|---|",
        f"| `sky {' '.join(GPUS_LIST)}` | {_cell(results['gpus']['cold'])} | {_cell(results['gpus']['warm'])} |",
        f"| `sky {' '.join(LAUNCH)}` | {_cell(results['launch']['cold'])} | {_cell(results['launch']['warm'])} |",
        "",
        "What does not run offline, and why:",
        "- `sky show-gpus H100` without `--infra` (and `sky gpus list` likewise) tries to download the catalog of "
        "every cloud SkyPilot supports (Azure, RunPod, Vast…) and fails without a network; with `--infra aws` it "
        "reads only the local AWS catalog.",
        "- A fresh API server runs a credential check on start-up that disables every cloud without credentials, so "
        "a warm `sky launch --dryrun` fails with `NoCloudAccessError` until the enabled clouds are written again "
        "(done here after the check, as SkyPilot's tests patch them). A cold run can succeed only because it "
        "finishes before that check does.",
        ending,
    ]
    if notes:
        lines += ["", "Failures:", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
