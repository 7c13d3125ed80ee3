"""The HTTP API: ``GET /health``, ``POST /features`` (= Feast's ``/get-online-features``), ``POST /predict/{model}``.

``create_app(project)`` resolves the project's catalog once and returns a
FastAPI app; uvicorn runs it (``bigml-fs serve``). Handlers are ``async`` and
call the store directly: an online read takes well under a millisecond on
SQLite, so a thread hop per request would cost more than it saves, and one
connection per process is reused without locking. Scale out with
``--workers N`` (processes).

Errors: a user's mistake (a ``BigmlError``) is 400 with the message in
``detail``; an unknown model is 404; an unreachable store is 503; a body
that does not parse or has wrong types is 422 whose ``loc`` names the field;
entity rows lacking features of a model with ``missing: error`` are 422 whose
``detail`` names the rows and features. Every error body is
``{"detail": ..., "error": "<Name>Error"}`` (see ``error_name``).

``/docs`` (Swagger UI, its JS and CSS served from the installed
``fastapi-offline`` package, never a CDN) and ``/openapi.json`` need no token:
they describe the API and hold no data. ReDoc is off.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Path, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError

from bigml_fs.errors import BigmlError, EngineError
from bigml_fs.serving.access import DOCS_STATIC, AccessMiddleware
from bigml_fs.serving.backend import Backend, ProjectBackend, UnknownModelError
from bigml_fs.serving.schemas import FeaturesRequest, PredictRequest, entity_count

DESCRIPTION = """Online features and predictions of a bigml_fs project.

`POST /features` (also at `/get-online-features`) takes and returns the same JSON as
Feast's feature server. With `bigml-fs serve --token-env NAME`, every route but `/health`,
`/docs` and `/openapi.json` needs `Authorization: Bearer <token>`.

Every error body is `{"detail": ..., "error": "<Name>Error"}`.
"""

# Swagger UI 5 (renders OpenAPI 3.1), shipped inside the fastapi-offline package.
SWAGGER_STATIC = FilePath(fastapi_offline.__file__).parent / "static"


def error_name(exc: BaseException) -> str:
    """The ``error`` of a JSON error body: the exception's class name, always ending in ``Error``."""
    name = type(exc).__name__
    return name if name.endswith("Error") else name + "Error"


def _jsonable(value: Any) -> Any:
    """Fallback for values json cannot write (numpy scalars and arrays, datetimes)."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


try:  # optional: about 10x faster than json for a 100-entity answer
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None


def _dumps(content: Any) -> bytes:
    if orjson is not None:
        try:
            return orjson.dumps(content, default=_jsonable, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
        except TypeError:  # e.g. an integer beyond 64 bits: json writes it
            pass
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_jsonable).encode(
        "utf-8"
    )


class Json(JSONResponse):
    """Compact JSON (orjson when installed); numpy values and datetimes are converted instead of failing."""

    def render(self, content: Any) -> bytes:
        return _dumps(content)


def _body_spec(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` of a route that parses its body itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


async def _parse(request: Request, model: type[BaseModel]) -> Any:
    """The JSON body as ``model``, whatever the Content-Type (``curl -d`` sends form encoding).

    pydantic parses the bytes directly (faster than json.loads, then validation);
    a ValidationError becomes a 422 naming the field (see ``invalid_body``).
    """
    return model.model_validate_json(await request.body())


def _shown(value: Any) -> Any:
    """A refused input as JSON can carry it (the raw body of unparsable JSON is bytes)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _status_of(exc: BigmlError) -> int:
    """404 for a model, version or training that does not exist; 503 for an unreachable store; 422 for entity
    rows lacking features of a model with ``missing: error``; else 400.
    """
    registry = sys.modules.get("bigml_fs.training.registry")  # loaded whenever it raised; no import here
    if isinstance(exc, UnknownModelError) or (registry is not None and isinstance(exc, registry.UnknownModelError)):
        return 404
    online = sys.modules.get("bigml_fs.scoring.online")  # likewise
    if online is not None and isinstance(exc, online.MissingFeaturesError):
        return 422
    if isinstance(exc, EngineError):
        return 503
    return 400


