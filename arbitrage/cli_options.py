"""Command-line choices shared by every command module (cli, cli_run, cli_report): one vocabulary, one parser."""

from __future__ import annotations

from enum import Enum


class SourceChoice(str, Enum):
    """Where prices come from (`--source`)."""

    auto = "auto"
    live = "live"
    cache = "cache"
    snapshot = "snapshot"


class ObjectiveChoice(str, Enum):
    """What a plan minimises first (`--objective`)."""

    cost = "cost"
    time = "time"


SOURCE_HELP = ("Where prices come from: auto (fresh cache, else live, else snapshot, per provider), live, cache, "
               "snapshot. Default: $GPUARB_SOURCE or auto.")
