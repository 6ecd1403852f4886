"""Translate one launch request into a SkyPilot task (YAML form) pinned to its placement. Pure: no I/O, no sky.

The task is the user's SkyPilot task (setup, run, envs, file_mounts, workdir, secrets, config...) with
gpuarb's fields removed (the ``arbitrage:`` block, any-of / ordered accelerators, the cloud choice) and
``resources`` replaced by the one placement the planner chose: cloud/region/zone, instance type,
accelerators, spot and node count. Spot placements run as SkyPilot managed jobs with a recovery
strategy; on-demand clusters carry autodown. The checkpoint bucket is mounted at the checkpoint path
and exported as GPUARB_CHECKPOINT_DIR with the interval and a resume hint.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import yaml

from arbitrage.egress import is_local_zone
from arbitrage.errors import LaunchError
from arbitrage.geo import is_aws_az_name, zone_pin_matches
from providers.registry import find

if TYPE_CHECKING:  # launch.backend is left out at import: `gpuarb plan` reads price_estimate from here
    from arbitrage.costmodel import Placement
    from arbitrage.launch.backend import LaunchRequest

LaunchMode = Literal["managed", "cluster"]

# RunPod's GPU type (the tail of our instance name) -> SkyPilot's RunPod accelerator name
# (sky/catalog/data_fetchers/fetch_runpod.py: display name with spaces as '-', plus its overrides).
_RUNPOD_ACCELERATORS = {
    "A100 80GB PCIe": "A100-80GB",
    "A100-SXM4-80GB": "A100-80GB-SXM",
    "B200": "B200",
    "H100 80GB HBM3": "H100-SXM",
    "H100 NVL": "H100-NVL",
    "H100 PCIe": "H100",
    "H200": "H200-SXM",
}

# SkyPilot 0.14 task fields passed through unchanged (name, resources, num_nodes, envs, file_mounts are written).
_PASS_FIELDS = ("workdir", "setup", "run", "secrets", "event_callback", "config", "volumes", "inputs", "outputs")
# Fields a job spec may carry that a pinned `sky launch` / `sky jobs launch` ignores or rejects.
_DROPPED_FIELDS = {
    "service": "a SkyServe service section is ignored by sky launch and sky jobs launch",
    "pool": "a pool section is ignored by sky launch and sky jobs launch",
}
_REJECTED_FIELDS = {
    "experimental": "not a SkyPilot 0.14 task field (write its config_overrides under config:)",
    "job": "not a SkyPilot 0.14 task field",
}

# Resource fields that choose the placement: gpuarb decides these, so the user's values never reach SkyPilot.
_PLACEMENT_RESOURCE_FIELDS = frozenset({
    "cloud", "region", "zone", "infra", "accelerators", "instance_type", "use_spot", "cpus", "memory",
    "any_of", "ordered", "autostop", "job_recovery", "spot_recovery", "gpus",
})

# Managed-job recovery for spot: FAILOVER retries the pinned region first after a preemption
# (EAGER_NEXT_REGION would leave it, and a pinned task has nowhere else to go). Job failures
# (non-zero exit) are not retried by SkyPilot: the gpuarb runner decides about those.
DEFAULT_JOB_RECOVERY = {"strategy": "FAILOVER", "max_restarts_on_errors": 0}

# Object-store schemes SkyPilot mounts directly (sky/data/storage.py::Storage._validate_source).
_BUCKET_SCHEMES = frozenset({"s3", "gs", "r2", "nebius", "cw", "oci"})
_AZURE_BLOB = re.compile(r"^(?P<account>[a-z0-9]+)\.blob\.core\.windows\.net$")
_AZURE_DFS = re.compile(r"^(?P<container>[^@/]+)@(?P<account>[a-z0-9]+)\.dfs\.core\.windows\.net$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REDACTED = "<redacted>"


@dataclass(frozen=True, slots=True)
class SkyPin:
    """What the task pins for one placement, in SkyPilot's words; ``note`` says what SkyPilot still picks.

    ``estimate`` is empty when the pin makes SkyPilot launch exactly what gpuarb priced; otherwise it says why the
    launched price may differ (SkyPilot chooses the zone, the marketplace offer or the bid), so the plan's price for
    this placement is an estimate and the launched price is what the cloud bills.
    """

    cloud: str
    region: str | None
    zone: str | None
    instance_type: str | None
    accelerator: str | None
    count: int
    note: str = ""
    estimate: str = ""

    @property
    def price_exact(self) -> bool:
        """True when SkyPilot launches exactly the offer that was priced."""
        return not self.estimate

    @property
    def infra(self) -> str:
        """SkyPilot's ``infra`` string: cloud[/region[/zone]]."""
        return "/".join(p for p in (self.cloud, self.region, self.zone if self.region else None) if p)


