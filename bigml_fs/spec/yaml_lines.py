"""Read YAML into plain Python while remembering the line of every key.

Pydantic reports an error by its location path (``("feature_views", 0,
"ttl")``); the line map turns that path into ``file:line`` so a user can jump
straight to the mistake. PyYAML's composer gives the marks; we build the
values ourselves so a duplicate key is reported instead of silently kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bigml_fs.errors import Problem

PathKey = tuple[str | int, ...]


@dataclass
class LineMap:
    """Lines of a YAML file's keys and items, by their location path."""

    file: str
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, path: PathKey) -> int | None:
        """Line of the deepest known prefix of ``path`` (1-based)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def problem(self, path: PathKey, text: str) -> Problem:
        return Problem(self.file, self.line(path), format_path(path), text)


def format_path(path: PathKey) -> str:
    """``("feature_views", 0, "ttl")`` -> ``feature_views[0].ttl``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _construct(node: yaml.Node, path: PathKey, lmap: LineMap, problems: list[Problem]) -> Any:
    lmap.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader.construct_scalar(_LOADER, key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                problems.append(
                    Problem(lmap.file, key_node.start_mark.line + 1, format_path(path), "a key must be a plain name")
                )
                continue
            key = str(key)
            child = (*path, key)
            if key in out:
                problems.append(
                    Problem(
                        lmap.file, key_node.start_mark.line + 1, format_path(child), "duplicate key; remove one of them"
                    )
                )
                continue
            lmap.lines[child] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, child, lmap, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lmap, problems) for i, item in enumerate(node.value)]
    return _LOADER.construct_object(node, deep=True)


_LOADER = yaml.SafeLoader("")


def load_yaml(file: Path, display: str) -> tuple[Any, LineMap, list[Problem]]:
    """Parse ``file``; return its data, its line map and the problems found."""
    lmap = LineMap(display)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        return None, lmap, [Problem(display, None, "", f"cannot read the file: {exc.strerror}")]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        started = f" ({exc.context} at line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else ""
        return None, lmap, [Problem(display, line, "", f"invalid YAML: {exc.problem}{started}")]
    if node is None:
        return {}, lmap, []
    problems: list[Problem] = []
    data = _construct(node, (), lmap, problems)
    return data, lmap, problems
