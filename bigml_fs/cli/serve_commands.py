"""`serve`: the HTTP API for online features and predictions (FastAPI on uvicorn)."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from typing import Annotated

import typer

from bigml_fs.cli.app import app, check_vars, load_project, state
from bigml_fs.cli.output import err_console, escape, user_errors
from bigml_fs.errors import BigmlError, UsageError

# Worker processes (--workers > 1) rebuild the app from these; the token itself
# stays in the variable the user named and is never copied anywhere.
ENV_PROJECT = "BIGML_FS_SERVE_PROJECT"
ENV_VARS = "BIGML_FS_SERVE_VARS"
ENV_TOKEN_ENV = "BIGML_FS_SERVE_TOKEN_ENV"
ENV_QUIET = "BIGML_FS_SERVE_QUIET"


def read_token(token_env: str | None) -> str | None:
    """The bearer token from the environment variable ``token_env`` (its value is never printed)."""
    if not token_env:
        return None
    token = os.environ.get(token_env, "")
    if not token.strip():
        raise UsageError(
            f"--token-env {token_env}: the environment variable {token_env} is not set or empty; "
            "export it with the token clients must send"
        )
    return token.strip()


def check_port(host: str, port: int) -> None:
    """Fail before loading anything when ``host:port`` cannot be listened on (in use, or a wrong host)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError as exc:
        raise BigmlError(
            f"--host {host}: cannot resolve it ({exc.strerror or exc}); "
            "give an address of this machine, e.g. 127.0.0.1 or 0.0.0.0"
        ) from None
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a port in TIME_WAIT is free
            sock.bind(address)
    except OSError as exc:
        raise BigmlError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "stop what uses that port or choose another with --port"
        ) from None


def setup_access_log(quiet: bool) -> None:
    """One plain JSON line per request on stderr (not through rich, which would wrap it)."""
    logger = logging.getLogger("bigml_fs.serving.access")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def build_app(project_dir: str, variables: dict, token_env: str | None):
    """Load the project (in-memory engine: the warehouse file stays free for `materialize`) and build the app."""
    from bigml_fs.project import Project
    from bigml_fs.serving.app import create_app

    token = read_token(token_env)
    project = Project.load(project_dir, variables, in_memory=True)
    check_vars(project.spec.vars, variables)
    return create_app(project, token=token)


def app_from_env():
    """uvicorn factory for worker processes (``--workers N``)."""
    setup_access_log(os.environ.get(ENV_QUIET) == "1")
    return build_app(
        os.environ[ENV_PROJECT], json.loads(os.environ.get(ENV_VARS, "{}")), os.environ.get(ENV_TOKEN_ENV) or None
    )


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the server to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 6566,
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            help=(
                "Require 'Authorization: Bearer <token>' on every route but /health; "
                "the token is read from this environment variable."
            ),
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (each reads the online store on its own).")] = 1,
) -> None:
    """HTTP API: GET /health, POST /features (Feast's /get-online-features JSON), POST /predict/{model}; docs at /docs.

    Example: BIGML_TOKEN=s3cret bigml-fs serve --port 6566 --token-env BIGML_TOKEN, then
    curl -H 'Authorization: Bearer s3cret' -d '{"features": ["customer_spend:last_amount"],
    "entities": {"customer_id": [1]}}' localhost:6566/features
    """
    import uvicorn

    quiet = logging.getLogger("bigml_fs").level >= logging.ERROR  # -q/--quiet: no access log lines either
    setup_access_log(quiet)
    with user_errors():
        check_port(host, port)
        if workers == 1:
            target = build_app(str(state.project_dir), state.variables, token_env)
        else:
            read_token(token_env)  # fail now, not in every worker
            with load_project(in_memory=True) as project:
                project.validate()  # report definition errors once, not in every worker
            os.environ.update(
                {
                    ENV_PROJECT: str(state.project_dir.resolve()),
                    ENV_VARS: json.dumps(state.variables),
                    ENV_TOKEN_ENV: token_env or "",
                    ENV_QUIET: "1" if quiet else "0",
                }
            )
            target = "bigml_fs.cli.serve_commands:app_from_env"
    auth = f", bearer token from ${token_env}" if token_env else ""
    err_console.print(
        (
            f"Serving [bold]{escape(str(state.project_dir.resolve()))}[/] on http://{host}:{port} "
            f"(docs: /docs{escape(auth)}); Ctrl+C stops"
        ),
        highlight=False,
    )
    uvicorn.run(
        target,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        factory=workers > 1,
        access_log=False,
        log_level="warning" if quiet else "info",
        loop="auto",
        http="auto",
    )