def placement_label(placement: Placement) -> str:
    """One-line name of a placement for messages: 'aws us-east-1/use1-az4 p5.48xlarge spot x2'."""
    o = placement.offer
    nodes = f" x{placement.nodes}" if placement.nodes > 1 else ""
    return f"{o.provider} {o.location} {o.instance_type} {'spot' if placement.spot else 'on-demand'}{nodes}"


def unsupported_reason(placement: Placement) -> str | None:
    """Why SkyPilot cannot launch this placement at all (one line), or None when it can."""
    try:
        pin(placement)
    except LaunchError as exc:
        return str(exc)
    return None


def price_estimate(placement: Placement, zone_names: Mapping[str, str] | None = None) -> str:
    """Why a launch may not run at the placement's price ('' when the pin launches exactly what was priced).

    For the plan and the dry run: a non-empty answer means the price shown is an estimate. A placement SkyPilot
    cannot launch at all has no SkyPilot price to differ from, so '' (``unsupported_reason`` says why).
    """
    try:
        return pin(placement, zone_names).estimate
    except LaunchError:
        return ""


def pin(placement: Placement, zone_names: Mapping[str, str] | None = None) -> SkyPin:
    """The SkyPilot cloud/region/zone/instance/accelerator a placement maps to; LaunchError when none.

    The provider's card says how (providers/registry.py): its SkyPilot cloud, whether the zone and the
    accelerator are pinned, or a named special pin; or the one-line reason SkyPilot cannot launch it.
    ``zone_names`` maps zone IDs to the zone names SkyPilot validates a task's zone against (for AWS, this
    account's names: SkyPilot's catalog maps its zone IDs to them per account with DescribeAvailabilityZones);
    a zone found there is pinned by that name and the price is exact. Without it, AWS zones are left to SkyPilot.
    """
    o = placement.offer
    label = placement_label(placement)
    info = find(o.provider)
    if info is not None and info.not_skypilot is not None:
        raise LaunchError(f"{label}: {info.not_skypilot}")
    how = info.skypilot if info is not None else None
    if how is None:
        raise LaunchError(f"{label}: provider '{o.provider}' has no SkyPilot cloud")
    if how.special is not None:
        return _SPECIAL_PINS[how.special](placement, label, how.cloud)
    accelerator = o.accelerator if how.pin_accelerator else None
    named = (zone_names or {}).get(o.zone) if o.zone and not how.pin_zone else None
    if how.pin_zone or named:
        return SkyPin(how.cloud, o.region, named or o.zone, o.instance_type, accelerator, o.gpus_per_node)
    note = how.zone_note.format(zone=o.zone) if o.zone else ""
    sky_pin = SkyPin(how.cloud, o.region, None, o.instance_type, accelerator, o.gpus_per_node, note)
    if o.zone and (placement.spot or is_local_zone(o.zone)):
        kind = "Local Zone" if is_local_zone(o.zone) else "zone"
        market = "spot" if placement.spot else "on-demand"
        sky_pin = replace(sky_pin, estimate=(
            f"{kind} {o.zone} is not pinned, so SkyPilot picks the zone of {o.region} (the cheapest in its catalog "
            f"first) and the {market} price there may differ from {o.zone}'s"))
    return sky_pin


