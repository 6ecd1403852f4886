"""`gpuarb plan`, `validate` and `schema`: job specs and the ranked plan for one."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from arbitrage import app as usecases
from arbitrage.cli.common import (
    Objective,
    ObjectiveHelp,
    SourceOption,
    TableOrJson,
    TableOrJsonOption,
    console,
    guarded,
    say,
)
from arbitrage.errors import SpecError
from arbitrage.params import MAX_ROWS


@guarded
def plan(
    job: Annotated[str, typer.Argument(help="Job spec YAML (a SkyPilot task with an `arbitrage:` block).")],
    top: Annotated[int, typer.Option("--top", "-t", min=0, max=MAX_ROWS, help="Placements to show (0 = all).")] = 5,
    fmt: TableOrJsonOption = TableOrJson.table,
    objective: Annotated[Objective, typer.Option("--objective", "-o", case_sensitive=False,
                                                 help=ObjectiveHelp)] = Objective.cost,
    source: SourceOption = None,
    now: Annotated[str | None, typer.Option("--now", help="Plan as of this ISO-8601 time (default: now).",
                                            hidden=True)] = None,
) -> None:
    """Rank feasible placements for a job by expected total cost (or finish time), with the breakdown."""
    from arbitrage import render
    from arbitrage.params import parse_now

    facts = usecases.load_facts()
    outcome = usecases.plan_job(job, facts, source=source, objective=objective,
                                now=parse_now(now, usecases.utcnow()), say=say)
    if fmt is TableOrJson.json:
        typer.echo(render.plan_json(outcome.plan, top, outcome.now, outcome.catalog))
    else:
        _print_plan_table(outcome.plan, top, outcome.catalog)
    verdict = usecases.plan_verdict(outcome.plan, over_budget="best plan is over budget: {total} expected, {hourly}/h",
                                    infeasible="no feasible placement (see the rejection reasons)")
    if verdict is not None:
        raise verdict


def _print_plan_table(result: Any, top: int, catalog: dict[str, Any]) -> None:
    """The ranked table (rich), then the explanation, rejections and provenance as plain lines."""
    from arbitrage import render

    spec = result.spec
    shown = result.placements[:top] if top else result.placements
    head = (f"{spec.name}: {' | '.join(map(str, spec.accelerators))} x {spec.num_nodes} node(s), "
            f"{spec.work.describe(spec.workload)}, spot {spec.spot}, objective {result.objective}")
    lines: list[str] = []
    when, stale = result.now, result.stale_days
    choices = result.choices[:top] if top else result.choices
    if shown:
        console().print(render.plan_table(choices, result.deadline_hours,
                                          f"{head}\n{len(result.placements)} feasible of {result.candidates} "
                                          f"candidates, {len(result.choices)} distinct choices (USD; hours are "
                                          f"expected wall time; +N regions: same price elsewhere)", when, stale))
        lines += ["Why #1:", *(f"  {line}" for line in render.explain(choices[0].best, result,
                                                                         choices[0].also_in))]
    elif result.over_budget:
        console().print(render.plan_table(result.over_budget_choices[: top or None], result.deadline_hours,
                                          f"{head}\nNOTHING within budget; cheapest over-budget placements:",
                                          when, stale))
    else:
        lines += [head, f"No feasible placement among {result.candidates} candidates."]
    if result.rejections:
        lines += ["Rejected:", *render.rejection_lines(result)]
    if result.capacity_note:
        lines.append(f"Capacity: {result.capacity_note.removeprefix('capacity signals: ')}")
    lines.append(f"Prices: {render.provenance_line(catalog)}")
    typer.echo("\n".join(lines))


@guarded
def schema() -> None:
    """Print the JSON Schema of job spec files (for editors and CI linting)."""
    import json

    typer.echo(json.dumps(usecases.spec_schema(), indent=2))


@guarded
def validate(
    jobs: Annotated[list[str], typer.Argument(help="Job spec YAML files.")],
) -> None:
    """Check job specs and report every problem as file:line: field: message."""
    facts = usecases.load_facts()
    failed = False
    for path in jobs:
        try:
            spec = usecases.read_spec(path, facts)
        except SpecError as exc:
            failed = True
            for line in str(exc).splitlines():
                typer.echo(line, err=True)
            continue
        typer.echo(f"{path}: ok ({spec.name}: {', '.join(map(str, spec.accelerators))} x {spec.num_nodes})")
    if failed:
        raise SpecError("")  # every problem is printed above


def register(app: typer.Typer) -> None:
    """Add `plan`, `schema` and `validate`."""
    app.command("plan")(plan)
    app.command("schema")(schema)
    app.command("validate")(validate)
