"""`gpuarb diff BASE HEAD`: the cost change of a job between two specs, a spec and a saved plan, or two revisions."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from arbitrage import app as usecases
from arbitrage.cli.common import Objective, ObjectiveHelp, SourceOption, StrictOption, bounded, guarded, say
from arbitrage.errors import NothingFeasible, OverBudget, PolicyFailed


class DiffFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


_SIDE_HELP = ("A job spec, a saved plan (`gpuarb plan --format json > plan.json`), or REV:PATH "
              "(e.g. origin/main:job.yaml).")


@guarded
def diff(
    base: Annotated[str, typer.Argument(help="The plan before the change. " + _SIDE_HELP)],
    head: Annotated[str, typer.Argument(help="The plan after the change. " + _SIDE_HELP)],
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", case_sensitive=False,
                                            help="markdown is a pull-request comment body.")] = DiffFormat.table,
    fail_above_usd: Annotated[float | None, typer.Option(
        "--fail-above-usd", callback=bounded(0.0, 1e12),
        help="Exit 6 when the expected total rises by more than this many USD.")] = None,
    fail_above_percent: Annotated[float | None, typer.Option(
        "--fail-above-percent", callback=bounded(0.0, 1e6),
        help="Exit 6 when the expected total rises by more than this percentage.")] = None,
    objective: Annotated[Objective, typer.Option("--objective", case_sensitive=False,
                                                 help=ObjectiveHelp)] = Objective.cost,
    source: SourceOption = None,
    strict: StrictOption = False,
) -> None:
    """The change in expected total, hourly cost, hours and placement from BASE to HEAD, with CI policies.

    Exit codes: 0 within policy, 6 a --fail-above-* policy failed, 3/4 HEAD has no feasible plan (as `plan`),
    7 --strict and a price source could not be used."""
    from arbitrage.report import diff as D

    found = usecases.diff_plans(base, head, usecases.load_facts(), source=source, objective=objective,
                                fail_above_usd=fail_above_usd, fail_above_percent=fail_above_percent, say=say,
                                strict=strict)
    if fmt is DiffFormat.json:
        typer.echo(D.diff_json(found.diff, found.violations))
    elif fmt is DiffFormat.markdown:
        typer.echo(D.diff_markdown(found.diff, found.violations), nl=False)
    else:
        typer.echo(D.diff_table(found.diff))
        for line in found.violations:
            typer.echo(f"policy failed: {line}")
    status = found.diff.head.status
    if status == "infeasible":
        raise NothingFeasible(f"{head}: no feasible placement (see `gpuarb plan`)")
    if status == "over-budget":
        raise OverBudget(f"{head}: the best plan is over budget")
    if found.violations:
        raise PolicyFailed("cost policy failed: " + "; ".join(found.violations))


def register(app: typer.Typer) -> None:
    """Add `diff`."""
    app.command("diff")(diff)
