"""A failed local (Ray) job says why in its one-line message: the job's last meaningful output, e.g. the
`ModuleNotFoundError: No module named 'torch'` of the README's example run where torch is not installed.

Ray's FAILED message is "Job entrypoint command failed with exit code N, last available logs (truncated to 20,000
chars):" followed by the job's last 10 log lines, or "... exit code N. No logs available." (ray 2.x,
dashboard/modules/job/job_supervisor.py and job_log_storage_client.py: NUM_LOG_LINES_ON_ERROR = 10); the job's log
starts with Ray's own lines ("<time> INFO job_manager.py:581 -- Runtime env is setting up.", "Running entrypoint for
job ..."). The messages below are shaped exactly so. The last test runs examples/train.py on a real Ray head with
`python -S` (no site-packages: no torch), as a machine without torch runs it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from arbitrage.launch.backend import Handle, JobState
from arbitrage.launch.ray.backend import RayBackend
from arbitrage.launch.ray.status import EXCERPT_CHARS, classify, failure_message, has_log_tail, log_excerpt
from tests.conftest import ROOT

HAS_RAY = importlib.util.find_spec("ray") is not None and importlib.util.find_spec("aiohttp") is not None
RAY_HEAD = "Job entrypoint command failed with exit code 1, last available logs (truncated to 20,000 chars):\n"
JOB_LOG = """2026-12-01 21:56:25,902\tINFO job_manager.py:581 -- Runtime env is setting up.
Running entrypoint for job gpuarb-x-a1-attempt1: cd /work/main && exec bash -c 'python examples/train.py --steps 300'
Traceback (most recent call last):
  File "/work/main/examples/train.py", line 231, in <module>
    sys.exit(main())
             ^^^^^^
  File "/work/main/examples/train.py", line 118, in train
    import torch
ModuleNotFoundError: No module named 'torch'
"""
TORCH = "ModuleNotFoundError: No module named 'torch' (at /work/main/examples/train.py line 118)"


def test_a_python_exception_is_shown_with_where_it_was_raised() -> None:
    assert log_excerpt(JOB_LOG) == TORCH
    status = classify("FAILED", driver_exit_code=1, error_type="JOB_ENTRYPOINT_COMMAND_ERROR",
                      message=RAY_HEAD + JOB_LOG)
    assert status.state is JobState.FAILED
    assert status.message == f"Job entrypoint command failed with exit code 1: {TORCH}"


def test_a_traceback_cut_to_its_last_ten_lines_still_names_the_exception() -> None:
    frames = "".join(f'  File "/src/lib{i}.py", line {i}, in f{i}\n    f{i + 1}()\n' for i in range(20))
    tail = "\n".join((frames + "KeyError: 'learning_rate'\n").splitlines()[-10:])  # no "Traceback" header left
    assert log_excerpt(tail) == "KeyError: 'learning_rate' (at /src/lib19.py line 19)"


@pytest.mark.parametrize(("log", "excerpt"), [
    ("bash: line 1: pyhton: command not found\n", "bash: line 1: pyhton: command not found"),
    ("loading data\nepoch 1\nerror: out of disk space\n", "loading data | epoch 1 | error: out of disk space"),
    ("a\nb\nc\nd\n\n\n", "b | c | d"),
    ("\x1b[31mRuntimeError: CUDA error: no kernel image\x1b[0m\n", "RuntimeError: CUDA error: no kernel image"),
    # an exception the job caught and logged long before its real end is not "the" cause
    ("ValueError: bad row 7, skipped\nrow 8\nrow 9\nfatal: 3 rows bad\n", "row 8 | row 9 | fatal: 3 rows bad"),
])
def test_without_an_exception_the_last_lines_are_shown(log: str, excerpt: str) -> None:
    assert log_excerpt(log) == excerpt


def test_the_excerpt_is_one_bounded_line_and_rays_own_lines_are_not_output() -> None:
    long = log_excerpt("x" * 5000 + "\n")
    assert len(long) == EXCERPT_CHARS and long.endswith("...")
    ray_only = JOB_LOG.split("Traceback")[0]
    assert log_excerpt(ray_only) == ""
    assert failure_message(RAY_HEAD + ray_only) == "Job entrypoint command failed with exit code 1 (no output)"
    for status in (classify("FAILED", driver_exit_code=1, message=RAY_HEAD + JOB_LOG * 3),
                   classify("FAILED", driver_exit_code=2, message="Job entrypoint command failed with exit code 2. "
                            "No logs available.", logs="a\n" * 50 + "usage: train.py [-h]\n")):
        assert "\n" not in status.message and len(status.message) < 400


def test_no_logs_in_rays_message_takes_the_logs_the_backend_read() -> None:
    message = "Job entrypoint command failed with exit code 1. No logs available."
    assert not has_log_tail(message) and has_log_tail(RAY_HEAD + JOB_LOG)
    assert classify("FAILED", driver_exit_code=1, message=message, logs=JOB_LOG).message == (
        f"Job entrypoint command failed with exit code 1: {TORCH}")
    assert classify("FAILED", driver_exit_code=1, message=message).message == (
        "Job entrypoint command failed with exit code 1 (no output)")


def test_messages_that_are_not_rays_entrypoint_failure_keep_their_first_line() -> None:
    failed = classify("FAILED", driver_exit_code=3, message="\nJob entrypoint command failed with exit code 3\nx")
    assert failed.message == "Job entrypoint command failed with exit code 3"
    setup = classify("FAILED", error_type="RUNTIME_ENV_SETUP_FAILURE",
                     message="Failed to set up runtime environment.\npip install failed")
    assert setup.message == "Failed to set up runtime environment."
    crash = classify("FAILED", error_type="JOB_ENTRYPOINT_COMMAND_START_ERROR",
                     message='Traceback (most recent call last):\n  File "/ray/job_supervisor.py", line 9, in run\n'
                             "FileNotFoundError: [Errno 2] No such file or directory: '/gone'\n")
    assert crash.message == ("FileNotFoundError: [Errno 2] No such file or directory: '/gone' "
                             "(at /ray/job_supervisor.py line 9)")
    assert classify("FAILED", driver_exit_code=-9).message == "killed by SIGKILL (exit code -9)"  # a preemption


class _JobsApi:
    """Ray's JobSubmissionClient as RayBackend uses it: get_job_info (a JobDetails) and get_job_logs (text)."""

    def __init__(self, message: str, logs: str) -> None:
        self.message, self.text, self.log_reads = message, logs, 0

    def get_job_info(self, sid: str) -> Any:
        return SimpleNamespace(status="FAILED", driver_exit_code=1, error_type="JOB_ENTRYPOINT_COMMAND_ERROR",
                               message=self.message)

    def get_job_logs(self, sid: str) -> str:
        self.log_reads += 1
        return self.text


