"""Where a report goes: the format from --out's extension (or --format for stdout), and a safe file write."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from arbitrage.errors import UsageError
from arbitrage.plural import plural

EXTENSIONS = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown", ".csv": "csv",
              ".json": "json", ".txt": "text"}


def choose_format(out: str | None, fmt: str | None, allowed: tuple[str, ...], default: str) -> str:
    """The output format: --out's extension when writing a file, else --format, else ``default``.

    'text' and 'table' are the same plain-text rendering; whichever of them ``allowed`` lists is returned.
    """
    plain = next((f for f in allowed if f in ("text", "table")), None)
    if fmt in ("text", "table") and plain is not None:
        fmt = plain
    if fmt is not None and fmt not in allowed:
        raise UsageError(f"--format: {fmt} is not available for this report ({', '.join(allowed)})")
    if out is None or out == "-":
        return fmt or default
    try:  # a name the file system refuses (too long, a NUL) is an OSError/ValueError even to is_dir()
        is_dir = Path(out).is_dir()
    except (OSError, ValueError) as exc:
        raise UsageError(f"--out: cannot write {out[:80]}: {getattr(exc, 'strerror', None) or exc}") from None
    if is_dir:
        example = Path(out) / ("report.html" if "html" in allowed else "report.md")
        raise UsageError(f"--out: {out} is a directory; give a file name, e.g. {example}")
    suffix = Path(out).suffix.lower()
    chosen = EXTENSIONS.get(suffix)
    if chosen == "text" and plain is not None:
        chosen = plain
    if chosen is None or chosen not in allowed:
        known = ", ".join(e for e, f in EXTENSIONS.items() if f in allowed or (f == "text" and plain))
        raise UsageError(f"--out: unknown extension {suffix or '(none)'!r} for {out} (use {known})")
    if fmt is not None and fmt != chosen:
        raise UsageError(f"--format {fmt} conflicts with --out {out} ({chosen}); drop one of them")
    return chosen


def write_report(out: str, text: str) -> str:
    """Write ``text`` to ``out`` atomically; refuses a directory or a missing folder. Returns the line to print."""
    path = Path(out)
    try:  # a name the file system refuses (too long, a NUL) is an OSError even to is_dir()
        if path.is_dir():
            raise UsageError(f"--out: {out} is a directory; give a file name, e.g. {path / 'report.html'}")
        if not path.parent.is_dir():
            raise UsageError(f"--out: folder {path.parent} does not exist")
        existed = path.exists()
    except (OSError, ValueError) as exc:
        raise UsageError(f"--out: cannot write {out[:80]}: {getattr(exc, 'strerror', None) or exc}") from None
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        with contextlib.suppress(OSError, ValueError):
            tmp.unlink(missing_ok=True)
        raise UsageError(f"--out: cannot write {out[:80]!r}: {getattr(exc, 'strerror', None) or exc}") from None
    size = len(text.encode("utf-8"))
    shown = f"{size / 1024:,.0f} KB" if size >= 1024 else plural(size, "byte")
    return f"wrote {path} ({shown}{', replaced the existing file' if existed else ''})"
