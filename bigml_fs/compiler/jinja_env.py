"""Render sql/ files: Jinja in a sandbox with source(), ref(), var() and config().

Rendering also records what a model depends on (refs, sources, vars) so the
DAG, fingerprints and error messages come from one pass over the template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bigml_fs.errors import SqlModelError, did_you_mean


@dataclass
class RenderResult:
    sql: str
    refs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    vars_used: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


class _TemplateError(Exception):
    """Raised inside a template function; carries a message for the user."""


def render_sql(
    display: str,
    text: str,
    sources: dict[str, str],
    models: dict[str, str],
    variables: dict[str, Any],
) -> RenderResult:
    """Render one sql/ file. ``sources``/``models`` map names to relation SQL."""
    import jinja2  # only projects with sql/ files pay for importing Jinja
    from jinja2.sandbox import SandboxedEnvironment

    result = RenderResult(sql="")

    def source(name: str) -> str:
        if name not in sources:
            raise _TemplateError(
                f"unknown source '{name}'{did_you_mean(name, sources)}; declare it under 'sources:' in project.yaml"
            )
        if name not in result.sources:
            result.sources.append(name)
        return sources[name]

    def ref(name: str) -> str:
        if name not in models:
            raise _TemplateError(f"ref('{name}'): no sql/{name}.sql{did_you_mean(name, models)}")
        if name not in result.refs:
            result.refs.append(name)
        return models[name]

    def var(name: str, default: Any = None) -> Any:
        if name in variables:
            value = variables[name]
        elif default is not None:
            value = default
        else:
            raise _TemplateError(
                f"var('{name}') has no value{did_you_mean(name, variables)}; add it under 'vars:' in project.yaml or "
                f"pass --var {name}=VALUE"
            )
        result.vars_used[name] = value
        return value

    def config(**kwargs: Any) -> str:
        unknown = set(kwargs) - {"materialized"}
        if unknown:
            raise _TemplateError(
                f"config(): unknown argument {sorted(unknown)[0]!r}; only materialized='view'|'table' is supported"
            )
        if kwargs.get("materialized", "view") not in ("view", "table"):
            raise _TemplateError("config(materialized=...) must be 'view' or 'table'")
        result.config.update(kwargs)
        return ""

    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        loader=jinja2.FunctionLoader(lambda _name: (text, display, lambda: True)),
        keep_trailing_newline=True,
    )
    env.globals.update(source=source, ref=ref, var=var, config=config)
    env.filters["tojson"] = json.dumps
    try:
        template = env.get_template(display)
        result.sql = template.render()
    except jinja2.TemplateSyntaxError as exc:
        raise SqlModelError(display, exc.lineno, f"Jinja syntax error: {exc.message}") from None
    except _TemplateError as exc:
        raise SqlModelError(display, _template_line(exc, display), str(exc)) from None
    except jinja2.UndefinedError as exc:
        raise SqlModelError(
            display,
            _template_line(exc, display),
            f"{exc.message}; only source(), ref(), var() and config() are available",
        ) from None
    except jinja2.exceptions.SecurityError as exc:
        raise SqlModelError(display, _template_line(exc, display), f"not allowed in a sql model: {exc}") from None
    return result


def _template_line(exc: BaseException, display: str) -> int | str:
    """Line of the template where ``exc`` was raised (Jinja maps frames to it)."""
    line: int | str = "?"
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == display:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