def request_pin(req: LaunchRequest, zone_names: Mapping[str, str] | None = None) -> SkyPin:
    """``pin`` for a launch, honouring the task's own AWS zone pin: a task that pins an Availability Zone by name
    (us-east-1a) launches there. gpuarb priced one of that region's zone IDs, and which ID the name is depends on
    the account, so the zone's price is an estimate (geo.zone_pin_matches)."""
    sky_pin = pin(req.placement, zone_names)
    o = req.placement.offer
    if sky_pin.zone is not None or o.provider != "aws" or not o.zone:
        return sky_pin
    named = next((c.zone for c in req.spec.candidates if c.zone and is_aws_az_name(c.zone)
                  and zone_pin_matches(o.provider, o.region, o.zone, c.zone)), None)
    if named is None:
        return sky_pin
    return replace(sky_pin, zone=named, note="", estimate=(
        f"the task pins zone {named}; gpuarb priced zone ID {o.zone} of {o.region}, and AWS maps zone names to IDs "
        f"per account, so the {'spot' if req.placement.spot else 'on-demand'} price in {named} may differ")
        if req.placement.spot or is_local_zone(o.zone) else "")


def _runpod_pin(placement: Placement, label: str, cloud: str) -> SkyPin:
    o = placement.offer
    if o.region == "community" or o.region.startswith("community-"):
        raise LaunchError(f"{label}: SkyPilot launches RunPod Secure Cloud only, not Community Cloud")
    gpu = o.instance_type.split(" NVIDIA ", 1)[-1]
    accelerator = _RUNPOD_ACCELERATORS.get(gpu)
    if accelerator is None:
        raise LaunchError(f"{label}: no SkyPilot RunPod accelerator name for GPU type '{gpu}'")
    # A RunPod data centre id such as us-tx-3 / eu-ro-1 is SkyPilot's zone US-TX-3 / EU-RO-1 in
    # region US / RO (the country; fetch_runpod.py REGION_ZONES).
    parts = o.region.upper().split("-")
    if len(parts) < 3:
        raise LaunchError(f"{label}: '{o.region}' is not a RunPod data centre id such as us-tx-3")
    country = parts[0] if parts[0] in ("US", "CA") else parts[1]
    # Secure Cloud's on-demand price is one per GPU type and count whatever the data centre, so a pinned data
    # centre, GPU and count launch at the price; an interruptible pod's price is a bid (RunPod docs 'Pricing').
    estimate = ("interruptible pods are rented by bid: SkyPilot bids its own catalog's spot price, which may "
                "differ from the minimum bid gpuarb priced") if placement.spot else ""
    return SkyPin(cloud, country, o.region.upper(), None, accelerator, o.gpus_per_node,
                  "instance type left to SkyPilot (its RunPod Secure Cloud type for this GPU and count)", estimate)


def _vast_pin(placement: Placement, label: str, cloud: str) -> SkyPin:
    o = placement.offer
    gpu = o.instance_type.split("-", 1)[1] if "-" in o.instance_type else ""
    # A100 names carry the memory class ('1x-A100_SXM4-80GB'), which is not part of Vast's GPU name.
    gpu = re.sub(r"-\d+GB$", "", gpu, flags=re.IGNORECASE)
    # SkyPilot's Vast catalog names GPUs without the form factor (fetch_vast.py strips PCIE/SXM4/SXM/NVL).
    accelerator = re.sub(r"_?(PCIE|SXM4|SXM|NVL)$", "", gpu, flags=re.IGNORECASE).replace("_", "")
    if not accelerator:
        raise LaunchError(f"{label}: cannot read a GPU name from '{o.instance_type}'")
    where = f" ({o.country})" if o.country else ""
    offer = o.zone.removeprefix("offer-") if o.zone and o.zone.startswith("offer-") else ""
    # sky/provision/vast/utils.py launch(): it searches offers by GPU name, count, disk and the region's country
    # and rents the first one found; a task cannot name the offer, and gpuarb's host places are not SkyPilot's
    # catalog region names, so the region is left to SkyPilot too.
    estimate = (f"SkyPilot rents the first Vast.ai offer it finds for this GPU and count, in any country; gpuarb "
                f"priced {'offer ' + offer if offer else 'a listing'} in {o.region}{where}")
    return SkyPin(cloud, None, None, None, accelerator, o.gpus_per_node,
                  "SkyPilot picks the Vast.ai offer, host and country", estimate)


