"""YAML read as untrusted input: a size cap, a nesting cap and an alias-expansion cap, checked while the node tree
is composed and before any Python object is built, and only the plain standard tags.

A billion-laughs bomb (aliases of aliases) fails after composing a few hundred nodes instead of expanding to
10^9 values; a recursive alias or a 500-deep nesting fails with the line it starts on instead of a RecursionError;
an impossible date (``2020-02-30``), an integer of thousands of digits or a ``!!binary`` value fail as one
``LimitError`` naming the line and the dotted path of the value. Pure: text in, Python data and nodes out.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1 << 20  # 1 MiB of YAML text
MAX_DEPTH = 32  # nested mappings/lists
MAX_NODES = 100_000  # values after alias expansion
MAX_INT_DIGITS = 64  # an integer literal longer than this is not a count or a price

_Y = "tag:yaml.org,2002:"
# The tags plain YAML data resolves to (JSON's types plus timestamps and the merge key `<<`); explicit !!binary,
# !!set, !!omap, !!python/... and local !tags are refused.
ALLOWED_TAGS = frozenset(_Y + t for t in ("null", "bool", "int", "float", "str", "seq", "map", "timestamp", "merge"))


class LimitError(yaml.YAMLError):
    """YAML beyond a cap or with a value that cannot be built; ``line`` is 1-based, ``path`` the dotted location."""

    def __init__(self, line: int, path: str, message: str) -> None:
        super().__init__(message)
        self.line, self.path, self.message = line, path, message


class _Loader(yaml.SafeLoader):
    """SafeLoader that counts depth and expanded size while composing, and turns constructor crashes into errors."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values under it, aliases expanded
        self._path: list[str | int | None] = []

    def _dotted(self) -> str:
        return ".".join(str(p) for p in self._path if p is not None) or "(top level)"

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        if self.check_event(AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None and id(target) not in self._sizes:
                raise LimitError(event.start_mark.line + 1, self._dotted(), f"alias *{event.anchor} refers to "
                                 "itself (recursive aliases are not allowed)")
            return super().compose_node(parent, index)
        event = self.peek_event()
        self._path.append(index.value if isinstance(index, ScalarNode) else index if isinstance(index, int) else None)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise LimitError(event.start_mark.line + 1, self._dotted(), f"nested deeper than {MAX_DEPTH} levels")
            node = super().compose_node(parent, index)
            if node.tag not in ALLOWED_TAGS:
                shown = node.tag.replace(_Y, "!!")
                raise LimitError(node.start_mark.line + 1, self._dotted(), f"tag {shown} is not allowed (plain "
                                 "strings, numbers, booleans, null, dates, lists and mappings only)")
            if isinstance(node, SequenceNode):
                size = 1 + sum(self._sizes[id(child)] for child in node.value)
            elif isinstance(node, MappingNode):
                size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
            else:
                size = 1
            if size > MAX_NODES:
                raise LimitError(node.start_mark.line + 1, self._dotted(),
                                 f"more than {MAX_NODES:,} values once aliases are expanded")
            self._sizes[id(node)] = size
            return node
        finally:
            self._depth -= 1
            self._path.pop()

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
            raise ConstructorError(None, None, f"cannot read {node.value!r} as {node.tag.replace(_Y, '!!')}: "
                                   f"{exc}", node.start_mark) from None

    def construct_yaml_int(self, node: Node) -> int:
        digits = str(node.value).lstrip("+-0_")
        if len(digits) > MAX_INT_DIGITS:
            raise ConstructorError(None, None, f"an integer of {len(digits)} digits (at most {MAX_INT_DIGITS})",
                                   node.start_mark)
        return super().construct_yaml_int(node)  # type: ignore[no-any-return]

    def construct_yaml_timestamp(self, node: Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, TypeError, AttributeError, OverflowError):
            raise ConstructorError(None, None, f"{node.value!r} is not a real date or time",
                                   node.start_mark) from None


# YAML 1.2 floats that YAML 1.1 reads as strings: 1e3, 1.5e3, 2E-4 (an exponent without a sign or a dot).
_Loader.add_implicit_resolver(_Y + "float", re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
                              list("-+0123456789."))
_Loader.add_constructor(_Y + "int", _Loader.construct_yaml_int)
_Loader.add_constructor(_Y + "timestamp", _Loader.construct_yaml_timestamp)


def compose(text: str) -> tuple[yaml.Loader, Node | None]:
    """The loader and the single document's node tree (None for an empty file), every cap checked.

    The caller builds objects with ``loader.construct_document(node)`` and must ``loader.dispose()``.
    Raises LimitError or another yaml.YAMLError (a syntax error, with its mark).
    """
    if len(text) > MAX_BYTES:
        raise LimitError(1, "(top level)", f"the file is over {MAX_BYTES // 1024} KiB")
    loader = _Loader(text)
    try:
        return loader, loader.get_single_node()
    except BaseException:
        loader.dispose()
        raise


def safe_load(text: str) -> Any:
    """Python data from YAML text under the caps (None for an empty document); raises yaml.YAMLError."""
    loader, node = compose(text)
    try:
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def read_capped(path: str, limit: int = MAX_BYTES) -> str:
    """A UTF-8 text file, refusing one over ``limit`` bytes without reading the rest (e.g. a link to /dev/zero).

    Raises OSError, UnicodeDecodeError, or LimitError for an oversized file.
    """
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise LimitError(1, "(top level)", f"the file is over {limit // 1024} KiB")
    return data.decode("utf-8")


__all__ = ["ALLOWED_TAGS", "MAX_BYTES", "MAX_DEPTH", "MAX_INT_DIGITS", "MAX_NODES", "LimitError", "compose",
           "read_capped", "safe_load"]
