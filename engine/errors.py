"""Engine errors: what is wrong with a request, a rule or the bars, and how to fix it."""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """Base of the errors a user can fix by changing the request or the data.

    EngineError(field, message)
     ├── RuleError(field, message, column, token)  a rule outside the expression language
     └── DataError(field, message)                 a bad value, an unknown symbol, bad bars

    `field` is the snake_case `BacktestRequest` field at fault (None when no single field is),
    `message` the human text, which is also `str(error)`. Errors pickle with their attributes,
    because the engine runs in a child process that sends them back over a pipe.
    """

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(field={self.field!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.message))


class RuleError(EngineError):
    """A rule expression that is not in the language; `column` is 1-based, `token` the culprit."""

    def __init__(self, field: str | None, message: str, column: int, token: str) -> None:
        super().__init__(field, message)
        self.column = column
        self.token = token

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.message, self.column, self.token))

    def with_field(self, field: str) -> RuleError:
        """The same error attributed to a request field (rules.parse does not know the field)."""
        return RuleError(field, self.message, self.column, self.token)


class DataError(EngineError):
    """A request value out of range, an unknown symbol, an empty range, or unusable bars."""


class Cancelled(Exception):
    """Raised by run() when should_cancel() returns True; control flow, not an error."""
