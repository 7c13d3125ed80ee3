"""One place that prints: rich for people, JSON for scripts, errors without tracebacks."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.logging import RichHandler

from bigml_fs.errors import BigmlError

# Width of a table printed to a pipe or a file: whole rows, never cut at 80 columns.
PIPE_WIDTH = 100_000


class _Console(Console):
    """A console as wide as a terminal, or unbounded when stdout is a pipe or a file (``COLUMNS`` still wins)."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


console = _Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def setup_logging(quiet: bool = False) -> None:
    handler = RichHandler(console=err_console, show_time=False, show_path=False)
    logger = logging.getLogger("bigml_fs")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.ERROR if quiet else logging.INFO)
    logger.propagate = False


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


@contextmanager
def user_errors(as_json: bool = False) -> Iterator[None]:
    """Turn BigmlError into a clear message and its exit code; never a traceback."""
    try:
        yield
    except BigmlError as exc:
        if as_json:
            problems = [
                {"file": p.file, "line": p.line, "key": p.key, "message": p.text} for p in getattr(exc, "problems", [])
            ]
            emit_json({"ok": False, "error": str(exc), **({"problems": problems} if problems else {})})
        else:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(exc.exit_code) from None


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def status(message: str) -> Callable:
    """A spinner for a long step (silent when stdout is not a terminal)."""
    return err_console.status(message)
