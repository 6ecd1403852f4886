"""`gpuarb plan`, `validate` and `schema`: job specs and the ranked plan for one."""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any

import typer

from arbitrage import app as usecases
from arbitrage.cli.common import (
    GpuHoursOption,
    GpusOption,
    HoursOption,
    InfraOption,
    NumNodesOption,
    Objective,
    ObjectiveHelp,
    ReferenceOption,
    RegionOption,
    SourceOption,
    StrictOption,
    TableOrJson,
    TableOrJsonOption,
    UseSpotOption,
    ZoneOption,
    guarded,
    overrides_of,
    say,
)
from arbitrage.errors import SpecError
from arbitrage.params import MAX_ROWS


@guarded
def plan(
    job: Annotated[str, typer.Argument(help="Job spec YAML: any SkyPilot task, with or without an `arbitrage:` "
                                            "block.")],
    top: Annotated[int, typer.Option("--top", "-t", min=0, max=MAX_ROWS, help="Placements to show (0 = all).")] = 5,
    fmt: TableOrJsonOption = TableOrJson.table,
    objective: Annotated[Objective, typer.Option("--objective", case_sensitive=False,
                                                 help=ObjectiveHelp)] = Objective.cost,
    source: SourceOption = None,
    strict: StrictOption = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column (compute, preemption, egress, fabric, age, "
                                                      "risk); default: a table that fits 100 columns.")] = False,
    gpus: GpusOption = None,
    num_nodes: NumNodesOption = None,
    use_spot: UseSpotOption = None,
    infra: InfraOption = None,
    region: RegionOption = None,
    zone: ZoneOption = None,
    hours: HoursOption = None,
    gpu_hours: GpuHoursOption = None,
    reference: ReferenceOption = None,
    now: Annotated[str | None, typer.Option("--now", help="Plan as of this ISO-8601 time (default: now).",
                                            hidden=True)] = None,
) -> None:
    """Rank feasible placements for a job by expected total cost (or finish time), with the breakdown."""
    from arbitrage import render
    from arbitrage.params import parse_now

    facts = usecases.load_facts()
    overrides = overrides_of(gpus, num_nodes, use_spot, infra, region, zone, hours, gpu_hours, reference)
    server = usecases.team_server() if now is None else None
    if server is not None:  # planned on the server, with its prices and credentials
        text, name = usecases.remote_spec(job, overrides, facts)
        shown, error = server.plan(text, name, objective=objective.value, top=top, fmt=fmt.value, wide=wide,
                                   source=None if source is None else source.value, strict=strict)
        typer.echo(shown, nl=False)
        if error is not None:
            raise error
        return
    outcome = usecases.plan_job(job, facts, source=source, objective=objective,
                                now=parse_now(now, usecases.utcnow()), say=say, overrides=overrides,
                                strict=strict)
    if fmt is TableOrJson.json:
        typer.echo(render.plan_json(outcome.plan, top, outcome.now, outcome.catalog))
    else:
        typer.echo(render.plan_text(outcome.plan, top, outcome.catalog, wide))
    verdict = usecases.plan_command_verdict(outcome.plan)
    if verdict is not None:
        raise verdict


class SchemaFormat(str, Enum):
    """`gpuarb schema` prints one document: JSON."""

    json = "json"


@guarded
def schema(
    fmt: Annotated[SchemaFormat, typer.Option("--format", "-f", case_sensitive=False)] = SchemaFormat.json,
) -> None:
    """Print the JSON Schema of job spec files (for editors and CI linting)."""
    import json

    typer.echo(json.dumps(usecases.spec_schema(), indent=2))


_PROBLEM = re.compile(r"^(?P<file>.*?):(?P<line>\d+): (?P<field>[^:]+): (?P<message>.*)$")


@guarded
def validate(
    jobs: Annotated[list[str], typer.Argument(help="Job spec YAML files (any SkyPilot task).")],
    fmt: TableOrJsonOption = TableOrJson.table,
    gpus: GpusOption = None,
    num_nodes: NumNodesOption = None,
    use_spot: UseSpotOption = None,
    infra: InfraOption = None,
    region: RegionOption = None,
    zone: ZoneOption = None,
    hours: HoursOption = None,
    gpu_hours: GpuHoursOption = None,
    reference: ReferenceOption = None,
) -> None:
    """Check job specs and report every problem of each file at once, by line, as file:line: field: message."""
    import json

    facts = usecases.load_facts()
    overrides = overrides_of(gpus, num_nodes, use_spot, infra, region, zone, hours, gpu_hours, reference)
    failed = False
    records: list[dict[str, Any]] = []
    for path in jobs:
        try:
            spec = usecases.read_spec(path, facts, overrides=overrides)
        except SpecError as exc:
            failed = True
            problems = str(exc).splitlines()
            records.append({"file": path, "ok": False, "problems": [_problem(line) for line in problems]})
            if fmt is TableOrJson.table:
                for line in problems:
                    typer.echo(line, err=True)
            continue
        records.append({"file": path, "ok": True, "name": spec.name,
                        "accelerators": [str(a) for a in spec.accelerators], "num_nodes": spec.num_nodes,
                        "work_known": spec.work.known, "notes": list(spec.notes), "problems": []})
        if fmt is TableOrJson.table:
            typer.echo(f"{path}: ok ({spec.name}: {', '.join(map(str, spec.accelerators))} x {spec.num_nodes})")
            for note in spec.notes:
                typer.echo(f"{path}: note: {note}")
    if fmt is TableOrJson.json:
        typer.echo(json.dumps(records, indent=2))
    if failed:
        raise SpecError("")  # every problem is printed above


def _problem(line: str) -> dict[str, Any]:
    """One 'file:line: field: message' line as a record (line and field None where the line has none)."""
    match = _PROBLEM.match(line)
    if match is None:
        return {"line": None, "field": None, "message": line}
    return {"line": int(match["line"]), "field": match["field"], "message": match["message"]}


def register(app: typer.Typer) -> None:
    """Add `plan`, `schema` and `validate`."""
    app.command("plan")(plan)
    app.command("schema")(schema)
    app.command("validate")(validate)