def create_app(project: Any = None, *, backend: Backend | None = None, token: str | None = None) -> FastAPI:
    """A FastAPI app over ``project`` (a loaded ``Project``) or a ready ``backend``.

    With ``token``, every route but ``/health`` needs ``Authorization: Bearer <token>``.
    """
    if backend is None:
        if project is None:
            raise TypeError("create_app needs a project or a backend")
        backend = ProjectBackend(project)
    served: Backend = backend

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        close = getattr(served, "close", None)
        if close is not None:
            close()

    app = FastAPI(
        title="bigml-fs",
        description=DESCRIPTION,
        version=_version(),
        lifespan=lifespan,
        default_response_class=Json,
        docs_url=None,
        redoc_url=None,
    )
    app.state.backend = served
    app.mount(DOCS_STATIC, StaticFiles(directory=SWAGGER_STATIC), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title="bigml-fs - Swagger UI",
            swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
        )

    @app.exception_handler(BigmlError)
    async def user_error(request: Request, exc: BigmlError) -> Json:
        return Json({"detail": str(exc), "error": error_name(exc)}, status_code=_status_of(exc))

    @app.exception_handler(ValidationError)
    async def invalid_body(request: Request, exc: ValidationError) -> Json:
        detail = [
            {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"], "input": _shown(e.get("input"))}
            for e in exc.errors(include_url=False, include_context=False)
        ]
        return Json({"detail": detail, "error": "ValidationError"}, status_code=422)

    @app.get("/health", summary="Store reachable and last materialize per view (503 when the store is unreachable)")
    async def health() -> Json:
        ok, details = served.health()
        return Json({"status": "ok" if ok else "unavailable", **details}, status_code=200 if ok else 503)

    async def get_online_features(request: Request) -> Json:
        body: FeaturesRequest = await _parse(request, FeaturesRequest)
        request.state.entities = entity_count(body.entities)
        problems = served.entity_problems(body.entities)
        if problems:
            return Json({"detail": problems, "error": "ValidationError"}, status_code=422)
        return Json(served.features(body.features, body.feature_service, body.entities, body.full_feature_names))

    summary = "Online feature values (same JSON in and out as Feast's feature server)"
    app.post("/features", summary=summary, openapi_extra=_body_spec(FeaturesRequest))(get_online_features)
    app.post(
        "/get-online-features", summary=summary + "; alias of /features", openapi_extra=_body_spec(FeaturesRequest)
    )(get_online_features)

    @app.post(
        "/predict/{model}",
        summary="Online features of the entity rows, then the model's prediction, probabilities and version",
        openapi_extra=_body_spec(PredictRequest),
    )
    async def predict(request: Request, model: str = Path(description="Model name, or NAME@VERSION")) -> Json:
        body: PredictRequest = await _parse(request, PredictRequest)
        request.state.entities = entity_count(body.entities)
        request.state.model = model
        problems = served.entity_problems(body.entities)
        if problems:
            return Json({"detail": problems, "error": "ValidationError"}, status_code=422)
        if body.version is not None:
            model = f"{model.partition('@')[0]}@{body.version}"
        return Json(served.predict(model, body.entities))

    if token:
        _document_bearer(app)
    app.add_middleware(AccessMiddleware, token=token)
    return app


def _document_bearer(app: FastAPI) -> None:
    """Show the bearer requirement in the OpenAPI schema (the 'Authorize' button of /docs)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http",
                "scheme": "bearer",
            }
            for path, operations in schema.get("paths", {}).items():
                if path != "/health":
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("bigml-fs")
    except Exception:  # not installed as a distribution (a source checkout)
        return "dev"
