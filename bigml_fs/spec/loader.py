"""Load a project's YAML and SQL files into typed specs, collecting every error.

Loading never stops at the first mistake: each file is checked on its own and
all problems are returned together, each with file, line and key, so one
`validate` run shows everything a user has to fix.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bigml_fs.errors import DefinitionError, Problem, did_you_mean
from bigml_fs.spec.schema import FeaturesFile, FeatureViewSpec, ModelsFile, ModelSpec, ProjectSpec, Spec
from bigml_fs.spec.yaml_lines import LineMap, PathKey, format_path, load_yaml

PROJECT_FILE = "project.yaml"


@dataclass(frozen=True)
class Origin:
    """Where a definition was written: its file's line map and its path in it."""

    lines: LineMap
    path: PathKey

    def problem(self, key: PathKey | str, text: str) -> Problem:
        sub = (key,) if isinstance(key, str) else tuple(key)
        return self.lines.problem((*self.path, *sub), text)


@dataclass(frozen=True)
class SqlFile:
    """One sql/ model file before rendering."""

    name: str
    path: Path
    display: str
    text: str


@dataclass
class Definitions:
    """Everything a project declares, shape-checked but not yet cross-checked."""

    root: Path
    project: ProjectSpec
    views: dict[str, FeatureViewSpec]
    models: dict[str, ModelSpec]
    sql_files: dict[str, SqlFile]
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)

    def origin(self, kind: str, name: str) -> Origin:
        return self.origins[(kind, name)]


def load_definitions(root: Path) -> Definitions:
    """Load all definition files under ``root``; raise DefinitionError with every problem."""
    root = root.resolve()
    problems: list[Problem] = []
    origins: dict[tuple[str, str], Origin] = {}
    project_path = root / PROJECT_FILE
    if not project_path.exists():
        raise DefinitionError(
            [
                Problem(
                    str(project_path),
                    None,
                    "",
                    "no project.yaml here; run in a project directory, pass --project DIR, "
                    "or create one with `bigml-fs init DIR`",
                )
            ]
        )
    project = _parse(project_path, PROJECT_FILE, ProjectSpec, problems)
    if project is None:
        raise DefinitionError(problems)
    _register(origins, project[1], project[0].entities, "entity", "entities", problems)
    _register(origins, project[1], project[0].sources, "source", "sources", problems)

    views: dict[str, FeatureViewSpec] = _load_folder(
        root, "features", FeaturesFile, "feature_views", "view", origins, problems
    )
    models: dict[str, ModelSpec] = _load_folder(root, "models", ModelsFile, "models", "model", origins, problems)
    sql_files: dict[str, SqlFile] = {}
    for file in sorted((root / "sql").glob("*.sql")):
        display = _display(root, file)
        sql_files[file.stem] = SqlFile(file.stem, file, display, file.read_text(encoding="utf-8"))
        origins[("sql", file.stem)] = Origin(LineMap(display, {(): 1}), ())
    for name in sql_files:
        if ("source", name) in origins:
            problems.append(
                Problem(
                    sql_files[name].display, None, "", f"sql model '{name}' has the name of a source; rename the file"
                )
            )
    if problems:
        raise DefinitionError(problems)
    return Definitions(root, project[0], views, models, sql_files, origins)


def _load_folder(
    root: Path, folder: str, model: type[Spec], key: str, kind: str, origins: dict, problems: list[Problem]
) -> dict[str, Any]:
    """Every named item under ``key`` in the YAML files of ``folder``, by name."""
    items: dict[str, Any] = {}
    for file in sorted((root / folder).glob("*.y*ml")):
        parsed = _parse(file, _display(root, file), model, problems)
        if parsed:
            for item in _register(origins, parsed[1], getattr(parsed[0], key), kind, key, problems):
                items[item.name] = item
    return items


def _display(root: Path, file: Path) -> str:
    try:
        return str(file.relative_to(root))
    except ValueError:
        return str(file)


def _register(origins: dict, lmap: LineMap, items: list, kind: str, key: str, problems: list[Problem]) -> list:
    """Record each named item's origin; report names used twice (across files too)."""
    kept = []
    for i, item in enumerate(items):
        here = Origin(lmap, (key, i))
        if (kind, item.name) in origins:
            first = origins[(kind, item.name)]
            first_at = f"{first.lines.file}:{first.lines.line(first.path)}"
            problems.append(
                here.problem("name", f"duplicate {kind} name '{item.name}' (first defined at {first_at}); rename one")
            )
            continue
        origins[(kind, item.name)] = here
        kept.append(item)
    return kept


def _parse(file: Path, display: str, model: type[Spec], problems: list[Problem]) -> tuple[Any, LineMap] | None:
    data, lmap, found = load_yaml(file, display)
    problems.extend(found)
    if data is None:
        return None
    if not isinstance(data, dict):
        problems.append(
            Problem(display, 1, "", f"expected a mapping of keys at the top of the file, got {type(data).__name__}")
        )
        return None
    try:
        return model.model_validate(data), lmap
    except ValidationError as exc:
        problems.extend(_problems_from(exc, data, lmap, model))
        return None


