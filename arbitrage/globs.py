"""Shell-style glob matching with `fnmatch.fnmatchcase`'s answers, fast for the shapes the fact tables use.

`fnmatchcase` compiles each distinct pattern to a regular expression on first use (about 0.1 ms each, and a plan
meets some 70 of them in the interconnect, variant and intra-node tables). A pattern without wildcards is an
equality and ``prefix*`` a ``startswith``: both are answered without a regex; anything else goes to fnmatch.
Imports nothing from the project, so every layer can use it.
"""

from __future__ import annotations

_MAGIC = frozenset("*?[")


def glob_match(value: str, pattern: str) -> bool:
    """True when ``value`` matches the shell-style ``pattern``, case-sensitively (as `fnmatch.fnmatchcase`)."""
    if _MAGIC.isdisjoint(pattern):
        return value == pattern
    head = pattern[:-1]
    if pattern[-1] == "*" and _MAGIC.isdisjoint(head):
        return value.startswith(head)
    import fnmatch

    return fnmatch.fnmatchcase(value, pattern)


def glob_filter(values: list[str] | tuple[str, ...], pattern: str) -> list[str]:
    """The values that match ``pattern`` (as `fnmatch.filter` on POSIX), in order."""
    return [v for v in values if glob_match(v, pattern)]
