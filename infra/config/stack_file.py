"""Reading ``Pulumi.yaml`` / ``Pulumi.<stack>.yaml`` strictly, for the offline render and validation.

``yaml.safe_load`` keeps the *last* of two equal keys (``workerPodsMax: 8`` then ``workerPodsMax:
800`` silently means 800) and expands aliases (a few hundred bytes of nested ``*a`` references
become gigabytes: the "billion laughs").  Stack files never need either, so both are errors that
name the file and the line; the Pulumi CLI parses these files too, but what our render and
validation accept must not depend on its leniency.  Pure Python (PyYAML only).
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

MAX_STACK_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64  # nesting of a stack file (PyYAML composes recursively: 100k levels would be a RecursionError)


class StackFileError(ValueError):
    """A stack or project file cannot be read: bad YAML, duplicate keys, aliases, not a mapping."""


class _StrictLoader(yaml.SafeLoader):
    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise StackFileError(f"{self.name}: line {mark.line + 1}: YAML aliases are not allowed in stack files")
        if self.depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise StackFileError(f"{self.name}: line {mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise StackFileError(
                    f"{self.name}: line {key_node.start_mark.line + 1}: YAML merge keys are not allowed"
                )
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in seen:
                raise StackFileError(
                    f"{self.name}: line {line}: duplicate key {key!r} (first on line {seen[key]}); "
                    "YAML would silently keep the last one"
                )
            if isinstance(key, Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_stack_file(path: Path) -> dict[str, Any]:
    """The mapping in the YAML file at ``path`` (an empty file is ``{}``); :class:`StackFileError` names the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StackFileError(f"{path.name}: cannot read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_STACK_FILE_BYTES:
        raise StackFileError(f"{path.name}: larger than {MAX_STACK_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StackFileError(f"{path.name}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    loader = _StrictLoader(text)
    loader.name = path.name
    try:
        document = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise StackFileError(f"{path.name}: {where}invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path.name}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise StackFileError(f"{path.name}: expected a mapping at the top, found a {type(document).__name__}")
    if not isinstance(document.get("config") or {}, dict):
        found = type(document["config"]).__name__
        raise StackFileError(f"{path.name}: config: expected a mapping of keys to values, found a {found}")
    return document