def _problems_from(exc: ValidationError, data: Any, lmap: LineMap, model: type[BaseModel]) -> list[Problem]:
    out: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors():
        loc, stripped = _clean_loc(err["loc"], data)
        if stripped and err["type"].endswith("_type") and isinstance(err.get("input"), dict):
            continue  # the other branch of a str | Model union explains it better
        text = _named(loc, data) + _message(err, loc, model)
        problem = lmap.problem(loc, text)
        if (problem.key, text) not in seen:
            seen.add((problem.key, text))
            out.append(problem)
    return out


NAMED_LISTS = {"entities": "entity", "sources": "source", "feature_views": "view", "models": "model"}


def _named(loc: PathKey, data: Any) -> str:
    """``entity 'user': `` when the error sits inside a named entity, source, view or model."""
    if len(loc) >= 2 and isinstance(data, dict) and loc[0] in NAMED_LISTS and isinstance(loc[1], int):
        items = data.get(loc[0])
        item = items[loc[1]] if isinstance(items, list) and 0 <= loc[1] < len(items) else None
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            return f"{NAMED_LISTS[str(loc[0])]} '{item['name']}': "
    return ""


def _clean_loc(loc: tuple, data: Any) -> tuple[PathKey, bool]:
    """Drop the union/tag names pydantic puts into locations; keep real data paths."""
    out: list[str | int] = []
    current = data
    stripped = False
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(current, dict) and isinstance(part, str) and (part in current or last):
            out.append(part)
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            out.append(part)
            current = current[part]
        else:
            stripped = True
    return tuple(out), stripped


def _message(err: dict, loc: PathKey, model: type[BaseModel]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        key = loc[-1] if loc else "?"
        valid = _fields_at(model, loc[:-1])
        hint = did_you_mean(str(key), valid)
        listing = f"; valid keys: {', '.join(sorted(valid))}" if valid and not hint else ""
        return f"unknown key '{key}'{hint}{listing}"
    if kind == "missing":
        return f"missing required key '{loc[-1] if loc else ''}'"
    if kind in ("union_tag_invalid", "union_tag_not_found") or (
        kind == "model_attributes_type" and _tags_at(model, loc)
    ):
        return _discriminator_message(err, loc, model)
    if kind == "literal_error":
        ctx = err.get("ctx", {})
        options = [
            o.strip().strip("'") for o in str(ctx.get("expected", "")).replace(" or ", ",").split(",") if o.strip()
        ]
        value = err.get("input")
        return f"invalid value {value!r}{did_you_mean(str(value), options)}; expected one of: {', '.join(options)}"
    if kind == "string_pattern_mismatch":
        return f"invalid name {err.get('input')!r}: use letters, digits and underscores, not starting with a digit"
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg


def _discriminator_message(err: dict, loc: PathKey, model: type[BaseModel]) -> str:
    """A mapping whose ``type`` picks its kind: name the key and the allowed types in plain words."""
    key = str(loc[-1]) if loc else "this mapping"
    tags = _tags_at(model, loc)
    allowed = ", ".join(tags)
    if err["type"] == "union_tag_invalid":
        tag = str(err.get("ctx", {}).get("tag"))
        return f"'{key}' has an unknown type '{tag}'{did_you_mean(tag, tags)}; the {key} types are: {allowed}"
    if err["type"] == "union_tag_not_found":
        return f"'{key}' needs a 'type:'; the {key} types are: {allowed}"
    return f"'{key}' must be a mapping such as {{type: {tags[0]}}}; the {key} types are: {allowed}"


def _tags_at(model: type[BaseModel], path: PathKey) -> list[str]:
    """The ``type`` values a discriminated union at ``path`` accepts (empty if it is not one)."""
    current = _node_at(model, path)
    if current is None:
        return []
    members = _models_in(current)
    if len(members) < 2:
        return []
    tags = [
        arg for m in members if "type" in m.model_fields for arg in typing.get_args(m.model_fields["type"].annotation)
    ]
    return [str(t) for t in tags]


def _fields_at(model: type[BaseModel], path: PathKey) -> list[str]:
    """Names of the keys valid at ``path`` inside ``model`` (for did-you-mean)."""
    current = _node_at(model, path)
    if current is None:
        return []
    return sorted({alias_or_name for m in _models_in(current) for alias_or_name in _keys(m)})


def _node_at(model: type[BaseModel], path: PathKey) -> Any:
    """The annotation ``path`` leads to inside ``model``, or None where it leaves the spec."""
    current: Any = model
    for part in path:
        current = _descend(current, part)
        if current is None:
            return None
    return current


def _keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _descend(annotation: Any, part: str | int) -> Any:
    if isinstance(part, int):
        for arg in typing.get_args(annotation) or ():
            inner = _descend_list(arg)
            if inner is not None:
                return inner
        return _descend_list(annotation)
    for candidate in _models_in(annotation):
        for name, info in candidate.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
    return None


def _descend_list(annotation: Any) -> Any:
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0]
    return None


__all__ = ["Definitions", "Origin", "SqlFile", "format_path", "load_definitions"]
