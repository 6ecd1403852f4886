"""The console script builds only the command it runs; every command can be built alone and keeps its options."""

from __future__ import annotations

import json
import subprocess
import sys

import typer.main

from arbitrage.cli import COMMAND_MODULES, app, build_app


def _names(typer_app) -> set[str]:
    return set(typer.main.get_command(typer_app).commands)  # type: ignore[attr-defined]


def test_each_command_alone_has_the_same_options_as_in_the_full_app() -> None:
    full = typer.main.get_command(app)
    names = _names(app)
    assert {"plan", "prices", "run", "report", "export", "diff"} <= names
    for name in names:
        alone = typer.main.get_command(build_app(name))
        assert set(alone.commands) == {name}  # type: ignore[attr-defined]
        want = full.commands[name]  # type: ignore[attr-defined]
        got = alone.commands[name]  # type: ignore[attr-defined]
        assert [p.opts for p in got.params] == [p.opts for p in want.params]


def test_the_command_table_names_every_command_and_only_its_modules() -> None:
    assert _names(app) == set(COMMAND_MODULES)
    code = ("import json, sys; from arbitrage.cli import build_app; build_app('plan'); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('arbitrage.cli.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == ["arbitrage.cli.common", "arbitrage.cli.plan"]


def test_unknown_or_no_command_builds_everything() -> None:
    assert _names(build_app("nope")) == _names(app) == _names(build_app(None))


def test_the_console_script_path_runs_one_command() -> None:
    code = ("import sys; sys.argv = ['gpuarb', 'schema']; from arbitrage.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    print('EXIT', e.code)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert '"$schema"' in out or '"properties"' in out
