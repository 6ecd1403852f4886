"""Ray heads gpuarb starts on this machine, and their processes: start, find, stop (and nothing else).

Each cluster name gets its own head, started by ``ray start --head --block`` in a new session with its own short
``--temp-dir`` and free ports, so it never collides with other Ray instances. Stopping a head stops that head and
nothing else (no ``ray stop``), then checks that none of its processes is left. psutil comes from the environment
or from Ray's bundled copy; both are imported only when a head is touched.

A head dies with the gpuarb process that started it: the leader gets SIGTERM from the kernel when its parent dies
(Linux ``PR_SET_PDEATHSIG``, set in ``die_with_parent``), and ``ray start --block`` then stops its own processes
(Ray's own fate sharing). Whatever survives (a job driver in a session of its own) carries the head's marker,
and `gpuarb reap` finds the head by its state file and stops it. The temp dir (Ray's sockets, session logs and
runtime-env logs, which hold the job's environment) is 0700, and so are the state folders.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from arbitrage.launch.backend import LaunchError
from arbitrage.launch.ray.client import api_answers, wait_api
from arbitrage.launch.ray.state import StateStore
from arbitrage.paths import open_private, private_dir

# Every process of a head gpuarb started carries this variable (value: the head's temp dir), so teardown can find
# the head's processes, including job processes that Ray moved into sessions of their own.
HEAD_MARKER_ENV = "GPUARB_RAY_HEAD"

# Ray's unix socket paths (<temp>/session_<date>_<pid>/sockets/plasma_store) must stay under 107 characters.
_MAX_TEMP_DIR_CHARS = 40


class LocalHeads:
    """Starts and stops the heads of cluster names, recording each in the state store."""

    def __init__(self, states: StateStore, *, num_cpus: int, start_timeout_s: float, stop_grace_s: float) -> None:
        self.states = states
        self.num_cpus = num_cpus
        self.start_timeout_s = start_timeout_s
        self.stop_grace_s = stop_grace_s  # SIGTERM -> SIGKILL grace for a stopped job (RAY_JOB_STOP_WAIT_TIME_S)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}  # heads this process started, reaped at stop

    def ensure(self, name: str) -> dict[str, Any]:
        """The cluster's running head, or a new one (after clearing what a dead one left behind)."""
        state, live = self.states.find(name)
        if state is not None and live and state.get("mode") == "head":
            if head_alive(state) and wait_api(state["dashboard_url"], self.start_timeout_s):
                return state
            self.stop(name, state)
        return self.start(name)

    def start(self, name: str) -> dict[str, Any]:
        """``ray start --head --block`` in its own session, temp dir and ports; wait until the Jobs API answers."""
        state_dir = self.states.state_dir
        private_dir(state_dir, own=True)
        private_dir(state_dir / "logs", own=True)
        last_error = ""
        for _ in range(2):  # a port taken between choosing and binding: try once more with new ports
            temp_dir = new_temp_dir(state_dir)
            gcs, dashboard, client_server, agent = free_ports(4)
            url = f"http://127.0.0.1:{dashboard}"
            cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
                   f"--temp-dir={temp_dir}", f"--port={gcs}", "--include-dashboard=true",
                   "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
                   f"--ray-client-server-port={client_server}", f"--dashboard-agent-listen-port={agent}",
                   f"--num-cpus={self.num_cpus}", "--disable-usage-stats", "--log-color=false"]
            env = dict(os.environ)
            env.pop("RAY_ADDRESS", None)
            env[HEAD_MARKER_ENV] = str(temp_dir)
            env["RAY_JOB_STOP_WAIT_TIME_S"] = str(int(self.stop_grace_s))
            # Jobs on this head find the Python gpuarb runs under first (it has Ray, and usually the job's deps).
            env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
            head_log = state_dir / "logs" / f"{name}.head.log"
            started = time.monotonic()
            with open_private(head_log, "ab") as log:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        env=env, cwd=temp_dir, start_new_session=True,
                                        preexec_fn=die_with_parent(os.getpid()))
            self._procs[name] = proc
            state = {"name": name, "mode": "head", "dashboard_url": url, "address": None,
                     "temp_dir": str(temp_dir), "marker": str(temp_dir), "leader_pid": proc.pid,
                     "leader_create_time": create_time(proc.pid), "ports": {"gcs": gcs, "dashboard": dashboard,
                     "client_server": client_server, "dashboard_agent": agent}, "num_cpus": self.num_cpus,
                     "head_log": str(head_log), "started_at": self.states.clock().isoformat(), "ready_at": None,
                     "jobs": {}}
            self.states.write(name, state)
            error = self._wait_ready(proc, url, head_log)
            if error is None:
                state["ready_at"] = self.states.clock().isoformat()
                state["start_seconds"] = round(time.monotonic() - started, 2)
                self.states.write(name, state)
                return state
            last_error = error
            self.stop(name, state)
            self.states.remove(name)
        raise LaunchError(f"{name}: the local Ray head did not start: {last_error}")

    def _wait_ready(self, proc: subprocess.Popen[bytes], url: str, head_log: Path) -> str | None:
        """None once the Jobs API answers; else why not (the head exited, or start_timeout_s passed)."""
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                return f"`ray start` exited with code {code}: {_log_tail(head_log)} (log: {head_log})"
            if api_answers(url):
                return None
            time.sleep(0.5)
        return f"the Jobs API at {url} did not answer within {self.start_timeout_s:g} s (log: {head_log})"

    def stop(self, name: str, state: Mapping[str, Any]) -> None:
        """Stop the head's leader gracefully, then every process still carrying its marker; raise if any survives."""
        import shutil

        psutil = psutil_module()
        if head_alive(state):
            with contextlib.suppress(psutil.Error):
                psutil.Process(int(state["leader_pid"])).send_signal(signal.SIGTERM)
            _wait_gone([int(state["leader_pid"])], timeout=20.0)
        proc = self._procs.pop(name, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        left = head_processes(state)
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if not left:
                break
            for p in left:
                with contextlib.suppress(psutil.Error):
                    p.send_signal(sig)
            _wait_gone([p.pid for p in left], timeout=wait)
            left = head_processes(state)
        if left:
            pids = ", ".join(str(p.pid) for p in left)
            raise LaunchError(f"{name}: could not stop the local Ray head: processes {pids} are still running")
        shutil.rmtree(state["temp_dir"], ignore_errors=True)


def new_temp_dir(state_dir: Path) -> Path:
    """A fresh, short Ray temp dir (0700: mkdtemp) under the state dir, or under the system temp dir when that path
    is too long."""
    import tempfile

    base = state_dir / "t"
    if len(str(base.resolve())) + 9 <= _MAX_TEMP_DIR_CHARS:
        private_dir(base, own=True)
        return Path(tempfile.mkdtemp(prefix="", dir=base))
    return Path(tempfile.mkdtemp(prefix="gpuarb-ray-"))


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> Any:
    """A ``preexec_fn`` that makes the child get SIGTERM when its parent dies (Linux; elsewhere it does nothing),
    and exit at once if the parent is already gone by then."""
    import ctypes
    import ctypes.util

    libc_name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    libc = ctypes.CDLL(libc_name, use_errno=True) if libc_name else None  # loaded before fork: async-signal-safe

    def preexec() -> None:
        if libc is None:
            return
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died between fork and prctl
            os._exit(1)

    return preexec


def psutil_module() -> Any:
    """psutil, from the environment or from Ray's bundled copy (importing ray puts it on sys.path)."""
    try:
        import psutil
    except ImportError:
        import ray  # noqa: F401  (adds ray/thirdparty_files to sys.path)

        psutil = importlib.import_module("psutil")
    return psutil


def create_time(pid: int) -> float | None:
    """When process ``pid`` started (psutil's clock), to tell it from a later process reusing the pid."""
    psutil = psutil_module()
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _running(p: Any) -> bool:
    psutil = psutil_module()
    try:
        return bool(p.is_running() and p.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def head_alive(state: Mapping[str, Any]) -> bool:
    """Whether the head's leader (``ray start --block``, the same process: pid and start time match) still runs."""
    psutil = psutil_module()
    try:
        leader = psutil.Process(int(state["leader_pid"]))
        created = state.get("leader_create_time")
        if created is not None and abs(leader.create_time() - float(created)) > 1.0:
            return False
        return _running(leader)
    except (psutil.Error, KeyError, ValueError, TypeError):
        return False


def head_processes(state: Mapping[str, Any]) -> list[Any]:
    """Live processes of a head gpuarb started: its leader's session, plus anything carrying its marker.

    Ray keeps its daemons and workers in the leader's session; job drivers get sessions of their own but inherit
    the marker variable. A process counts only when it shows the marker, the temp dir, or is the leader itself,
    so a reused pid or session id never makes gpuarb kill a stranger.
    """
    psutil = psutil_module()
    leader_pid = int(state["leader_pid"])
    marker = f"{HEAD_MARKER_ENV}={state['marker']}"
    temp_dir = str(state["temp_dir"])
    leader_ok = head_alive(state)
    found: list[Any] = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        if p.pid == os.getpid() or not _running(p):
            continue
        try:
            same_session = os.getsid(p.pid) == leader_pid
        except OSError:
            continue
        if p.pid == leader_pid:
            if leader_ok:
                found.append(p)
            continue
        cmdline = " ".join(p.info.get("cmdline") or [])
        try:
            env = p.environ()
        except psutil.Error:
            env = {}
        marked = env.get(HEAD_MARKER_ENV) == state["marker"] or temp_dir in cmdline or marker in cmdline
        if marked or (same_session and leader_ok):
            found.append(p)
    return found


def _wait_gone(pids: list[int], timeout: float) -> None:
    psutil = psutil_module()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                alive.append(_running(psutil.Process(pid)))
            except psutil.Error:
                alive.append(False)
        if not any(alive):
            return
        time.sleep(0.2)


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free right now on every interface."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _log_tail(path: Path) -> str:
    """The last meaningful line of the `ray start` log, for a one-line error."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    return lines[-1][-300:] if lines else "no output"
