"""English counts for every message and report: '1 run', '2 runs', '0 placements', '1,200 offers'.

Pure and dependency-free (it imports nothing from the project), so the core, the providers and the reports can all
use it. A noun is singular only when the count reads as exactly 1; 0, fractions and everything else take the plural.
"""

from __future__ import annotations


def count_text(n: float) -> str:
    """How a count reads: thousands separated; a whole float without its '.0' (2.0 -> '2'), others as :g."""
    if isinstance(n, int) or float(n).is_integer():
        return f"{int(n):,}"
    return f"{n:,g}"


def noun(n: float, word: str, many: str | None = None) -> str:
    """The form of ``word`` that agrees with ``n``, without the number ('placement' / 'placements'); ``many`` is an
    irregular plural (noun(2, 'GPU-hour') works as is; noun(2, 'copy', 'copies') needs it)."""
    return word if count_text(n) == "1" else many or word + "s"


def plural(n: float, word: str, many: str | None = None) -> str:
    """The count and its noun: '1 run', '2 runs', '0 placements', '1,200 runs', '1 GPU' (``many``: an irregular
    plural, e.g. plural(3, 'entry', 'entries'))."""
    return f"{count_text(n)} {noun(n, word, many)}"
