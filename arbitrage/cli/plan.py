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
from arbitrage.plural import plural


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
    outcome = usecases.plan_job(job, facts, source=source, objective=objective,
                                now=parse_now(now, usecases.utcnow()), say=say, overrides=overrides,
                                strict=strict)
    if fmt is TableOrJson.json:
        typer.echo(render.plan_json(outcome.plan, top, outcome.now, outcome.catalog))
    else:
        _print_plan_table(outcome.plan, top, outcome.catalog, wide)
    verdict = usecases.plan_verdict(outcome.plan, over_budget="best plan is over budget: {total} expected, {hourly}/h",
                                    infeasible="no feasible placement (see the rejection reasons)")
    if verdict is not None:
        raise verdict


def _print_plan_table(result: Any, top: int, catalog: dict[str, Any], wide: bool = False) -> None:
    """The ranked table, then the explanation, rejections and provenance as plain lines."""
    from arbitrage import render

    spec = result.spec
    shown = result.placements[:top] if top else result.placements
    head = (f"{spec.name}: {' | '.join(map(str, spec.accelerators))} x {plural(spec.num_nodes, 'node')}, "
            f"{spec.work.describe(spec.workload)}, spot {spec.spot}, objective {result.objective}")
    lines: list[str] = []
    when, stale = result.now, result.stale_days
    choices = result.choices[:top] if top else result.choices
    if shown:
        hours_note = ("hours are expected wall time" if spec.work.known
                      else "NO DURATION KNOWN: totals are for one hour, ranked by cluster $/h")
        typer.echo(render.plan_table(choices, result.deadline_hours,
                                          f"{head}\n{len(result.placements)} feasible of "
                                          f"{plural(result.candidates, 'candidate')}, "
                                          f"{plural(len(result.choices), 'distinct choice')} (USD; {hours_note}; "
                                          f"+N regions: same price elsewhere)", when, stale, wide=wide))
        lines += ["Why #1:", *(f"  {line}" for line in render.explain(choices[0].best, result,
                                                                         choices[0].also_in))]
    elif result.over_budget:
        typer.echo(render.plan_table(result.over_budget_choices[: top or None], result.deadline_hours,
                                          f"{head}\nNOTHING within budget; cheapest over-budget placements:",
                                          when, stale, wide=wide))
    else:
        lines += [head, f"No feasible placement among {plural(result.candidates, 'candidate')}."]
    lines += [f"Note: {note}" for note in spec.notes]
    if result.rejections:
        lines += ["Rejected:", *render.rejection_lines(result)]
    if result.capacity_note:
        lines.append(f"Capacity: {result.capacity_note.removeprefix('capacity signals: ')}")
    lines.append(f"Prices: {render.provenance_line(catalog)}")
    typer.echo("\n".join(lines))


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
