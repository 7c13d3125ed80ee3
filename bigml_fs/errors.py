"""One hierarchy for every error a user can cause.

Each error carries a message fit to print as it is: what went wrong, where
(file:line, view, column) and how to fix it. The CLI prints these without a
traceback and exits 1; anything else is a bug in bigml_fs and shows one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


class BigmlError(Exception):
    """Base of every user-facing error."""

    exit_code = 1

    @property
    def message(self) -> str:
        return str(self)


class UsageError(BigmlError):
    """A command line that cannot be understood (exit 2, like click)."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One definition error: where it is, which key, and what is wrong."""

    file: str
    line: int | None
    key: str
    text: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.text}"


class DefinitionError(BigmlError):
    """One or more mistakes in the project's YAML or SQL files."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        n = len(self.problems)
        head = f"{n} error{'s' if n != 1 else ''} in the project definitions:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class SqlModelError(BigmlError):
    """A sql/ model that cannot be rendered, parsed or ordered."""

    def __init__(self, file: str, line: int | str | None, text: str):
        self.problem = Problem(file, line if isinstance(line, int) else None, "", text)
        super().__init__(str(self.problem))


class DataError(BigmlError):
    """Data that breaks a rule: ambiguous rows, bad spine, failed cast."""


class AmbiguousTie(DataError):
    """Source rows with the same keys, event time and created timestamp but different values.

    Training sets and materialize raise the same message (the README's rules: ties and
    bad rows), so it is written once, here. ``when`` is the time as text
    (ISO 8601, or ``(static source)`` for a view without event time).
    """

    def __init__(self, view: str, keys: dict[str, object], when: str):
        self.view, self.keys, self.when = view, dict(keys), when
        key_text = ", ".join(f"{k}={v!r}" for k, v in self.keys.items())
        super().__init__(
            f"view '{view}': source rows with {key_text} at {when} have the same event time and created timestamp "
            "but different values, so the latest value is ambiguous; "
            "deduplicate the source or add a created_timestamp that orders them"
        )


class EngineError(BigmlError):
    """The engine refused a query or could not be reached."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' hint for a misspelling, or ''."""
    match = difflib.get_close_matches(str(word), list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""