# The named special pins a provider card may ask for (ProviderInfo.skypilot.special).
_SPECIAL_PINS: dict[str, Callable[[Placement, str, str], SkyPin]] = {"runpod": _runpod_pin, "vast": _vast_pin}


def launch_mode(req: LaunchRequest) -> LaunchMode:
    """Spot placements run as SkyPilot managed jobs (recovered after preemption); on-demand as a cluster."""
    return "managed" if req.placement.spot else "cluster"


def checkpoint_mount(uri: str) -> dict[str, Any]:
    """A SkyPilot storage mount (file_mounts value) for a checkpoint bucket URI, read-write (MOUNT mode).

    SkyPilot mounts whole buckets, so a path inside the bucket goes to ``_bucket_sub_path`` (the field
    SkyPilot's own managed-jobs code uses for sub-path mounts): the job sees exactly its own prefix.
    """
    scheme, sep, rest = uri.partition("://")
    scheme = scheme.lower() if sep else ""
    if scheme in ("", "file"):
        raise LaunchError(f"checkpoint uri '{uri}' is a local path a cloud cluster cannot reach: "
                          "use a bucket (s3://, gs://, az://, r2://...) or --backend local")
    mount: dict[str, Any]
    if scheme == "gcs":
        scheme = "gs"
    if scheme in _BUCKET_SCHEMES:
        bucket, _, prefix = rest.partition("/")
        mount = {"source": f"{scheme}://{bucket}"}
    elif scheme == "az":
        # az://container/path names no storage account: SkyPilot uses its configured one (azure.storage_account).
        bucket, _, prefix = rest.partition("/")
        mount = {"name": bucket, "store": "azure"}
    elif scheme == "https" and _AZURE_BLOB.match(rest.partition("/")[0]):
        host, _, path = rest.partition("/")
        bucket, _, prefix = path.partition("/")
        mount = {"source": f"https://{host}/{bucket}"}
    elif scheme in ("abfs", "abfss") and (m := _AZURE_DFS.match(rest.partition("/")[0])):
        bucket, prefix = m["container"], rest.partition("/")[2]
        mount = {"source": f"https://{m['account']}.blob.core.windows.net/{bucket}"}
    else:
        raise LaunchError(f"checkpoint uri '{uri}': SkyPilot cannot mount '{scheme}://' "
                          "(use s3://, gs://, az://, r2://, nebius://, cw://, oci:// or an Azure blob https:// URL)")
    if not bucket:
        raise LaunchError(f"checkpoint uri '{uri}' names no bucket")
    mount.update({"mode": "MOUNT", "persistent": True})
    if prefix.strip("/"):
        mount["_bucket_sub_path"] = prefix.strip("/")
    return mount


def _env_value(name: str, value: Any, where: str) -> str:
    if value is None:
        raise LaunchError(f"{where}: envs.{name} has no value (SkyPilot needs one; use \"\" for empty)")
    return str(value)  # as SkyPilot reads envs: str(True) == 'True', str(8) == '8'


def job_envs(req: LaunchRequest) -> dict[str, str]:
    """The job's environment: the spec's envs, then GPUARB_* from the request (the runner's envs win)."""
    where = req.spec.path
    envs: dict[str, str] = {}
    for name, value in (req.spec.task.get("envs") or {}).items():
        envs[str(name)] = _env_value(str(name), value, where)
    from arbitrage.launch.backend import gpuarb_envs

    envs.update(gpuarb_envs(req))
    envs.update({str(k): str(v) for k, v in req.envs.items()})
    bad = [k for k in envs if not _ENV_NAME.match(k)]
    if bad:
        raise LaunchError(f"{where}: envs.{bad[0]}: not a valid environment variable name")
    return envs