@pytest.mark.parametrize("ray_kept_the_tail", [True, False])
def test_the_backend_reads_the_jobs_logs_only_when_ray_kept_none(tmp_path: Path, ray_kept_the_tail: bool) -> None:
    url = "http://127.0.0.1:8265"
    backend = RayBackend(address=url, state_dir=tmp_path)
    sid = "gpuarb-r1-a1-attempt1"
    backend.states.write("gpuarb-r1-a1", {"name": "gpuarb-r1-a1", "mode": "address", "address": url,
                                          "dashboard_url": url, "started_at": "2026-11-23T12:00:00+00:00",
                                          "jobs": {sid: {"run_id": "r1", "attempt": 1, "cancel_requested": False}}})
    api = _JobsApi(RAY_HEAD + JOB_LOG if ray_kept_the_tail else
                   "Job entrypoint command failed with exit code 1. No logs available.", JOB_LOG)
    backend._clients[url] = api
    handle = Handle(backend="local", cluster_name="gpuarb-r1-a1", job_id=sid)
    status = backend.status(handle)
    assert status.state is JobState.FAILED
    assert status.message == f"Job entrypoint command failed with exit code 1: {TORCH}"
    assert api.log_reads == (0 if ray_kept_the_tail else 1)
    assert backend.status(handle).message == status.message and api.log_reads <= 1  # remembered, not re-read


@pytest.mark.skipif(not HAS_RAY, reason="needs ray[default] (pip install 'ray[default]')")
@pytest.mark.filterwarnings("ignore:ssl=None is deprecated:DeprecationWarning")
def test_the_example_without_torch_fails_naming_the_missing_module(tmp_path: Path, facts: Any) -> None:
    from tests.test_ray_backend import make_request, wait_state

    spec = tmp_path / "job.yaml"
    spec.write_text("name: local-cpu-example\nresources: {accelerators: 'H100:1'}\n"
                    f"workdir: {json.dumps(str(ROOT))}\n"
                    "run: python -S examples/train.py --steps 5 --checkpoint-every 0\n"
                    "arbitrage:\n  work: {hours: 0.1}\n")
    backend = RayBackend(state_dir=tmp_path / "ray", num_cpus=1, stop_grace_s=5)
    handle = backend.launch(make_request(spec, facts, run_id="notorch", cluster="gpuarb-notorch",
                                         ckpt=tmp_path / "ck"))
    try:
        status = wait_state(backend, handle, {JobState.FAILED, JobState.PREEMPTED, JobState.SUCCEEDED}, 120)
    finally:
        backend.teardown(handle)
    assert status.state is JobState.FAILED, status
    assert status.message.startswith("Job entrypoint command failed with exit code 1: ModuleNotFoundError: "
                                     "No module named 'torch' (at ")
    assert "examples/train.py line" in status.message and "\n" not in status.message
