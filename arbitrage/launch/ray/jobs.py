"""What gpuarb submits to Ray for a launch (pure): the entrypoint, working directory, environment and ids."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from arbitrage.launch.backend import (
    ENV_CHECKPOINT_DIR,
    ENV_METRICS,
    METRICS_FILE,
    LaunchError,
    LaunchRequest,
    gpuarb_envs,
)


def spec_dir(spec_path: str) -> Path:
    """The directory relative paths in a spec are resolved against: the spec file's, or the cwd for text specs."""
    path = Path(spec_path)
    return path.resolve().parent if path.is_file() else Path.cwd()


def job_workdir(task: Mapping[str, Any], spec_path: str) -> Path:
    """The job's working directory: the spec's ``workdir`` relative to the spec file's directory (default: it).

    SkyPilot resolves ``workdir`` against the current directory; gpuarb resolves it against the spec file, so
    ``gpuarb run jobspecs/x.yaml`` behaves the same from anywhere.
    """
    base = spec_dir(spec_path)
    workdir = task.get("workdir")
    if workdir is None:
        return base
    if not isinstance(workdir, str):
        raise LaunchError(f"{spec_path}: workdir: the local backend needs a directory path, got {workdir!r}")
    return (base / Path(workdir).expanduser()).resolve()


def entrypoint(task: Mapping[str, Any], cwd: Path | None, spec_path: str) -> str:
    """The shell command Ray runs: cd to the workdir, run ``setup`` (stop if it fails), then exec ``run``."""
    run = task.get("run")
    if not isinstance(run, str) or not run.strip():
        raise LaunchError(f"{spec_path}: run: the job has no run command")
    parts = [f"cd {shlex.quote(str(cwd))}"] if cwd is not None else []
    setup = task.get("setup")
    if isinstance(setup, str) and setup.strip():
        parts.append(f"bash -c {shlex.quote(setup)}")
    parts.append(f"exec bash -c {shlex.quote(run)}")
    return " && ".join(parts)


def job_env(req: LaunchRequest) -> dict[str, str]:
    """The job's environment: the spec's envs and secrets, then the GPUARB_* variables (req.envs wins)."""
    env: dict[str, str] = {}
    for key in ("envs", "secrets"):
        values = req.spec.task.get(key) or {}
        for name, value in values.items():
            if value is None and name not in req.envs:
                raise LaunchError(f"{req.spec.path}: {key}.{name}: no value (set it in the spec)")
            if value is not None:
                env[str(name)] = str(value)
    env.update(gpuarb_envs(req))
    if req.checkpoint is not None:  # a relative local directory is relative to the spec file
        mount = Path(req.checkpoint.mount_path).expanduser()
        if not mount.is_absolute():
            env[ENV_CHECKPOINT_DIR] = str(spec_dir(req.spec.path) / mount)
            env[ENV_METRICS] = str(spec_dir(req.spec.path) / mount / METRICS_FILE)
    env.update({str(k): str(v) for k, v in req.envs.items()})
    return env


def submission(req: LaunchRequest, *, attached: bool, entrypoint_num_gpus: float | None) -> dict[str, Any]:
    """Keyword arguments for JobSubmissionClient.submit_job (without ids and metadata).

    On a head gpuarb started here the job runs in place (cd to its workdir); on an ``attached`` cluster the
    Jobs SDK uploads the workdir as the job's working_dir.
    """
    workdir = job_workdir(req.spec.task, req.spec.path)
    if not workdir.is_dir():
        raise LaunchError(f"{req.spec.path}: workdir: {workdir} is not a directory")
    runtime_env: dict[str, Any] = {"env_vars": job_env(req)}
    if not attached:
        command = entrypoint(req.spec.task, workdir, req.spec.path)  # same machine: run in place
    else:
        command = entrypoint(req.spec.task, None, req.spec.path)
        runtime_env["working_dir"] = str(workdir)  # uploaded to the cluster by the Jobs SDK
    result: dict[str, Any] = {"entrypoint": command, "runtime_env": runtime_env}
    if entrypoint_num_gpus:
        result["entrypoint_num_gpus"] = entrypoint_num_gpus
    return result


def job_metadata(req: LaunchRequest) -> dict[str, str]:
    """The metadata a submitted job carries, so it can be traced back to its run and attempt on the cluster."""
    return {"gpuarb_run_id": req.run_id, "gpuarb_attempt": str(req.attempt), "gpuarb_cluster": req.cluster_name}


def submission_id(cluster_name: str, attempt: int, taken: Callable[[str], bool]) -> str:
    """``<cluster>-attempt<n>``, with ``-2``, ``-3``... appended while ``taken`` says the id exists on the cluster."""
    base = f"{cluster_name}-attempt{attempt}"
    candidate, n = base, 1
    while taken(candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate
