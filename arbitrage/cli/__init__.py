"""The `gpuarb` command line: one module per command group, each with `register`, all registered here.

Command modules parse arguments and print; the work is done by the use cases in arbitrage/app.py, and every
failure is one error from arbitrage/errors.py, mapped to one stderr line and its exit code by the guard in
`common.py`. Exit codes: 0 ok, 1 error, 2 invalid spec or usage, 3 nothing feasible (or no capacity), 4 over
budget, 5 job failed, 6 cost policy failed (diff), 7 a price source --strict insists on could not be used,
130 interrupted. Nothing heavy is imported at module level,
so `--help` starts fast.
"""

from __future__ import annotations

import os

# pydantic scans every installed package's entry points for plugins on first use (~25 ms);
# a CLI that must start fast has none to load.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")

import importlib
from typing import Annotated, Any

import typer

from arbitrage import __version__
from arbitrage.cli.common import TYPER_SETTINGS

# The one list of commands: each top-level command or group and the modules whose `register` adds it, so a
# process imports only the module of the command it runs (tests/test_cli_build.py checks this table against
# what the modules register).
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "prices": ("catalog",), "providers": ("catalog",),
    "plan": ("plan",), "schema": ("plan",), "validate": ("plan",),
    "diff": ("diff",), "risk": ("risk",),
    "run": ("run",), "_supervise": ("run",),
    "status": ("runs",), "logs": ("runs",), "down": ("runs",), "history": ("runs",), "reap": ("runs",),
    "report": ("report", "spend"), "breakeven": ("report",), "export": ("spend",),
    "server": ("server",),
}

_HELP = (
    "Multi-cloud GPU arbitrage: price comparison and cheapest-feasible placement for GPU jobs.\n\n"
    "Exit codes: 0 ok, 1 error, 2 invalid spec or usage, 3 nothing feasible (or no capacity), 4 over budget\n"
    "(plan, or stopped by the budget breaker), 5 job failed, 6 cost policy failed (diff), 7 --strict: a price\n"
    "source could not be used (each provider named, with why), 130 interrupted.")
_REPORT_HELP = ("Reports a finance partner and an engineer can both read: price comparison and plan with savings, "
                "as a terminal table, Markdown, CSV, JSON or one self-contained HTML file.")
_EXPORT_HELP = "Export the run ledger for other tools: `export focus` writes FinOps FOCUS 1.2 cost-and-usage CSV."


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gpuarb {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """gpuarb: cheapest feasible GPU placement across clouds."""


def _name(info: typer.models.CommandInfo | typer.models.TyperInfo) -> str:
    if info.name:
        return info.name
    callback = getattr(info, "callback", None)
    return callback.__name__.replace("_", "-") if callback else ""


def build_app(only: str | None = None) -> typer.Typer:
    """The `gpuarb` app with every command group registered; with ``only``, just the command or group of that
    name, importing only its modules (typer builds a click command for every registered one on each start:
    `gpuarb plan` need not pay for all twenty). An unknown ``only`` keeps everything, so click lists the commands
    in its error."""
    wanted = COMMAND_MODULES.get(only or "")
    names = wanted or tuple(dict.fromkeys(m for ms in COMMAND_MODULES.values() for m in ms))
    modules = {name: importlib.import_module(f"arbitrage.cli.{name}") for name in names}
    app = typer.Typer(name="gpuarb", help=_HELP, **TYPER_SETTINGS)
    app.callback()(_root)
    report_app = typer.Typer(name="report", help=_REPORT_HELP, **TYPER_SETTINGS)
    export_app = typer.Typer(name="export", help=_EXPORT_HELP, **TYPER_SETTINGS)
    for name, module in modules.items():
        if name == "report":
            module.register(app, report_app)
        elif name == "spend":
            module.register(report_app, export_app)
        else:
            module.register(app)
    if "report" in modules or "spend" in modules:
        app.add_typer(report_app, name="report")
    if "spend" in modules:
        app.add_typer(export_app, name="export")
    if wanted:
        commands = [c for c in app.registered_commands if _name(c) == only]
        groups = [g for g in app.registered_groups if _name(g) == only]
        app.registered_commands, app.registered_groups = commands, groups
    return app


def __getattr__(name: str) -> Any:
    """`app`: the full app, built on first use (tests and `typer.testing` use it; the console script does not)."""
    if name == "app":
        built = globals()["app"] = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point: only the command asked for is built (see `build_app`)."""
    import sys

    words = [w for w in sys.argv[1:2] if not w.startswith("-")]
    build_app(words[0] if words else None)()