def _user_resource_fields(req: LaunchRequest) -> dict[str, Any]:
    """The user's resource fields that do not choose the placement (disk_size, ports, image_id, labels...)."""
    resources = dict(req.spec.task.get("resources") or {})
    kept = {k: v for k, v in resources.items() if k not in _PLACEMENT_RESOURCE_FIELDS}
    # With any_of / ordered, the chosen entry's own extra fields (e.g. its disk_size) apply too.
    offer = req.placement.offer
    names = {offer.accelerator.lower(), offer.gpu_model.lower()}
    for entry in resources.get("ordered") or resources.get("any_of") or []:
        if isinstance(entry, dict) and names & _accelerator_names(entry.get("accelerators")):
            kept.update({k: v for k, v in entry.items() if k not in _PLACEMENT_RESOURCE_FIELDS})
            break
    return kept


def _accelerator_names(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value.partition(":")[0].strip().lower()}
    if isinstance(value, dict):
        return {str(k).partition(":")[0].strip().lower() for k in value}
    if isinstance(value, list):
        return {str(v).partition(":")[0].strip().lower() for v in value}
    return set()


def _resources(req: LaunchRequest, sky_pin: SkyPin) -> dict[str, Any]:
    res: dict[str, Any] = {"infra": sky_pin.infra}
    if sky_pin.instance_type:
        res["instance_type"] = sky_pin.instance_type
    if sky_pin.accelerator:
        res["accelerators"] = {sky_pin.accelerator: sky_pin.count}
    res["use_spot"] = req.placement.spot
    res.update(_user_resource_fields(req))
    if launch_mode(req) == "managed":
        user_resources = req.spec.task.get("resources") or {}
        # spot_recovery is SkyPilot's older name for job_recovery (sky/resources.py still reads it).
        user_recovery = user_resources.get("job_recovery") or user_resources.get("spot_recovery")
        recovery = dict(DEFAULT_JOB_RECOVERY)
        if isinstance(user_recovery, str):
            recovery["strategy"] = user_recovery
        elif isinstance(user_recovery, dict):
            recovery.update(user_recovery)
        res["job_recovery"] = recovery
    else:
        # What sky.launch(down=True, idle_minutes_to_autostop=N) sets: autodown after N idle minutes.
        res["autostop"] = {"idle_minutes": req.idle_minutes_to_autostop, "down": True}
    return res


