"""The README's command table matches the CLI: every command is there, with exactly the options its --help lists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from arbitrage.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"


def _table_rows() -> dict[str, str]:
    """First cell of each row of the '## Commands' table: command words -> the usage text."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Commands"):]
    section = section[: section.index("\n### ")]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        m = re.match(r"^\| `gpuarb ([^`]*)` \|", line)
        if m:
            usage = m.group(1).replace("\\|", "|")
            words = []
            for word in usage.split():
                if not re.fullmatch(r"[a-z][a-z-]*", word):
                    break
                words.append(word)
            rows[" ".join(words)] = usage
    return rows


def _commands() -> dict[str, Any]:
    """Every visible command of the CLI by its words ('plan', 'report spend'), as typer's click commands."""
    out: dict[str, Any] = {}

    def walk(group: Any, prefix: str) -> None:
        for name, cmd in group.commands.items():
            if cmd.hidden:
                continue
            words = f"{prefix} {name}".strip()
            if hasattr(cmd, "commands"):
                walk(cmd, words)
            else:
                out[words] = cmd
    walk(typer.main.get_command(app), "")
    return out


def _options(cmd: Any) -> set[str]:
    names: set[str] = set()
    for p in cmd.params:
        if p.param_type_name == "option" and not getattr(p, "hidden", False):
            names |= {o for o in [*p.opts, *p.secondary_opts] if o.startswith("--") and o != "--help"}
    return names


def test_every_command_is_in_the_readme_table_and_nothing_else_is() -> None:
    assert sorted(_table_rows()) == sorted(_commands())


def test_each_row_lists_exactly_the_command_s_options() -> None:
    rows, problems = _table_rows(), []
    for words, cmd in _commands().items():
        listed = set(re.findall(r"--[a-z][a-z-]*", rows.get(words, "")))
        wanted = _options(cmd)
        if listed - wanted:
            problems.append(f"gpuarb {words}: README lists {sorted(listed - wanted)} that --help does not")
        if wanted - listed:
            problems.append(f"gpuarb {words}: --help has {sorted(wanted - listed)} that the README does not list")
    assert not problems, "\n".join(problems)
