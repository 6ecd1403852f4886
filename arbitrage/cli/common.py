"""What every command module shares: the error guard, output formats and option types.

Nothing here decides anything: the guard maps the error tree (arbitrage/errors.py) to one line and its exit code.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, TypeVar

import typer

from arbitrage import app as usecases
from arbitrage.errors import EXIT_OK, GpuarbError, Interrupted
from arbitrage.params import SOURCE_HELP, Objective, Source

F = TypeVar("F", bound=Callable[..., Any])

# typer apps: plain help (rich.markdown alone costs ~60 ms of start-up), no completion, no pretty tracebacks.
TYPER_SETTINGS: dict[str, Any] = {
    "no_args_is_help": True,
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
    "context_settings": {"help_option_names": ["-h", "--help"]},
}


def say(message: str) -> None:
    """A notice on stderr, headed `gpuarb:` (use cases pass these to their ``say`` callback)."""
    typer.echo(f"gpuarb: {message}", err=True)


def _print_error(exc: GpuarbError) -> None:
    head = f"gpuarb: {exc.label}: " if exc.label else "gpuarb: "
    for line in str(exc).splitlines():
        typer.echo(f"{head}{line}", err=True)


def guarded(func: F) -> F:
    """Turn GpuarbError (and any unexpected exception) into one stderr line and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except GpuarbError as exc:
            _print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _print_error(Interrupted("interrupted"))
            raise typer.Exit(Interrupted.exit_code) from None
        except BrokenPipeError:  # `gpuarb ... | head`: stop quietly (recipe from the Python docs)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(EXIT_OK) from None
        except Exception as exc:  # a bug: still one line, traceback only on request
            if os.environ.get("GPUARB_DEBUG"):
                raise
            _print_error(GpuarbError(f"internal error: {type(exc).__name__}: {exc} "
                                     "(set GPUARB_DEBUG=1 for a traceback)"))
            raise typer.Exit(GpuarbError.exit_code) from None

    return wrapper  # type: ignore[return-value]


class TableOrJson(str, Enum):
    table = "table"
    json = "json"


class DataFormat(str, Enum):
    """Tabular results: prices, spend."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


# `--backend` choices: the backend registry's names (a new backend is one module plus one registry line).
BackendChoice = Enum("BackendChoice", {name: name for name in usecases.backend_names()}, type=str)  # type: ignore[misc]
DEFAULT_BACKEND = BackendChoice(usecases.backend_names()[0])  # the registry's first: skypilot

SourceOption = Annotated[Source | None, typer.Option("--source", "-s", case_sensitive=False, help=SOURCE_HELP)]
STRICT_HELP = ("Exit 7 unless every provider with a live price source answered from the source asked for (--source "
               "live, or providers --refresh: a live fetch now; cache: its cache; auto: a fresh cache or a live "
               "fetch), naming each one that did not and why. Providers without credentials count: leave them out "
               "with --provider or the job's providers.deny. Not with --source snapshot.")
StrictOption = Annotated[bool, typer.Option("--strict", help=STRICT_HELP)]
GPU_FILTER_HELP = "GPU model(s) or globs, case-insensitive: H100, A100-80GB, 'H100*' (repeatable)."
ObjectiveHelp = "cost: cheapest expected total; time: earliest finish within budget."
TableOrJsonOption = Annotated[TableOrJson, typer.Option("--format", "-f", case_sensitive=False)]
SINCE_HELP = "ISO date/time or 7d, 12h, 30m back from now."


def bounded(low: float, high: float) -> Callable[[float | None], float | None]:
    """A typer callback for a float option: finite and within [low, high] (click's own range lets nan through)."""
    import math

    def check(value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise typer.BadParameter(f"must be a finite number from {low:g} to {high:g}, got {value}")
        return value

    return check
TAG_HELP = "Only runs with this tag, key=value (repeatable)."

# `sky launch`'s own words for changing a task from the command line (plan, run, validate, report plan).
GpusOption = Annotated[str | None, typer.Option("--gpus", help="Accelerators, as sky launch --gpus: H100:8.")]
NumNodesOption = Annotated[int | None, typer.Option("--num-nodes", min=1, max=1024, help="Nodes (sky launch).")]
UseSpotOption = Annotated[bool | None, typer.Option("--use-spot/--no-use-spot", help="Spot or on-demand only.",
                                                    show_default=False)]
InfraOption = Annotated[str | None, typer.Option("--infra", help="cloud[/region[/zone]], e.g. aws/us-east-1.")]
RegionOption = Annotated[str | None, typer.Option("--region", help="Region pin (sky launch --region).")]
ZoneOption = Annotated[str | None, typer.Option("--zone", help="Zone pin (sky launch --zone).")]
HoursOption = Annotated[float | None, typer.Option(
    "--hours", help="Work: wall hours on the first accelerator choice (when the file states none).",
    callback=bounded(1e-6, 87_600.0))]
GpuHoursOption = Annotated[float | None, typer.Option(
    "--gpu-hours", help="Work: GPU-hours on --reference (default: the first choice).", callback=bounded(1e-6, 1e8))]
ReferenceOption = Annotated[str | None, typer.Option("--reference", help="The GPU --gpu-hours were measured on.")]


def overrides_of(gpus: str | None = None, num_nodes: int | None = None, use_spot: bool | None = None,
                 infra: str | None = None, region: str | None = None, zone: str | None = None,
                 hours: float | None = None, gpu_hours: float | None = None, reference: str | None = None) -> Any:
    """The SpecOverrides of the `sky launch`-style options (None when none was given); UsageError on a clash."""
    from arbitrage.errors import UsageError
    from arbitrage.jobspec import SpecOverrides

    if hours is not None and gpu_hours is not None:
        raise UsageError("give --hours or --gpu-hours, not both")
    if reference is not None and gpu_hours is None:
        raise UsageError("--reference goes with --gpu-hours")
    found = SpecOverrides(gpus, num_nodes, use_spot, infra, region, zone, hours, gpu_hours, reference)
    return found or None

__all__ = ["Objective", "Source"]
