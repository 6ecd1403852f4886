"""A transient progress bar on stderr for long work, shown only on an interactive terminal (never in CI or pipes)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

Advance = Callable[..., None]


def interactive(stream: TextIO) -> bool:
    """True when progress should be drawn: a terminal that is not 'dumb', outside CI."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM") != "dumb" and not os.environ.get("CI")


def _noop(*_args: object, **_kwargs: object) -> None:
    return None


@contextmanager
def progress(description: str, total: int | None = None, stream: TextIO | None = None) -> Iterator[Advance]:
    """Yield ``advance(steps=1, description=None)``; the bar is removed when the block ends.

    Without a terminal nothing is drawn and rich is never imported, so CI logs and redirected output stay clean.
    """
    out = stream if stream is not None else sys.stderr
    if not interactive(out):
        yield _noop
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total:
        columns += [BarColumn(), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=Console(file=out), transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(steps: float = 1, description: str | None = None) -> None:
            if description is None:
                bar.update(task, advance=steps)
            else:
                bar.update(task, advance=steps, description=description)

        yield advance