def task_config(req: LaunchRequest, zone_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The SkyPilot task (a plain dict in task-YAML form) that runs ``req`` on exactly its placement.

    ``zone_names``: see ``pin`` (zone IDs -> the names SkyPilot validates; pins AWS zones when given).
    """
    task = req.spec.task
    where = req.spec.path
    for field_name, why in _REJECTED_FIELDS.items():
        if field_name in task:
            raise LaunchError(f"{where}: {field_name}: {why}")
    if not task.get("run"):
        raise LaunchError(f"{where}: run: required to launch (the command the job runs)")
    config: dict[str, Any] = {"name": task.get("name") or req.spec.name}
    config["resources"] = _resources(req, request_pin(req, zone_names))
    config["num_nodes"] = req.placement.nodes
    for field_name in _PASS_FIELDS:
        if task.get(field_name) is not None:
            config[field_name] = task[field_name]
    base = _spec_dir(req.spec.path)
    if isinstance(config.get("workdir"), str):
        config["workdir"] = _local_path(config["workdir"], base)
    config["envs"] = job_envs(req)
    mounts = {dst: _local_sources(src, base) for dst, src in (task.get("file_mounts") or {}).items()}
    if req.checkpoint is not None and req.checkpoint.mount_path not in mounts:
        try:
            mounts[req.checkpoint.mount_path] = checkpoint_mount(req.checkpoint.uri)
        except LaunchError as exc:
            raise LaunchError(f"{placement_label(req.placement)}: {exc}") from None
    if mounts:
        config["file_mounts"] = mounts
    return config


def _spec_dir(path: str) -> str:
    """The job file's folder: relative local paths in a job spec are relative to it."""
    return "" if path.startswith("<") else os.path.dirname(path)


def _local_path(path: str, base: str) -> str:
    """A relative local path made relative to the spec's folder; URLs, absolute and ~ paths unchanged."""
    if "://" in path or os.path.isabs(path) or path.startswith("~") or not base:
        return path
    return os.path.normpath(os.path.join(base, path))


def _local_sources(source: Any, base: str) -> Any:
    """A file_mounts value with its local source path(s) resolved against the spec's folder."""
    if isinstance(source, str):
        return _local_path(source, base)
    if isinstance(source, dict) and "source" in source:
        src = source["source"]
        resolved = [_local_path(s, base) for s in src] if isinstance(src, list) else (
            _local_path(src, base) if isinstance(src, str) else src)
        return {**source, "source": resolved}
    return source


class _TaskDumper(yaml.SafeDumper):
    """YAML dumper that writes multi-line strings (run/setup scripts) as literal blocks."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_TaskDumper.add_representer(str, _str_representer)


def launch_command(req: LaunchRequest) -> str:
    """The SkyPilot CLI command equivalent to what the backend does with this task."""
    if launch_mode(req) == "managed":
        return f"sky jobs launch -n {req.cluster_name} task.yaml"
    return f"sky launch -c {req.cluster_name} --down -i {req.idle_minutes_to_autostop} task.yaml"


def task_yaml(req: LaunchRequest, zone_names: Mapping[str, str] | None = None) -> str:
    """The task as YAML, headed by comments naming the run, the placement and its price source (and, when the pin
    cannot make SkyPilot launch exactly what was priced, that the price is an estimate and why); secrets redacted."""
    config = task_config(req, zone_names)
    shown = dict(config)
    if isinstance(shown.get("secrets"), dict):
        shown["secrets"] = {k: (None if v is None else _REDACTED) for k, v in shown["secrets"].items()}
    p, o = req.placement, req.placement.offer
    sky_pin = request_pin(req, zone_names)
    mode = ("managed job (SkyPilot recovers it after a preemption)" if launch_mode(req) == "managed"
            else f"cluster, torn down after {req.idle_minutes_to_autostop} idle minutes")
    header = [
        f"# SkyPilot task generated by gpuarb: run {req.run_id}, attempt {req.attempt}",
        f"# placement: {placement_label(p)}, ${p.hourly_usd:.4f}/h for the cluster "
        f"({o.source}, as of {o.as_of}, {o.price_ref})",
        f"# launch: {mode}; equivalent to: {launch_command(req)}",
    ]
    if sky_pin.note:
        header.append(f"# note: {sky_pin.note}")
    if sky_pin.estimate:
        billed = ("a managed job is billed at this price (its jobs controller does not say where it launched)"
                  if launch_mode(req) == "managed" else
                  "the run records where SkyPilot launched and bills SkyPilot's price there")
        header.append(f"# price: estimate, ${p.hourly_usd:.4f}/h as priced; {sky_pin.estimate}; {billed}")
    dropped = [f"{k} ({why})" for k, why in _DROPPED_FIELDS.items() if k in req.spec.task]
    if dropped:
        header.append(f"# not passed to SkyPilot: {'; '.join(dropped)}")
    if shown.get("secrets") != config.get("secrets"):
        header.append("# secrets: values redacted here; the launch sends them")
    body = yaml.dump(shown, Dumper=_TaskDumper, sort_keys=False, default_flow_style=False, width=120,
                     allow_unicode=True)
    return "\n".join(header) + "\n" + body
